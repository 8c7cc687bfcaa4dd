import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import FixedThresholdClassifier, TunedThresholdClassifierCV
from sklearn.preprocessing import FunctionTransformer

from sksiamese import SiameseEmbedder, SiameseVerifier
from sksiamese._calibration import platt_scaling
from sksiamese.pairs import make_pairs


@pytest.fixture(scope="module")
def pair_data(digits):
    X, y, _, _ = digits
    # Pairs of digits 0-4; the test pairs are made of samples no training pair uses.
    train = make_pairs(X[0::2], y[0::2], 1200, random_state=0)
    test = make_pairs(X[1::2], y[1::2], 600, random_state=1)
    return train, test


@pytest.mark.parametrize("loss", ["contrastive", "bce"])
def test_learns_from_pair_labels_alone(pair_data, loss):
    (pairs, same), (test_pairs, test_same) = pair_data
    verifier = SiameseVerifier(loss=loss, max_epochs=8, early_stopping=False, random_state=0)
    verifier.fit(pairs, same)
    assert verifier.score(pairs, same) > 0.9
    assert roc_auc_score(test_same, verifier.decision_function(test_pairs)) > 0.9
    proba = verifier.predict_proba(test_pairs)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(verifier.predict(test_pairs), proba.argmax(1))


def test_threshold_tuned_by_scikit_learn(pair_data):
    (pairs, same), (test_pairs, test_same) = pair_data
    unbalanced = np.concatenate([np.flatnonzero(same == 1)[:150], np.flatnonzero(same == 0)])
    tuned = TunedThresholdClassifierCV(
        SiameseVerifier(max_epochs=5, random_state=0), scoring="balanced_accuracy", cv=2
    ).fit(pairs[unbalanced], same[unbalanced])
    assert 0 < tuned.best_threshold_ < 1
    assert balanced_accuracy_score(test_same, tuned.predict(test_pairs)) > 0.65
    fixed = FixedThresholdClassifier(
        SiameseVerifier(max_epochs=2, random_state=0),
        threshold=-0.5,
        response_method="decision_function",
    ).fit(pairs, same)
    scores = fixed.estimator_.decision_function(test_pairs)
    np.testing.assert_array_equal(fixed.predict(test_pairs), (scores >= -0.5).astype(int))


def test_same_random_state_same_model_and_pickle_round_trip(pair_data):
    (pairs, same), (test_pairs, _) = pair_data
    first = SiameseVerifier(max_epochs=2, random_state=3).fit(pairs, same)
    assert {"finite_loss", "lr_schedule"} <= set(dict(first.net_.callbacks_))
    second = clone(first).fit(pairs, same)
    np.testing.assert_array_equal(
        first.decision_function(test_pairs), second.decision_function(test_pairs)
    )
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(
        restored.predict_proba(test_pairs), first.predict_proba(test_pairs)
    )


def test_triplet_is_refused_with_a_reason(pair_data):
    (pairs, same), _ = pair_data
    with pytest.raises(ValueError, match="triplet.*class labels"):
        SiameseVerifier(loss="triplet").fit(pairs, same)


@pytest.mark.parametrize(
    ("shape", "y", "match"),
    [
        ((10, 64), [0, 1] * 5, r"shape \(n_claims, 1 \+ n_references\)"),
        ((10, 1, 64), [0, 1] * 5, "at least one reference"),
        ((1, 2, 64), [1], "exactly two classes"),
        ((4, 2, 64), [0, 1, 2, 1], "exactly two classes"),
    ],
)
def test_bad_pair_input(shape, y, match):
    with pytest.raises(ValueError, match=match):
        SiameseVerifier(max_epochs=1).fit(np.zeros(shape), y)


def test_wrong_sample_shape_and_unfitted(pair_data):
    (pairs, same), _ = pair_data
    with pytest.raises(NotFittedError):
        SiameseVerifier().predict(pairs)
    verifier = SiameseVerifier(max_epochs=1, random_state=0).fit(pairs, same)
    with pytest.raises(ValueError, match="samples of shape"):
        verifier.predict(pairs[:, :, :10])


def test_verification_metrics_work_on_every_estimator(pair_data, small):
    from sksiamese import OneShotClassifier, SiameseEmbedder
    from sksiamese.metrics import verification_metrics

    (pairs, same), (test_pairs, test_same) = pair_data
    X, y = small
    estimators = [
        SiameseVerifier(max_epochs=3, random_state=0).fit(pairs, same),
        SiameseEmbedder(max_epochs=3, random_state=0).fit(X, y),
        OneShotClassifier(max_epochs=3, random_state=0).fit(X, y),
    ]
    for estimator in estimators:
        result = verification_metrics(estimator, test_pairs, test_same)
        assert result.roc_auc > 0.8 and result.equal_error_rate < 0.3


API_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_repr",
    "check_estimator_cloneable",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
]


@pytest.mark.parametrize("name", API_CHECKS)
def test_scikit_learn_checks_that_do_not_assume_2d_input(name):
    # The other checks feed (n_samples, n_features) arrays, which are not
    # pairs; metric-learn's pair learners skip them for the same reason.
    from sklearn.utils import estimator_checks

    getattr(estimator_checks, name)("SiameseVerifier", SiameseVerifier(max_epochs=1))


@pytest.mark.parametrize("loss", ["contrastive", "bce"])
def test_a_batch_of_one_kind_of_pair_has_a_finite_loss(loss):
    import torch

    from sksiamese.losses import PairLoss

    criterion = PairLoss(loss=loss, embedding_dim=3)
    embeddings = torch.randn(4, 2, 3, requires_grad=True)
    for same in (torch.ones(4), torch.zeros(4)):
        value = criterion(embeddings, same)
        assert torch.isfinite(value)
        value.backward()


def test_a_last_batch_of_one_pair_trains(pair_data):
    (pairs, same), _ = pair_data
    # 129 pairs in batches of 128: the last batch holds one pair, of one kind.
    verifier = SiameseVerifier(max_epochs=2, early_stopping=False, random_state=0)
    verifier.fit(pairs[:129], same[:129])
    assert np.isfinite(verifier.loss_curve_).all()


def test_routed_callback_parameters_reach_the_callbacks(pair_data):
    from skorch.callbacks import Callback

    class Tagged(Callback):
        def __init__(self, tag="unset"):
            self.tag = tag

    (pairs, same), _ = pair_data
    verifier = SiameseVerifier(
        max_epochs=1,
        early_stopping=False,
        callbacks=[("tagged", Tagged())],
        callbacks__tagged__tag="set",
        random_state=0,
    ).fit(pairs[:200], same[:200])
    assert dict(verifier.net_.callbacks_)["tagged"].tag == "set"


@pytest.fixture(scope="module")
def trained_embedder(small):
    X, y = small  # digits 0-4
    return SiameseEmbedder(max_epochs=2, early_stopping=False, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def new_digit_pairs(digits):
    """Pairs of digits 5-9, which the embedder never trained on."""
    _, _, X_new, y_new = digits
    return make_pairs(X_new[0::2], y_new[0::2], 600, random_state=0), make_pairs(
        X_new[1::2], y_new[1::2], 600, random_state=1
    )


def test_a_given_embedder_scores_the_pairs_and_only_the_calibrator_is_fitted(
    new_digit_pairs, trained_embedder
):
    (pairs, same), (test_pairs, test_same) = new_digit_pairs
    weights = {k: v.clone() for k, v in trained_embedder.net_.module_.state_dict().items()}
    verifier = SiameseVerifier(embedder=FrozenEstimator(trained_embedder), loss="triplet")
    verifier.fit(pairs, same)
    assert not hasattr(verifier, "net_") and not hasattr(verifier, "n_iter_")
    scores = verifier.decision_function(test_pairs)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, trained_embedder.pair_score(test_pairs), rtol=1e-6)
    expected = platt_scaling(trained_embedder.pair_score(pairs), same)
    np.testing.assert_allclose(
        verifier.predict_proba(test_pairs)[:, 1],
        expected.predict_proba(scores[:, None])[:, 1],
        rtol=1e-6,
    )
    for key, value in trained_embedder.net_.module_.state_dict().items():
        torch.testing.assert_close(value, weights[key])  # the embedder is not trained
    tuned = TunedThresholdClassifierCV(
        SiameseVerifier(embedder=FrozenEstimator(trained_embedder)), scoring="balanced_accuracy"
    ).fit(pairs, same)  # clones the verifier: the frozen embedder stays trained
    assert balanced_accuracy_score(test_same, tuned.predict(test_pairs)) > 0.7
    restored = pickle.loads(pickle.dumps(verifier))
    np.testing.assert_array_equal(restored.decision_function(test_pairs), scores)


def test_a_koch_head_embedder_gives_its_logits(new_digit_pairs, small):
    (pairs, same), _ = new_digit_pairs
    X, y = small
    bce = SiameseEmbedder(loss="bce", max_epochs=1, early_stopping=False, random_state=0).fit(X, y)
    verifier = SiameseVerifier(embedder=FrozenEstimator(bce)).fit(pairs, same)
    probability = bce.pair_score(pairs).astype(np.float64)
    np.testing.assert_allclose(
        1 / (1 + np.exp(-verifier.decision_function(pairs))), probability, rtol=1e-5
    )


def test_the_embedder_must_be_a_trained_frozen_siamese_embedder_of_these_samples(
    new_digit_pairs, trained_embedder
):
    (pairs, same), _ = new_digit_pairs
    with pytest.raises(ValueError, match="FrozenEstimator"):  # clone would untrain it
        SiameseVerifier(embedder=trained_embedder).fit(pairs, same)
    with pytest.raises(NotFittedError, match="pairs carry no class labels"):
        SiameseVerifier(embedder=FrozenEstimator(SiameseEmbedder())).fit(pairs, same)
    identity = FrozenEstimator(FunctionTransformer().fit(pairs[:, 0]))
    with pytest.raises(TypeError, match="must wrap a SiameseEmbedder"):
        SiameseVerifier(embedder=identity).fit(pairs, same)
    with pytest.raises(ValueError, match=r"shape \(32,\).*shape \(64,\)"):
        SiameseVerifier(embedder=FrozenEstimator(trained_embedder)).fit(pairs[..., :32], same)


def test_refits_drop_the_other_kind_and_a_failed_one_changes_nothing(
    new_digit_pairs, trained_embedder
):
    (pairs, same), _ = new_digit_pairs
    verifier = SiameseVerifier(embedder=FrozenEstimator(trained_embedder), max_epochs=1)
    verifier.fit(pairs, same)
    verifier.set_params(embedder=None).fit(pairs, same)
    assert not hasattr(verifier, "embedder_") and hasattr(verifier, "net_")
    scores = verifier.decision_function(pairs)
    with pytest.raises(NotFittedError):
        verifier.set_params(embedder=FrozenEstimator(SiameseEmbedder())).fit(pairs, same)
    np.testing.assert_array_equal(verifier.decision_function(pairs), scores)
    verifier.set_params(embedder=FrozenEstimator(trained_embedder)).fit(pairs, same)
    assert hasattr(verifier, "embedder_") and not hasattr(verifier, "net_")
    assert not hasattr(verifier, "_default_module_args")


def test_shared_samples_are_embedded_once_and_scored_as_their_pairs(pair_data, monkeypatch):
    (pairs, same), _ = pair_data
    verifier = SiameseVerifier(max_epochs=1, early_stopping=False, random_state=0).fit(pairs, same)
    a, b, c = pairs[0, 0], pairs[0, 1], pairs[1, 0]
    # Three distinct samples (an odd number) in four pairs, one repeated.
    shared = np.stack([[a, b], [a, c], [c, a], [a, b]])
    net = verifier.net_
    with torch.no_grad():
        embedded_pairs = net.forward(shared).double()
        similarity = net.criterion_.similarity
        expected = similarity(embedded_pairs[:, 0], embedded_pairs[:, 1]).numpy()
    embedded, forward = [], type(net).forward

    def counting_forward(self, X):
        embedded.append(len(X))
        return forward(self, X)

    monkeypatch.setattr(type(net), "forward", counting_forward)
    np.testing.assert_allclose(verifier.decision_function(shared), expected, rtol=1e-6)
    assert embedded == [2]  # the three distinct samples, two by two (the last one twice)


def test_any_two_labels_name_different_and_same(pair_data):
    # Fails if the verifier hard-codes the labels {0, 1}, or reads the sorted
    # labels the other way round (the greater one means "same").
    (pairs, same), (test_pairs, _) = pair_data
    numeric = SiameseVerifier(max_epochs=2, random_state=0).fit(pairs, same)
    for labels in (np.where(same == 1, "genuine", "forged"), same == 1):
        named = SiameseVerifier(max_epochs=2, random_state=0).fit(pairs, labels)
        assert named.classes_.tolist() == sorted(set(labels.tolist()))
        np.testing.assert_array_equal(
            named.predict_proba(test_pairs), numeric.predict_proba(test_pairs)
        )
        np.testing.assert_array_equal(
            named.predict(test_pairs), named.classes_[numeric.predict(test_pairs)]
        )


def test_training_parameters_beside_a_given_embedder_warn(new_digit_pairs, trained_embedder):
    # Fails if parameters that cannot apply are ignored silently, or if the
    # defaults (numbers compared by value) raise the warning too.
    (pairs, same), _ = new_digit_pairs
    frozen = FrozenEstimator(trained_embedder)
    with pytest.warns(UserWarning, match=r"no effect: lr, module__hidden_sizes\."):
        SiameseVerifier(
            embedder=frozen, lr=0.1, max_epochs=np.int64(15), module__hidden_sizes=(8,)
        ).fit(pairs, same)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SiameseVerifier(embedder=frozen, max_epochs=15).fit(pairs, same)

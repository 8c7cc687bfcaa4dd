"""Claims: a questioned sample against K references, by both verifier routes."""

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import FixedThresholdClassifier, TunedThresholdClassifierCV
from sklearn.utils._param_validation import InvalidParameterError

from sksiamese import ReferenceSet, SiameseEmbedder, SiameseVerifier
from sksiamese._claims import ClaimRule, held_out_claims
from sksiamese._selection import _whole_units
from sksiamese.metrics import (
    false_accept_threshold,
    false_reject_rate_at,
    make_false_accept_scorer,
)
from sksiamese.pairs import make_claims
from sksiamese.similarity import EuclideanSimilarity, KochHead


@pytest.fixture(scope="module")
def frozen_embedder(small):
    X, y = small
    return FrozenEstimator(SiameseEmbedder(max_epochs=5, random_state=0).fit(X, y))


@pytest.fixture(scope="module")
def new_claims(digits):
    """Claims on digits 5-9, which the embedder never trained on, for K = 1 and K = 5."""
    _, _, X_new, y_new = digits
    fit_rows, test_rows = np.arange(0, len(X_new), 2), np.arange(1, len(X_new), 2)
    return {
        k: (
            make_claims(X_new[fit_rows], y_new[fit_rows], 300, n_references=k, random_state=k),
            make_claims(X_new[test_rows], y_new[test_rows], 400, n_references=k, random_state=9),
        )
        for k in (1, 5)
    }


def test_claim_scores_by_hand():
    # Questioned at the origin; references at distance 1, 3 and 5 along one axis.
    members = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [5.0, 0.0]]])
    similarity = EuclideanSimilarity()

    def scores(aggregation, normalization, members=members, floor=0.0):
        return ClaimRule(aggregation, normalization, floor).scores(similarity, members)

    np.testing.assert_allclose(
        [scores("mean", None)[0], scores("best", None)[0], scores("prototype", None)[0]],
        [-3.0, -1.0, -3.0],
    )
    # The references lie 2, 4 and 2 apart: spread 8 / 3, or the floor above it.
    np.testing.assert_allclose(scores("mean", "references"), [-3.0 / (8 / 3)])
    np.testing.assert_allclose(scores("mean", "references", floor=6.0), [-0.5])
    # One reference: nothing to measure the spread by, the score is the similarity.
    np.testing.assert_allclose(scores("mean", "references", members[:, :2]), [-1])
    # The floor is a tenth of the median spread of the claims it is fitted on.
    fitted = ClaimRule.fitted("mean", "references", similarity, members)
    assert fitted.spread_floor == pytest.approx(0.8 / 3)


def test_koch_distance_is_zero_for_identical_embeddings():
    head = KochHead(4)
    with torch.no_grad():
        head.bias.fill_(2.5)
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(head.distance(head(a, a)), torch.zeros(3))
    assert (head.distance(head(a, b)) > 0).all()


def test_references_and_their_spread_beat_one_reference(frozen_embedder, new_claims):
    # Bug caught: a claim scored by its first reference only, or a spread that
    # divides the wrong way, leaves five references no better than one.
    aucs = {}
    for k, (fit_set, (test_claims, test_same)) in new_claims.items():
        verifier = SiameseVerifier(embedder=frozen_embedder).fit(*fit_set)
        assert verifier.n_references_ == k
        aucs[k] = roc_auc_score(test_same, verifier.decision_function(test_claims))
    assert aucs[5] > aucs[1] + 0.03, aucs


def test_embedder_route_scores_from_the_embeddings(frozen_embedder, new_claims):
    # Bug caught: references mixed up between claims, or the aggregation ignored.
    (claims, same), _ = new_claims[5]
    embeddings = frozen_embedder.transform(claims.reshape(-1, 64)).reshape(len(claims), 6, -1)
    distances = np.linalg.norm(embeddings[:, :1] - embeddings[:, 1:], axis=-1)
    for aggregation, expected in [("mean", -distances.mean(1)), ("best", -distances.min(1))]:
        verifier = SiameseVerifier(
            embedder=frozen_embedder, aggregation=aggregation, normalization=None
        ).fit(claims, same)
        np.testing.assert_allclose(verifier.decision_function(claims), expected, rtol=1e-5)


def test_a_verifier_trains_on_claims(digits, new_claims):
    X, y, _, _ = digits
    claims, same = make_claims(X, y, 600, n_references=5, random_state=0)
    _, (test_claims, test_same) = new_claims[5]
    verifier = SiameseVerifier(max_epochs=5, early_stopping=False, random_state=0)
    verifier.fit(claims, same)
    proba = verifier.predict_proba(test_claims)
    assert proba.shape == (len(test_claims), 2)
    assert roc_auc_score(test_same, proba[:, 1]) > 0.8
    with pytest.raises(ValueError, match="1 reference.*fitted on claims with 5"):
        verifier.predict(test_claims[:, :2])


def test_claims_are_held_out_whole():
    # Fails if a claim's pairs can be split between training and calibration
    # (a random split of pairs holds out a whole claim of K pairs rarely).
    units = np.repeat(np.arange(4), 2)  # claims of 2 references: pairs 2i and 2i + 1
    same = np.repeat([1, 0, 1, 0], 2)
    train, held = _whole_units((np.arange(8), np.array([1, 2])), units, same)
    np.testing.assert_array_equal(held, [0, 1, 2, 3])
    np.testing.assert_array_equal(train, [4, 5, 6, 7])
    # Every claim held out: nothing left to train on.
    assert _whole_units((np.arange(8), np.array([1, 3, 5, 7])), units, same) is None
    np.testing.assert_array_equal(held_out_claims(held, 2, same[::2]), [0, 1])
    assert held_out_claims(np.array([0, 1]), 2, same[::2]) is None  # one label only
    assert held_out_claims(None, 2, same[::2]) is None


def test_a_verifier_selects_its_epoch_on_held_out_claims(digits):
    X, y, _, _ = digits
    claims, same = make_claims(X, y, 300, n_references=3, random_state=0)
    verifier = SiameseVerifier(max_epochs=2, early_stopping=True, random_state=0)
    verifier.fit(claims, same)
    assert len(verifier.validation_scores_) == 3  # untrained, then each epoch
    assert verifier.predict_proba(claims).shape == (300, 2)


def test_the_fitted_rule_survives_set_params(frozen_embedder, new_claims):
    # Fails if decision_function reads the parameters again after fit: the
    # calibrator and any threshold belong to the rule they were fitted for.
    (claims, same), _ = new_claims[5]
    verifier = SiameseVerifier(embedder=frozen_embedder).fit(claims, same)
    before = verifier.decision_function(claims)
    verifier.set_params(aggregation="best", normalization=None)
    np.testing.assert_array_equal(verifier.decision_function(claims), before)


def test_identical_references_do_not_make_extreme_scores(frozen_embedder, new_claims):
    # Fails if the spread of identical references divides at about zero: the
    # sample itself, claimed against copies of itself, then scores lowest.
    (claims, same), _ = new_claims[5]
    verifier = SiameseVerifier(embedder=frozen_embedder).fit(claims, same)
    scores = verifier.decision_function(claims)
    itself = np.repeat(claims[:1, :1], 6, axis=1)
    assert verifier.decision_function(itself)[0] >= scores.max()


def test_reference_set_enrols_and_builds_claims():
    references = ReferenceSet().enrol(np.arange(8.0).reshape(4, 2), ["a", "a", "b", "b"])
    claims = references.claims([[9.0, 9.0], [7.0, 7.0]], ["b", "a"])
    np.testing.assert_array_equal(claims[0], [[9, 9], [4, 5], [6, 7]])
    np.testing.assert_array_equal(claims[1], [[7, 7], [0, 1], [2, 3]])
    assert list(references.identities) == ["a", "b"] and references.n_references("a") == 2


def test_reference_set_refuses_what_it_cannot_do():
    references = ReferenceSet().enrol(np.zeros((4, 3)), [1, 1, 2, 2])
    with pytest.raises(ValueError, match=r"not enrolled: \[7\]"):
        references.claims(np.zeros((1, 3)), [7])
    with pytest.raises(ValueError, match="have shape \\(5,\\).*enrolled have shape \\(3,\\)"):
        references.enrol(np.zeros((1, 5)), [3])
    with pytest.raises(ValueError, match=r"already enrolled: \[1\].*existing='replace'"):
        references.enrol(np.ones((1, 3)), [1])
    assert references.n_references(1) == 2  # the refused call changed nothing
    with pytest.raises(ValueError, match="existing must be one of"):
        references.enrol(np.ones((1, 3)), [1], existing="merge")
    references.enrol(np.ones((1, 3)), [1], existing="extend")
    assert references.n_references(1) == 3
    with pytest.raises(ValueError, match="same number of references"):
        references.claims(np.zeros((2, 3)), [1, 2])
    references.enrol(np.full((2, 3), 5.0), [1, 1], existing="replace")
    assert references.claims(np.zeros((1, 3)), [1])[0, 1:].tolist() == [[5.0] * 3] * 2


def test_false_accept_threshold_by_hand():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.4, 0.5, 0.8, 0.95])
    # One impostor in four scores 0.9: a 25% false-accept rate admits it.
    assert false_accept_threshold(y, scores, false_accept_rate=0.25) == pytest.approx(0.4)
    assert false_reject_rate_at(y, scores, false_accept_rate=0.25) == 0.0
    # Below 25%, only the 0.95 claim is above every impostor.
    assert false_accept_threshold(y, scores, false_accept_rate=0.2) == pytest.approx(0.95)
    assert false_reject_rate_at(y, scores, false_accept_rate=0.2) == 0.75


def test_false_accept_threshold_inside_a_straight_part_of_the_curve():
    # Fails with roc_curve's drop_intermediate, which drops the point at 4.
    y, scores = [1, 0, 1, 0, 1, 0], [5, 5, 4, 4, 3, 3]
    assert false_accept_threshold(y, scores, false_accept_rate=0.7) == 4.0
    assert false_reject_rate_at(y, scores, false_accept_rate=0.7) == pytest.approx(1 / 3)


def test_false_accept_metrics_read_labels_and_refuse_one_kind():
    labels = np.array(["forged", "genuine", "forged", "genuine"])
    scores = [0.1, 0.9, 0.8, 0.7]
    assert false_accept_threshold(labels, scores, false_accept_rate=0.5) == 0.7
    flipped = false_reject_rate_at(labels, scores, false_accept_rate=0.6, pos_label="forged")
    assert flipped == 0.5  # "genuine" at 0.9 and 0.7 counted as impostors
    with pytest.raises(ValueError, match="genuine and impostor"):
        false_reject_rate_at(["genuine"] * 3, [0.1, 0.2, 0.3])


@pytest.mark.parametrize("rate", [0, 1, 1.5, -0.1])
def test_false_accept_targets_outside_zero_one_are_refused(rate):
    with pytest.raises(InvalidParameterError, match="false_accept_rate"):
        false_accept_threshold([0, 1], [0.1, 0.9], false_accept_rate=rate)
    with pytest.raises(InvalidParameterError, match="false_accept_rate"):
        make_false_accept_scorer(rate)


def test_thresholds_at_a_false_accept_rate(frozen_embedder, new_claims):
    (claims, same), (test_claims, test_same) = new_claims[5]
    # String labels, the greater ("same") meaning genuine.
    y = np.where(same == 1, "same", "different")
    verifier = SiameseVerifier(embedder=frozen_embedder).fit(claims, y)
    threshold = false_accept_threshold(y == "same", verifier.predict_proba(claims)[:, 1])
    fixed = FixedThresholdClassifier(verifier, threshold=threshold, response_method="predict_proba")
    accepted = fixed.fit(claims, y).predict(claims) == "same"
    assert accepted[y == "different"].mean() <= 0.01
    tuned = TunedThresholdClassifierCV(
        verifier, scoring=make_false_accept_scorer(0.05), cv=2, random_state=0
    ).fit(claims, y)
    accepted = tuned.predict(claims) == "same"
    # Tuned on folds, checked on all the claims: within the rate, up to the
    # folds' noise, and accepting about as many genuine claims as the best
    # threshold within the rate does (a scorer that ignores the rate, or
    # rewards rejecting, misses one of the two).
    best = 1 - false_reject_rate_at(
        y == "same", verifier.decision_function(claims), false_accept_rate=0.05
    )
    assert accepted[y == "different"].mean() <= 0.08
    assert accepted[y == "same"].mean() > best - 0.1

"""Keep what transfers: the held-out selection of the training epoch."""

import copy

import numpy as np
import pytest
import torch
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import Callback

import sksiamese._embedder
from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier
from sksiamese._held_out import (
    HeldOutPairAUC,
    OneShotEpisodes,
    hold_out_classes,
    hold_out_pairs,
    pair_groups,
)
from sksiamese.metrics import one_shot_accuracy
from sksiamese.pairs import make_pairs


@pytest.mark.parametrize(
    ("n_classes", "n_held"), [(3, None), (4, 2), (5, 2), (10, 5), (30, 5), (100, 10)]
)
def test_hold_out_classes_rule(n_classes, n_held):
    codes = np.repeat(np.arange(n_classes), 3)
    codes = np.append(codes, n_classes)  # a class of one sample is never held out
    split = hold_out_classes(codes, 0.1, np.random.RandomState(0))
    if n_held is None:
        assert split is None
        return
    train, held = split
    assert len(np.unique(codes[held])) == n_held
    assert not set(codes[train]) & set(codes[held])
    assert n_classes in set(codes[train])
    assert len(train) + len(held) == len(codes)


class ScriptedScores:
    """Replaces a held-out scorer's ``__call__``: returns the given scores in turn."""

    def __init__(self, scores):
        self.scores = list(scores)

    def __call__(self, net):
        return self.scores.pop(0)


def test_untrained_network_is_kept_when_training_only_hurts(digits, monkeypatch):
    X, y, _, _ = digits
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores([0.9, 0.5, 0.4, 0.3]))
    with pytest.warns(UserWarning, match="keeps the untrained network"):
        embedder = SiameseEmbedder(max_epochs=3, random_state=0).fit(X, y)
    assert embedder.validation_scores_ == [0.9, 0.5, 0.4, 0.3]
    assert embedder.best_epoch_ == 0 and embedder.n_iter_ == 0
    # The untrained default MLP (five classes: the residual start) compares
    # samples exactly as the Euclidean distance of their raw features does.
    E = embedder.transform(X[:50])
    scale = embedder.net_.module_.input_scale.item()
    expected = np.linalg.norm(X[:50, None] - X[None, :50], axis=2) / scale
    np.testing.assert_allclose(np.linalg.norm(E[:, None] - E[None], axis=2), expected, atol=1e-4)


def test_few_classes_retrain_on_every_class_up_to_the_last_epoch_that_gained(digits, monkeypatch):
    X, y, _, _ = digits
    scores = [0.3, 0.2, 0.9, 0.25, 0.2]  # epochs 3 and 4 lose to the untrained net
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores(scores))
    embedder = SiameseEmbedder(max_epochs=4, callbacks=[ClassRecorder()], random_state=0)
    embedder.fit(X, y)
    assert embedder.best_epoch_ == 2 and embedder.validation_scores_ == scores
    # The last training is the retraining on every class, to the last epoch that gained.
    assert embedder.n_iter_ == 2 and trained_classes(embedder.net_) == {0, 1, 2, 3, 4}


class ClassRecorder(Callback):
    """Records the classes of each epoch's training batches in the history."""

    def initialize(self):
        self.classes = set()
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.classes |= set(batch[1].tolist())

    def on_epoch_end(self, net, **kwargs):
        net.history.record("classes", sorted(self.classes))
        self.classes = set()


def trained_classes(net):
    """The classes a net's last training saw, from its history."""
    return set().union(*net.history[:, "classes"])


def test_held_out_classes_are_never_trained_on_when_the_selected_net_is_kept(monkeypatch):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 8))
    y = np.repeat(np.arange(60), 4)
    X = (centres[y] + 0.1 * rng.normal(size=(len(y), 8))).astype(np.float32)
    seen = {}
    original = OneShotEpisodes.__init__

    def spy(self, X_held, codes, random_state):
        seen["X"], seen["codes"] = X_held, codes
        original(self, X_held, codes, random_state)

    monkeypatch.setattr(OneShotEpisodes, "__init__", spy)
    embedder = SiameseEmbedder(
        max_epochs=2, early_stopping=True, callbacks=[ClassRecorder()], random_state=0
    ).fit(X, y)
    held = set(np.unique(seen["codes"]).tolist())
    assert len(held) == 6  # 10% of 60 classes
    # Sixty classes: the selected net itself is kept, and it never saw them.
    assert not held & trained_classes(embedder.net_)
    assert trained_classes(embedder.net_) | held == set(range(60))
    # The held-out samples are training samples of exactly those classes.
    rows = np.flatnonzero(np.isin(y, list(held)))
    np.testing.assert_array_equal(seen["X"], X[rows])
    assert len(embedder.validation_scores_) == 3
    # The held-out samples do not travel with the fitted model.
    assert "keep_best" not in dict(embedder.net_.callbacks_)


def test_early_stopping_true_stops_after_the_patience(digits, monkeypatch):
    X, y, _, _ = digits
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores([0.5, 0.6] + [0.1] * 20))
    embedder = SiameseEmbedder(
        early_stopping=True, n_iter_no_change=2, max_epochs=20, random_state=0
    ).fit(X, y)
    assert embedder.validation_scores_ == [0.5, 0.6, 0.1, 0.1]
    assert embedder.best_epoch_ == 1


def test_without_early_stopping_the_last_network_is_kept(small):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=2, early_stopping=False, random_state=0).fit(X, y)
    assert embedder.validation_scores_ is None
    assert embedder.best_epoch_ == embedder.n_iter_ == 2


def test_too_few_classes_skip_the_selection_under_auto(small):
    X, y = small
    three = y < 3
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X[three], y[three])
    assert embedder.validation_scores_ is None and embedder.n_iter_ == 2


def test_many_classes_skip_the_selection_under_auto():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(50), 3)
    X = rng.normal(size=(len(y), 6)).astype(np.float32)
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    assert embedder.validation_scores_ is None and embedder.best_epoch_ == 2


def test_the_curve_is_in_the_net_history_when_the_selected_net_is_kept(monkeypatch):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(50), 3)
    X = rng.normal(size=(len(y), 6)).astype(np.float32)
    embedder = SiameseEmbedder(max_epochs=2, early_stopping=True, random_state=0).fit(X, y)
    history = embedder.net_.history
    assert history[:, "valid_score"] == embedder.validation_scores_[1:]


def test_classifier_trains_its_embedder_with_the_selection(digits, monkeypatch):
    X, y, _, _ = digits
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores([0.1, 0.5, 0.2]))
    clf = OneShotClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert clf.embedder_.best_epoch_ == 1


def test_pair_groups_follow_the_classes_behind_the_pairs(digits):
    X, y, _, _ = digits
    pairs, same = make_pairs(X, y, 3000, random_state=0)
    components = pair_groups(pairs, same)
    assert components.shape == (len(pairs), 2)
    # Each sample's class, looked up by its pixels: one class per group.
    class_of = {x.tobytes(): label for x, label in zip(X, y, strict=True)}
    classes = np.array([[class_of[p.tobytes()] for p in pair] for pair in pairs])
    for group in np.unique(components):
        assert len(np.unique(classes[components == group])) == 1
    # The same pairs link each digit's samples into few groups.
    assert len(np.unique(components[same == 1])) < 20


def test_held_out_pairs_hold_groups_no_training_pair_touches(digits):
    X, y, _, _ = digits
    pairs, same = make_pairs(X, y, 3000, random_state=0)
    components = pair_groups(pairs, same)
    train, held = hold_out_pairs(components, same, 0.2, np.random.RandomState(0))
    # A partition of the pairs (fails for a pair on both sides, or on neither),
    # each side with same and different pairs.
    np.testing.assert_array_equal(np.sort(np.concatenate([train, held])), np.arange(len(pairs)))
    assert set(same[held]) == set(same[train]) == {0, 1}
    # Each held-out pair has a sample of a group that no training pair touches:
    # fails for held-out groups whose pairs leak into training, and for the
    # random fallback taken here (of a random fifth of these pairs, measured
    # over five draws, at most 1% have such a sample).
    trained = set(components[train].ravel().tolist())
    assert all(set(pair.tolist()) - trained for pair in components[held])


def test_pairs_of_one_group_are_held_out_at_random():
    # Every pair touches one sample: one group holds all the pairs, which
    # cannot be held out, so random pairs are.
    rng = np.random.default_rng(0)
    hub = rng.normal(size=5)
    pairs = np.stack([np.tile(hub, (200, 1)), rng.normal(size=(200, 5))], axis=1)
    same = np.tile([0, 1], 100)
    assert len(np.unique(pair_groups(pairs, same))) == 101
    train, held = hold_out_pairs(pair_groups(pairs, same), same, 0.25, np.random.RandomState(0))
    assert len(held) == 50 and len(train) == 150
    assert set(same[held]) == {0, 1}


def test_numpy_booleans_switch_the_selection_off(small):
    X, y = small
    embedder = SiameseEmbedder(early_stopping=np.False_, max_epochs=1, random_state=0).fit(X, y)
    assert embedder.validation_scores_ is None


def test_verifier_keeps_the_untrained_network_when_training_only_hurts(digits, monkeypatch):
    X, y, _, _ = digits
    # Enough pairs for the same pairs to link each digit's samples: five classes.
    pairs, same = make_pairs(X, y, 3000, random_state=0)
    monkeypatch.setattr(HeldOutPairAUC, "__call__", ScriptedScores([0.8, 0.7, 0.6]))
    with pytest.warns(UserWarning, match="keeps the untrained network"):
        verifier = SiameseVerifier(max_epochs=2, random_state=0).fit(pairs, same)
    assert verifier.best_epoch_ == 0 and verifier.n_iter_ == 0
    assert verifier.validation_scores_ == [0.8, 0.7, 0.6]
    # The untrained residual branch scores pairs by the distance of their pixels.
    scale = verifier.net_.module_.branch.input_scale.item()
    expected = -np.linalg.norm(pairs[:, 0] - pairs[:, 1], axis=1) / scale
    np.testing.assert_allclose(verifier.decision_function(pairs), expected, atol=1e-4)


@pytest.mark.slow
def test_learned_metric_is_not_worse_than_the_input_on_new_classes(digits):
    # Five training digits: the regime where a metric learned from scratch
    # compared the five new digits worse than their pixels (47% against 73%).
    X, y, X_new, y_new = digits
    embedder = SiameseEmbedder(random_state=0).fit(X, y)
    # Pixels, divided by the one scale the embedder's input goes through: the
    # same ranking as raw pixels, in the same float32 arithmetic, so an exact
    # tie stays a tie. Over-fitting the five training digits cost 26 points here.
    scale = np.float32(embedder.net_.module_.input_scale.item())
    pixels = FunctionTransformer(lambda Z: np.asarray(Z, dtype=np.float32) / scale).fit(X)
    episodes = dict(n_way=5, n_queries=20, n_episodes=100, random_state=0)
    ours = one_shot_accuracy(embedder, X_new, y_new, **episodes).mean
    raw = one_shot_accuracy(pixels, X_new, y_new, **episodes).mean
    assert ours >= raw


def episodes(mean, spread, seed):
    """Per-episode accuracies of 200 episodes about ``mean``."""
    rng = np.random.default_rng(seed)
    return np.clip(mean + spread * rng.standard_normal(200), 0, 1)


def unit_noise():
    """200 per-episode deviations of mean exactly 0 and standard deviation exactly 1."""
    noise = np.random.default_rng(1).standard_normal(200)
    return (noise - noise.mean()) / noise.std()


def test_a_gain_within_the_noise_of_the_episodes_keeps_the_untrained_network(digits, monkeypatch):
    # Bug caught: a trained net kept for a held-out gain smaller than the
    # episodes' noise, which transferred worse than the raw input on digits.
    X, y, _, _ = digits
    untrained = episodes(0.8, 0.1, 0)
    noisy = untrained + 0.01 + 0.3 * unit_noise()  # gain 0.01 ± 0.04
    scripted = [untrained, noisy, untrained - 0.1]
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores(scripted))
    with pytest.warns(UserWarning, match="clearly beat"):
        embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    assert embedder.validation_scores_[1] > embedder.validation_scores_[0]
    assert embedder.best_epoch_ == 0 and embedder.n_iter_ == 0


def test_a_clear_gain_keeps_the_trained_network(digits, monkeypatch):
    X, y, _, _ = digits
    untrained = episodes(0.6, 0.1, 0)
    scripted = [untrained, untrained + 0.05, untrained + 0.2]
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores(scripted))
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    assert embedder.best_epoch_ == 2


def test_retraining_anneals_the_learning_rate_over_its_own_epochs(digits, monkeypatch):
    # Bug caught: the retraining stopped a longer one-cycle schedule midway, at a high rate.
    X, y, _, _ = digits
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores([0.4, 0.5, 0.9, 0.3, 0.2]))
    embedder = SiameseEmbedder(max_epochs=4, lr=1e-3, random_state=0).fit(X, y)
    assert embedder.best_epoch_ == 2 and embedder.n_iter_ == 2
    last_rate = embedder.net_.optimizer_.param_groups[0]["lr"]
    assert last_rate < 1e-6


def test_retraining_runs_to_the_latest_epoch_that_beats_the_untrained(digits, monkeypatch):
    # Bug caught: retraining to the best epoch's count on all classes lost to
    # training every epoch on CEDAR and Omniglot subsets, as a net trained on
    # more classes over-fits later.
    X, y, _, _ = digits
    untrained = episodes(0.5, 0.1, 0)
    noise = unit_noise()
    peak = untrained + 0.3
    # Epoch 3: clearly below the peak, clearly above the untrained net.
    # Epoch 4: 0.005 above the untrained net, within its noise (95% half-width 0.014).
    scripted = [untrained, untrained + 0.1, peak, peak - 0.1, untrained + 0.005 + 0.1 * noise]
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores(scripted))
    embedder = SiameseEmbedder(max_epochs=4, random_state=0).fit(X, y)
    assert embedder.best_epoch_ == 2 and embedder.n_iter_ == 3


def test_the_best_epoch_is_chosen_among_those_that_clearly_beat_the_untrained(digits, monkeypatch):
    # Bug caught: a noisy epoch with a higher mean displaced one with a clear gain,
    # and the untrained net was then kept.
    X, y, _, _ = digits
    untrained = episodes(0.5, 0.1, 0)
    clear = untrained + 0.1
    noisy = untrained + 0.12 + 0.9 * unit_noise()  # higher mean, 95% interval across 0
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores([untrained, clear, noisy]))
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    assert embedder.validation_scores_[2] > embedder.validation_scores_[1]
    assert embedder.best_epoch_ == 1


def test_a_single_score_has_no_noise_to_judge_so_any_gain_counts(digits, monkeypatch):
    # One score per epoch (as a verifier's held-out ROC AUC is) has no
    # spread: the rule falls back to the plain comparison, and a small gain
    # is kept.
    X, y, _, _ = digits
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores([0.5, 0.501, 0.4]))
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    assert embedder.best_epoch_ == 1


def test_verifier_retrains_to_the_last_epoch_that_gained_with_its_schedule(digits, monkeypatch):
    X, y, _, _ = digits
    pairs, same = make_pairs(X, y, 3000, random_state=0)
    scores = [0.5, 0.6, 0.8, 0.7, 0.4]  # best epoch 2; epoch 3 still beats the untrained
    monkeypatch.setattr(HeldOutPairAUC, "__call__", ScriptedScores(scores))
    verifier = SiameseVerifier(max_epochs=4, lr=1e-3, random_state=0).fit(pairs, same)
    assert verifier.best_epoch_ == 2 and verifier.n_iter_ == 3
    # Annealed to its end; three epochs of a four-epoch one-cycle schedule
    # would leave it far above.
    assert verifier.net_.optimizer_.param_groups[0]["lr"] < 1e-5


class StateRecorder(Callback):
    """Appends a copy of the branch's weights to ``states`` after every epoch of every training.

    A class attribute: the estimator trains copies of its callbacks.
    """

    states = []

    def on_epoch_end(self, net, **kwargs):
        StateRecorder.states.append(copy.deepcopy(net.module_.state_dict()))


def test_calibration_is_chosen_on_the_held_out_net_at_the_retrained_epochs(digits, monkeypatch):
    # Bug caught: the temperature was fitted on the net of the best epoch while
    # the kept net ran on to a later one.
    X, y, _, _ = digits
    monkeypatch.setattr(OneShotEpisodes, "__call__", ScriptedScores([0.4, 0.5, 0.9, 0.6, 0.3]))
    seen = {}

    def temperature(trained, *args):
        seen["selected"] = copy.deepcopy(trained.selected_net.module_.state_dict())
        return 1.0

    monkeypatch.setattr(sksiamese._embedder, "embedder_temperature", temperature)
    states = StateRecorder.states
    states.clear()
    embedder = SiameseEmbedder(max_epochs=4, callbacks=[StateRecorder()], random_state=0)
    embedder.fit(X, y)
    assert embedder.best_epoch_ == 2 and embedder.n_iter_ == 3
    assert len(states) == 4 + 3  # the held-out training, then the retraining
    at_epoch_3 = states[2]  # the held-out training's third epoch
    for name, weights in seen["selected"].items():
        torch.testing.assert_close(weights, at_epoch_3[name])

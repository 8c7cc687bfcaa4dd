"""Probabilities calibrated on data the network did not train on, class by class."""

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier, _verifier
from sksiamese._scoring import fit_temperature, leave_one_out_scores, platt_scaling
from sksiamese._selection import OneShotEpisodes
from sksiamese.pairs import make_pairs


class ScoreColumn(ClassifierMixin, BaseEstimator):
    """A fitted binary classifier whose decision function is its input's first column."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X):
        return np.asarray(X)[:, 0]

    def predict(self, X):
        return (self.decision_function(X) > 0).astype(int)


def test_platt_scaling_is_platts_sigmoid_as_scikit_learn_fits_it():
    rng = np.random.RandomState(0)
    same = rng.randint(2, size=300)
    scores = rng.normal(size=300) + 1.5 * same
    ours = platt_scaling(scores, same)
    theirs = CalibratedClassifierCV(
        FrozenEstimator(ScoreColumn().fit(None, None)), method="sigmoid"
    )
    theirs.fit(scores[:, None], same)
    grid = np.linspace(-3, 4, 50)[:, None]
    np.testing.assert_allclose(
        ours.predict_proba(grid)[:, 1], theirs.predict_proba(grid)[:, 1], atol=1e-4
    )  # two optimisers of one objective: 3.2e-5 apart here


def test_platt_scaling_stays_finite_when_scores_separate_the_pairs():
    same = np.r_[np.zeros(20), np.ones(20)].astype(int)
    scores = np.r_[np.linspace(-3, -1, 20), np.linspace(1, 3, 20)]
    proba = platt_scaling(scores, same).predict_proba(scores[:, None])[:, 1]
    # Platt's targets for 20 positives and 20 negatives are 21/22 and 1/22:
    # the sigmoid approaches them, it does not reach 0 or 1.
    assert 0.0 < proba.min() < 1 / 22 + 0.05 and 21 / 22 - 0.05 < proba.max() < 1.0


def test_temperature_refuses_unscored_classes():
    scores = np.array([[0.0, -np.inf], [-1.0, 0.0]])
    with pytest.raises(ValueError, match="finite scores"):
        fit_temperature(scores, np.array([0, 1]))


class EpisodeSpy:
    """Records the classes of every set of episodes the embedder calibrates on."""

    def __init__(self, monkeypatch):
        self.calibrated_on, self.selected_on = [], []
        original_scores = OneShotEpisodes.class_scores
        original_call = OneShotEpisodes.__call__

        def class_scores(episodes, embed, similarity):
            self.calibrated_on.append(set(np.unique(episodes.codes[episodes.used]).tolist()))
            return original_scores(episodes, embed, similarity)

        def call(episodes, net):
            self.selected_on.append(set(np.unique(episodes.codes[episodes.used]).tolist()))
            return original_call(episodes, net)

        monkeypatch.setattr(OneShotEpisodes, "class_scores", class_scores)
        monkeypatch.setattr(OneShotEpisodes, "__call__", call)


def test_embedder_calibrates_on_the_held_out_classes(digits, monkeypatch):
    X, y, _, _ = digits
    codes_of = {c: i for i, c in enumerate(np.unique(y))}
    spy = EpisodeSpy(monkeypatch)
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    assert len(spy.calibrated_on) == 1
    held = spy.selected_on[0]
    assert spy.calibrated_on[0] == held and len(held) < len(codes_of)
    assert np.isfinite(embedder.temperature_) and embedder.temperature_ > 0


def test_without_held_out_classes_the_embedder_calibrates_on_training_classes(small, monkeypatch):
    X, y = small
    spy = EpisodeSpy(monkeypatch)
    SiameseEmbedder(max_epochs=2, early_stopping=False, random_state=0).fit(X, y)
    assert spy.selected_on == [] and spy.calibrated_on == [set(range(5))]


def test_classifier_trained_on_its_support_takes_the_embedders_temperature(small):
    X, y = small  # 30 examples per class: leave-one-out would be possible, and over-confident
    clf = OneShotClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert clf.temperature_ == clf.embedder_.temperature_


def test_frozen_embedder_calibrates_on_a_support_of_new_classes(small, digits):
    X, y = small
    _, _, Xn, yn = digits
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    support = np.concatenate([np.flatnonzero(yn == c)[:5] for c in np.unique(yn)])
    clf = OneShotClassifier(embedder=FrozenEstimator(embedder), random_state=0)
    clf.fit(Xn[support], yn[support])
    # The temperature that calibrates leave-one-out scores of this support set
    # (every row is eligible; the classifier draws them in this order).
    classes, codes = np.unique(yn[support], return_inverse=True)
    embeddings = torch.as_tensor(embedder.transform(Xn[support]))
    rows = torch.as_tensor(np.random.RandomState(0).choice(len(codes), len(codes), replace=False))
    scores = leave_one_out_scores(
        embedder._similarity, embeddings, torch.as_tensor(codes), len(classes), "prototype", rows
    )
    assert clf.temperature_ == fit_temperature(scores.numpy(), codes[rows.numpy()])
    assert clf.temperature_ != embedder.temperature_


@pytest.mark.parametrize("early_stopping", [True, False])
def test_verifier_calibrates_on_the_held_out_pairs(small, monkeypatch, early_stopping):
    X, y = small
    pairs, same = make_pairs(X, y, 300, random_state=0)
    seen = []

    def spy(scores, labels):
        seen.append(len(scores))
        return platt_scaling(scores, labels)

    monkeypatch.setattr(_verifier, "platt_scaling", spy)
    verifier = SiameseVerifier(max_epochs=2, early_stopping=early_stopping, random_state=0)
    verifier.fit(pairs, same)
    if early_stopping:
        # 20% of the pairs, give or take the grouping by class.
        assert 0.1 * len(pairs) < seen[0] < 0.4 * len(pairs)
    else:
        assert seen == [len(pairs)]

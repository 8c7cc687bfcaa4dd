"""Probabilities calibrated on data the network did not train on, class by class."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier
from sksiamese._calibration import (
    SAMPLE_CLASSES,
    SAMPLE_PER_CLASS,
    embedder_temperature,
    fit_temperature,
    platt_scaling,
    training_sample,
)
from sksiamese._held_out import OneShotEpisodes
from sksiamese._net import pair_net_scores
from sksiamese._params import TrainingParams
from sksiamese._selection import TrainedNet, train_on_pairs
from sksiamese._verifier import _NOT_APPLICABLE
from sksiamese.pairs import make_pairs
from sksiamese.similarity import EuclideanSimilarity


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


class FixedNet:
    """A stand-in for a trained net: fixed embeddings of each sample, compared by distance."""

    def __init__(self, embed):
        self.embed = embed
        self.criterion_ = SimpleNamespace(similarity=EuclideanSimilarity())

    def forward(self, X):
        return torch.as_tensor(self.embed(X), dtype=torch.float32)


def separated(X):
    """Embeddings that put each class, coded in the first column, far apart."""
    return np.eye(10)[X[:, 0].astype(int)] * 5.0


def noise(X):
    """Embeddings unrelated to the classes."""
    return np.random.default_rng(0).normal(size=(len(X), 10))


def test_embedder_temperature_scores_the_held_out_episodes_with_the_net_that_never_saw_them():
    # Fails if the temperature is fitted on scores of the final net (trained on
    # every class, held-out ones included) or on episodes of the training
    # classes, instead of the held-out episodes scored by the selected net.
    codes = np.repeat(np.arange(10), 4)
    X = codes[:, None].astype(np.float32)
    held = np.flatnonzero(codes >= 5)
    check = OneShotEpisodes(X[held], codes[held], np.random.RandomState(0))
    trained = TrainedNet(
        net=FixedNet(noise), data_args={}, selected_net=FixedNet(separated), check=check
    )
    no_views = torch.zeros(0, 2, 3)
    temperature = embedder_temperature(trained, None, None, no_views, np.random.RandomState(0))
    scores, truth = check.class_scores(FixedNet(separated).forward, EuclideanSimilarity())
    assert temperature == fit_temperature(scores, truth)
    # The final net's noise calls for a far larger temperature.
    noisy, noisy_truth = check.class_scores(FixedNet(noise).forward, EuclideanSimilarity())
    assert fit_temperature(noisy, noisy_truth) > 10 * temperature


def varied(X):
    """Classes apart, each sample jittered by an amount that grows with its class.

    The first column codes the class, the second the sample: which samples
    the episodes draw changes the fitted temperature.
    """
    codes, rows = X[:, 0].astype(int), X[:, 1]
    jitter = np.sin(rows[:, None] * np.arange(1, 11)) * (1 + codes[:, None]) / 2
    return np.eye(10)[codes] * 5.0 + jitter


def test_without_held_out_classes_the_temperature_comes_from_the_training_classes():
    # Fails if, with nothing held out, the temperature is not fitted on
    # episodes of the training sample's embeddings by the final net (another
    # net, or episodes drawn otherwise than from the fit's random state).
    codes = np.repeat(np.arange(10), 4)
    X = np.c_[codes, np.arange(len(codes))].astype(np.float32)
    trained = TrainedNet(net=FixedNet(varied), data_args={}, selected_net=FixedNet(noise))
    sample = training_sample(codes, np.random.RandomState(0))
    assert np.array_equal(np.bincount(codes[sample]), np.full(10, 4))  # four of each class
    embeddings = torch.as_tensor(varied(X[sample]), dtype=torch.float32)
    no_views = torch.zeros(0, 2, 3)
    temperature = embedder_temperature(
        trained, embeddings, codes[sample], no_views, np.random.RandomState(0)
    )

    def temperature_of(seed):
        episodes = OneShotEpisodes(X[sample], codes[sample], np.random.RandomState(seed))
        scores, truth = episodes.class_scores(FixedNet(varied).forward, EuclideanSimilarity())
        assert scores.shape[1] == 10  # episodes over every sampled class
        return fit_temperature(scores, truth)

    np.testing.assert_allclose(temperature, temperature_of(0), rtol=1e-6)
    # Other episodes give another temperature: the comparison above can fail.
    assert not np.isclose(temperature_of(1), temperature, rtol=1e-3)


def test_the_training_sample_is_bounded_whatever_the_data():
    codes = np.r_[np.repeat(np.arange(1000), 9), np.arange(1000, 2000)]  # and singletons
    sample = training_sample(codes, np.random.RandomState(0))
    assert len(np.unique(sample)) == len(sample) == SAMPLE_CLASSES * SAMPLE_PER_CLASS
    sampled = np.unique(codes[sample])
    assert len(sampled) == SAMPLE_CLASSES and sampled.max() < 1000  # never a singleton
    # Few samples: all of them.
    few = training_sample(np.array([0, 0, 1, 1, 1]), np.random.RandomState(0))
    assert np.array_equal(np.sort(few), np.arange(5))


def test_classifier_trained_on_its_support_takes_the_embedders_temperature(small):
    X, y = small  # 30 examples per class: leave-one-out would be possible, and over-confident
    clf = OneShotClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert clf.temperature_ == clf.embedder_.temperature_


def test_frozen_embedder_calibrates_on_a_support_of_new_classes(small, digits):
    # Fails if the temperature is not fitted on this support set's own
    # leave-one-out scores: taken from the embedder (fitted on other classes),
    # or scored with each example still inside its class's prototype.
    X, y = small
    _, _, Xn, yn = digits
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    support = np.concatenate([np.flatnonzero(yn == c)[:5] for c in np.unique(yn)])
    Xs, ys = Xn[support], yn[support]
    clf = OneShotClassifier(embedder=FrozenEstimator(embedder), random_state=0).fit(Xs, ys)
    # Leave-one-out through the public API: enrol the support without one
    # example and score that example against every class.
    scores = np.stack(
        [
            clf.__sklearn_clone__()
            .fit(np.delete(Xs, i, axis=0), np.delete(ys, i))
            .decision_function(Xs[i : i + 1])[0]
            for i in range(len(ys))
        ]
    )
    truth = np.searchsorted(clf.classes_, ys)
    expected = fit_temperature(scores, truth)
    # The bounded search of the temperature stops within 1e-5 of log(T).
    np.testing.assert_allclose(clf.temperature_, expected, rtol=1e-4)
    # ... which tells it apart from the embedder's own temperature.
    assert not np.isclose(expected, embedder.temperature_, rtol=1e-4)


def test_verifier_calibrates_on_the_held_out_pairs_when_it_holds_some_out(small):
    # Fails if the verifier's Platt sigmoid is not fitted on what it says:
    # every pair scored by the final net without held-out pairs; with them,
    # the held-out pairs scored by the net that never trained on them (not
    # every pair, not the final net's scores).
    X, y = small
    pairs, same = make_pairs(X, y, 300, random_state=0)
    for early_stopping in (False, True):
        verifier = SiameseVerifier(max_epochs=2, early_stopping=early_stopping, random_state=0)
        verifier.fit(pairs, same)
        if early_stopping:
            # The same training, by the function the verifier calls, to see its split.
            params = TrainingParams.of(verifier, **_NOT_APPLICABLE)
            trained = train_on_pairs(params, pairs, same, "cpu", np.random.RandomState(0), "")
            held = trained.held_out
            expected = platt_scaling(pair_net_scores(trained.selected_net, pairs[held]), same[held])
        else:
            expected = platt_scaling(verifier.decision_function(pairs), same)
        np.testing.assert_allclose(verifier.calibrator_.coef_, expected.coef_, rtol=1e-6)
        np.testing.assert_allclose(verifier.calibrator_.intercept_, expected.intercept_, rtol=1e-6)

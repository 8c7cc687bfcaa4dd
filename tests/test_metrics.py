import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier
from sksiamese._episodes import draw_episodes
from sksiamese.metrics import (
    equal_error_rate,
    make_one_shot_scorer,
    one_shot_accuracy,
)


def identity():
    return FunctionTransformer().fit(np.zeros((1, 2)))


def test_separated_classes_score_one_and_noise_scores_chance():
    X, y = make_blobs(400, n_features=2, centers=20, cluster_std=0.01, random_state=0)
    result = one_shot_accuracy(identity(), X, y, n_way=5, n_episodes=30, random_state=0)
    assert result.mean == 1.0 and len(result.episode_scores) == 30
    noise = np.random.default_rng(0).normal(size=(2000, 5))
    labels = np.repeat(np.arange(100), 20)
    chance = one_shot_accuracy(identity(), noise, labels, n_way=5, n_episodes=200, random_state=0)
    assert chance.interval[0] < 0.2 < chance.interval[1]


def test_episodes_are_reproducible_and_disjoint():
    y = np.repeat(np.arange(10), 6)
    first = list(draw_episodes(y, None, 4, 2, 3, 5, np.random.RandomState(0)))
    second = list(draw_episodes(y, None, 4, 2, 3, 5, np.random.RandomState(0)))
    for (s1, q1), (s2, q2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(q1, q2)
        assert len(s1) == 8 and len(q1) == 12 and not set(s1) & set(q1)
        assert set(y[s1]) == set(y[q1]) and len(set(y[s1])) == 4


def test_groups_keep_each_episode_within_one_group():
    y = np.repeat(np.arange(12), 3)
    groups = np.repeat(["a", "b", "c"], 12)
    for support, query in draw_episodes(y, groups, 3, 1, 1, 20, np.random.RandomState(0)):
        assert len(set(groups[support])) == 1 and len(set(groups[query])) == 1


def test_not_enough_classes():
    with pytest.raises(ValueError, match="5 classes with at least"):
        one_shot_accuracy(identity(), np.zeros((8, 2)), np.repeat(np.arange(4), 2), n_way=5)


def test_scorer_selects_on_unseen_classes_in_grid_search(small):
    X, y = small
    grid = GridSearchCV(
        OneShotClassifier(max_epochs=2, random_state=0),
        {"margin": [0.2, 0.5]},
        scoring=make_one_shot_scorer(n_way=2, n_queries=3, n_episodes=5),
        cv=GroupKFold(2),
    ).fit(X, y, groups=y)
    scores = grid.cv_results_["mean_test_score"]
    assert np.all((scores >= 0) & (scores <= 1))


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([0.1, 0.6, 0.4, 0.9], 0.5), ([0.1, 0.2, 0.8, 0.9], 0.0), ([0.9, 0.8, 0.2, 0.1], 1.0)],
)
def test_equal_error_rate(scores, expected):
    assert equal_error_rate([0, 0, 1, 1], scores) == pytest.approx(expected)


def test_verification_metrics_of_an_embedder(small):
    from sksiamese import SiameseEmbedder
    from sksiamese.metrics import verification_metrics

    X, y = small
    embedder = SiameseEmbedder(max_epochs=5, random_state=0).fit(X, y)
    rng = np.random.default_rng(0)
    first, second = rng.integers(len(X), size=(2, 400))
    pairs = np.stack([X[first], X[second]], axis=1)
    same = (y[first] == y[second]).astype(int)
    result = verification_metrics(embedder, pairs, same)
    assert result.roc_auc > 0.9
    assert 0 <= result.equal_error_rate < 0.2


def test_one_shot_accuracy_embeds_each_sample_once():
    X, y = make_blobs(60, centers=6, random_state=0)
    calls = []

    def embed(Z):
        calls.append(len(Z))
        return Z

    transformer = FunctionTransformer(embed).fit(X)
    one_shot_accuracy(transformer, X, y, n_way=3, n_queries=2, n_episodes=50, random_state=0)
    assert len(calls) == 1  # one call for every episode before

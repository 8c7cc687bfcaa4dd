import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese._episodes import draw_episodes
from sksiamese.metrics import (
    equal_error_rate,
    expected_calibration_error,
    make_one_shot_scorer,
    make_retrieval_scorer,
    one_shot_accuracy,
    rejection_threshold,
    retrieval_metrics,
    verification_metrics,
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


def test_groups_too_small_for_an_episode_are_named_in_a_warning():
    y = np.repeat(np.arange(10), 3)
    groups = np.repeat(["big", "small"], [24, 6])  # 8 classes and 2 classes
    with pytest.warns(UserWarning, match="1 of 2 groups .* n_way=3 .*: small"):
        episodes = list(draw_episodes(y, groups, 3, 1, 1, 20, np.random.RandomState(0)))
    assert all(set(groups[support]) == {"big"} for support, _ in episodes)
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.warns(UserWarning, match="small") as record:
        one_shot_accuracy(identity(), X, y, n_way=3, n_queries=1, groups=groups, random_state=0)
    assert record[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one_shot_accuracy(identity(), X, y, n_way=2, n_queries=1, groups=groups, random_state=0)
        one_shot_accuracy(identity(), X, y, n_way=3, n_queries=1, random_state=0)


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


def as_list(a):
    return a.tolist()


def as_pandas(a):
    # A shuffled index: rows must be taken by position, not by label, and
    # integer column names must not be mistaken for rows.
    index = np.arange(len(a))[::-1]
    return pd.Series(a, index=index) if a.ndim == 1 else pd.DataFrame(a, index=index)


@pytest.mark.parametrize("convert", [as_list, as_pandas])
def test_one_shot_accuracy_on_lists_and_pandas_equals_arrays(convert):
    X, y = make_blobs(60, centers=6, random_state=0)
    groups = np.repeat([0, 1], 30)
    params = dict(n_way=2, n_queries=2, n_episodes=20, random_state=0)
    expected = one_shot_accuracy(identity(), X, y, groups=groups, **params)
    result = one_shot_accuracy(identity(), convert(X), convert(y), groups=convert(groups), **params)
    np.testing.assert_array_equal(result.episode_scores, expected.episode_scores)


@pytest.mark.parametrize("convert", [as_list, as_pandas])
def test_pair_metrics_on_lists_and_pandas_equal_arrays(convert):
    y = np.array([0, 0, 1, 1, 1, 0])
    scores = np.array([0.1, 0.3, 0.35, 0.8, 0.9, 0.95])
    assert equal_error_rate(convert(y), convert(scores)) == equal_error_rate(y, scores)
    assert expected_calibration_error(convert(y), convert(scores)) == (
        expected_calibration_error(y, scores)
    )


@pytest.mark.parametrize("Estimator", [SiameseEmbedder, OneShotClassifier])
def test_one_shot_accuracy_of_an_estimator_fitted_on_a_dataframe(digits, Estimator):
    X, y, X_new, y_new = digits
    columns = [f"pixel{i}" for i in range(X.shape[1])]
    params = dict(max_epochs=1, early_stopping=False, random_state=0)
    episodes = dict(n_way=3, n_queries=2, n_episodes=10, random_state=0)
    expected = one_shot_accuracy(Estimator(**params).fit(X, y), X_new, y_new, **episodes)
    with warnings.catch_warnings():
        # The estimator checks the names: a network fitted on arrays gets arrays.
        warnings.filterwarnings("error", message=".*feature names")
        fitted = Estimator(**params).fit(pd.DataFrame(X, columns=columns), y)
        frame = pd.DataFrame(X_new, columns=columns)
        result = one_shot_accuracy(fitted, frame, pd.Series(y_new), **episodes)
    np.testing.assert_array_equal(result.episode_scores, expected.episode_scores)


# Expected calibration error. Ten bins unless said: [0, 0.1], (0.1, 0.2], ...,
# closed on the right as calibration_curve's.


def test_binary_ece_matches_a_hand_worked_value():
    # Five bins [0, .2], (.2, .4], (.4, .6], (.6, .8], (.8, 1]:
    #   [0, .2]:   0.1 (y 0)              mean 0.1,   frequency 0:   gap 0.1
    #   (.2, .4]:  0.3, 0.35 (y 0, 1)     mean 0.325, frequency 0.5: gap 0.175
    #   (.6, .8]:  0.8 (y 1), on the edge mean 0.8,   frequency 1:   gap 0.2
    #   (.8, 1]:   0.9, 0.95 (y 1, 0)     mean 0.925, frequency 0.5: gap 0.425
    # Weighted by 1, 2, 1, 2 samples of 6: (0.1 + 0.35 + 0.2 + 0.85) / 6 = 0.25.
    # (With 0.8 in the last bin it would be 1.1 / 6.)
    y_true = [0, 0, 1, 1, 1, 0]
    y_prob = [0.1, 0.3, 0.35, 0.8, 0.9, 0.95]
    assert expected_calibration_error(y_true, y_prob, n_bins=5) == pytest.approx(0.25)


def test_top_label_ece_matches_a_hand_worked_value():
    # Columns are the classes b, a, c. Top label and confidence of each row:
    #   b 0.7 (true b, right), a 0.6 (true c, wrong), c 0.5 (true c, right),
    #   a 0.9 (true a, right).
    # Two bins [0, .5], (.5, 1]:
    #   [0, .5]:  0.5               accuracy 1:   gap 0.5
    #   (.5, 1]:  0.7, 0.6, 0.9     mean 2.2 / 3, accuracy 2 / 3: gap 0.2 / 3
    # Weighted by 1 and 3 samples of 4: (0.5 + 0.2) / 4 = 0.175.
    y_prob = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5], [0.05, 0.9, 0.05]]
    y_true = ["b", "c", "c", "a"]
    ece = expected_calibration_error(y_true, y_prob, n_bins=2, labels=["b", "a", "c"])
    assert ece == pytest.approx(0.175)
    # Without labels the columns are the sorted classes a, b, c: only the third
    # row is right, (|0.5 - 1| + |2.2 - 0|) / 4.
    assert expected_calibration_error(y_true, y_prob, n_bins=2) == pytest.approx(0.675)


def test_top_label_ece_of_class_indices_with_probabilities():
    # Rows of a classifier's predict_proba: y as indices of classes_ = [0, 1, 2].
    y_prob = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    # Confidences 0.8, 0.7, 0.4 in three bins, right, right, wrong:
    # (0.2 + 0.3 + 0.4) / 3.
    # Class 2 is never the true one, so labels name the columns.
    assert expected_calibration_error([0, 1, 0], y_prob, labels=[0, 1, 2]) == pytest.approx(0.3)
    # On two labels the binary ECE of the positive class differs from the
    # top-label one: 0.3 (true 1) and 0.8 (true 0) miss by 0.7 and 0.8.
    binary = np.array([[0.7, 0.3], [0.2, 0.8]])
    assert expected_calibration_error([1, 0], binary[:, 1]) == pytest.approx(0.75)
    assert expected_calibration_error([1, 0], binary) == pytest.approx(0.75)


def test_perfectly_calibrated_probabilities_give_zero():
    # At each probability p, exactly a fraction p of the samples is positive.
    p = np.repeat([0.1, 0.3, 0.5, 0.7, 0.9], 10)
    y = np.concatenate([np.arange(10) < 10 * q for q in (0.1, 0.3, 0.5, 0.7, 0.9)])
    assert expected_calibration_error(y.astype(int), p) == pytest.approx(0, abs=1e-12)
    # Top label: rows of confidence 0.5 right half the time, of 0.8 eight times in ten.
    y_prob = np.repeat([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1]], 10, axis=0)
    y_true = np.r_[[0] * 5, [1, 2] * 2, 2, [1] * 8, 0, 2]
    assert expected_calibration_error(y_true, y_prob) == pytest.approx(0, abs=1e-12)
    # Outcomes drawn with the predicted probability: close to zero.
    rng = np.random.default_rng(0)
    p = rng.uniform(size=100_000)
    assert expected_calibration_error(rng.uniform(size=p.size) < p, p) < 0.01
    assert expected_calibration_error(np.zeros(p.size, int), p) > 0.45


@pytest.mark.parametrize(
    ("y_true", "y_prob", "kwargs", "match"),
    [
        ([0, 1], [0.2, 0.8], {"n_bins": 0}, r"'n_bins' .* an int in the range \[1, inf\)"),
        ([0, 2], [0.2, 0.8], {}, "y_true must hold 0 and 1"),
        ([0, 1], [-0.1, 0.8], {}, r"probabilities in \[0, 1\]"),
        ([0, 1], [[0.2, 0.8], [0.5, 0.5]], {"labels": [0, 1, 2]}, "2 columns but there are 3"),
        ([0, 0], [[0.2, 0.8], [0.5, 0.5]], {}, "2 columns but there are 1 labels"),
        ([0, 3], [[0.2, 0.8], [0.5, 0.5]], {"labels": [0, 1]}, "not in labels"),
        ([0, 1, 1], [0.2, 0.8], {}, "inconsistent numbers of samples"),
    ],
)
def test_ece_bad_input(y_true, y_prob, kwargs, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(y_true, y_prob, **kwargs)


def identity_on(X):
    """A fitted transformer that leaves precomputed embeddings as they are."""
    return FunctionTransformer().fit(X)


@pytest.mark.parametrize("seed", [0, 1])
def test_retrieval_metrics_agree_with_pytorch_metric_learning(seed):
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 12, size=300)
    y[:24] = np.repeat(np.arange(12), 2)  # every class has two or more samples
    X = rng.normal(size=(300, 6)) + 0.8 * rng.normal(size=(12, 6))[y]
    ours = retrieval_metrics(identity_on(X), X, y, k=1)
    calculator = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        knn_func=CustomKNN(LpDistance(normalize_embeddings=False)),
    )
    embeddings = torch.as_tensor(X, dtype=torch.float64)
    theirs = calculator.get_accuracy(
        embeddings, torch.as_tensor(y), embeddings, torch.as_tensor(y), ref_includes_query=True
    )
    assert ours.precision_at_1 == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours.r_precision == pytest.approx(theirs["r_precision"], abs=1e-6)
    assert ours.map_at_r == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)
    # recall@1 is precision@1 by definition.
    assert ours.recall_at_k == ours.precision_at_1


def test_retrieval_metrics_of_a_hand_worked_case():
    # Points on a line; classes a (0, 1, 5), b (2, 3) and c (9, a singleton).
    X = np.array([[0.0], [1.0], [5.0], [2.0], [3.0], [9.0]])
    y = np.array(["a", "a", "a", "b", "b", "c"])
    result = retrieval_metrics(identity_on(X), X, y, k=2)
    # Neighbours by value, nearest first; ties go to the earlier sample, and
    # the singleton c queries nothing:
    # 0.0: 1(a) 2(b) 3(b) 5(a)        R=2 -> hits at ranks 1, 4
    # 1.0: 0(a) 2(b) 3(b) 5(a)        R=2 -> ranks 1, 4  (0.0 and 2.0 tie)
    # 5.0: 3(b) 2(b) 1(a) 9(c) 0(a)   R=2 -> ranks 3, 5  (1.0 and 9.0 tie)
    # 2.0: 1(a) 3(b) ...              R=1 -> rank 2      (1.0 and 3.0 tie)
    # 3.0: 2(b) ...                   R=1 -> rank 1
    assert result.precision_at_1 == pytest.approx(3 / 5)
    # Hits within the first R: 1/2, 1/2, 0/2, 0/1, 1/1.
    assert result.r_precision == pytest.approx((0.5 + 0.5 + 0 + 0 + 1) / 5)
    # Average precision at R, (1/R) * sum of precision at each hit within R.
    assert result.map_at_r == pytest.approx((0.5 + 0.5 + 0 + 0 + 1) / 5)
    # A same-class sample within the 2 nearest: yes, yes, no, yes, yes.
    assert result.recall_at_k == pytest.approx(4 / 5)


def test_map_at_r_rewards_ranking_the_class_first():
    # a: 0.0, 1.0, 3.0; b: 0.5, 3.6. Nearest first:
    # 0.0: 0.5(b) 1.0(a) 3.0(a)    R=2 -> R-precision 1/2, AP@R (1/2)(1/2) = 1/4
    # 0.5: 0.0(a) 1.0(a) ...       R=1 -> 0, 0              (0.0 and 1.0 tie)
    # 1.0: 0.5(b) 0.0(a) 3.0(a)    R=2 -> 1/2, 1/4
    # 3.0: 3.6(b) 1.0(a) 0.5(b)    R=2 -> 1/2, 1/4
    # 3.6: 3.0(a) 1.0(a) 0.5(b)    R=1 -> 0, 0
    X = np.array([[0.0], [0.5], [1.0], [3.0], [3.6]])
    y = np.array(["a", "b", "a", "a", "b"])
    result = retrieval_metrics(identity_on(X), X, y, k=2)
    assert result.precision_at_1 == 0.0
    assert result.r_precision == pytest.approx(1.5 / 5)
    assert result.map_at_r == pytest.approx(0.75 / 5)
    assert result.recall_at_k == pytest.approx(3 / 5)  # all but the two b queries


def test_retrieval_in_many_blocks_equals_one_block(monkeypatch):
    from sksiamese import _search

    rng = np.random.default_rng(4)
    y = rng.integers(0, 9, size=120)
    X = rng.normal(size=(120, 3)) + rng.normal(size=(9, 3))[y]
    whole = retrieval_metrics(identity_on(X), X, y, k=5)
    monkeypatch.setattr(_search, "QUERY_CHUNK", 4)
    monkeypatch.setattr(_search, "CHUNK_ELEMENTS", 4 * 3 * 7)
    assert retrieval_metrics(identity_on(X), X, y, k=5) == whole


@pytest.mark.parametrize("loss", ["contrastive", "bce"])
def test_precision_at_1_is_the_embedders_own_score(loss):
    X, y = make_blobs(n_samples=120, centers=8, n_features=6, cluster_std=3.0, random_state=0)
    X = X.astype(np.float32)
    embedder = SiameseEmbedder(loss=loss, max_epochs=2, random_state=0).fit(X[:60], y[:60])
    result = retrieval_metrics(embedder, X[60:], y[60:])
    assert result.precision_at_1 == pytest.approx(embedder.score(X[60:], y[60:]))


def test_retrieval_scorer_ranks_a_better_embedding_higher():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 5)
    X = rng.normal(size=(50, 4)) + 3 * rng.normal(size=(10, 4))[y]
    scorer = make_retrieval_scorer("map_at_r")
    noise = FunctionTransformer(lambda Z: rng.normal(size=Z.shape)).fit(X)
    assert scorer(identity_on(X), X, y) > 0.8 > scorer(noise, X, y)
    with pytest.raises(ValueError, match="'metric' parameter .* a str among"):
        make_retrieval_scorer("map")
    with pytest.raises(ValueError, match=r"'k' parameter .* an int in the range \[1, inf\)"):
        make_retrieval_scorer("recall_at_k", k=0)


X4, Y4 = np.zeros((4, 2)), [0, 0, 1, 1]


# Every public function checks its parameters before it reads the data, and
# says which parameter of which function is wrong. Catches a function that
# lost its validation or a constraint on the wrong name. (Unchecked,
# n_queries=0 or n_way=0 failed in the embedding with a message about
# columns, for make_one_shot_scorer only once a search scored; a float n_way
# failed in numpy.)
@pytest.mark.parametrize(
    ("function", "args", "kwargs", "name"),
    [
        (one_shot_accuracy, (identity(), X4, Y4), {"n_episodes": 0}, "n_episodes"),
        (one_shot_accuracy, (identity(), X4, Y4), {"k_shot": 0}, "k_shot"),
        (one_shot_accuracy, (identity(), X4, Y4), {"n_way": 2.0}, "n_way"),
        (one_shot_accuracy, (identity(), X4, Y4), {"random_state": "seed"}, "random_state"),
        (one_shot_accuracy, (identity(), None, Y4), {}, "X"),
        (make_one_shot_scorer, (), {"n_queries": 0}, "n_queries"),
        (make_one_shot_scorer, (), {"n_way": 0}, "n_way"),
        (retrieval_metrics, (identity(), X4, Y4), {"k": 1.5}, "k"),
        (make_retrieval_scorer, (), {"k": 2.0}, "k"),
        (equal_error_rate, ([0, 1], 0.5), {}, "y_score"),
        (verification_metrics, (identity(), None, Y4), {}, "pairs"),
        (rejection_threshold, (None, X4), {"false_reject_rate": 1.0}, "false_reject_rate"),
        (expected_calibration_error, (Y4, [0.5] * 4), {"labels": "ab"}, "labels"),
    ],
)
def test_bad_parameters_are_named_with_their_function(function, args, kwargs, name):
    # scikit-learn's InvalidParameterError, a ValueError (and a TypeError).
    with pytest.raises(ValueError, match=f"'{name}' parameter of {function.__name__}"):
        function(*args, **kwargs)

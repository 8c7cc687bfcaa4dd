"""Galleries of many classes: prediction in bounded memory, nearest-neighbour retrieval."""

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier, SiameseEmbedder, _scoring
from sksiamese._scoring import best_class, class_scores, negative_euclidean


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 7 queries by 3 two-dimensional support examples: many blocks on small data."""
    monkeypatch.setattr(_scoring, "QUERY_CHUNK", 7)
    monkeypatch.setattr(_scoring, "CHUNK_ELEMENTS", 7 * 2 * 3)


def test_best_class_is_the_argmax_of_the_class_scores(small_blocks):
    rng = np.random.default_rng(0)
    queries = torch.as_tensor(rng.normal(size=(30, 4)))
    support = torch.as_tensor(rng.normal(size=(50, 4)))
    codes = torch.as_tensor(rng.integers(0, 12, size=50))
    scores = class_scores(negative_euclidean, queries, support, codes, 12)
    best, best_codes = best_class(negative_euclidean, queries, support, codes)
    np.testing.assert_array_equal(best_codes.numpy(), scores.argmax(1).numpy())
    np.testing.assert_array_equal(best.numpy(), scores.max(1).values.numpy())


def test_ties_go_to_the_lowest_class_as_argmax_does(small_blocks):
    # The same example enrolled under classes 5, 2 and 9; blocks of 3 rows put
    # class 5 in one block and classes 2 and 9 in the next.
    support = torch.tensor([[3.0, 0.0]] * 2 + [[0.0, 0.0]] * 3 + [[1.0, 1.0]] * 4)
    codes = torch.tensor([0, 1, 5, 2, 9, 3, 4, 6, 7])
    best, best_codes = best_class(negative_euclidean, torch.zeros(1, 2), support, codes)
    assert best_codes.tolist() == [2] and best.tolist() == [0.0]


def test_predict_and_rejection_agree_with_the_dense_scores():
    rng = np.random.default_rng(1)
    support = rng.normal(size=(300, 8)).astype(np.float32)
    queries = rng.normal(size=(40, 8)).astype(np.float32)
    labels = np.array([f"id{i:03d}" for i in range(300)])
    identity = FrozenEstimator(FunctionTransformer().fit(support))
    clf = OneShotClassifier(embedder=identity).fit(support, labels)
    scores = clf.decision_function(queries)
    np.testing.assert_array_equal(clf.predict(queries), clf.classes_[scores.argmax(1)])
    threshold = float(np.median(scores.max(1)))
    clf.set_params(reject_below=threshold, unknown_label="unknown")
    expected = np.where(scores.max(1) < threshold, "unknown", clf.classes_[scores.argmax(1)])
    np.testing.assert_array_equal(clf.predict(queries), expected)


def test_predict_never_builds_the_query_by_class_matrix(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("predict built the dense query-by-class matrix")

    rng = np.random.default_rng(2)
    support = rng.normal(size=(500, 8)).astype(np.float32)
    identity = FrozenEstimator(FunctionTransformer().fit(support))
    clf = OneShotClassifier(embedder=identity).fit(support, np.arange(500))
    monkeypatch.setattr("sksiamese._classifier.class_scores", refuse)
    assert clf.score(support[:50], np.arange(50)) == 1.0


@pytest.mark.parametrize("blocks", ["one", "many"])
def test_kneighbors_follows_scikit_learns_nearest_neighbors(blocks, request):
    if blocks == "many":
        request.getfixturevalue("small_blocks")
    rng = np.random.default_rng(3)
    support = rng.normal(size=(200, 5)).astype(np.float32)
    queries = rng.normal(size=(30, 5)).astype(np.float32)
    identity = FrozenEstimator(FunctionTransformer().fit(support))
    clf = OneShotClassifier(embedder=identity, aggregation="nearest").fit(support, np.arange(200))
    reference = NearestNeighbors(n_neighbors=4).fit(support)
    for X in (queries, None):
        distances, indices = clf.kneighbors(X, n_neighbors=4)
        expected_distances, expected_indices = reference.kneighbors(X)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_allclose(distances, expected_distances, rtol=1e-5)
    nearest_two = reference.kneighbors(queries, 2, return_distance=False)
    np.testing.assert_array_equal(clf.kneighbors(queries, 2, return_distance=False), nearest_two)
    with pytest.raises(ValueError, match="n_neighbors must be an int from 1 to 199"):
        clf.kneighbors(n_neighbors=200)


def test_the_embedder_serves_scikit_learns_own_neighbours(small, digits):
    X, y = small
    _, _, Xn, yn = digits
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X, y)
    support = np.concatenate([np.flatnonzero(yn == c)[:3] for c in np.unique(yn)])
    queries = np.setdiff1d(np.arange(len(yn)), support)
    knn = make_pipeline(FrozenEstimator(embedder), KNeighborsClassifier(n_neighbors=1))
    knn.fit(Xn[support], yn[support])
    ours = OneShotClassifier(embedder=FrozenEstimator(embedder), aggregation="nearest")
    ours.fit(Xn[support], yn[support])
    np.testing.assert_array_equal(knn.predict(Xn[queries]), ours.predict(Xn[queries]))

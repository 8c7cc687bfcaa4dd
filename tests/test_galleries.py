"""Galleries of many classes: prediction in bounded memory, nearest-neighbour retrieval."""

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier, SiameseEmbedder, _search
from sksiamese._search import BestClass, ClassMax, search_exact
from sksiamese.similarity import EuclideanSimilarity


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 7 queries by 3 two-dimensional support examples: many blocks on small data."""
    monkeypatch.setattr(_search, "QUERY_CHUNK", 7)
    monkeypatch.setattr(_search, "CHUNK_ELEMENTS", 7 * 2 * 3)


def test_best_class_is_the_argmax_of_the_class_scores(small_blocks):
    rng = np.random.default_rng(0)
    queries = torch.as_tensor(rng.normal(size=(30, 4)))
    support = torch.as_tensor(rng.normal(size=(50, 4)))
    codes = torch.as_tensor(rng.integers(0, 12, size=50))
    (scores,) = search_exact(EuclideanSimilarity(), queries, support, ClassMax(codes, 12))
    best, best_codes = search_exact(EuclideanSimilarity(), queries, support, BestClass(codes))
    np.testing.assert_array_equal(best_codes.numpy(), scores.argmax(1).numpy())
    np.testing.assert_array_equal(best.numpy(), scores.max(1).values.numpy())


def test_ties_go_to_the_lowest_class_as_argmax_does(small_blocks):
    # The same example enrolled under classes 5, 2 and 9; blocks of 3 rows put
    # class 5 in one block and classes 2 and 9 in the next.
    support = torch.tensor([[3.0, 0.0]] * 2 + [[0.0, 0.0]] * 3 + [[1.0, 1.0]] * 4)
    codes = torch.tensor([0, 1, 5, 2, 9, 3, 4, 6, 7])
    best, best_codes = search_exact(
        EuclideanSimilarity(), torch.zeros(1, 2), support, BestClass(codes)
    )
    assert best_codes.tolist() == [2] and best.tolist() == [-1e-6]  # the distance floor


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
    monkeypatch.setattr("sksiamese._search.ClassMax.start", refuse)
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


def test_kneighbors_defaults_to_five_neighbours_or_every_other_row():
    # Fails if n_neighbors=None is not scikit-learn's default of 5, or if it
    # asks a small gallery for more rows than it holds.
    rng = np.random.default_rng(5)
    support = rng.normal(size=(40, 3)).astype(np.float32)
    identity = FrozenEstimator(FunctionTransformer().fit(support))
    clf = OneShotClassifier(embedder=identity, aggregation="nearest").fit(support, np.arange(40))
    distances, rows = clf.kneighbors(support[:7])
    np.testing.assert_array_equal(rows, clf.kneighbors(support[:7], n_neighbors=5)[1])
    small = OneShotClassifier(embedder=identity).fit(support[:3], [0, 1, 2])
    assert small.kneighbors(return_distance=False).shape == (3, 2)  # the two other rows
    assert small.kneighbors(support[:4], return_distance=False).shape == (4, 3)


def test_training_parameters_beside_a_given_embedder_warn():
    # Fails if the classifier ignores training parameters silently when it is
    # given an embedder, or warns about parameters left at their defaults.
    support = np.random.default_rng(6).normal(size=(6, 3)).astype(np.float32)
    identity = FrozenEstimator(FunctionTransformer().fit(support))
    # random_state is not listed: it still seeds the calibration's draw.
    with pytest.warns(UserWarning, match=r"no effect: loss, optimizer__weight_decay\.") as record:
        OneShotClassifier(
            embedder=identity,
            loss="bce",
            max_epochs=np.int64(30),
            random_state=3,
            optimizer__weight_decay=0.1,
        ).fit(support, [0, 0, 1, 1, 2, 2])
    # Fails if the warning points into the library instead of at this call.
    assert {r.filename for r in record if "no effect" in str(r.message)} == {__file__}

"""Bad input gets a clear error from our validation, not one from inside torch;
other containers of good input (pandas) give what arrays give."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.frozen import FrozenEstimator

from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier

ESTIMATORS = [SiameseEmbedder, OneShotClassifier]


@pytest.fixture(params=ESTIMATORS, ids=lambda cls: cls.__name__)
def Estimator(request):
    return request.param


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input(Estimator, small, bad):
    X, y = small
    X = X.copy()
    X[3, 5] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        Estimator(max_epochs=1).fit(X, y)


def test_mismatched_lengths(Estimator, small):
    X, y = small
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Estimator(max_epochs=1).fit(X, y[:-1])


def test_fewer_than_two_classes(Estimator, small):
    X, _ = small
    with pytest.raises(ValueError, match="at least two classes; got 1 class"):
        Estimator(max_epochs=1).fit(X, np.zeros(len(X)))


def test_no_positive_pair():
    X = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="cannot form a single positive pair"):
        SiameseEmbedder(max_epochs=1).fit(X, np.arange(5))


def test_held_out_classes_without_enough_classes(small):
    X, y = small
    three = y < 3
    embedder = SiameseEmbedder(early_stopping=True, max_epochs=1)
    with pytest.raises(ValueError, match="needs at least four classes"):
        embedder.fit(X[three], y[three])


def test_wrong_number_of_features(Estimator, small):
    X, y = small
    estimator = Estimator(max_epochs=1).fit(X, y)
    method = estimator.transform if hasattr(estimator, "transform") else estimator.predict
    with pytest.raises(ValueError, match="X has 63 features"):
        method(X[:, :-1])


def test_wrong_image_shape(Estimator, small):
    X, y = small
    estimator = Estimator(max_epochs=1).fit(X.reshape(-1, 8, 8), y)
    method = estimator.transform if hasattr(estimator, "transform") else estimator.predict
    with pytest.raises(ValueError, match=r"samples of shape \(8, 7\).*\(8, 8\)"):
        method(X.reshape(-1, 8, 8)[:, :, :7])


@pytest.mark.parametrize("method", ["transform", "pair_score", "predict", "predict_proba"])
def test_call_before_fit(method, small):
    X, _ = small
    estimator = SiameseEmbedder() if method in ("transform", "pair_score") else OneShotClassifier()
    with pytest.raises(NotFittedError):
        getattr(estimator, method)(X)


def test_unknown_loss(Estimator, small):
    X, y = small
    with pytest.raises(ValueError, match="'loss' parameter .* Got 'hinge'"):
        Estimator(loss="hinge").fit(X, y)


@pytest.mark.parametrize("shape", [(4, 64), (4, 3, 64), (4, 2, 8, 7)])
def test_bad_pair_shapes(small, shape):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError):
        embedder.pair_score(np.zeros(shape))


class Exploding(torch.nn.Module):
    def __init__(self, n_features=64):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, 4)

    def forward(self, X):
        return self.linear(X) * float("nan")


def test_nan_loss_stops_training_with_an_error(small):
    X, y = small
    with pytest.raises(FloatingPointError, match="training loss became nan"):
        SiameseEmbedder(module=Exploding, max_epochs=2).fit(X, y)


class Constant(torch.nn.Module):
    def __init__(self, n_features=64):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, 4)

    def forward(self, X):
        return self.linear(X) * 0 + 1


@pytest.mark.parametrize("loss", ["contrastive", "triplet", "bce"])
def test_equal_embeddings_are_reported(small, loss):
    X, y = small
    with pytest.warns(ConvergenceWarning, match="every sample has the same embedding"):
        SiameseEmbedder(module=Constant, loss=loss, max_epochs=1).fit(X, y)


class Scaled(torch.nn.Module):
    """Embeddings shrunk to almost nothing: all distances are about zero."""

    def __init__(self, n_features=64):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, 4)

    def forward(self, X):
        return self.linear(X) * 1e-4


def test_triplet_loss_stuck_at_the_margin_is_reported(small):
    X, y = small
    with pytest.warns(ConvergenceWarning, match="stuck at the margin"):
        SiameseEmbedder(
            loss="triplet", module=Scaled, lr=1e-9, max_epochs=1, early_stopping=False
        ).fit(X, y)


def test_module_with_wrong_output_shape(small):
    X, y = small

    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(64, 4)

        def forward(self, X):
            return self.linear(X).sum()

    with pytest.raises(ValueError, match="must map a batch of n samples"):
        SiameseEmbedder(module=Flat(), max_epochs=1).fit(X, y)


@pytest.mark.parametrize("loss", ["contrastive", "bce"])
def test_semi_hard_mining_applies_to_triplet_only(small, loss):
    X, y = small
    with pytest.raises(ValueError, match=f"{loss}.*semi_hard"):
        SiameseEmbedder(loss=loss, mining="semi_hard", max_epochs=1).fit(X, y)


def test_one_class_with_pairs_is_refused(small):
    X, y = small
    # Class 0 has 30 samples, classes 1-4 one each: every batch would be class 0.
    rows = np.concatenate(
        [np.flatnonzero(y == 0), [np.flatnonzero(y == c)[0] for c in range(1, 5)]]
    )
    with pytest.raises(ValueError, match="Only one class has two or more samples"):
        SiameseEmbedder(max_epochs=1).fit(X[rows], y[rows])


@pytest.mark.parametrize("dtype", [float, object])
def test_nan_in_y(Estimator, small, dtype):
    X, y = small
    y = y.astype(dtype)
    y[3] = np.nan
    with pytest.raises(ValueError, match="contains NaN"):
        Estimator(max_epochs=1).fit(X, y)


def test_labels_that_do_not_sort_together_are_refused_clearly(Estimator, small):
    X, y = small
    y = y.astype(str).astype(object)
    y[3] = None
    with pytest.raises(ValueError, match="labels must be of one kind"):
        Estimator(max_epochs=1).fit(X, y)


def test_pandas_input_gives_what_arrays_give(Estimator, small):
    X, y = small
    params = dict(max_epochs=2, random_state=0)
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])])
    # A shuffled index: rows are samples by position, and y is not aligned on it.
    frame.index = np.arange(len(X))[::-1]
    labels = pd.Series(y, index=np.arange(len(y)))
    from_arrays = Estimator(**params).fit(X, y)
    from_pandas = Estimator(**params).fit(frame, labels)
    method = "transform" if hasattr(from_arrays, "transform") else "predict_proba"
    expected = getattr(from_arrays, method)(X)
    np.testing.assert_array_equal(getattr(from_pandas, method)(frame), expected)
    if method == "predict_proba":
        np.testing.assert_array_equal(from_pandas.predict(frame), from_arrays.predict(X))


def test_sparse_pairs_are_refused(small):
    # Pairs are (n_pairs, 2) + sample_shape: no sparse matrix holds that shape.
    X, y = small
    first, second = np.arange(10), np.r_[10:15, -5:0]  # five same, five different
    pairs = np.stack([X[first], X[second]], axis=1)
    sparse = sp.csr_matrix(pairs.reshape(len(pairs), -1))
    message = "Sparse data was passed, but dense data is required"
    embedder = SiameseEmbedder(max_epochs=1, random_state=0).fit(X, y)
    for method in (embedder.pair_score, embedder.pair_distance):
        with pytest.raises(TypeError, match=message):
            method(sparse)
    same = (y[first] == y[second]).astype(int)
    with pytest.raises(TypeError, match=message):
        SiameseVerifier(max_epochs=1).fit(sparse, same)
    verifier = SiameseVerifier(max_epochs=1, early_stopping=False, random_state=0)
    verifier.fit(pairs, same)
    with pytest.raises(TypeError, match=message):
        verifier.decision_function(sparse)


def test_a_one_shot_support_set_raises_no_regression_warning(small):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=1, random_state=0).fit(X, y)
    # 30 classes of one example: scikit-learn warns about regression targets
    # for more than 20 samples of mostly distinct labels.
    support = np.arange(30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OneShotClassifier(embedder=FrozenEstimator(embedder)).fit(X[support], support)

"""Dask clusters: a grid search through joblib, and inference block by block."""

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese.parallel import predict_blocks, transform_blocks

distributed = pytest.importorskip("distributed")


def search():
    return GridSearchCV(
        OneShotClassifier(max_epochs=2, random_state=0),
        {"loss": ["contrastive", "triplet", "bce"], "margin": [0.5, 1.0]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        n_jobs=-1,
    )


@pytest.mark.slow
def test_search_on_a_local_cluster_equals_the_serial_search(small):
    X, y = small
    serial = search().set_params(n_jobs=1).fit(X, y)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with parallel_backend("dask"):
            on_dask = search().fit(X, y)
        assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    assert on_dask.best_params_ == serial.best_params_


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(64,), (8, 8)])
def test_inference_on_a_local_cluster_equals_the_single_process_run(digits, shape):
    da = pytest.importorskip("dask.array")
    X, y, Xn, yn = digits
    embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X.reshape(-1, *shape), y)
    support = np.concatenate([np.flatnonzero(yn == c)[:3] for c in np.unique(yn)])
    clf = OneShotClassifier(embedder=FrozenEstimator(embedder)).fit(
        Xn[support].reshape(-1, *shape), yn[support]
    )
    queries = Xn.reshape(-1, *shape)
    # Uneven blocks of rows: a sample's result must not depend on its block.
    blocks = da.from_array(queries, chunks=(333, *shape))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        embeddings = transform_blocks(embedder, blocks).compute()
        predictions = predict_blocks(clf, blocks).compute()
    if len(shape) == 1:
        np.testing.assert_array_equal(embeddings, embedder.transform(queries))
    else:
        # Convolution kernels are chosen by the batch's shape: the last float32
        # bit of an image's embedding may depend on its block.
        np.testing.assert_allclose(embeddings, embedder.transform(queries), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(predictions, clf.predict(queries))


def test_blocks_keep_each_methods_row_shape_and_dtype():
    # Dask's own threads, no cluster. Catches the one helper behind both
    # functions giving predictions the embeddings' float32 or trailing axis,
    # or keeping axes of image-shaped rows: labels come back (n_samples,) in
    # their own dtype, embeddings (n_samples, n_dims) in float32.
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 2, 3))
    labels = np.array(["cat", "dog"])[rng.integers(2, size=10)]
    flatten = FunctionTransformer(lambda Z: np.reshape(Z, (len(Z), -1))).fit(X)
    classifier = make_pipeline(flatten, KNeighborsClassifier(1)).fit(X, labels)
    blocks = da.from_array(X, chunks=(3, 1, 3))  # uneven rows, a split middle axis
    predictions = predict_blocks(classifier, blocks)
    assert predictions.dtype == labels.dtype and predictions.shape == (10,)
    np.testing.assert_array_equal(predictions.compute(), labels)
    embeddings = transform_blocks(flatten, blocks)
    assert embeddings.dtype == np.float32 and embeddings.shape == (10, 6)
    np.testing.assert_array_equal(embeddings.compute(), X.reshape(10, 6).astype(np.float32))

"""Embedding and prediction over Dask arrays, block by block on a cluster's workers.

A fitted estimator is shipped to the workers with the task graph and applied
to each block of rows with :meth:`dask.array.Array.map_blocks`; nothing is
gathered on the client until ``compute``. Inference batches are padded to a
fixed row multiple, so on the CPU a feature vector's embedding does not depend
on the block it falls in: the results equal a single-process ``transform`` or
``predict``. For images, convolution kernels are chosen by the batch's shape,
and an embedding can differ in its last float32 bits (tested to 1e-6).

``map_blocks`` was chosen over ``dask_ml.wrappers.ParallelPostFit``: it is
dask's own primitive, and dask-ml's wrappers follow scikit-learn releases with
a delay.

Needs ``pip install sksiamese[dask]``.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["predict_blocks", "transform_blocks"]


def _map_rows(estimator, method, X, dtype=None):
    """``estimator``'s ``method`` over the row blocks of ``X``, lazily.

    The shape of a result's row, and its dtype unless given, are those of the
    method's result for the first sample, computed here.
    """
    import dask.array as da

    check_is_fitted(estimator)
    apply = getattr(estimator, method)
    first = np.asarray(apply(np.asarray(X[:1])))
    dtype = first.dtype if dtype is None else dtype
    X = da.asarray(X)
    if any(len(chunks) > 1 for chunks in X.chunks[1:]):
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})  # blocks of whole rows
    return X.map_blocks(
        lambda block: np.asarray(apply(block), dtype=dtype),
        dtype=dtype,
        chunks=(X.chunks[0], *((n,) for n in first.shape[1:])),
        drop_axis=list(range(first.ndim, X.ndim)),
    )


def transform_blocks(estimator, X):
    """``estimator.transform`` of a Dask array, one block of rows at a time.

    Parameters
    ----------
    estimator : fitted SiameseEmbedder or transformer
        Applied to each block on the workers.
    X : dask.array.Array or array-like of shape (n_samples, ...)
        The samples; blocks are taken along the rows.

    Returns
    -------
    embeddings : dask.array.Array of shape (n_samples, n_dims), float32
        Lazy: call ``compute()`` (or ``persist()``) to run it.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from sksiamese.parallel import transform_blocks
    >>> X = da.from_array(np.ones((6, 3), np.float32), chunks=(2, 3))
    >>> transform_blocks(FunctionTransformer().fit(X), X).chunks
    ((2, 2, 2), (3,))
    """
    return _map_rows(estimator, "transform", X, dtype=np.float32)


def predict_blocks(estimator, X):
    """``estimator.predict`` of a Dask array, one block of rows at a time.

    Parameters
    ----------
    estimator : fitted OneShotClassifier or classifier
        Applied to each block on the workers.
    X : dask.array.Array or array-like of shape (n_samples, ...)
        The queries; blocks are taken along the rows.

    Returns
    -------
    y_pred : dask.array.Array of shape (n_samples,)
        Lazy: call ``compute()`` to run it.
    """
    # The labels' dtype, from one sample (rejection may add an unknown label).
    return _map_rows(estimator, "predict", X)

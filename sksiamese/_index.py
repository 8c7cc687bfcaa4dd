"""An optional faiss index over enrolled embeddings, for galleries of millions of rows.

faiss (``pip install sksiamese[faiss]``) searches by Euclidean distance in
float32. Where faiss cannot be imported, building or loading an index warns
and gives ``None``, and the caller searches exactly. A faiss index is a
compiled object that ``pickle`` cannot write: it travels as faiss's own
serialised bytes (a uint8 array, which safe weight files can hold too).
"""

import warnings

import numpy as np

EXACT = "exact"

_MISSING = (
    "faiss is not installed, so index={description!r} falls back to the exact "
    "search (the same neighbours, in time linear in the gallery). Install it with "
    "`pip install sksiamese[faiss]` (or `pip install faiss-cpu`)."
)


def _faiss():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _warn_missing(description):
    warnings.warn(_MISSING.format(description=description), UserWarning, stacklevel=4)


def _set_search_params(index, description, search_params):
    if not search_params:
        return
    try:
        _faiss().ParameterSpace().set_index_parameters(index, search_params)
    except RuntimeError as error:
        raise ValueError(
            f"index_params={search_params!r} does not apply to index={description!r}: {error}"
        ) from error


def build_index(description, search_params, support):
    """A faiss index over the rows of ``support``, or ``None`` for the exact search.

    Parameters
    ----------
    description : str
        ``'exact'`` (no index), or a faiss ``index_factory`` description:
        ``'Flat'``, ``'HNSW32'``, ``'IVF1024,Flat'``, ...
    search_params : str or None
        Search-time parameters as ``faiss.ParameterSpace`` reads them, such as
        ``'nprobe=16'`` (IVF) or ``'efSearch=128'`` (HNSW).
    support : ndarray of shape (n_rows, dim)
        The rows to index; also the k-means training set of IVF indexes.

    Returns
    -------
    index : faiss.Index or None
        ``None`` for ``'exact'``, and, with a warning, when faiss is missing.
    """
    if description == EXACT:
        return None
    faiss = _faiss()
    if faiss is None:
        _warn_missing(description)
        return None
    support = np.ascontiguousarray(support, dtype=np.float32)
    try:
        index = faiss.index_factory(support.shape[1], description, faiss.METRIC_L2)
    except RuntimeError as error:
        raise ValueError(
            f"index={description!r} is neither 'exact' nor a faiss index_factory "
            f"description (such as 'Flat', 'HNSW32' or 'IVF1024,Flat'): {error}"
        ) from error
    if not index.is_trained:
        n_lists = faiss.extract_index_ivf(index).nlist
        if len(support) < n_lists:
            raise ValueError(
                f"index={description!r} trains {n_lists} lists by k-means, which needs "
                f"at least as many enrolled rows; got {len(support)}."
            )
        index.train(support)
    index.add(support)
    _set_search_params(index, description, search_params)
    return index


def search(index, queries, n_neighbors):
    """Distances and rows of the ``n_neighbors`` nearest indexed rows of each query.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors), float64
        Euclidean distances, ascending; ``inf`` where an approximate index
        found fewer rows than asked.
    rows : ndarray of shape (n_queries, n_neighbors), int64
        Indexed rows; ``-1`` where none was found.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    squared, rows = index.search(queries, n_neighbors)
    # faiss gives squared distances in float32, which rounding can make negative.
    distances = np.sqrt(np.maximum(squared.astype(np.float64), 0.0))
    distances[rows < 0] = np.inf
    return distances, rows.astype(np.int64)


def index_to_bytes(index):
    """faiss's serialised bytes of ``index``, as a uint8 array (``None`` stays ``None``)."""
    return None if index is None else _faiss().serialize_index(index)


def index_from_bytes(data, description, search_params):
    """The index :func:`index_to_bytes` wrote; ``None``, with a warning, without faiss."""
    if data is None:
        return None
    faiss = _faiss()
    if faiss is None:
        _warn_missing(description)
        return None
    index = faiss.deserialize_index(np.asarray(data, dtype=np.uint8))
    # Search-time parameters are not part of faiss's bytes.
    _set_search_params(index, description, search_params)
    return index

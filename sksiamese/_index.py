"""An optional faiss index over enrolled embeddings, for galleries of millions of rows.

faiss (``pip install sksiamese[faiss]``) searches by Euclidean distance in
float32. Where faiss cannot be imported, building or loading an index warns
and gives ``None``, and the caller searches exactly. A faiss index is a
compiled object that ``pickle`` cannot write: it travels as faiss's own
serialised bytes (a uint8 array), which carry its search parameters.
"""

import numpy as np

from ._warnings import warn

EXACT = "exact"

_MISSING = (
    "faiss cannot be imported ({error}), so index={description!r} falls back to the "
    "exact search (the same neighbours, in time linear in the gallery). Install it "
    "with `pip install sksiamese[faiss]` (or `pip install faiss-cpu`)."
)
# Above this share of queries searched exactly because the index found too few
# rows, the index costs more than it saves: say so.
_FALLBACK_WARNING_SHARE = 0.1


def _faiss():
    """The faiss module, or the ``ImportError`` that importing it raised."""
    try:
        import faiss
    except ImportError as error:
        return error
    return faiss


def _available(description):
    """faiss, or ``None`` after a warning that the search will be exact."""
    faiss = _faiss()
    if isinstance(faiss, ImportError):
        warn(_MISSING.format(error=faiss, description=description), UserWarning)
        return None
    return faiss


def check_index(description, search_params, by_distance):
    """Refuse index parameters that cannot apply, before anything is trained.

    ``by_distance`` says whether the embedder compares by Euclidean distance,
    the only similarity faiss searches.
    """
    _check_exact_has_no_params(description, search_params)
    if description != EXACT and not by_distance:
        raise ValueError(
            f"index={description!r} searches by Euclidean distance, but this "
            "embedder (loss='bce') compares samples by a learned head that faiss "
            "cannot index; use index='exact'."
        )


def _check_exact_has_no_params(description, search_params):
    if description == EXACT and search_params:
        raise ValueError(
            f"index_params={search_params!r} tunes a faiss index, and "
            "index='exact' has none; leave index_params=None or choose a faiss index."
        )


def build_index(description, search_params, support):
    """A faiss index over the rows of ``support``, or ``None`` for the exact search.

    Parameters
    ----------
    description : str
        ``'exact'`` (no index), or a faiss ``index_factory`` description:
        ``'Flat'``, ``'HNSW32'``, ``'IVF1024,Flat'``, ``'IVF1024,PQ32'``, ...
    search_params : str or None
        Parameters as ``faiss.ParameterSpace`` reads them, set before the
        rows are added: ``'nprobe=16'`` (IVF), ``'efSearch=128'`` or
        ``'efConstruction=80'`` (HNSW).
    support : ndarray of shape (n_rows, dim)
        The rows to index; also the training set of indexes that need one
        (IVF's k-means, PQ's codebooks).

    Returns
    -------
    index : faiss.Index or None
        ``None`` for ``'exact'``, and, with a warning, when faiss is missing.
    """
    _check_exact_has_no_params(description, search_params)
    if description == EXACT:
        return None
    faiss = _available(description)
    if faiss is None:
        return None
    support = np.ascontiguousarray(support, dtype=np.float32)
    try:
        index = faiss.index_factory(support.shape[1], description, faiss.METRIC_L2)
    except RuntimeError as error:
        raise ValueError(
            f"index={description!r} is neither 'exact' nor a faiss index_factory "
            f"description (such as 'Flat', 'HNSW32' or 'IVF1024,Flat'): {error}"
        ) from error
    if search_params:
        try:
            faiss.ParameterSpace().set_index_parameters(index, search_params)
        except RuntimeError as error:
            raise ValueError(
                f"index_params={search_params!r} does not apply to index={description!r}: {error}"
            ) from error
    if not index.is_trained:
        try:
            index.train(support)
        except RuntimeError as error:
            raise ValueError(
                f"index={description!r} could not be trained on the {len(support)} "
                f"enrolled rows (inverted lists and codebooks need many rows): {error}"
            ) from error
    index.add(support)
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


def warn_if_many_missed(n_missed, n_queries, description):
    """Warn when the index found too few rows for many queries, searched exactly instead."""
    if n_queries and n_missed / n_queries > _FALLBACK_WARNING_SHARE:
        warn(
            f"index={description!r} found too few rows for {n_missed} of {n_queries} "
            "queries, which were searched exactly (slower than the index). Search "
            "more of it: raise nprobe (IVF) or efSearch (HNSW) in index_params.",
            UserWarning,
        )


def index_to_bytes(index):
    """faiss's serialised bytes of ``index``, as a uint8 array."""
    return _faiss().serialize_index(index)


def index_from_bytes(data, description):
    """The index :func:`index_to_bytes` wrote; ``None``, with a warning, without faiss."""
    faiss = _available(description)
    return None if faiss is None else faiss.deserialize_index(np.asarray(data, dtype=np.uint8))

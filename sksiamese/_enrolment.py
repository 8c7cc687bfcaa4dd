"""The enrolled support set: its rows, and searching them for each query.

A support set is enrolled as one row per class (the prototype, the mean of the
class's embeddings; Snell et al. 2017) or every example (``'nearest'``). A
query is compared with the rows by the embedder's similarity, exactly
(:mod:`sksiamese._search`), or through a faiss index where the classifier has
one; queries the index finds too few rows for are searched exactly.
"""

import numpy as np
import torch

from ._index import search as index_search
from ._search import BestClass, ClassMax, TopRows, search_exact


def embed(embedder, X):
    """Embeddings of ``X`` by a fitted embedder, as a float32 tensor."""
    return torch.as_tensor(np.asarray(embedder.transform(X)), dtype=torch.float32)


def class_prototypes(embeddings, codes, n_classes):
    """Mean embedding of each class, shape ``(n_classes, dim)``."""
    sums = embeddings.new_zeros(n_classes, embeddings.shape[1]).index_add_(0, codes, embeddings)
    counts = torch.bincount(codes, minlength=n_classes).clamp_min(1)
    return sums / counts[:, None].to(embeddings.dtype)


def enrol(embeddings, codes, n_classes, aggregation):
    """The rows to search and the class code of each: prototypes, or every example."""
    if aggregation == "prototype":
        return class_prototypes(embeddings, codes, n_classes), torch.arange(n_classes)
    return embeddings, codes


def check_enrolment(support, codes, n_classes, n_dims, path):
    """Refuse a weight file whose enrolment does not hold together."""
    problems = [
        (support.ndim != 2 or support.shape[1] != n_dims, f"embeddings of {n_dims} dimensions"),
        (codes.shape != (len(support),), "one class per enrolled row"),
        (
            len(codes) and not 0 <= codes.min() <= codes.max() < n_classes,
            "class codes within the classes",
        ),
    ]
    for broken, expected in problems:
        if broken:
            raise ValueError(f"{path} does not hold a consistent enrolment: expected {expected}.")


def class_scores(similarity, queries, support, support_codes, n_classes):
    """Each query's score for each class: its best over the class's enrolled rows.

    A dense float64 array of shape ``(n_queries, n_classes)``.
    """
    reducer = ClassMax(torch.from_numpy(support_codes), n_classes)
    (scores,) = search_exact(similarity, queries, torch.from_numpy(support), reducer)
    return scores.numpy()  # float64 already: no copy of a dense matrix


def best_class(similarity, queries, support, support_codes, index):
    """Each query's best class code and its score, in memory bounded whatever the classes.

    With a faiss ``index``, the class of the row it finds nearest, scored by
    minus its distance. Returns ``(scores, codes, n_missed)``, the last the
    number of queries the index found no row for (searched exactly).
    """

    def exact(rows):
        reducer = BestClass(torch.from_numpy(support_codes))
        return search_exact(similarity, queries[rows], torch.from_numpy(support), reducer)

    if index is None:
        return *(result.numpy() for result in exact(slice(None))), 0
    distances, rows = index_search(index, queries.numpy(), 1)
    best, codes = -distances[:, 0], support_codes[rows[:, 0]]
    missed = np.flatnonzero(rows[:, 0] < 0)
    _search_missed_exactly(missed, (best, codes), exact)
    return best, codes, len(missed)


def nearest_rows(similarity, queries, support, n_neighbors, index, *, own=None):
    """The ``n_neighbors`` most similar enrolled rows of each query, nearest first.

    ``own`` (the row of each query, when the queries are the enrolled rows)
    leaves each query out of its own neighbours. Returns ``(distances, rows,
    n_missed)``: minus the similarities (ascending), the rows, and the number
    of queries a faiss ``index`` found too few rows for (searched exactly).
    """

    def exact(rows):
        similarities, found = search_exact(
            similarity,
            queries[rows],
            torch.from_numpy(support),
            TopRows(n_neighbors),
            query_index=None if own is None else own[rows],
        )
        return -similarities, found

    if index is None:
        return *(result.numpy() for result in exact(slice(None))), 0
    distances, rows = _index_neighbours(index, queries, n_neighbors, own)
    missed = np.flatnonzero((rows < 0).any(1))
    _search_missed_exactly(missed, (distances, rows), exact)
    return distances, rows, len(missed)


def _search_missed_exactly(missed, results, exact):
    """Overwrite, in the index's ``results``, the rows of the queries it missed."""
    if len(missed):
        for result, found in zip(results, exact(missed), strict=True):
            result[missed] = found.numpy()


def _index_neighbours(index, queries, n_neighbors, own):
    """The index's ``n_neighbors`` nearest rows of each query, its ``own`` row left out."""
    if own is None:
        return index_search(index, queries.numpy(), n_neighbors)
    distances, rows = index_search(index, queries.numpy(), n_neighbors + 1)
    # Drop the query's own row, or its farthest neighbour where the index missed it.
    drop = rows == own.numpy()[:, None]
    drop[:, -1] |= ~drop.any(1)
    shape = (len(rows), n_neighbors)
    return distances[~drop].reshape(shape), rows[~drop].reshape(shape)

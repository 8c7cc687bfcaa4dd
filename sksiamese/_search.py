"""Queries against a gallery of embeddings, in bounded memory: one driver, small reducers.

Scores of ``n_queries`` against ``n_support`` rows never materialise the full
``(n_queries, n_support)`` matrix. As scikit-learn's
``pairwise_distances_chunked(..., reduce_func=...)`` does, one driver cuts the
queries and the support into blocks whose scores hold at most
``CHUNK_ELEMENTS`` numbers (the Koch head needs ``dim`` of them per score) and
folds each block into a reducer's running result at once: the best score of
each class (:class:`ClassMax`), the best class (:class:`BestClass`), or the top
rows (:class:`TopRows`).

Scores are computed in float64, so that a query's scores do not depend on
which other queries share its block (float32 matrix products round
differently for different block shapes); the queries and the support are
cast block by block, as a float64 copy of a gallery of millions would double
its memory.
"""

import torch

CHUNK_ELEMENTS = 2**23
QUERY_CHUNK = 256
# Above every class code: the running best class before any is seen.
_NO_CLASS = torch.iinfo(torch.int64).max


def search_blocks(similarity, queries, support, reducer, *, query_index=None):
    """Yield ``(start, result)`` for each block of up to ``QUERY_CHUNK`` queries.

    Parameters
    ----------
    similarity : Similarity
        Scores blocks through its ``matrix(A, B)``.
    queries, support : torch.Tensor of shape (n, dim)
    reducer : ClassMax, BestClass or TopRows
        Folds each block of scores into a running result: ``start(n)``
        creates it for ``n`` queries, ``fold(result, scores, offset)``
        updates it with the scores of the support rows from ``offset`` on.
    query_index : torch.Tensor of int64, default=None
        Position of each query inside ``support``; that row is left out of
        its own scores (leave-one-out).
    """
    support_step = max(1, CHUNK_ELEMENTS // (QUERY_CHUNK * max(1, queries.shape[1])))
    for q0 in range(0, len(queries), QUERY_CHUNK):
        query = queries[q0 : q0 + QUERY_CHUNK].double()
        result = reducer.start(len(query))
        for s0 in range(0, len(support), support_step):
            scores = similarity.matrix(query, support[s0 : s0 + support_step].double())
            if query_index is not None:
                own = query_index[q0 : q0 + QUERY_CHUNK, None] - s0
                columns = torch.arange(scores.shape[1], device=scores.device)
                scores = scores.masked_fill(own == columns, float("-inf"))
            result = reducer.fold(result, scores, s0)
        yield q0, result


def search_exact(similarity, queries, support, reducer, *, query_index=None):
    """The reducer's result for every query: :func:`search_blocks`, concatenated."""
    blocks = [
        result
        for _, result in search_blocks(
            similarity, queries, support, reducer, query_index=query_index
        )
    ]
    if not blocks:
        blocks = [reducer.start(0)]
    return tuple(torch.cat(parts) for parts in zip(*blocks, strict=True))


class ClassMax:
    """Best score of each query against the support rows of each class.

    ``-inf`` where a class has no eligible row. The result is a 1-tuple
    ``(scores,)`` of shape ``(n_queries, n_classes)``.
    """

    def __init__(self, support_codes, n_classes):
        self.support_codes, self.n_classes = support_codes, n_classes

    def start(self, n_queries):
        return (torch.full((n_queries, self.n_classes), float("-inf"), dtype=torch.float64),)

    def fold(self, result, scores, offset):
        (best,) = result
        codes = self.support_codes[offset : offset + scores.shape[1]].expand(len(scores), -1)
        return (best.scatter_reduce_(1, codes, scores, reduce="amax"),)


class BestClass:
    """The class of each query's best support row, and its score.

    What ``ClassMax`` followed by ``max`` and ``argmax`` gives, without the
    ``(n_queries, n_classes)`` matrix: memory does not grow with the number
    of classes. Ties go to the lowest class code, as ``argmax`` does.
    The result is ``(scores, codes)``, float64 and int64.
    """

    def __init__(self, support_codes):
        self.support_codes = support_codes

    def start(self, n_queries):
        best = torch.full((n_queries,), float("-inf"), dtype=torch.float64)
        return best, torch.full((n_queries,), _NO_CLASS, dtype=torch.int64)

    def fold(self, result, scores, offset):
        best, code = result
        codes = self.support_codes[offset : offset + scores.shape[1]].long()
        top = scores.max(1).values
        # The lowest class code among the block's best rows.
        block_code = torch.where(scores == top[:, None], codes, _NO_CLASS).min(1).values
        better = (top > best) | ((top == best) & (block_code < code))
        return torch.where(better, top, best), torch.where(better, block_code, code)


class TopRows:
    """The ``n_neighbors`` best support rows of each query, best first.

    Memory grows with ``n_neighbors``, not with the support set; ties keep
    support order. The result is ``(scores, rows)``, float64 and int64.
    """

    def __init__(self, n_neighbors):
        self.n_neighbors = n_neighbors

    def start(self, n_queries):
        shape = (n_queries, 0) if n_queries else (0, self.n_neighbors)
        return torch.empty(shape, dtype=torch.float64), torch.empty(shape, dtype=torch.int64)

    def fold(self, result, scores, offset):
        best, rows = result
        columns = torch.arange(offset, offset + scores.shape[1]).expand(len(scores), -1)
        # Earlier candidates first: the stable sort keeps ties in support order.
        best, rows = torch.cat([best, scores], 1), torch.cat([rows, columns], 1)
        keep = torch.sort(best, dim=1, descending=True, stable=True).indices[:, : self.n_neighbors]
        return best.gather(1, keep), rows.gather(1, keep)

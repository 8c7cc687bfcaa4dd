"""Query-to-class similarities computed in bounded memory, and their calibration.

Scores of ``n_queries`` against ``n_support`` examples never materialise the
full ``(n_queries, n_support)`` matrix: queries and support are cut into chunks
whose similarity block holds at most ``CHUNK_ELEMENTS`` numbers (the Koch head
needs ``chunk * dim`` of them), and each block is folded into a running
per-class maximum at once. Scores are computed in float64, so that a query's
scores do not depend on which other queries share its chunk (float32 matrix
products round differently for different chunk shapes); the support is cast
block by block, as a float64 copy of a gallery of millions would double its
memory.
"""

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression

CHUNK_ELEMENTS = 2**23
QUERY_CHUNK = 256
# Above every class code: the running best class before any is seen.
_NO_CLASS = torch.iinfo(torch.int64).max


def negative_euclidean(A, B):
    """Similarity as minus the Euclidean distance, ``(len(A), len(B))``."""
    return -torch.cdist(A, B)


def similarity_of(criterion):
    """The similarity a trained criterion implies: its Koch head, else minus the distance.

    Returns a function ``(A, B) -> (len(A), len(B))`` scores, computed on the
    head's device and returned on the CPU.
    """
    head = getattr(criterion, "head", None)
    if head is None:
        return negative_euclidean
    device = next(head.parameters()).device

    def head_logits(A, B):
        with torch.no_grad():
            return head(A[:, None, :].to(device), B[None, :, :].to(device)).cpu()

    return head_logits


def class_scores(similarity, queries, support, support_codes, n_classes, *, query_index=None):
    """Best similarity of each query to the support examples of each class.

    Parameters
    ----------
    similarity : callable
        ``similarity(A, B)`` returns the ``(len(A), len(B))`` similarity matrix.
    queries, support : torch.Tensor of shape (n, dim)
    support_codes : torch.Tensor of int64
        Class code of each support example.
    n_classes : int
    query_index : torch.Tensor of int64, default=None
        Position of each query inside ``support``; that example is left out of
        its own scores (leave-one-out).

    Returns
    -------
    scores : torch.Tensor of shape (n_queries, n_classes)
        ``-inf`` where a class has no eligible support example.
    """
    queries = queries.double()
    dim = max(1, queries.shape[1])
    support_step = max(1, CHUNK_ELEMENTS // (QUERY_CHUNK * dim))
    blocks = []
    for q0 in range(0, len(queries), QUERY_CHUNK):
        query = queries[q0 : q0 + QUERY_CHUNK]
        best = query.new_full((len(query), n_classes), float("-inf"))
        for s0 in range(0, len(support), support_step):
            sims = similarity(query, support[s0 : s0 + support_step].double())
            if query_index is not None:
                own = query_index[q0 : q0 + QUERY_CHUNK, None] - s0
                columns = torch.arange(sims.shape[1], device=sims.device)
                sims = sims.masked_fill(own == columns, float("-inf"))
            codes = support_codes[s0 : s0 + support_step].expand(len(query), -1)
            best.scatter_reduce_(1, codes, sims, reduce="amax")
        blocks.append(best)
    return torch.cat(blocks) if blocks else queries.new_empty((0, n_classes))


def best_class(similarity, queries, support, support_codes):
    """The class of each query's most similar support example, and that similarity.

    What ``class_scores(...).max(1)`` and ``.argmax(1)`` give, without the
    ``(n_queries, n_classes)`` matrix: the best class of a query is the class
    of its best support example, so a running maximum over blocks of the
    similarity matrix suffices, and memory does not grow with the number of
    classes. Ties go to the lowest class code, as ``argmax`` does.

    Returns
    -------
    scores : torch.Tensor of shape (n_queries,), float64
    codes : torch.Tensor of shape (n_queries,), int64
    """
    queries = queries.double()
    dim = max(1, queries.shape[1])
    support_step = max(1, CHUNK_ELEMENTS // (QUERY_CHUNK * dim))
    best_scores, best_codes = [], []
    for q0 in range(0, len(queries), QUERY_CHUNK):
        query = queries[q0 : q0 + QUERY_CHUNK]
        best = query.new_full((len(query),), float("-inf"))
        code = torch.full((len(query),), _NO_CLASS, dtype=torch.int64)
        for s0 in range(0, len(support), support_step):
            sims = similarity(query, support[s0 : s0 + support_step].double())
            codes = support_codes[s0 : s0 + support_step].long()
            top = sims.max(1).values
            # The lowest class code among the block's best examples.
            block_code = torch.where(sims == top[:, None], codes, _NO_CLASS).min(1).values
            better = (top > best) | ((top == best) & (block_code < code))
            best = torch.where(better, top, best)
            code = torch.where(better, block_code, code)
        best_scores.append(best)
        best_codes.append(code)
    if not best_scores:
        return queries.new_empty(0), torch.empty(0, dtype=torch.int64)
    return torch.cat(best_scores), torch.cat(best_codes)


def nearest_examples(similarity, queries, support, n_neighbors, *, query_index=None):
    """The ``n_neighbors`` most similar support rows of each query, most similar first.

    Blocks of the query-by-support similarities of at most ``CHUNK_ELEMENTS``
    numbers are merged into a running top ``n_neighbors``, so memory grows with
    ``n_neighbors``, not with the support set. Ties keep support order.
    ``query_index`` (the position of each query in ``support``) leaves each
    query out of its own neighbours.

    Returns
    -------
    similarities : torch.Tensor of shape (n_queries, n_neighbors), float64
    indices : torch.Tensor of shape (n_queries, n_neighbors), int64
    """
    queries = queries.double()
    support_step = max(1, CHUNK_ELEMENTS // (QUERY_CHUNK * max(1, queries.shape[1])))
    top_sims, top_rows = [], []
    for q0 in range(0, len(queries), QUERY_CHUNK):
        query = queries[q0 : q0 + QUERY_CHUNK]
        sims = query.new_empty((len(query), 0))
        rows = torch.empty((len(query), 0), dtype=torch.int64)
        for s0 in range(0, len(support), support_step):
            block = similarity(query, support[s0 : s0 + support_step].double())
            columns = torch.arange(s0, s0 + block.shape[1]).expand(len(query), -1)
            if query_index is not None:
                # Last of all: the similarities are finite, and n_neighbors is
                # below the number of other rows.
                own = query_index[q0 : q0 + QUERY_CHUNK, None] == columns
                block = block.masked_fill(own, float("-inf"))
            # Earlier candidates first: the stable sort keeps ties in support order.
            sims, rows = torch.cat([sims, block], 1), torch.cat([rows, columns], 1)
            keep = torch.sort(sims, dim=1, descending=True, stable=True).indices[:, :n_neighbors]
            sims, rows = sims.gather(1, keep), rows.gather(1, keep)
        top_sims.append(sims)
        top_rows.append(rows)
    if not top_sims:
        return queries.new_empty((0, n_neighbors)), torch.empty((0, n_neighbors)).long()
    return torch.cat(top_sims), torch.cat(top_rows)


def class_prototypes(embeddings, codes, n_classes):
    """Mean embedding of each class, shape ``(n_classes, dim)``."""
    sums = embeddings.new_zeros(n_classes, embeddings.shape[1]).index_add_(0, codes, embeddings)
    counts = torch.bincount(codes, minlength=n_classes).clamp_min(1)
    return sums / counts[:, None].to(embeddings.dtype)


def _rowwise(similarity, A, B):
    """``similarity(A[i], B[i])`` for every row ``i``."""
    return torch.cat(
        [
            similarity(a, b).diagonal()
            for a, b in zip(A.split(QUERY_CHUNK), B.split(QUERY_CHUNK), strict=True)
        ]
    )


def leave_one_out_scores(similarity, embeddings, codes, n_classes, aggregation, rows):
    """Class scores of ``embeddings[rows]`` with each query left out of its class.

    Only rows whose class has at least two examples make sense here; the
    caller picks them.
    """
    embeddings = embeddings.double()
    if aggregation == "nearest":
        return class_scores(
            similarity, embeddings[rows], embeddings, codes, n_classes, query_index=rows
        )
    prototypes = class_prototypes(embeddings, codes, n_classes)
    scores = class_scores(
        similarity, embeddings[rows], prototypes, torch.arange(n_classes), n_classes
    )
    counts = torch.bincount(codes, minlength=n_classes).to(embeddings.dtype)
    own_codes = codes[rows]
    n_own = counts[own_codes][:, None]
    own_prototype = (prototypes[own_codes] * n_own - embeddings[rows]) / (n_own - 1)
    scores[torch.arange(len(rows)), own_codes] = _rowwise(
        similarity, embeddings[rows], own_prototype
    )
    return scores


def fit_temperature(scores, codes):
    """Temperature ``T`` for which ``softmax(scores / T)`` is calibrated.

    It minimises the cross-entropy against Platt's smoothed targets: the true
    class gets ``(n + 1) / (n + 2)`` rather than 1, which keeps ``T`` finite
    when the scores separate the classes perfectly (Platt, 1999).

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_classes)
        Class scores of held-out queries: leave-one-out scores of a support
        set, or the scores of one-shot episodes; all finite.
    codes : ndarray of shape (n_samples,)
        True class of each row.

    Returns
    -------
    temperature : float
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, n_classes = scores.shape
    if not np.isfinite(scores).all():
        raise ValueError("Calibration needs finite scores: every row's class must be scored.")
    hit = (n + 1) / (n + 2)
    targets = np.full(scores.shape, (1 - hit) / max(1, n_classes - 1))
    targets[np.arange(n), codes] = hit

    def cross_entropy(log_t):
        return -(targets * log_softmax(scores / np.exp(log_t), axis=1)).sum(1).mean()

    result = minimize_scalar(cross_entropy, bounds=(np.log(1e-4), np.log(1e4)), method="bounded")
    return float(np.exp(result.x))


def platt_scaling(scores, same):
    """Platt's sigmoid from scores to the probability of "same", as a fitted ``LogisticRegression``.

    Platt (1999) fits the sigmoid to smoothed targets, ``(n1 + 1) / (n1 + 2)``
    for the ``n1`` positives and ``1 / (n0 + 2)`` for the ``n0`` negatives,
    without a penalty: the smoothing keeps the slope finite when the scores
    separate the classes. Each score enters twice, once per label, weighted by
    its target, which is that objective.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same).astype(bool)
    n_same, n_different = same.sum(), (~same).sum()
    target = np.where(same, (n_same + 1) / (n_same + 2), 1 / (n_different + 2))
    labels = np.r_[np.ones(len(scores)), np.zeros(len(scores))].astype(int)
    weights = np.r_[target, 1 - target]
    calibrator = LogisticRegression(C=np.inf)
    return calibrator.fit(np.r_[scores, scores][:, None], labels, sample_weight=weights)

"""Leave-one-out retrieval on embeddings: each sample queries all the others."""

import numpy as np
import torch

from ._scoring import nearest_examples

# Queries ranked at a time: the metrics keep running sums, not the rankings.
QUERY_BLOCK = 1024


def retrieval_scores(similarity, embeddings, codes, k):
    """Precision@1, R-precision, MAP@R and recall@k, averaged over the queries.

    A query is every sample whose class has another sample; ``R`` is the
    number of those others. Neighbours are ranked by ``similarity`` (ties in
    sample order), for one block of queries at a time.
    """
    points = torch.as_tensor(embeddings, dtype=torch.float64)
    labels = torch.as_tensor(codes)
    relevant_total = np.bincount(codes)[codes] - 1
    queries = np.flatnonzero(relevant_total > 0)
    if len(queries) == 0:
        raise ValueError("Retrieval needs at least one class with two or more samples.")
    depth = min(len(codes) - 1, max(k, int(relevant_total.max())))
    sums = dict.fromkeys(("precision_at_1", "r_precision", "map_at_r", "recall_at_k"), 0.0)
    for start in range(0, len(queries), QUERY_BLOCK):
        rows = torch.as_tensor(queries[start : start + QUERY_BLOCK])
        _, order = nearest_examples(similarity, points[rows], points, depth, query_index=rows)
        relevant = (labels[order] == labels[rows, None]).numpy()
        r = relevant_total[rows.numpy()]
        hits = relevant & (np.arange(depth)[None, :] < r[:, None])
        precision_at = np.cumsum(relevant, axis=1) / np.arange(1, depth + 1)
        sums["precision_at_1"] += relevant[:, 0].sum()
        sums["r_precision"] += (hits.sum(1) / r).sum()
        sums["map_at_r"] += ((precision_at * hits).sum(1) / r).sum()
        sums["recall_at_k"] += relevant[:, :k].any(1).sum()
    return {name: float(total / len(queries)) for name, total in sums.items()}

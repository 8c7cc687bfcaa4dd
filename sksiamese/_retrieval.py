"""Leave-one-out retrieval on embeddings: each sample queries all the others."""

import numpy as np
import torch

from ._search import TopRows, search_blocks


def retrieval_scores(similarity, embeddings, codes, k):
    """Precision@1, R-precision, MAP@R and recall@k, averaged over the queries.

    A query is every sample whose class has another sample; ``R`` is the
    number of those others. Neighbours are ranked by ``similarity`` (ties in
    sample order); each block of queries the search yields is reduced to one
    value per query and metric at once, never kept as a ranking, and the
    values are averaged in one sum (the same whatever the blocks).
    """
    points = torch.as_tensor(embeddings, dtype=torch.float64)
    labels = torch.as_tensor(codes)
    relevant_total = np.bincount(codes)[codes] - 1
    queries = np.flatnonzero(relevant_total > 0)
    if len(queries) == 0:
        raise ValueError("Retrieval needs at least one class with two or more samples.")
    depth = min(len(codes) - 1, max(k, int(relevant_total.max())))
    names = ("precision_at_1", "r_precision", "map_at_r", "recall_at_k")
    per_query = {name: [] for name in names}
    query_rows = torch.as_tensor(queries)
    blocks = search_blocks(
        similarity, points[query_rows], points, TopRows(depth), query_index=query_rows
    )
    for start, (_, order) in blocks:
        rows = query_rows[start : start + len(order)]
        relevant = (labels[order] == labels[rows, None]).numpy()
        r = relevant_total[rows.numpy()]
        hits = relevant & (np.arange(depth)[None, :] < r[:, None])
        precision_at = np.cumsum(relevant, axis=1) / np.arange(1, depth + 1)
        per_query["precision_at_1"].append(relevant[:, 0])
        per_query["r_precision"].append(hits.sum(1) / r)
        per_query["map_at_r"].append((precision_at * hits).sum(1) / r)
        per_query["recall_at_k"].append(relevant[:, :k].any(1))
    return {name: float(np.concatenate(values).mean()) for name, values in per_query.items()}

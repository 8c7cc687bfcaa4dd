"""N-way K-shot episodes on classes a model never saw, scored on embeddings.

Shared by :func:`sksiamese.metrics.one_shot_accuracy` and the held-out
selection of ``fit`` (:mod:`sksiamese._selection`): both draw episodes once,
embed each sample an episode uses once, and score every episode on those
embeddings.
"""

import numpy as np
import torch

from ._enrolment import enrol
from ._search import ClassMax, search_exact
from ._warnings import warn


def draw_episodes(y, groups, n_way, k_shot, n_queries, n_episodes, rng):
    """Index arrays ``(support, query)`` of each episode."""
    classes, codes = np.unique(y, return_inverse=True)
    counts = np.bincount(codes)
    eligible = counts >= k_shot + n_queries
    class_groups = np.zeros(len(classes), dtype=int)
    if groups is not None:
        # A class belongs to the group of its first sample.
        group_names, group_of_sample = np.unique(np.asarray(groups), return_inverse=True)
        class_groups = group_of_sample[np.unique(codes, return_index=True)[1]]
    pool_of = {g: np.flatnonzero(eligible & (class_groups == g)) for g in np.unique(class_groups)}
    pools = [pool for pool in pool_of.values() if len(pool) >= n_way]
    if groups is not None and pools and len(pools) < len(pool_of):
        names = group_names[[g for g, pool in pool_of.items() if len(pool) < n_way]]
        warn(
            f"{len(names)} of {len(pool_of)} groups have fewer than n_way={n_way} "
            f"classes with at least k_shot + n_queries = {k_shot + n_queries} samples "
            f"and take no part in the episodes: {', '.join(map(str, names))}.",
            UserWarning,
        )
    if not pools:
        raise ValueError(
            f"No {'group' if groups is not None else 'set'} has {n_way} classes with "
            f"at least k_shot + n_queries = {k_shot + n_queries} samples each."
        )
    for _ in range(n_episodes):
        pool = pools[rng.randint(len(pools))]
        support, query = [], []
        for c in rng.choice(pool, n_way, replace=False):
            members = rng.permutation(np.flatnonzero(codes == c))
            support.extend(members[:k_shot])
            query.extend(members[k_shot : k_shot + n_queries])
        yield np.array(support), np.array(query)


def used_samples(episodes):
    """Sorted indices of every sample the ``(support, query)`` episodes use."""
    return np.unique(np.concatenate([np.concatenate(episode) for episode in episodes]))


def scatter_rows(embedded, rows, n_samples):
    """An ``(n_samples, dim)`` array holding ``embedded`` at ``rows`` (zeros elsewhere)."""
    embeddings = np.zeros((n_samples, embedded.shape[1]), dtype=embedded.dtype)
    embeddings[rows] = embedded
    return embeddings


def episode_scores(similarity, embeddings, codes, support, query, aggregation):
    """Class scores of one episode's queries, whose samples are already embedded.

    Returns ``(scores, truth)``: the ``(n_queries, n_way)`` scores and the
    column of each query's class.
    """
    classes, support_codes = np.unique(codes[support], return_inverse=True)
    enrolled, enrolled_codes = enrol(
        torch.as_tensor(embeddings[support]),
        torch.as_tensor(support_codes),
        len(classes),
        aggregation,
    )
    (scores,) = search_exact(
        similarity,
        torch.as_tensor(embeddings[query]),
        enrolled,
        ClassMax(enrolled_codes, len(classes)),
    )
    return scores.numpy(), np.searchsorted(classes, codes[query])


def episode_accuracy(similarity, embeddings, codes, support, query, aggregation):
    """Accuracy of one episode whose samples are already embedded."""
    scores, truth = episode_scores(similarity, embeddings, codes, support, query, aggregation)
    return float(np.mean(scores.argmax(1) == truth))

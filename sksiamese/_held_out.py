"""Data held out from training, and how a net is scored on it.

Classes are held out whole (one-shot learning is judged on classes training
never saw) and scored by the 1-shot accuracy of fixed episodes
(:class:`OneShotEpisodes`); pairs are held out by the groups their "same"
labels reveal and scored by ROC AUC (:class:`HeldOutPairAUC`). The rule that
decides when and how much is held out is :mod:`sksiamese._selection`'s.
"""

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import roc_auc_score

from ._base import unique_samples
from ._episodes import (
    draw_episodes,
    episode_accuracy,
    episode_scores,
    scatter_rows,
    used_samples,
)
from ._net import pair_net_scores

# Held-out classes are at least this many (when the classes allow it).
MIN_HELD_OUT_CLASSES = 5
N_EPISODES = 200
MAX_WAYS = 20


def hold_out_classes(codes, validation_fraction, rng):
    """Indices ``(train, held_out)`` of a class-disjoint split, or ``None``.

    ``None`` when fewer than four classes have two or more samples: one-shot
    accuracy needs two held-out classes, and training needs two more.
    """
    counts = np.bincount(codes)
    eligible = np.flatnonzero(counts >= 2)
    n_classes = len(eligible)
    n_held = min(max(round(validation_fraction * n_classes), MIN_HELD_OUT_CLASSES), n_classes // 2)
    if n_held < 2:
        return None
    held = np.isin(codes, rng.choice(eligible, n_held, replace=False))
    return np.flatnonzero(~held), np.flatnonzero(held)


def pair_groups(pairs, same):
    """Group of each sample of each pair: its component under "same" links.

    Identical samples are one node; each same pair links its two nodes. Pairs
    drawn from labelled samples (``make_pairs``) then fall into one group per
    class, as far as the same pairs connect it.

    Returns
    -------
    components : ndarray of shape (n_pairs, 2)
        Group of each sample of each pair.
    """
    _, node = unique_samples(pairs.reshape(2 * len(pairs), *pairs.shape[2:]))
    node = node.reshape(-1, 2)
    linked = node[np.asarray(same) == 1]
    n_nodes = int(node.max()) + 1
    graph = coo_matrix((np.ones(len(linked)), (linked[:, 0], linked[:, 1])), (n_nodes, n_nodes))
    _, component = connected_components(graph, directed=False)
    return component[node]


def hold_out_pairs(components, same, validation_fraction, rng):
    """Indices ``(train, held_out)`` of the pairs; held-out groups are unseen in training.

    ``components`` is :func:`pair_groups`' group of each sample of each pair.
    Whole groups, in random order, are held out with
    every pair that touches them, until ``validation_fraction`` of the pairs
    is. Falls back to a random split of the pairs when the groups cannot give
    a held-out part of at most twice that share with both labels on each
    side; ``None`` when even that cannot.
    """
    same = np.asarray(same)
    n_pairs = len(components)
    groups, components = np.unique(components, return_inverse=True)
    rank = rng.permutation(len(groups))[components.reshape(-1, 2)]
    # Holding out the first k groups holds out the pairs whose lower rank is below k.
    first = rank.min(1)
    held_by_k = np.cumsum(np.bincount(first, minlength=len(groups)))
    k = int(np.searchsorted(held_by_k, validation_fraction * n_pairs)) + 1
    held = first < k
    if held.mean() > 2 * validation_fraction or not _both_labels(same, held):
        held = np.zeros(n_pairs, dtype=bool)
        held[rng.permutation(n_pairs)[: round(validation_fraction * n_pairs)]] = True
    if not _both_labels(same, held):
        return None
    return np.flatnonzero(~held), np.flatnonzero(held)


def _both_labels(same, held):
    return all(len(np.unique(same[part])) == 2 for part in (held, ~held))


class OneShotEpisodes:
    """Fixed N-way 1-shot episodes on held-out classes, scored for a net.

    Parameters
    ----------
    X : ndarray or sparse matrix
        Samples of the held-out classes.
    codes : ndarray of int
        Their classes.
    rng : numpy.random.RandomState
        Draws the episodes, once: up to 20 ways, one query per class.
    """

    def __init__(self, X, codes, rng):
        classes = np.flatnonzero(np.bincount(codes) >= 2)
        n_way = min(MAX_WAYS, len(classes))
        self.codes = codes
        self.episodes = list(draw_episodes(codes, None, n_way, 1, 1, N_EPISODES, rng))
        # Only the samples the episodes use are embedded at each epoch.
        self.used = used_samples(self.episodes)
        self.X = X[self.used]

    def __call__(self, net):
        """Each episode's accuracy for a net's plain embeddings, compared by its loss's similarity.

        Per episode, so that two nets can be compared episode by episode
        (:class:`~sksiamese._selection.KeepBestOnHeldOut`).
        """
        return self.episode_accuracies(net.forward, net.criterion_.similarity)

    def _embeddings(self, embed):
        return scatter_rows(embed(self.X).numpy(), self.used, len(self.codes))

    def episode_accuracies(self, embed, similarity):
        """Each episode's accuracy of ``embed(X) -> embeddings`` compared by ``similarity``."""
        embeddings = self._embeddings(embed)
        return np.array(
            [
                episode_accuracy(similarity, embeddings, self.codes, *episode, "prototype")
                for episode in self.episodes
            ]
        )

    def score(self, embed, similarity):
        """Accuracy of ``embed(X) -> embeddings`` compared by ``similarity(A, B)``."""
        return float(self.episode_accuracies(embed, similarity).mean())

    def class_scores(self, embed, similarity):
        """Every episode's query-by-class scores, stacked, and the column of each query's class.

        Each query's class has exactly one support example in its episode,
        which makes these the scores to calibrate one-shot probabilities on.
        """
        embeddings = self._embeddings(embed)
        scored = [
            episode_scores(similarity, embeddings, self.codes, *episode, "prototype")
            for episode in self.episodes
        ]
        return np.concatenate([s for s, _ in scored]), np.concatenate([t for _, t in scored])


class HeldOutPairAUC:
    """ROC AUC of a pair net's scores on held-out labelled pairs.

    Parameters
    ----------
    pairs : ndarray of shape (n_pairs, 2) + sample_shape
        The held-out pairs.
    same : ndarray of shape (n_pairs,)
        1 for a same pair, 0 for a different one.
    """

    def __init__(self, pairs, same):
        self.pairs, self.same = pairs, same

    def __call__(self, net):
        return float(roc_auc_score(self.same, pair_net_scores(net, self.pairs)))

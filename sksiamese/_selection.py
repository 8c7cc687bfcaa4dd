"""Keep what transfers: choose the training state on data held out from training.

A similarity learned from few classes can over-fit them and compare *new*
classes worse than the untrained network does. So, by default (with 4 to 49
classes, and always for pairs), ``fit`` holds out part of the training data,
scores the untrained network and the network after every epoch on it (one-shot
accuracy on held-out classes, or ROC AUC on held-out pairs), and keeps the best
state, the untrained one included.

The rule, documented in the estimators' ``early_stopping`` parameter:

- classes: ``max(5, validation_fraction * C)`` of the ``C`` classes with two
  or more samples are held out, never more than half of them, and at least two
  must be held out and two left for training (so ``C >= 4``). With fewer than
  ``FEW_CLASSES`` classes the held-out classes are too large a share of
  the data to give up: the net is trained again on every class, with the same
  schedule, up to the best epoch. Otherwise (only under
  ``early_stopping=True``: ``'auto'`` does not hold classes out there) the
  selected net is kept.
- pairs: pairs that share samples through "same" labels form groups (the
  classes behind the pairs, as far as the pairs reveal them); whole groups are
  held out, and the pairs that touch them, until ``validation_fraction`` of the
  pairs is held out. When that is impossible (one group holds most pairs) a
  random ``validation_fraction`` of the pairs is held out instead. The net is
  then trained again on every pair up to the best epoch.
"""

import copy
import warnings

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import roc_auc_score
from skorch.callbacks import Callback

from ._base import unique_samples
from ._episodes import (
    draw_episodes,
    episode_accuracy,
    episode_scores,
    scatter_rows,
    used_samples,
)
from ._scoring import similarity_of

# Below this many classes, the net is retrained on all of them to the best epoch,
# and the default MLP starts from the input's geometry.
FEW_CLASSES = 50
# Held-out classes are at least this many (when the classes allow it).
MIN_HELD_OUT_CLASSES = 5
N_EPISODES = 200
MAX_WAYS = 20


def selection_mode(early_stopping):
    """``'auto'``, ``True`` or ``False`` from the parameter (NumPy booleans included)."""
    return early_stopping if isinstance(early_stopping, str) else bool(early_stopping)


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
        """Accuracy of a net's plain embeddings and the similarity its loss implies."""
        return self.score(net.forward, similarity_of(net.criterion_))

    def _embeddings(self, embed):
        return scatter_rows(embed(self.X).numpy(), self.used, len(self.codes))

    def score(self, embed, similarity):
        """Accuracy of ``embed(X) -> embeddings`` compared by ``similarity(A, B)``."""
        embeddings = self._embeddings(embed)
        return float(
            np.mean(
                [
                    episode_accuracy(similarity, embeddings, self.codes, *episode, "prototype")
                    for episode in self.episodes
                ]
            )
        )

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
    scores : callable
        ``scores(net, pairs)`` returns the net's similarity of each pair.
    """

    def __init__(self, pairs, same, scores):
        self.pairs, self.same, self.scores = pairs, same, scores

    def __call__(self, net):
        return float(roc_auc_score(self.same, self.scores(net, self.pairs)))


class KeepBestOnHeldOut(Callback):
    """skorch callback: score the net before training and after each epoch, keep the best.

    The score of the untrained net is the first entry of ``scores``, so a
    net that training only made worse comes back untrained. Each epoch's score
    is also recorded in the net's history as ``valid_score`` (and
    ``valid_score_best``).

    Parameters
    ----------
    scorer : callable
        ``scorer(net)`` returns a score, higher is better.
    patience : int or None, default=None
        Stop after this many epochs without improvement; ``None`` runs every
        epoch (the one-cycle schedule's last epochs, at a low learning rate,
        are often the best).

    Attributes
    ----------
    scores : list of float
        The untrained net's score, then each epoch's.
    best_epoch : int
        Epoch of the best score; 0 is the untrained net.
    """

    def __init__(self, scorer, patience=None):
        self.scorer = scorer
        self.patience = patience

    def initialize(self):
        self.scores, self.best_epoch, self._best_state = [], 0, None
        return self

    def _state(self, net):
        return copy.deepcopy((net.module_.state_dict(), net.criterion_.state_dict()))

    def on_train_begin(self, net, **kwargs):
        self.scores = [self.scorer(net)]
        self.best_epoch, self._best_state = 0, self._state(net)

    def on_epoch_end(self, net, **kwargs):
        score = self.scorer(net)
        self.scores.append(score)
        is_best = score > max(self.scores[:-1])
        net.history.record("valid_score", score)
        net.history.record("valid_score_best", is_best)
        if is_best:
            self.best_epoch, self._best_state = len(self.scores) - 1, self._state(net)
        elif self.patience is not None and len(self.scores) - 1 - self.best_epoch >= self.patience:
            raise KeyboardInterrupt  # how skorch's own EarlyStopping ends the fit loop

    def on_train_end(self, net, **kwargs):
        module_state, criterion_state = self._best_state
        net.module_.load_state_dict(module_state)
        net.criterion_.load_state_dict(criterion_state)
        self._best_state = None  # the copy is not needed, nor pickled, after training


def warn_if_untrained_is_best(estimator, scores, best_epoch, measure):
    """Warn when no epoch beat the untrained network on the held-out data."""
    if best_epoch != 0 or len(scores) < 2:
        return
    warnings.warn(
        f"No training epoch beat the untrained network on held-out data ({measure}: "
        f"untrained {scores[0]:.3f}, best epoch {max(scores[1:]):.3f}), so "
        f"{type(estimator).__name__} keeps the untrained network. Training on few "
        "classes over-fits them; add classes, lower `lr` or `max_epochs`, or pass "
        "`early_stopping=False` to keep the trained network anyway.",
        UserWarning,
        stacklevel=4,
    )

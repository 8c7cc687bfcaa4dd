"""Same/different pairs from labelled samples, for verification."""

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_consistent_length

__all__ = ["make_pairs"]


def make_pairs(X, y, n_pairs, *, random_state=None):
    """Draw balanced pairs of samples of the same and of different classes.

    Half of the pairs (rounded up) join two different samples of one class,
    the other half samples of two different classes; the anchor of each pair
    is drawn uniformly among the samples that can form it.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Samples: feature vectors or images.
    y : array-like of shape (n_samples,)
        Their classes.
    n_pairs : int
        Number of pairs.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2) + sample_shape
        The two samples of each pair.
    y_same : ndarray of shape (n_pairs,)
        1 for a pair of one class, 0 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from sksiamese.pairs import make_pairs
    >>> pairs, y_same = make_pairs(np.eye(4), [0, 0, 1, 1], 6, random_state=0)
    >>> pairs.shape, int(y_same.sum())
    ((6, 2, 4), 3)
    """
    X = check_array(X, allow_nd=True)
    check_consistent_length(X, y)
    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 2:
        raise ValueError(f"n_pairs must be an int of at least 2; got {n_pairs!r}.")
    _, codes = np.unique(np.asarray(y), return_inverse=True)
    counts = np.bincount(codes)
    if len(counts) < 2 or counts.max() < 2:
        raise ValueError("make_pairs needs two classes and one class with two or more samples.")
    rng = check_random_state(random_state)
    order = np.argsort(codes, kind="stable")  # samples grouped by class
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_same = (n_pairs + 1) // 2

    # Same class: step 1..count-1 places ahead within the anchor's class block.
    anchors = rng.choice(np.flatnonzero(counts[codes] >= 2), n_same)
    c = codes[anchors]
    position = np.argsort(order)[anchors] - start[c]
    step = 1 + (rng.random_sample(n_same) * (counts[c] - 1)).astype(int)
    same_partners = order[start[c] + (position + step) % counts[c]]

    # Different classes: a uniform draw among the samples outside the block.
    others = rng.randint(len(codes), size=n_pairs - n_same)
    c = codes[others]
    draw = (rng.random_sample(len(others)) * (len(codes) - counts[c])).astype(int)
    different_partners = order[np.where(draw < start[c], draw, draw + counts[c])]

    first = np.concatenate([anchors, others])
    second = np.concatenate([same_partners, different_partners])
    y_same = np.concatenate([np.ones(n_same, int), np.zeros(n_pairs - n_same, int)])
    shuffle = rng.permutation(n_pairs)
    pairs = np.stack([X[first], X[second]], axis=1)
    return pairs[shuffle], y_same[shuffle]

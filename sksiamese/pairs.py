"""Same/different pairs and claims from labelled samples, for verification."""

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

__all__ = ["make_claims", "make_pairs"]


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
    X, codes = _labelled_samples(X, y, n_pairs=n_pairs)
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


def make_claims(X, y, n_claims, *, n_references=1, random_state=None):
    """Draw balanced genuine and impostor claims: a sample, and references of a class.

    Half of the claims (rounded up) are genuine: a sample, then
    ``n_references`` other samples of its class. The others are impostors: a
    sample, then ``n_references`` samples of another class. A genuine
    questioned sample is drawn uniformly among those whose class has
    ``n_references`` others, an impostor uniformly among all samples; the
    class an impostor claims uniformly among the other classes with
    ``n_references`` samples; the references without replacement.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Samples: feature vectors or images.
    y : array-like of shape (n_samples,)
        Their classes.
    n_claims : int
        Number of claims, at least 2.
    n_references : int, default=1
        References per claim (with 1, pairs: the impostor's class is drawn
        uniformly among classes, where :func:`make_pairs` draws its partner
        uniformly among samples).
    random_state : int, RandomState instance or None, default=None
        Seeds the draw.

    Returns
    -------
    claims : ndarray of shape (n_claims, 1 + n_references) + sample_shape
        The questioned sample, then the references; what
        :class:`~sksiamese.SiameseVerifier` takes.
    y_same : ndarray of shape (n_claims,)
        1 for a genuine claim, 0 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from sksiamese.pairs import make_claims
    >>> claims, y_same = make_claims(np.eye(6), [0, 0, 0, 1, 1, 1], 4, n_references=2,
    ...                              random_state=0)
    >>> claims.shape, int(y_same.sum())
    ((4, 3, 6), 2)
    """
    X, codes = _labelled_samples(X, y, n_claims=n_claims)
    _check_count("n_references", n_references, 1)
    counts = np.bincount(codes)
    claimable = np.flatnonzero(counts >= n_references)
    if counts.max() < n_references + 1 or len(claimable) < 2:
        raise ValueError(
            f"make_claims with n_references={n_references} needs a class with "
            f"{n_references + 1} or more samples and two classes with {n_references} or more."
        )
    rng = check_random_state(random_state)
    n_genuine = (n_claims + 1) // 2
    genuine = rng.choice(np.flatnonzero(counts[codes] > n_references), n_genuine)
    impostors = rng.randint(len(codes), size=n_claims - n_genuine)
    # An impostor claims a claimable class other than its own, drawn uniformly.
    own = np.searchsorted(claimable, codes[impostors])
    own_claimable = counts[codes[impostors]] >= n_references
    draw = rng.randint(len(claimable) - own_claimable)
    skip_own = own_claimable & (draw >= own)
    claimed = np.r_[codes[genuine], claimable[draw + skip_own]]
    questioned = np.r_[genuine, impostors]
    members = [np.flatnonzero(codes == c) for c in range(len(counts))]
    references = np.stack(
        [
            rng.choice(np.setdiff1d(members[c], [q]), n_references, replace=False)
            for q, c in zip(questioned, claimed, strict=True)
        ]
    )
    y_same = np.r_[np.ones(n_genuine, int), np.zeros(n_claims - n_genuine, int)]
    shuffle = rng.permutation(n_claims)
    claims = np.concatenate([X[questioned][:, None], X[references]], axis=1)
    return claims[shuffle], y_same[shuffle]


def _check_count(name, value, least):
    # bool is an int to Python, not a count.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an int of at least {least}; got {value!r}.")


def _labelled_samples(X, y, **count):
    """``X`` checked, and the class code of each sample; ``count`` is the number to draw."""
    ((name, value),) = count.items()
    _check_count(name, value, 2)
    X = check_array(X, allow_nd=True)
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    return X, np.unique(y, return_inverse=True)[1].reshape(-1)

"""Verification and calibration metrics: pair scores and predicted probabilities.

Re-exported by :mod:`sksiamese.metrics`, their public home; the episode and
retrieval metrics stay there.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.utils import Bunch
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from ._compat import Interval, validate_function_params

__all__ = [
    "equal_error_rate",
    "expected_calibration_error",
    "rejection_threshold",
    "verification_metrics",
]


@validate_function_params(
    {"y_true": ["array-like"], "y_score": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def equal_error_rate(y_true, y_score):
    """Equal error rate of a verification score.

    The rate at the threshold where false accepts (different pairs scored as
    same) and false rejects (same pairs scored as different) are equal,
    interpolated on the ROC curve.

    Parameters
    ----------
    y_true : array-like of shape (n_pairs,)
        1 for pairs of the same class, 0 otherwise.
    y_score : array-like of shape (n_pairs,)
        Higher means more alike, such as ``SiameseEmbedder.pair_score``.

    Returns
    -------
    eer : float
        The error rate where false accepts and false rejects are equal.
    """
    false_accept, true_accept, _ = roc_curve(y_true, y_score)
    false_reject = 1 - true_accept
    crossing = np.flatnonzero(false_accept >= false_reject)[0]
    if crossing == 0:
        return float(false_accept[0])
    # Interpolate linearly between the last point before and the first after.
    a0, a1 = false_accept[crossing - 1], false_accept[crossing]
    r0, r1 = false_reject[crossing - 1], false_reject[crossing]
    t = (r0 - a0) / ((a1 - a0) - (r1 - r0))
    return float(a0 + t * (a1 - a0))


def _pair_scorer(estimator):
    """The pair-scoring method of any of our estimators."""
    for owner in (estimator, getattr(estimator, "embedder_", None)):
        if hasattr(owner, "pair_score"):
            return owner.pair_score
    if hasattr(estimator, "decision_function") and hasattr(estimator, "sample_shape_"):
        return estimator.decision_function  # SiameseVerifier scores pairs directly
    raise TypeError(f"{type(estimator).__name__} cannot score pairs.")


# Which estimators can score pairs depends on their fitted attributes:
# _pair_scorer checks it.
@validate_function_params(
    {"estimator": "no_validation", "pairs": ["array-like"], "y_same": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def verification_metrics(estimator, pairs, y_same):
    """ROC AUC and equal error rate of an estimator's pair scores.

    Parameters
    ----------
    estimator : fitted SiameseEmbedder, SiameseVerifier or OneShotClassifier
        Pairs are scored by ``pair_score`` (the embedder's, for a classifier)
        or, for a verifier, ``decision_function``.
    pairs : array-like of shape (n_pairs, 2) + sample_shape
        The pairs to score.
    y_same : array-like of shape (n_pairs,)
        1 where the two samples share a class, else 0.

    Returns
    -------
    result : Bunch
        ``roc_auc`` and ``equal_error_rate``.
    """
    scores = _pair_scorer(estimator)(pairs)
    return Bunch(
        roc_auc=float(roc_auc_score(y_same, scores)),
        equal_error_rate=equal_error_rate(y_same, scores),
    )


@validate_function_params(
    {
        "classifier": "no_validation",  # a fitted OneShotClassifier, which scores X
        "X": ["array-like"],
        "false_reject_rate": [Interval(Real, 0, 1, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def rejection_threshold(classifier, X, *, false_reject_rate=0.05):
    """Similarity below which a fitted classifier should reject a query.

    Calibrated on held-out queries of the *enrolled* classes: the returned
    value rejects a ``false_reject_rate`` fraction of them. Set it with
    ``classifier.set_params(reject_below=threshold)``; queries of classes that
    were never enrolled then fall below it far more often than that (how often
    depends on the embedding).

    Parameters
    ----------
    classifier : fitted OneShotClassifier
        The classifier whose enrolled classes the queries belong to.
    X : array-like of shape (n_samples, ...)
        Held-out samples of the enrolled classes (not the support set, whose
        similarity to itself is too high to calibrate on).
    false_reject_rate : float, default=0.05
        Fraction of known-class queries to reject, in ``[0, 1)``.

    Returns
    -------
    threshold : float
        The value for ``reject_below``.
    """
    best, _ = classifier._best_class(X)
    return float(np.quantile(best, false_reject_rate))


@validate_function_params(
    {
        "y_true": ["array-like"],
        "y_prob": ["array-like"],
        "n_bins": [Interval(Integral, 1, None, closed="left")],
        "labels": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def expected_calibration_error(y_true, y_prob, *, n_bins=10, labels=None):
    """Expected calibration error (ECE) of predicted probabilities.

    The probabilities are binned into ``n_bins`` equal-width bins on
    ``[0, 1]`` (the ``'uniform'`` strategy of
    :func:`sklearn.calibration.calibration_curve`, whose bins are closed on
    the right), and the gap between the mean predicted probability and the
    observed frequency of each bin is averaged, weighted by the share of the
    samples in the bin. 0 is perfect calibration.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        For a 1-D ``y_prob``, 1 for the positive class and 0 otherwise. For a
        2-D ``y_prob``, the true class of each sample, one of ``labels``.
    y_prob : array-like of shape (n_samples,) or (n_samples, n_classes)
        1-D: the probability of the positive class, and the ECE is that of
        this probability. 2-D: the probability of each class, such as
        ``predict_proba``'s, and the ECE is the top-label one (Guo et al.
        2017): the confidence of each sample is its largest probability,
        correct when that column's class is the true one.
    n_bins : int, default=10
        Number of bins.
    labels : array-like of shape (n_classes,), default=None
        For a 2-D ``y_prob``, the class of each of its columns, such as a
        classifier's ``classes_``. ``None`` takes the sorted classes of
        ``y_true``, which must then hold every class (as ``classes_`` does
        for the classifier's training labels). Unused for a 1-D ``y_prob``.

    Returns
    -------
    ece : float
        In ``[0, 1]``.

    See Also
    --------
    sklearn.calibration.calibration_curve : The bins' mean probabilities and
        frequencies.

    References
    ----------
    .. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On Calibration of
       Modern Neural Networks", ICML, 2017.

    Examples
    --------
    >>> from sksiamese.metrics import expected_calibration_error
    >>> expected_calibration_error([0, 1, 1, 0], [0.25, 0.75, 0.75, 0.75], n_bins=2)
    0.125
    >>> proba = [[0.75, 0.25], [0.25, 0.75], [0.75, 0.25], [0.25, 0.75]]
    >>> expected_calibration_error(["cat", "dog", "dog", "cat"], proba)
    0.25
    """
    y_prob = check_array(y_prob, ensure_2d=False, dtype=np.float64, input_name="y_prob")
    y_true = column_or_1d(y_true)
    check_consistent_length(y_true, y_prob)
    if y_prob.ndim > 2 or np.any((y_prob < 0) | (y_prob > 1)):
        raise ValueError("y_prob must be probabilities in [0, 1], of 1 or 2 dimensions.")
    if y_prob.ndim == 1:
        if not np.isin(y_true, [0, 1]).all():
            raise ValueError(
                "y_true must hold 0 and 1 for a 1-D y_prob (the positive class's "
                "probability); pass the probabilities of every class for other labels."
            )
        return _calibration_gap(y_prob, y_true.astype(np.float64), n_bins)
    labels = np.unique(y_true) if labels is None else column_or_1d(labels)
    if len(labels) != y_prob.shape[1]:
        raise ValueError(
            f"y_prob has {y_prob.shape[1]} columns but there are {len(labels)} labels; "
            "pass labels, the class of each column (a classifier's classes_)."
        )
    if not np.isin(y_true, labels).all():
        raise ValueError("y_true holds classes that are not in labels.")
    top = y_prob.argmax(1)
    return _calibration_gap(y_prob[np.arange(len(top)), top], labels[top] == y_true, n_bins)


def _calibration_gap(confidence, correct, n_bins):
    """Mean of ``|mean confidence - accuracy|`` over the bins, weighted by count."""
    # Bins closed on the right (the first on both sides), as calibration_curve's.
    bins = np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], confidence)
    # Each bin's summed gap is its count times its mean gap.
    gaps = np.bincount(bins, weights=confidence - correct, minlength=n_bins)
    return float(np.abs(gaps).sum() / len(confidence))

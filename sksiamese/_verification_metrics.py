"""Verification and calibration metrics: pair scores and predicted probabilities.

Re-exported by :mod:`sksiamese.metrics`, their public home; the episode and
retrieval metrics stay there.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.metrics import make_scorer, roc_auc_score, roc_curve
from sklearn.utils import Bunch
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from ._compat import Interval, validate_function_params

__all__ = [
    "equal_error_rate",
    "expected_calibration_error",
    "false_accept_threshold",
    "false_reject_rate_at",
    "make_false_accept_scorer",
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


# A target false-accept rate: 0 would reject everything, 1 accept everything.
_OPERATING_POINT_PARAMS = {
    "y_true": ["array-like"],
    "y_score": ["array-like"],
    "false_accept_rate": [Interval(Real, 0, 1, closed="neither")],
    "pos_label": "no_validation",
}
_CLAIM_SCORES_DOC = """\
    y_true : array-like of shape (n_claims,)
        The label of each claim (or pair): ``pos_label`` for genuine ones.
    y_score : array-like of shape (n_claims,)
        Higher means more likely genuine: ``decision_function`` or the
        probability of "same".
    false_accept_rate : float, default=0.01
        The largest share of impostor claims to accept, in ``(0, 1)``.
    pos_label : int, str or bool, default=None
        The label of genuine claims; ``None`` takes the greater of the two
        labels, as :class:`~sksiamese.SiameseVerifier`'s ``classes_[1]``."""


def _genuine(y_true, pos_label):
    """Where ``y_true`` is the genuine label, with a clear error unless both kinds occur."""
    y_true = column_or_1d(y_true)
    labels = np.unique(y_true)
    genuine_label = labels[-1] if pos_label is None else pos_label
    genuine = y_true == genuine_label
    if genuine.all() or not genuine.any():
        raise ValueError(
            "y_true must hold genuine and impostor claims, to measure both rates; got "
            f"the labels {labels.tolist()[:5]} with pos_label={pos_label!r}."
        )
    return genuine


def _operating_point(y_true, y_score, false_accept_rate, pos_label):
    """``(threshold, false_reject_rate)`` of the lowest threshold within the false-accept rate."""
    # Every threshold kept: the admissible one may lie inside a straight part
    # of the curve, which drop_intermediate would drop.
    false_accept, true_accept, thresholds = roc_curve(
        _genuine(y_true, pos_label), y_score, drop_intermediate=False
    )
    # The false-accept rates rise as the thresholds fall; the first point
    # (threshold inf) accepts nothing.
    point = np.flatnonzero(false_accept <= false_accept_rate)[-1]
    return float(thresholds[point]), float(1 - true_accept[point])


@validate_function_params(_OPERATING_POINT_PARAMS, prefer_skip_nested_validation=True)
def false_accept_threshold(y_true, y_score, *, false_accept_rate=0.01, pos_label=None):
    """The lowest threshold that accepts at most ``false_accept_rate`` of the impostors.

        Scores at or above it are accepted, as
        :class:`~sklearn.model_selection.FixedThresholdClassifier` does: pass it
        as its ``threshold``, with the scores' ``response_method``. Choose it on
        claims the estimator did not train on.

        Parameters
        ----------
    {parameters}

        Returns
        -------
        threshold : float
            ``inf`` when even the highest score would accept too many impostors.
    """
    return _operating_point(y_true, y_score, false_accept_rate, pos_label)[0]


@validate_function_params(_OPERATING_POINT_PARAMS, prefer_skip_nested_validation=True)
def false_reject_rate_at(y_true, y_score, *, false_accept_rate=0.01, pos_label=None):
    """Share of genuine claims rejected at the threshold of :func:`false_accept_threshold`.

        The figure verification systems are compared by besides the equal error
        rate (for signatures, often at a false-accept rate of 1%).

        Parameters
        ----------
    {parameters}

        Returns
        -------
        false_reject_rate : float
            Genuine claims scored below the threshold, as a share of them.
    """
    return _operating_point(y_true, y_score, false_accept_rate, pos_label)[1]


for _function in (false_accept_threshold, false_reject_rate_at):
    _function.__doc__ = _function.__doc__.replace("{parameters}", _CLAIM_SCORES_DOC)


def _genuine_accepted_within(y_true, y_pred, *, false_accept_rate, pos_label=None):
    """Share of genuine claims accepted, or minus the false-accept rate where it is too high.

    A fold without impostors accepts none; one without genuine claims
    accepts no genuine one.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    genuine_label = np.unique(y_true)[-1] if pos_label is None else pos_label
    genuine, accepted = y_true == genuine_label, y_pred == genuine_label
    false_accepts = accepted[~genuine].mean() if (~genuine).any() else 0.0
    genuine_accepted = accepted[genuine].mean() if genuine.any() else 0.0
    return genuine_accepted if false_accepts <= false_accept_rate else -false_accepts


@validate_function_params(
    {
        "false_accept_rate": _OPERATING_POINT_PARAMS["false_accept_rate"],
        "pos_label": "no_validation",
    },
    prefer_skip_nested_validation=True,
)
def make_false_accept_scorer(false_accept_rate=0.01, *, pos_label=None):
    """Scorer of the genuine claims accepted while accepting at most ``false_accept_rate``.

    For :class:`~sklearn.model_selection.TunedThresholdClassifierCV`, which
    then picks the threshold that accepts the most genuine claims among
    those within the false-accept rate. Thresholds above the rate score
    minus their false-accept rate, below every threshold within it.

    Parameters
    ----------
    false_accept_rate : float, default=0.01
        The largest share of impostor claims to accept, in ``(0, 1)``.
    pos_label : int, str or bool, default=None
        The label of genuine claims; ``None`` takes the greater label, as
        :class:`~sksiamese.SiameseVerifier`'s ``classes_[1]``.

    Returns
    -------
    scorer : callable
        A scikit-learn scorer, ``scorer(estimator, X, y)``.
    """
    return make_scorer(
        _genuine_accepted_within, false_accept_rate=false_accept_rate, pos_label=pos_label
    )


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
    {
        "estimator": "no_validation",
        "pairs": ["array-like"],
        "y_same": ["array-like"],
        "false_accept_rate": _OPERATING_POINT_PARAMS["false_accept_rate"],
    },
    prefer_skip_nested_validation=True,
)
def verification_metrics(estimator, pairs, y_same, *, false_accept_rate=0.01):
    """ROC AUC, equal error rate and false rejects at a false-accept rate of pair scores.

    Parameters
    ----------
    estimator : fitted SiameseEmbedder, SiameseVerifier or OneShotClassifier
        Pairs are scored by ``pair_score`` (the embedder's, for a classifier)
        or, for a verifier, ``decision_function``.
    pairs : array-like of shape (n_pairs, 2) + sample_shape
        The pairs to score; for a verifier, the claims it takes,
        ``(n_claims, 1 + n_references_) + sample_shape``.
    y_same : array-like of shape (n_pairs,)
        1 where the pair (or claim) is genuine, else 0.
    false_accept_rate : float, default=0.01
        Where ``false_reject_rate`` is read, in ``(0, 1)``.

    Returns
    -------
    result : Bunch
        ``roc_auc``, ``equal_error_rate`` and ``false_reject_rate`` (see
        :func:`false_reject_rate_at`).
    """
    scores = _pair_scorer(estimator)(pairs)
    return Bunch(
        roc_auc=float(roc_auc_score(y_same, scores)),
        equal_error_rate=equal_error_rate(y_same, scores),
        false_reject_rate=false_reject_rate_at(y_same, scores, false_accept_rate=false_accept_rate),
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

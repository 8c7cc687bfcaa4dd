"""Evaluation of similarity models: N-way K-shot episodes, retrieval, verification, calibration.

One-shot learning is judged on classes the model never saw. An episode draws
``n_way`` such classes, enrols ``k_shot`` examples of each as
:class:`~sksiamese.OneShotClassifier` does around the frozen embedder (no
retraining: class prototype or nearest example, compared by the embedder's own
similarity), and classifies ``n_queries`` other examples of each. Every sample
is embedded once, whatever the number of episodes.
"""

from numbers import Integral

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d, indexable

from ._compat import _safe_indexing
from ._episodes import draw_episodes, episode_accuracy, scatter_rows, used_samples
from ._retrieval import retrieval_scores
from ._scoring import negative_euclidean

__all__ = [
    "equal_error_rate",
    "expected_calibration_error",
    "make_one_shot_scorer",
    "make_retrieval_scorer",
    "one_shot_accuracy",
    "rejection_threshold",
    "retrieval_metrics",
    "verification_metrics",
]


def _embedding_of(estimator):
    """The fitted embedder of ``estimator``, and how its support sets are combined."""
    if hasattr(estimator, "embedder_"):
        return estimator.embedder_, estimator.aggregation
    if hasattr(estimator, "transform") and not is_classifier(estimator):
        return estimator, "prototype"
    raise TypeError(
        "estimator must be a fitted embedder (with transform) or a fitted "
        f"OneShotClassifier; got {type(estimator).__name__}."
    )


def _embed(estimator, embedder, X):
    """Embeddings of ``X`` by ``embedder``, checked first as ``estimator`` checks it."""
    if hasattr(estimator, "_validate_input"):
        # A classifier's own network was fitted on the arrays its check returns
        # (feature names checked and dropped).
        X = estimator._validate_input(X, reset=False)
    return np.asarray(embedder.transform(X), dtype=np.float32)


def one_shot_accuracy(
    estimator,
    X,
    y,
    *,
    n_way=5,
    k_shot=1,
    n_queries=5,
    n_episodes=100,
    groups=None,
    random_state=None,
):
    """Accuracy of N-way K-shot episodes on classes the estimator never saw.

    Parameters
    ----------
    estimator : fitted SiameseEmbedder, OneShotClassifier or transformer
        Its embedding is frozen; only the support sets are enrolled.
    X : {array-like, sparse matrix} of shape (n_samples, ...)
        Samples of classes not used in training.
    y : array-like of shape (n_samples,)
        Their classes.
    n_way : int, default=5
        Classes per episode.
    k_shot : int, default=1
        Support examples per class.
    n_queries : int, default=5
        Query examples per class.
    n_episodes : int, default=100
        Number of episodes.
    groups : array-like of shape (n_samples,), default=None
        If given, each episode draws its classes from one group, as Omniglot's
        within-alphabet runs do (``groups=alphabet``). Groups with fewer than
        ``n_way`` classes of ``k_shot + n_queries`` samples take no part, with
        a ``UserWarning`` that names them; a ``ValueError`` if none is left.
    random_state : int, RandomState instance or None, default=None
        Seeds the episodes.

    Returns
    -------
    result : Bunch
        ``mean``: mean accuracy over episodes; ``ci95``: half-width of its
        95% normal interval; ``interval``: ``(mean - ci95, mean + ci95)``;
        ``episode_scores``: each episode's accuracy.
    """
    # Rows are taken as scikit-learn's splitters take them: lists, arrays,
    # sparse matrices and DataFrames alike; the embedder validates them.
    X, y, groups = indexable(X, y, groups)
    y = column_or_1d(y)
    groups = None if groups is None else column_or_1d(groups)
    rng = check_random_state(random_state)
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1; got {n_episodes!r}.")
    embedder, aggregation = _embedding_of(estimator)
    episodes = list(draw_episodes(y, groups, n_way, k_shot, n_queries, n_episodes, rng))
    # Every sample an episode uses is embedded once, not once per episode.
    used = used_samples(episodes)
    embedded = _embed(estimator, embedder, _safe_indexing(X, used))
    embeddings = scatter_rows(embedded, used, len(y))
    similarity = getattr(embedder, "_similarity", negative_euclidean)
    scores = np.array(
        [
            episode_accuracy(similarity, embeddings, y, support, query, aggregation)
            for support, query in episodes
        ]
    )
    ci95 = 1.96 * scores.std(ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else np.nan
    mean = float(scores.mean())
    return Bunch(
        mean=mean, ci95=float(ci95), interval=(mean - ci95, mean + ci95), episode_scores=scores
    )


def make_one_shot_scorer(*, n_way=5, k_shot=1, n_queries=5, n_episodes=50, random_state=0):
    """A scorer of one-shot accuracy, for ``GridSearchCV(scoring=...)``.

    Use it with class-disjoint splits, for example ``GroupKFold`` with
    ``groups=y``, so that every test fold holds classes the fitted estimator
    never saw: the search then selects for one-shot generalisation, not for
    recognising training classes. The episodes are seeded by
    ``random_state``, so every candidate is scored on the same episodes.

    Parameters
    ----------
    n_way, k_shot, n_queries, n_episodes : int
        As in :func:`one_shot_accuracy`.
    random_state : int, default=0
        Seeds the episodes.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returns the mean episode accuracy.
    """

    def one_shot_scorer(estimator, X, y):
        n_classes = len(np.unique(y))
        return one_shot_accuracy(
            estimator,
            X,
            y,
            n_way=min(n_way, n_classes),
            k_shot=k_shot,
            n_queries=n_queries,
            n_episodes=n_episodes,
            random_state=random_state,
        ).mean

    return one_shot_scorer


RETRIEVAL_METRICS = ("precision_at_1", "r_precision", "map_at_r", "recall_at_k")


def retrieval_metrics(estimator, X, y, *, k=10):
    """Leave-one-out retrieval quality of the estimator's embeddings.

    Each sample whose class has another sample queries all the others, ranked
    by the similarity the estimator predicts with (minus the Euclidean
    distance of the embeddings, or the Koch head's logit for ``loss='bce'``;
    ties in sample order). The
    classes need not be those of training: measured on classes the estimator
    never saw, this is how well the embedding retrieves new classes, as
    face and product search use it. The definitions follow Musgrave et al.
    (2020) and pytorch-metric-learning's ``AccuracyCalculator``.

    Parameters
    ----------
    estimator : fitted SiameseEmbedder, OneShotClassifier or transformer
        Its embedding; a ``FunctionTransformer()`` scores precomputed
        embeddings.
    X : {array-like, sparse matrix} of shape (n_samples, ...)
        The samples.
    y : array-like of shape (n_samples,)
        Their classes.
    k : int, default=10
        Depth of ``recall_at_k``.

    Returns
    -------
    result : Bunch
        Means over the queries. ``precision_at_1``: the nearest other sample
        shares the class. ``r_precision``: the share of the query's class
        among its ``R`` nearest, ``R`` being the number of other samples of
        its class. ``map_at_r``: mean average precision at ``R``, which also
        rewards ranking them first. ``recall_at_k``: one of the ``k`` nearest
        shares the class.

    References
    ----------
    .. [1] K. Musgrave, S. Belongie and S.-N. Lim, "A Metric Learning Reality
       Check", ECCV, 2020.

    Examples
    --------
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from sksiamese.metrics import retrieval_metrics
    >>> X, y = [[0.0], [0.1], [1.0], [1.2]], [0, 0, 1, 1]
    >>> retrieval_metrics(FunctionTransformer().fit(X), X, y, k=1).map_at_r
    1.0
    """
    if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}.")
    X, y = indexable(X, y)
    y = column_or_1d(y)
    check_consistent_length(X, y)
    embedder, _ = _embedding_of(estimator)
    codes = np.unique(y, return_inverse=True)[1].reshape(-1)
    similarity = getattr(embedder, "_similarity", negative_euclidean)
    return Bunch(**retrieval_scores(similarity, _embed(estimator, embedder, X), codes, k))


def make_retrieval_scorer(metric="map_at_r", *, k=10):
    """A scorer of one retrieval metric, for ``GridSearchCV(scoring=...)``.

    Use it with class-disjoint splits (``GroupKFold`` with ``groups=y``), so
    that every test fold retrieves classes the fitted estimator never saw.

    Parameters
    ----------
    metric : {'precision_at_1', 'r_precision', 'map_at_r', 'recall_at_k'}, \
            default='map_at_r'
        Which of :func:`retrieval_metrics`' results to score by.
    k : int, default=10
        Depth of ``recall_at_k``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returns the metric; higher is better.
    """
    if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}.")
    if metric not in RETRIEVAL_METRICS:
        raise ValueError(f"metric must be one of {RETRIEVAL_METRICS}; got {metric!r}.")

    def retrieval_scorer(estimator, X, y):
        return retrieval_metrics(estimator, X, y, k=k)[metric]

    return retrieval_scorer


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
    if not 0 <= false_reject_rate < 1:
        raise ValueError(f"false_reject_rate must be in [0, 1); got {false_reject_rate!r}.")
    best, _ = classifier._best_class(X)
    return float(np.quantile(best, false_reject_rate))


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
    if not isinstance(n_bins, Integral) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int; got {n_bins!r}.")
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

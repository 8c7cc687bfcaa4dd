"""Evaluation of similarity models: N-way K-shot episodes and verification.

One-shot learning is judged on classes the model never saw. An episode draws
``n_way`` such classes, enrols ``k_shot`` examples of each as
:class:`~sksiamese.OneShotClassifier` does around the frozen embedder (no
retraining: class prototype or nearest example, compared by the embedder's own
similarity), and classifies ``n_queries`` other examples of each. Every sample
is embedded once, whatever the number of episodes.
"""

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.validation import check_consistent_length

from ._episodes import draw_episodes, episode_accuracy, scatter_rows, used_samples
from ._scoring import negative_euclidean

__all__ = [
    "equal_error_rate",
    "make_one_shot_scorer",
    "one_shot_accuracy",
    "rejection_threshold",
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


def _rows(X, index):
    """Rows ``index`` of an array, sparse matrix or DataFrame."""
    return X.iloc[index] if hasattr(X, "iloc") else X[index]


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
    X : array-like of shape (n_samples, ...)
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
        within-alphabet runs do (``groups=alphabet``).
    random_state : int, RandomState instance or None, default=None
        Seeds the episodes.

    Returns
    -------
    result : Bunch
        ``mean``: mean accuracy over episodes; ``ci95``: half-width of its
        95% normal interval; ``interval``: ``(mean - ci95, mean + ci95)``;
        ``episode_scores``: each episode's accuracy.
    """
    check_consistent_length(X, y)
    y = np.asarray(y)
    rng = check_random_state(random_state)
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1; got {n_episodes!r}.")
    embedder, aggregation = _embedding_of(estimator)
    episodes = list(draw_episodes(y, groups, n_way, k_shot, n_queries, n_episodes, rng))
    # Every sample an episode uses is embedded once, not once per episode.
    used = used_samples(episodes)
    embedded = np.asarray(embedder.transform(_rows(X, used)), dtype=np.float32)
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
    X : array-like of shape (n_samples, ...)
        Held-out samples of the enrolled classes (not the support set, whose
        similarity to itself is too high to calibrate on).
    false_reject_rate : float, default=0.05
        Fraction of known-class queries to reject, in ``[0, 1)``.

    Returns
    -------
    threshold : float
    """
    if not 0 <= false_reject_rate < 1:
        raise ValueError(f"false_reject_rate must be in [0, 1); got {false_reject_rate!r}.")
    best = classifier._class_scores(X).max(1)
    return float(np.quantile(best, false_reject_rate))

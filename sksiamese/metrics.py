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
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.validation import check_consistent_length, column_or_1d, indexable

from ._compat import Interval, StrOptions, _safe_indexing, validate_function_params
from ._episodes import draw_episodes, episode_accuracy, scatter_rows, used_samples
from ._intervals import ci95_half_width
from ._retrieval import retrieval_scores
from ._verification_metrics import (
    equal_error_rate,
    expected_calibration_error,
    false_accept_threshold,
    false_reject_rate_at,
    make_false_accept_scorer,
    rejection_threshold,
    verification_metrics,
)
from .similarity import similarity_of

__all__ = [
    "equal_error_rate",
    "expected_calibration_error",
    "false_accept_threshold",
    "false_reject_rate_at",
    "make_false_accept_scorer",
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


# The checks that depend on the data stay in the body: whether n_way classes
# have k_shot + n_queries samples (draw_episodes), and whether the estimator's
# fitted attributes give an embedding (_embedding_of, hence no constraint on
# ``estimator``).
POSITIVE_INT = Interval(Integral, 1, None, closed="left")
EPISODE_CONSTRAINTS = {
    "n_way": [POSITIVE_INT],
    "k_shot": [POSITIVE_INT],
    "n_queries": [POSITIVE_INT],
    "n_episodes": [POSITIVE_INT],
    "random_state": ["random_state"],
}


@validate_function_params(
    {
        "estimator": "no_validation",
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "groups": ["array-like", None],
        **EPISODE_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
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
    embedder, aggregation = _embedding_of(estimator)
    episodes = list(draw_episodes(y, groups, n_way, k_shot, n_queries, n_episodes, rng))
    # Every sample an episode uses is embedded once, not once per episode.
    used = used_samples(episodes)
    embedded = _embed(estimator, embedder, _safe_indexing(X, used))
    embeddings = scatter_rows(embedded, used, len(y))
    similarity = similarity_of(embedder)
    scores = np.array(
        [
            episode_accuracy(similarity, embeddings, y, support, query, aggregation)
            for support, query in episodes
        ]
    )
    ci95 = ci95_half_width(scores)
    mean = float(scores.mean())
    return Bunch(
        mean=mean, ci95=float(ci95), interval=(mean - ci95, mean + ci95), episode_scores=scores
    )


# The scorers are plain ``scorer(estimator, X, y)`` callables, scikit-learn's
# "scoring object from scratch", not make_scorer's: make_scorer hands its
# score function only ``(y_true, response)``, one of predict, predict_proba or
# decision_function of the whole fold, while an episode scores the estimator
# itself: its embedder's similarity (the Koch head's logit for loss='bce'),
# a classifier's aggregation and input check, and only the samples the
# episodes draw. response_method='transform' is refused by make_scorer, and
# OneShotClassifier, the estimator GridSearchCV searches, has no transform.
@validate_function_params(EPISODE_CONSTRAINTS, prefer_skip_nested_validation=True)
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


@validate_function_params(
    {
        "estimator": "no_validation",
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "k": [POSITIVE_INT],
    },
    prefer_skip_nested_validation=True,
)
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
    X, y = indexable(X, y)
    y = column_or_1d(y)
    check_consistent_length(X, y)
    embedder, _ = _embedding_of(estimator)
    codes = np.unique(y, return_inverse=True)[1].reshape(-1)
    similarity = similarity_of(embedder)
    return Bunch(**retrieval_scores(similarity, _embed(estimator, embedder, X), codes, k))


@validate_function_params(
    {"metric": [StrOptions(set(RETRIEVAL_METRICS))], "k": [POSITIVE_INT]},
    prefer_skip_nested_validation=True,
)
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

    def retrieval_scorer(estimator, X, y):
        return retrieval_metrics(estimator, X, y, k=k)[metric]

    return retrieval_scorer

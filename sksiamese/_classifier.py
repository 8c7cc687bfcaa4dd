"""OneShotClassifier: recognise classes from one or a few examples each."""

from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import softmax
from sklearn.base import ClassifierMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._base import (
    EMBEDDER_CONSTRAINT,
    SHARED_CONSTRAINTS,
    SiameseBase,
    encode_labels,
    validate_samples,
    with_shared_parameters_doc,
)
from ._compat import StrOptions, _fit_context
from ._embedder import SiameseEmbedder
from ._scoring import (
    best_class,
    class_prototypes,
    class_scores,
    fit_temperature,
    leave_one_out_scores,
    nearest_examples,
    negative_euclidean,
)

_CALIBRATION_ROWS = 2048


@with_shared_parameters_doc
class OneShotClassifier(ClassifierMixin, SiameseBase):
    """Classify queries by their similarity to an enrolled support set.

    ``fit(X, y)`` trains a twin network on ``(X, y)`` (unless ``embedder`` is
    already trained) and enrols ``(X, y)`` as the support set; ``predict``
    returns the class whose support examples are most similar to each query.
    To add classes without retraining, train a :class:`SiameseEmbedder` once
    on background classes and pass it wrapped in
    :class:`sklearn.frozen.FrozenEstimator`: ``fit`` then only enrols, in the
    time it takes to embed the support set.

    Parameters
    ----------
    embedder : estimator with ``fit`` and ``transform``, default=None
        The embedding to compare samples in. ``None`` trains a
        :class:`SiameseEmbedder` from this classifier's own parameters below.
        An estimator is cloned and fitted on ``(X, y)``; a
        ``FrozenEstimator`` is used as it is, and the training parameters
        below are then ignored. A :class:`SiameseEmbedder` brings its own
        similarity (the learned head for ``loss='bce'``); any other
        transformer is compared by Euclidean distance.
    aggregation : {{'prototype', 'nearest'}}, default='prototype'
        How several support examples of a class are combined: ``'prototype'``
        compares a query to the mean embedding of each class (Snell et al.
        2017); ``'nearest'`` to the class's most similar example.
    reject_below : float or None, default=None
        Open-set rejection: ``predict`` returns ``unknown_label`` for queries
        whose best class similarity falls below it (see
        :func:`~sksiamese.metrics.rejection_threshold`). ``None`` never
        rejects.
    unknown_label : int or str, default=-1
        Label predicted for rejected queries; must not be one of the classes.
    {shared}

    Attributes
    ----------
    embedder_ : estimator
        The fitted embedder; for a trained :class:`SiameseEmbedder`, its
        ``net_.history``, ``n_iter_`` and ``loss_curve_`` describe training.
    classes_ : ndarray of shape (n_classes,)
        Class labels of the support set.
    support_embeddings_ : ndarray of shape (n_support, n_dims)
        Enrolled embeddings: one prototype per class, or every example.
    support_classes_ : ndarray of shape (n_support,)
        Index into ``classes_`` of each row of ``support_embeddings_``.
    temperature_ : float
        Divides the similarities before the softmax of ``predict_proba``.
        When the embedder is trained in this ``fit``, the support set is its
        training data, whose scores are over-confident: the embedder's own
        ``temperature_`` is used (fitted on one-shot episodes of held-out
        classes, see :class:`SiameseEmbedder`). When it comes trained (a
        :class:`~sklearn.frozen.FrozenEstimator`), the support classes are
        new to it: the temperature is fitted on leave-one-out scores of the
        support examples whose class has another example, over every class
        of the support set, which is the problem ``predict_proba`` solves;
        with one example per class, the embedder's ``temperature_`` is used.
        An embedder without ``temperature_`` (a ``Pipeline``, any
        transformer) gets the leave-one-out fit, or 1.0 for a one-shot
        support set.
    sample_shape_ : tuple of int
        Shape of one sample seen in ``fit``; only when the classifier trains
        its own embedder (a given one validates its own input).
    n_features_in_ : int
        ``X.shape[1]`` seen in ``fit``, or the given embedder's.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame seen in ``fit``, when the embedder (or
        this classifier, for its own) records them.

    See Also
    --------
    SiameseEmbedder : The embedding this classifier trains or is given.
    sklearn.neighbors.KNeighborsClassifier : Nearest neighbours in input space.

    References
    ----------
    .. [1] G. Koch, R. Zemel and R. Salakhutdinov, "Siamese Neural Networks for
       One-shot Image Recognition", ICML Deep Learning Workshop, 2015.
    .. [2] J. Snell, K. Swersky and R. Zemel, "Prototypical Networks for
       Few-shot Learning", NeurIPS, 2017.
    .. [3] J. Platt, "Probabilistic Outputs for Support Vector Machines", 1999.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sksiamese import OneShotClassifier, SiameseEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X[y < 5], y[y < 5])
    >>> new = X[y >= 5]
    >>> clf = OneShotClassifier(embedder=FrozenEstimator(embedder))
    >>> clf.fit(new[:5], y[y >= 5][:5]).predict_proba(new[5:7]).shape
    (2, 5)
    """

    _parameter_constraints = {
        **SHARED_CONSTRAINTS,
        "embedder": EMBEDDER_CONSTRAINT,
        "aggregation": [StrOptions({"prototype", "nearest"})],
        "reject_below": [None, Real],
        "unknown_label": [Integral, str],
    }

    def __init__(
        self,
        *,
        embedder=None,
        aggregation="prototype",
        reject_below=None,
        unknown_label=-1,
        loss="contrastive",
        margin=0.5,
        mining="batch_hard",
        module=None,
        embedding_dim=64,
        max_epochs=30,
        lr=3e-3,
        lr_schedule="onecycle",
        classes_per_batch="auto",
        samples_per_class=4,
        batch_size=256,
        optimizer=torch.optim.Adam,
        device="auto",
        accelerator=None,
        callbacks=None,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=5,
        augment="auto",
        inference_views="auto",
        verbose=0,
        random_state=None,
        **kwargs,
    ):
        self.embedder = embedder
        self.aggregation = aggregation
        self.reject_below = reject_below
        self.unknown_label = unknown_label
        self.loss = loss
        self.margin = margin
        self.mining = mining
        self.module = module
        self.embedding_dim = embedding_dim
        self.max_epochs = max_epochs
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.classes_per_batch = classes_per_batch
        self.samples_per_class = samples_per_class
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.device = device
        self.accelerator = accelerator
        self.callbacks = callbacks
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.augment = augment
        self.inference_views = inference_views
        self.verbose = verbose
        self.random_state = random_state
        self._store_routed(kwargs)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Train the embedder (unless given a trained one) and enrol ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), \
                (n_samples, H, W) or (n_samples, C, H, W)
            Support samples, also the training samples when ``embedder`` is
            not already trained.
        y : array-like of shape (n_samples,)
            Class labels of the support samples.

        Returns
        -------
        self : OneShotClassifier
            The fitted classifier.
        """
        X, y = self._validate_input(X, y, reset=True)
        self.classes_, codes = encode_labels(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"The support set needs at least two classes; got 1 class ({self.classes_[0]!r})."
            )
        embedder = self.embedder
        if embedder is None:
            embedder = SiameseEmbedder(**self._shared_params())
        self.embedder_ = clone(embedder).fit(X, y)
        for name in ("n_features_in_", "feature_names_in_"):
            if self.embedder is None:
                break
            if hasattr(self.embedder_, name):
                setattr(self, name, getattr(self.embedder_, name))
            elif hasattr(self, name):
                delattr(self, name)  # left from an earlier fit
        embeddings = self._embed(X)
        self._enrol(embeddings, torch.as_tensor(codes))
        self.temperature_ = self._calibrate(embeddings, codes)
        return self

    def _validate_input(self, X, y="no_validation", *, reset):
        """``X`` (and ``y``) as this classifier needs them.

        Its own network needs arrays of samples (:func:`validate_samples`). A
        given embedder validates its own input, so that a ``Pipeline`` over
        text or DataFrame columns receives them untouched.
        """
        if self.embedder is None:
            return validate_samples(self, X, y, reset=reset)
        if not reset:
            check_is_fitted(self)
            return X
        check_consistent_length(X, y)
        return X, column_or_1d(y, warn=True)

    def _embed(self, X):
        return torch.as_tensor(np.asarray(self.embedder_.transform(X)), dtype=torch.float32)

    def _similarity(self, A, B):
        return getattr(self.embedder_, "_similarity", negative_euclidean)(A, B)

    def _enrol(self, embeddings, codes):
        if self.aggregation == "prototype":
            support = class_prototypes(embeddings, codes, len(self.classes_))
            codes = torch.arange(len(self.classes_))
        else:
            support = embeddings
        self.support_embeddings_ = support.numpy()
        self.support_classes_ = codes.numpy()

    def _calibrate(self, embeddings, codes):
        own = getattr(self.embedder_, "temperature_", None)
        eligible = np.flatnonzero(np.bincount(codes)[codes] >= 2)
        # An embedder trained here on the support set brings a temperature
        # fitted on held-out classes; the support set itself is new only to one
        # trained elsewhere, and the only data left for an embedder without one.
        trained_here = not isinstance(self.embedder, FrozenEstimator)
        if (trained_here and own is not None) or len(eligible) == 0:
            return 1.0 if own is None else float(own)
        rng = check_random_state(self.random_state)
        rows = rng.choice(eligible, min(len(eligible), _CALIBRATION_ROWS), replace=False)
        scores = leave_one_out_scores(
            self._similarity,
            embeddings,
            torch.as_tensor(codes),
            len(self.classes_),
            self.aggregation,
            torch.as_tensor(rows),
        )
        return fit_temperature(scores.numpy(), codes[rows])

    def _class_scores(self, X):
        X = self._validate_input(X, reset=False)
        scores = class_scores(
            self._similarity,
            self._embed(X),
            torch.from_numpy(self.support_embeddings_),
            torch.from_numpy(self.support_classes_),
            len(self.classes_),
        )
        return scores.numpy().astype(np.float64)

    def _best_class(self, X):
        """Each query's best class code and its score, in memory bounded whatever the classes."""
        X = self._validate_input(X, reset=False)
        best, codes = best_class(
            self._similarity,
            self._embed(X),
            torch.from_numpy(self.support_embeddings_),
            torch.from_numpy(self.support_classes_),
        )
        return best.numpy(), codes.numpy()

    def kneighbors(self, X=None, n_neighbors=5, return_distance=True):
        """The enrolled rows most similar to each query, as scikit-learn's neighbours.

        The rows are those of ``support_embeddings_``: every support example
        with ``aggregation='nearest'``, one prototype per class with
        ``'prototype'``; ``support_classes_[indices]`` gives their classes.

        Parameters
        ----------
        X : {array-like, sparse matrix} of the shape seen in ``fit``, default=None
            The queries. ``None`` queries the enrolled rows themselves, each
            left out of its own neighbours, as scikit-learn does.
        n_neighbors : int, default=5
            Neighbours of each query; at most the number of enrolled rows
            (one fewer with ``X=None``).
        return_distance : bool, default=True
            Whether to return the distances too.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Minus the similarity: the Euclidean distance of the embeddings,
            or minus the Koch head's logit for ``loss='bce'``; ascending.
            Only with ``return_distance=True``.
        indices : ndarray of shape (n_queries, n_neighbors)
            Rows of ``support_embeddings_``, nearest first (ties in row order).
        """
        check_is_fitted(self)
        support = torch.from_numpy(self.support_embeddings_)
        if X is None:
            queries, own = support, torch.arange(len(support))
        else:
            queries, own = self._embed(self._validate_input(X, reset=False)), None
        available = len(support) - (own is not None)
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, Integral):
            raise TypeError(f"n_neighbors must be an int; got {n_neighbors!r}.")
        if not 1 <= n_neighbors <= available:
            raise ValueError(
                f"n_neighbors must be an int from 1 to {available} (the enrolled rows"
                f"{' other than the query' if own is not None else ''}); got {n_neighbors!r}."
            )
        similarities, indices = nearest_examples(
            self._similarity, queries, support, n_neighbors, query_index=own
        )
        if not return_distance:
            return indices.numpy()
        return -similarities.numpy(), indices.numpy()

    def decision_function(self, X):
        """Similarity of each query to each class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of the shape seen in ``fit``

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes), or (n_samples,) \
                for two classes
            Similarity to each class in ``classes_`` order (minus the
            distance, or the Koch head's logit for ``loss='bce'``). With two
            classes, the score of ``classes_[1]`` minus that of
            ``classes_[0]``, as scikit-learn's binary classifiers return.
            A dense float64 array: 10,000 queries against 100,000 classes
            take 7.5 GiB; ``predict`` and ``score`` never build it.
        """
        scores = self._class_scores(X)
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores

    def predict_proba(self, X):
        """Calibrated class probabilities.

        The softmax of the similarities divided by ``temperature_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of the shape seen in ``fit``

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to one; columns follow ``classes_``. A dense float64
            array, as ``decision_function``'s.
        """
        return softmax(self._class_scores(X) / self.temperature_, axis=1)

    def predict(self, X):
        """The most similar class of each query, or ``unknown_label``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of the shape seen in ``fit``

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``unknown_label`` where ``reject_below`` is set and the best
            similarity falls below it.

        Notes
        -----
        Only each query's best class is kept, block by block of the
        query-by-support similarities, so memory does not grow with the
        number of classes (an identity gallery enrols one class per example).
        """
        best, codes = self._best_class(X)
        predicted = self.classes_[codes]
        if self.reject_below is None:
            return predicted
        if self.unknown_label in self.classes_.tolist():
            raise ValueError(
                f"unknown_label={self.unknown_label!r} is one of the classes; choose "
                "a label for rejected queries that no class uses."
            )
        rejected = best < self.reject_below
        unknown = np.asarray(self.unknown_label)
        numeric = (unknown.dtype.kind in "iu", predicted.dtype.kind in "iuf")
        # A label of another kind than the classes (a string among ints) needs objects.
        dtype = np.result_type(predicted, unknown) if numeric[0] == numeric[1] else object
        out = predicted.astype(dtype)
        out[rejected] = self.unknown_label
        return out

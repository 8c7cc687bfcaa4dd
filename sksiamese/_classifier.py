"""OneShotClassifier: recognise classes from one or a few examples each.

The estimator itself only orders the steps of ``fit`` and ``predict``; the
work lives in rooms of its own: enrolment and search (:mod:`._enrolment`),
calibration (:mod:`._calibration`), the faiss index (:mod:`._index`), the
weight files (:mod:`._classifier_weights`, on :mod:`._persistence`) and
open-set rejection (:mod:`._rejection`).
"""

from numbers import Integral, Real

import torch
from scipy.special import softmax
from sklearn.base import ClassifierMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._base import SiameseBase, encode_labels, validate_samples
from ._calibration import classifier_temperature
from ._classifier_weights import ClassifierWeightsMixin, inner_embedder
from ._compat import HasMethods, StrOptions, _fit_context
from ._embedder import SiameseEmbedder, compared_by_distance
from ._enrolment import best_class, class_scores, embed, enrol
from ._index import build_index, check_index, warn_if_many_missed
from ._neighbors import NeighborsMixin
from ._params import TRAINING_PARAMETERS, document_parameters, warn_unused_training_parameters
from ._persistence import ENROLMENT_PARAMETERS
from ._rejection import reject
from .similarity import similarity_of

# The attributes that describe the input of fit; sample_shape_ only for its own network.
_INPUT_ATTRIBUTES = ("n_features_in_", "feature_names_in_", "sample_shape_")


@document_parameters(*TRAINING_PARAMETERS)
class OneShotClassifier(ClassifierMixin, NeighborsMixin, ClassifierWeightsMixin, SiameseBase):
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
        ``FrozenEstimator`` is used as it is. With any given embedder the
        training parameters below do not apply (``random_state`` still seeds
        the calibration), and ``fit`` warns about any set away from its
        default. A :class:`SiameseEmbedder` brings its own
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
    index : str, default='exact'
        How ``predict``, ``score``, rejection and ``kneighbors`` search the
        enrolled rows. ``'exact'`` compares each query with every row, in
        bounded memory and time linear in the gallery. Any other string is a
        `faiss <https://github.com/facebookresearch/faiss>`_ ``index_factory``
        description, built at ``fit`` over ``support_embeddings_``:
        ``'IVF1024,Flat'`` (inverted lists trained by k-means at ``fit``,
        searching ``nprobe`` of them), ``'HNSW32'`` (a graph, no training),
        ``'IVF1024,PQ32'`` (compressed), ``'Flat'`` (exact, in float32). It
        searches by Euclidean distance, so it needs an embedder compared by
        distance (not ``loss='bce'``, whose learned head faiss cannot index).
        For galleries of about a million rows and more; ``docs/benchmarks.md``
        measures build time, queries per second, recall and memory. An
        approximate index may miss a query's nearest row, so ``predict`` can
        then differ from the argmax of ``decision_function`` and
        ``predict_proba``, which always score every class exactly. Needs
        ``pip install sksiamese[faiss]``; without faiss, ``fit`` warns and
        searches exactly. faiss runs its own OpenMP threads (see
        ``faiss.omp_set_num_threads``).
    index_params : str or None, default=None
        Parameters of the faiss index, as
        ``faiss.ParameterSpace().set_index_parameters`` reads them, set at
        ``fit`` before the rows are added: ``'nprobe=64'`` for IVF (faiss's
        default, 1, finds few of the exact neighbours), ``'efSearch=256'``
        for HNSW (default 16; ``efConstruction`` too). More probes find more
        of the exact neighbours, more slowly. To change them after ``fit``,
        set them on ``index_``. Only with a faiss ``index``.
    {parameters}

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
    index_ : faiss.Index or None
        The faiss index over ``support_embeddings_``; ``None`` for the exact
        search (``index='exact'``, or faiss missing). Pickling stores it as
        faiss's serialised bytes (with its search parameters), a copy of the
        whole index.
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
        Features of one sample seen in ``fit``, flattened (as
        :class:`SiameseEmbedder` counts them), or the given embedder's.
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
        **SiameseBase._parameter_constraints,
        "embedder": [None, HasMethods(["fit", "transform"])],
        "aggregation": [StrOptions({"prototype", "nearest"})],
        "reject_below": [None, Real],
        "unknown_label": [Integral, str],
        "index": [str],
        "index_params": [None, str],
    }

    def __init__(
        self,
        *,
        embedder=None,
        aggregation="prototype",
        reject_below=None,
        unknown_label=-1,
        index="exact",
        index_params=None,
        loss="contrastive",
        margin=0.5,
        mining="batch_hard",
        miner=None,
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
        checkpoint_dir=None,
        warm_start=False,
        **kwargs,
    ):
        self._store_parameters(locals())

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
        classes, codes = encode_labels(y)
        if len(classes) < 2:
            raise ValueError(
                f"The support set needs at least two classes; got 1 class ({classes[0]!r})."
            )
        self._check_routed()
        if self.embedder is None and self.warm_start and hasattr(self, "embedder_"):
            # warm_start: its own fitted embedder trains on, not a copy of it.
            embedder = self.embedder_.set_params(**self._embedder_params())
        elif self.embedder is None:
            embedder = SiameseEmbedder(**self._embedder_params())
        else:
            # random_state still seeds the support rows calibration draws.
            warn_unused_training_parameters(self, "embedder is given", still_used=["random_state"])
            embedder = clone(self.embedder)
        check_index(self.index, self.index_params, compared_by_distance(inner_embedder(embedder)))
        embedder.fit(X, y)
        embeddings = embed(embedder, X)
        support, support_codes = enrol(
            embeddings, torch.as_tensor(codes), len(classes), self.aggregation
        )
        temperature = classifier_temperature(
            embedder,
            embeddings,
            codes,
            len(classes),
            self.aggregation,
            trained_here=not isinstance(self.embedder, FrozenEstimator),
            random_state=self.random_state,
        )
        return self._set_fitted(
            embedder,
            inputs=self._input_attributes(embedder),
            classes=classes,
            support_embeddings=support.numpy(),
            support_classes=support_codes.numpy(),
            temperature=temperature,
            enrolment={name: getattr(self, name) for name in ENROLMENT_PARAMETERS},
        )

    def _input_attributes(self, embedder):
        """What ``fit`` saw of ``X``: validated here for its own network, else by the embedder."""
        if self.embedder is None:
            source, names = self, _INPUT_ATTRIBUTES
        else:  # the embedder validated X; sample_shape_ is only its own network's
            source, names = embedder, _INPUT_ATTRIBUTES[:2]
        return {name: getattr(source, name) for name in names if hasattr(source, name)}

    def _embedder_params(self):
        """What this classifier forwards to the embedder it trains: every training parameter."""
        named = {name: getattr(self, name) for name in TRAINING_PARAMETERS}
        return {**named, **self._routed_params()}

    def _set_fitted(
        self,
        embedder,
        *,
        inputs,
        classes,
        support_embeddings,
        support_classes,
        temperature,
        enrolment,
    ):
        """Set the fitted attributes, from ``fit`` or a weight file."""
        for name in _INPUT_ATTRIBUTES:
            vars(self).pop(name, None)  # left from an earlier fit
        for name, value in inputs.items():
            setattr(self, name, value)
        self.embedder_ = embedder
        self.classes_ = classes
        self.support_embeddings_ = support_embeddings
        self.support_classes_ = support_classes
        self.temperature_ = temperature
        self.index_ = build_index(enrolment["index"], enrolment["index_params"], support_embeddings)
        # What was enrolled, as save_weights records it whatever set_params does later.
        self._enrolment = enrolment
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

    def _queries(self, X):
        """Embeddings of the queries ``X``."""
        X = self._validate_input(X, reset=False)
        return embed(self.embedder_, X)

    def _class_scores(self, X):
        """Each query's score for each class, a dense ``(n_samples, n_classes)`` array."""
        queries = self._queries(X)  # checks the classifier is fitted
        return class_scores(
            similarity_of(self.embedder_),
            queries,
            self.support_embeddings_,
            self.support_classes_,
            len(self.classes_),
        )

    def _best_class(self, X):
        """Each query's best class code and its score, in memory bounded whatever the classes."""
        queries = self._queries(X)
        best, codes, n_missed = best_class(
            similarity_of(self.embedder_),
            queries,
            self.support_embeddings_,
            self.support_classes_,
            self.index_,
        )
        warn_if_many_missed(n_missed, len(best), self._enrolment["index"])
        return best, codes

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
        With a faiss ``index``, the class of the row the index finds nearest.
        """
        best, codes = self._best_class(X)
        predicted = self.classes_[codes]
        if self.reject_below is None:
            return predicted
        return reject(predicted, best, self.reject_below, self.unknown_label, self.classes_)

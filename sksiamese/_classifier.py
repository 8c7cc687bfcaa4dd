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
from ._compat import StrOptions, _fit_context, validate_params
from ._embedder import SiameseEmbedder
from ._index import (
    EXACT,
    build_index,
    index_from_bytes,
    index_to_bytes,
    search,
    warn_if_many_missed,
)
from ._persistence import CLASSIFIER_FORMAT, FORMAT, embedder_state, read_state
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


def _inner_embedder(embedder):
    """The estimator inside a ``FrozenEstimator``, or ``embedder`` itself."""
    return embedder.estimator if isinstance(embedder, FrozenEstimator) else embedder


def _compared_by_distance(embedder):
    """Whether the embedder's similarity is minus the Euclidean distance (not a Koch head)."""
    embedder = _inner_embedder(embedder)
    return not (isinstance(embedder, SiameseEmbedder) and embedder.loss == "bce")


def _check_enrolment(classifier, embedder, path):
    """Refuse a weight file whose enrolment does not hold together."""
    support, codes = classifier.support_embeddings_, classifier.support_classes_
    n_dims = embedder._n_features_out
    problems = [
        (support.ndim != 2 or support.shape[1] != n_dims, f"embeddings of {n_dims} dimensions"),
        (codes.shape != (len(support),), "one class per enrolled row"),
        (
            len(codes) and not 0 <= codes.min() <= codes.max() < len(classifier.classes_),
            "class codes within the classes",
        ),
    ]
    for broken, expected in problems:
        if broken:
            raise ValueError(f"{path} does not hold a consistent enrolment: expected {expected}.")


def _search_leaving_out(index, queries, n_neighbors, own):
    """The index's ``n_neighbors`` nearest rows of each query, its ``own`` row left out."""
    if own is None:
        return search(index, queries.numpy(), n_neighbors)
    distances, rows = search(index, queries.numpy(), n_neighbors + 1)
    # Drop the query's own row, or its farthest neighbour where the index missed it.
    drop = rows == own.numpy()[:, None]
    drop[:, -1] |= ~drop.any(1)
    shape = (len(rows), n_neighbors)
    return distances[~drop].reshape(shape), rows[~drop].reshape(shape)


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
        **kwargs,
    ):
        self.embedder = embedder
        self.aggregation = aggregation
        self.reject_below = reject_below
        self.unknown_label = unknown_label
        self.index = index
        self.index_params = index_params
        self.loss = loss
        self.margin = margin
        self.mining = mining
        self.miner = miner
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
        if self.index == EXACT and self.index_params:
            raise ValueError(
                f"index_params={self.index_params!r} tunes a faiss index, and "
                "index='exact' has none; leave index_params=None or choose a faiss index."
            )
        if self.index != EXACT and not _compared_by_distance(embedder):
            raise ValueError(
                f"index={self.index!r} searches by Euclidean distance, but this "
                "embedder (loss='bce') compares samples by a learned head that faiss "
                "cannot index; use index='exact'."
            )
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
        self.index_ = build_index(self.index, self.index_params, self.support_embeddings_)
        # What was enrolled, as save_weights records it whatever set_params does later.
        self._enrolment = {
            "aggregation": self.aggregation,
            "index": self.index,
            "index_params": self.index_params,
        }

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
        queries = self._embed(self._validate_input(X, reset=False))
        if self.index_ is not None:
            distances, rows = search(self.index_, queries.numpy(), 1)
            best, codes = -distances[:, 0], self.support_classes_[rows[:, 0]]
            # An approximate index may find no row for a query: search it exactly.
            missed = np.flatnonzero(rows[:, 0] < 0)
            warn_if_many_missed(len(missed), len(queries), self._enrolment["index"])
        else:
            best, codes = np.empty(len(queries)), np.empty(len(queries), dtype=np.int64)
            missed = np.arange(len(queries))
        if len(missed):
            exact_best, exact_codes = best_class(
                self._similarity,
                queries[missed],
                torch.from_numpy(self.support_embeddings_),
                torch.from_numpy(self.support_classes_),
            )
            best[missed], codes[missed] = exact_best.numpy(), exact_codes.numpy()
        return best, codes

    def kneighbors(self, X=None, n_neighbors=5, return_distance=True):
        """The enrolled rows most similar to each query, as scikit-learn's neighbours.

        The rows are those of ``support_embeddings_``: every support example
        with ``aggregation='nearest'``, one prototype per class with
        ``'prototype'``; ``support_classes_[indices]`` gives their classes.
        With a faiss ``index``, they are the index's (approximate)
        neighbours, their distances computed in float32, ties in the index's
        order; a query for which it finds fewer than ``n_neighbors`` rows is
        searched exactly (with a warning when that is more than a tenth of
        the queries).

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
        distances : ndarray of shape (n_queries, n_neighbors), float64
            Minus the similarity: the Euclidean distance of the embeddings,
            or minus the Koch head's logit for ``loss='bce'``; ascending.
            Only with ``return_distance=True``.
        indices : ndarray of shape (n_queries, n_neighbors), int64
            Rows of ``support_embeddings_``, nearest first (ties in row order
            with the exact search).
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
        if self.index_ is not None:
            distances, indices = _search_leaving_out(self.index_, queries, n_neighbors, own)
            # Queries for which the index found too few rows are searched exactly.
            missed = np.flatnonzero((indices < 0).any(1))
            warn_if_many_missed(len(missed), len(queries), self._enrolment["index"])
        else:
            distances = np.empty((len(queries), n_neighbors))
            indices = np.empty((len(queries), n_neighbors), dtype=np.int64)
            missed = np.arange(len(queries))
        if len(missed):
            similarities, exact = nearest_examples(
                self._similarity,
                queries[missed],
                support,
                n_neighbors,
                query_index=None if own is None else own[missed],
            )
            distances[missed], indices[missed] = -similarities.numpy(), exact.numpy()
        return (distances, indices) if return_distance else indices

    def save_weights(self, path):
        """Save the trained classifier to a file that loads without unpickling.

        The file holds the embedder's weights (as
        :meth:`SiameseEmbedder.save_weights` writes them), the enrolled
        support set, the classes and the temperature, all tensors and plain
        values: :meth:`load_weights` reads it with
        ``torch.load(weights_only=True)``, which cannot run code from the
        file. A faiss index is not stored: faiss's own reader is not built
        for files from strangers, so :meth:`load_weights` builds the index
        again from the support set (the build times of ``docs/benchmarks.md``).

        Parameters
        ----------
        path : str or path-like
            The weight file.
        """
        check_is_fitted(self)
        embedder = _inner_embedder(self.embedder_)
        self._check_savable(embedder)
        state = {
            "format": CLASSIFIER_FORMAT,
            "embedder": embedder_state(embedder),
            **self._enrolment,
            "classes": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str,
            "support_embeddings": torch.from_numpy(self.support_embeddings_),
            "support_classes": torch.from_numpy(self.support_classes_),
            "temperature": float(self.temperature_),
        }
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in"] = self.feature_names_in_.tolist()
        torch.save(state, path)

    def load_weights(self, path):
        """Restore a trained classifier from :meth:`save_weights`'s file.

        Create the classifier with the parameters it was fitted with: the
        embedder's architecture comes from them (from ``embedder``, or this
        classifier's own training parameters when ``embedder=None``), and
        ``aggregation``, ``index`` and ``index_params`` must match the file.
        A faiss index is built again from the saved support set (an
        approximate one may answer a few queries differently from the one
        saved); without faiss installed, the search is exact, with a warning.

        Parameters
        ----------
        path : str or path-like
            The weight file.

        Returns
        -------
        self : OneShotClassifier
            The classifier, ready to ``predict``.
        """
        validate_params(self)
        state = read_state(path, CLASSIFIER_FORMAT)
        if state["embedder"].get("format") != FORMAT:
            raise ValueError(
                f"{path} holds an embedder of format {state['embedder'].get('format')!r}, "
                f"and this version reads {FORMAT!r}: save it again with the version "
                "that wrote it."
            )
        for name in ("aggregation", "index", "index_params"):
            if state[name] != getattr(self, name):
                raise ValueError(
                    f"{path} holds a classifier fitted with {name}={state[name]!r}; this "
                    f"one has {name}={getattr(self, name)!r}. Create it with the "
                    "parameters it was fitted with."
                )
        if self.embedder is None:
            embedder = SiameseEmbedder(**self._shared_params())
        else:
            embedder = clone(_inner_embedder(self.embedder))
        self._check_savable(embedder)
        embedder._restore(state["embedder"], path)
        frozen = isinstance(self.embedder, FrozenEstimator)
        self.embedder_ = FrozenEstimator(embedder) if frozen else embedder
        for name in ("sample_shape_", "feature_names_in_"):
            vars(self).pop(name, None)  # left from an earlier fit
        self.n_features_in_ = embedder.n_features_in_
        if self.embedder is None:
            self.sample_shape_ = embedder.sample_shape_
        if "feature_names_in" in state:
            self.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        self.classes_ = np.asarray(state["classes"], dtype=np.dtype(state["classes_dtype"]))
        self.support_embeddings_ = state["support_embeddings"].numpy()
        self.support_classes_ = state["support_classes"].numpy()
        self.temperature_ = state["temperature"]
        _check_enrolment(self, embedder, path)
        self.index_ = build_index(self.index, self.index_params, self.support_embeddings_)
        self._enrolment = {name: state[name] for name in ("aggregation", "index", "index_params")}
        return self

    def _check_savable(self, embedder):
        if not isinstance(embedder, SiameseEmbedder):
            raise TypeError(
                "Safe weight files hold a SiameseEmbedder's network; this classifier's "
                f"embedder is a {type(embedder).__name__}. Save it with pickle or joblib "
                "instead (files you trust only)."
            )

    def __getstate__(self):
        # pickle cannot write a faiss index: it travels as faiss's serialised bytes.
        state = dict(super().__getstate__())
        if state.get("index_") is not None:
            state["index_"] = index_to_bytes(state["index_"])
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if getattr(self, "index_", None) is not None:
            self.index_ = index_from_bytes(self.index_, self._enrolment["index"])

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

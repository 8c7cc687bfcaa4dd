"""SiameseEmbedder: a transformer that learns a similarity from class labels."""

import dataclasses

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._base import (
    SiameseBase,
    encode_labels,
    resolve_device,
    validate_pairs,
    validate_samples,
)
from ._batches import can_form_positive_pair
from ._calibration import embedder_temperature, training_sample
from ._compat import _fit_context
from ._distributed import decided_once
from ._net import embed_members
from ._params import TRAINING_PARAMETERS, document_parameters
from ._persistence import EmbedderWeightsMixin
from ._search import ClassMax, search_exact
from ._selection import train_on_classes
from ._training import criterion_for, output_dim
from ._views import draw_distortions, embed_views, keep_views_that_pay
from ._warnings import warn
from .similarity import EuclideanSimilarity


def _check_loss_classes(loss, n_classes):
    """A loss that classifies (ArcFace, ProxyAnchor) must have a class for every label."""
    n_loss_classes = getattr(loss, "num_classes", None)
    if isinstance(n_loss_classes, int) and n_loss_classes < n_classes:
        raise ValueError(
            f"loss={type(loss).__name__} has num_classes={n_loss_classes}, and fit got "
            f"{n_classes} classes; create it with num_classes of at least {n_classes}."
        )


def compared_by_distance(embedder):
    """Whether ``embedder`` compares by Euclidean distance, known before it is fitted.

    A fitted embedder's ``similarity_`` says; an unfitted
    :class:`SiameseEmbedder` is asked which loss, and so which similarity,
    it would train; any other transformer is compared by distance.
    """
    if hasattr(embedder, "net_"):
        return embedder.similarity_.by_distance
    if isinstance(embedder, SiameseEmbedder):
        loss_class, _ = criterion_for(embedder._training_params(), embedding_dim=1)
        return loss_class.similarity_class.by_distance
    return True


def check_training_labels(y):
    """Encode class labels and check that they can form positive pairs."""
    classes, codes = encode_labels(y)
    if len(classes) < 2:
        raise ValueError(
            f"Training needs at least two classes; got {len(classes)} class ({classes[0]!r})."
        )
    if not can_form_positive_pair(codes, n_classes=1):
        raise ValueError(
            "The class labels cannot form a single positive pair: every class "
            "has one sample. Training needs at least two classes with two or "
            "more samples."
        )
    if not can_form_positive_pair(codes, n_classes=2):
        # Every class-balanced batch would hold that one class: no negatives,
        # a zero loss, and an embedder returned untrained.
        raise ValueError(
            "Only one class has two or more samples, so no batch can hold a positive "
            "and a negative pair. Training needs two classes with two or more samples."
        )
    return classes, codes


@document_parameters(*TRAINING_PARAMETERS)
class SiameseEmbedder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, EmbedderWeightsMixin, SiameseBase
):
    """Twin network that maps samples to embeddings where classes cluster.

    Trained from class labels with in-batch pairs or triplets, it embeds
    samples of classes it never saw so that a nearest-neighbour rule, or
    :class:`OneShotClassifier`, recognises them from one example each.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    net_ : SiameseNet
        The trained skorch net; ``net_.history`` holds the loss of every epoch
        and batch, ``net_.module_`` the twin branch.
    similarity_ : Similarity
        How embeddings are compared (higher is more alike): the trained
        loss's :class:`~sksiamese.similarity.KochHead` for ``loss='bce'``,
        else :class:`~sksiamese.similarity.EuclideanSimilarity`.
    n_iter_ : int
        Epochs run by the last training of the fit. Where the network was
        trained again on every class (fewer than 50), the epochs it was
        trained for. Under ``early_stopping=True`` with 50 classes or more
        the selected network of ``best_epoch_`` is kept, and the epochs
        after it were run and discarded.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    validation_scores_ : list of float or None
        1-shot accuracy on the classes held out by ``early_stopping``: of the
        untrained network first, then after each epoch. ``None`` when no
        classes were held out.
    best_epoch_ : int
        The epoch the held-out classes chose (0: the untrained network),
        the index of its score in ``validation_scores_``; the last epoch
        when no classes were held out. Where the network was trained again
        on every class, it ran to the latest epoch that still beat the
        untrained network clearly, ``n_iter_`` epochs (see
        ``early_stopping``).
    temperature_ : float
        Scale that turns similarities into calibrated probabilities: the
        softmax of ``similarity / temperature_`` over the classes of a
        one-shot episode (one support example each, up to 20 classes) is
        fitted to the episodes' true classes. The episodes are drawn from
        the classes held out by ``early_stopping`` (one held-out split, the
        one that chose the epoch) and scored by the network trained without
        them; when no classes were held out, from the training classes, which
        makes the probabilities over-confident.
    inference_distortions_ : torch.Tensor of shape (n_distortions, 2, 3)
        The fixed affine maps of test-time augmentation (see
        ``inference_views``); empty when augmentation is off or the views
        did not pay.
    inference_views_ : int
        Views each image is embedded from at inference (1: the image alone).
    sample_shape_ : tuple of int
        Shape of one sample seen in ``fit``.
    n_features_in_ : int
        Features of one sample seen in ``fit``, flattened: ``n_features``
        for ``(n, n_features)`` input, ``H * W`` (times ``C``) for images.

    See Also
    --------
    OneShotClassifier : Classifies from a support set using these embeddings.
    sklearn.neighbors.NeighborhoodComponentsAnalysis : A linear metric learner.

    References
    ----------
    .. [1] G. Koch, R. Zemel and R. Salakhutdinov, "Siamese Neural Networks for
       One-shot Image Recognition", ICML Deep Learning Workshop, 2015.
    .. [2] R. Hadsell, S. Chopra and Y. LeCun, "Dimensionality Reduction by
       Learning an Invariant Mapping", CVPR, 2006.
    .. [3] A. Hermans, L. Beyer and B. Leibe, "In Defense of the Triplet Loss
       for Person Re-Identification", arXiv:1703.07737, 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sksiamese import SiameseEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> embedder = SiameseEmbedder(max_epochs=2, random_state=0).fit(X[y < 5], y[y < 5])
    >>> embedder.transform(X[y >= 5]).shape
    (896, 64)
    """

    def __init__(
        self,
        *,
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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the twin network on labelled samples.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), \
                (n_samples, H, W) or (n_samples, C, H, W)
            Training samples.
        y : array-like of shape (n_samples,)
            Class labels; at least two classes with two or more samples each.

        Returns
        -------
        self : SiameseEmbedder
            The fitted embedder.
        """
        warm = self.warm_start and hasattr(self, "net_")
        # A warm start needs samples of the shape its network was fitted on.
        X, y = validate_samples(self, X, y, reset=not warm)
        _, codes = check_training_labels(y)
        _check_loss_classes(self.loss, int(codes.max()) + 1)
        self._check_routed()
        random_state = check_random_state(self.random_state)
        device = resolve_device(self.device)
        params = self._training_params()
        if warm:
            params = dataclasses.replace(params, start_from=(self.net_, self._default_module_args))
        trained = train_on_classes(params, X, codes, device, random_state, type(self).__name__)
        net = trained.net
        drawn = draw_distortions(
            self.augment, self.inference_views, self.sample_shape_, random_state
        )
        # Decisions on held-out data: data-parallel, taken by process 0 for all.
        distortions = decided_once(
            lambda: keep_views_that_pay(self.inference_views, drawn, trained)
        )
        loss_curve = list(net.history[:, "train_loss"]) if len(net.history) else []
        # One small embedding pass after training, for the checks and calibration.
        sample = training_sample(codes, random_state)
        embeddings = embed_views(net, X[sample], distortions)
        self._warn_if_collapsed(embeddings, loss_curve, trained.epochs)
        temperature = decided_once(
            lambda: embedder_temperature(
                trained, embeddings, codes[sample], distortions, random_state
            )
        )
        return self._set_fitted(
            net,
            sample_shape=self.sample_shape_,
            n_features_in=self.n_features_in_,
            temperature=temperature,
            inference_distortions=distortions,
            loss_curve=loss_curve,
            validation_scores=trained.validation_scores,
            best_epoch=trained.best_epoch,
            default_module_args=trained.data_args,
        )

    def _set_fitted(self, net, **fitted):
        """Set the fitted attributes, from ``fit`` or a weight file (``FITTED_FIELDS``)."""
        self.net_ = net
        self.sample_shape_ = tuple(fitted["sample_shape"])
        self.n_features_in_ = fitted["n_features_in"]
        self.temperature_ = float(fitted["temperature"])
        self.inference_distortions_ = fitted["inference_distortions"].cpu()
        self.inference_views_ = 1 + len(self.inference_distortions_)
        self.loss_curve_ = list(fitted["loss_curve"])
        self.n_iter_ = len(self.loss_curve_)
        self.validation_scores_ = fitted["validation_scores"]
        self.best_epoch_ = fitted["best_epoch"]
        self._default_module_args = fitted["default_module_args"]
        # The embedding size, for get_feature_names_out.
        probe = np.zeros((2, *self.sample_shape_), np.float32)
        self._n_features_out = output_dim(net.module_, probe)
        return self

    @property
    def similarity_(self):
        return self.net_.criterion_.similarity

    def _warn_if_collapsed(self, embeddings, loss_curve, epochs):
        """Report the two faces of collapse: equal embeddings, loss at the margin."""
        if float(embeddings.std(0).max()) < 1e-6:
            problem = "every sample has the same embedding"
        elif (
            self.loss == "triplet"
            and epochs > 0
            and abs(loss_curve[epochs - 1] - self.margin) < 0.01 * self.margin
        ):
            # d(a, p) == d(a, n) for every triplet: the net maps classes on top
            # of one another and the loss sits at exactly the margin.
            kept_loss = loss_curve[epochs - 1]
            problem = f"the triplet loss is stuck at the margin ({kept_loss:.4f})"
        else:
            return
        warn(
            f"Training collapsed: {problem}, so the embedder cannot tell classes "
            "apart. Lower `lr`, change `margin` or `mining` (or the loss), or train longer.",
            ConvergenceWarning,
        )

    def _embed(self, X):
        """Embeddings of validated ``X`` as a CPU float32 tensor (eval, no_grad)."""
        return embed_views(self.net_, X, self.inference_distortions_)

    def transform(self, X):
        """Embed samples.

        Parameters
        ----------
        X : {array-like, sparse matrix} of the shape seen in ``fit``
            Samples.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_dims), dtype float32
            The twin network's embeddings.
        """
        X = validate_samples(self, X, reset=False)
        return self._embed(X).numpy()

    def _embed_pairs(self, pairs):
        """Embeddings ``(a, b)`` of the two members of each pair."""
        check_is_fitted(self)
        members = self._embed_members(validate_pairs(pairs, self.sample_shape_))
        return members[:, 0], members[:, 1]

    def _embed_members(self, groups):
        """Embeddings ``(n_groups, n_members, dim)`` of groups of samples (pairs, claims)."""
        samples = validate_samples(self, groups.reshape(-1, *self.sample_shape_), reset=False)
        return embed_members(self._embed, samples.reshape(groups.shape))

    def pair_distance(self, pairs):
        """Euclidean distance between the embeddings of each pair.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2) + sample_shape
            The pairs.

        Returns
        -------
        distances : ndarray of shape (n_pairs,)
            Distance between the two embeddings of each pair.
        """
        return (-EuclideanSimilarity().paired(*self._embed_pairs(pairs))).numpy()

    def pair_score(self, pairs):
        """Similarity of each pair; higher means more alike.

        For ``loss='bce'`` it is the learned head's probability that the two
        samples share a class; otherwise minus the distance, as in
        metric-learn.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2) + sample_shape
            The pairs.

        Returns
        -------
        scores : ndarray of shape (n_pairs,)
            Higher means more alike.
        """
        a, b = self._embed_pairs(pairs)  # checks the embedder is fitted
        scores = self.similarity_.paired(a, b)
        return self.similarity_.to_pair_score(scores).numpy()

    def score(self, X, y):
        """Leave-one-out nearest-neighbour accuracy of the embeddings of ``X``.

        Each sample is classified by its most similar other sample; samples
        whose class has no other sample are skipped. The classes of ``y`` need
        not be those of training, so this measures how well the embedding
        generalises to new classes (precision at 1).

        Parameters
        ----------
        X : {array-like, sparse matrix} of the shape seen in ``fit``
            Samples, of classes seen in training or not.
        y : array-like of shape (n_samples,)
            Their classes.

        Returns
        -------
        score : float
            The share of those samples whose nearest other sample shares their class.
        """
        X = validate_samples(self, X, reset=False)
        check_consistent_length(X, y)
        _, codes = encode_labels(column_or_1d(y, warn=True))
        rows = np.flatnonzero(np.bincount(codes)[codes] >= 2)
        if len(rows) == 0:
            raise ValueError("score needs at least one class with two or more samples.")
        embeddings = self._embed(X)
        (scores,) = search_exact(
            self.similarity_,
            embeddings[rows],
            embeddings,
            ClassMax(torch.as_tensor(codes), int(codes.max()) + 1),
            query_index=torch.as_tensor(rows),
        )
        return float((scores.argmax(1).numpy() == codes[rows]).mean())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

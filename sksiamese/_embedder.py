"""SiameseEmbedder: a transformer that learns a similarity from class labels."""

import warnings

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ._base import (
    SiameseBase,
    encode_labels,
    resolve_device,
    unique_samples,
    validate_pairs,
    validate_samples,
    with_shared_parameters_doc,
)
from ._batches import can_form_positive_pair
from ._compat import _fit_context, validate_params
from ._persistence import FORMAT, embedder_state, read_state, restore_net
from ._scoring import class_scores, fit_temperature, similarity_of
from ._selection import OneShotEpisodes, warn_if_untrained_is_best
from ._training import augmentation_for, output_dim, train_net
from .augmentation import distort

# Rows embedded to check for collapse after training.
_COLLAPSE_ROWS = 2048
# Images distorted at a time for test-time augmentation (bounds the copies).
_VIEW_CHUNK = 4096
# Views that inference_views='auto' tries.
_AUTO_VIEWS = 8


def embed_views(net, X, distortions):
    """Embeddings of ``X`` under ``net``, each the mean over the image and its distortions.

    Test-time augmentation: the mean is rescaled to the views' mean norm, so
    that L2-normalised embeddings stay on the unit sphere where the margin and
    head were fitted. Without distortions, the plain embeddings. A CPU float32
    tensor either way (eval mode, no gradients).
    """
    if len(distortions) == 0:
        return net.forward(X).float()
    chunks = []
    for start in range(0, len(X), _VIEW_CHUNK):
        images = torch.as_tensor(X[start : start + _VIEW_CHUNK], device=net.device)
        views = [images] + [distort(images, theta) for theta in distortions]
        embeddings = torch.stack([net.forward(view).float() for view in views])
        mean = embeddings.mean(0)
        scale = embeddings.norm(dim=2).mean(0) / mean.norm(dim=1).clamp_min(1e-12)
        chunks.append(mean * scale[:, None])
    return torch.cat(chunks)


def _check_loss_classes(loss, n_classes):
    """A loss that classifies (ArcFace, ProxyAnchor) must have a class for every label."""
    n_loss_classes = getattr(loss, "num_classes", None)
    if isinstance(n_loss_classes, int) and n_loss_classes < n_classes:
        raise ValueError(
            f"loss={type(loss).__name__} has num_classes={n_loss_classes}, and fit got "
            f"{n_classes} classes; create it with num_classes of at least {n_classes}."
        )


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


@with_shared_parameters_doc
class SiameseEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, SiameseBase):
    """Twin network that maps samples to embeddings where classes cluster.

    Trained from class labels with in-batch pairs or triplets, it embeds
    samples of classes it never saw so that a nearest-neighbour rule, or
    :class:`OneShotClassifier`, recognises them from one example each.

    Parameters
    ----------
    {shared}

    Attributes
    ----------
    net_ : SiameseNet
        The trained skorch net; ``net_.history`` holds the loss of every epoch
        and batch, ``net_.module_`` the twin branch.
    n_iter_ : int
        Epochs run by the last training of the fit. Under
        ``early_stopping=True`` with 50 classes or more the selected network
        of ``best_epoch_`` is kept, and the epochs after it were run and
        discarded.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    validation_scores_ : list of float or None
        1-shot accuracy on the classes held out by ``early_stopping``: of the
        untrained network first, then after each epoch. ``None`` when no
        classes were held out.
    best_epoch_ : int
        The epoch whose network was kept (0: the untrained network); the last
        epoch when no classes were held out.
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
        ``X.shape[1]`` seen in ``fit``.

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
        **kwargs,
    ):
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
        X, y = validate_samples(self, X, y, reset=True)
        _, codes = check_training_labels(y)
        _check_loss_classes(self.loss, int(codes.max()) + 1)
        random_state = check_random_state(self.random_state)
        device = resolve_device(self.device)
        fitted = train_net(self._shared_params(), X, codes, device, random_state)
        self.net_, selection = fitted.net, fitted.selection
        self._default_module_args = fitted.default_module_args
        self.n_iter_ = len(self.net_.history)
        self.loss_curve_ = list(self.net_.history[:, "train_loss"]) if self.n_iter_ else []
        if selection is None:
            self.validation_scores_, self.best_epoch_ = None, self.n_iter_
        else:
            self.validation_scores_, self.best_epoch_ = selection.scores, selection.best_epoch
            warn_if_untrained_is_best(
                self, selection.scores, selection.best_epoch, "1-shot accuracy"
            )
        distortions = self._draw_inference_distortions(random_state)
        self.inference_distortions_ = self._keep_views_that_pay(distortions, fitted)
        self.inference_views_ = 1 + len(self.inference_distortions_)
        # The embedding size, for get_feature_names_out.
        self._n_features_out = output_dim(self.net_.module_, X[:2])
        rows = random_state.choice(X.shape[0], min(X.shape[0], _COLLAPSE_ROWS), replace=False)
        self._warn_if_collapsed(self._embed(X[np.sort(rows)]))
        self.temperature_ = self._calibrate(X, codes, fitted, random_state)
        return self

    def _draw_inference_distortions(self, random_state):
        """The fixed affine maps of test-time augmentation, ``(views - 1, 2, 3)``."""
        seed = int(random_state.randint(np.iinfo(np.int32).max))
        augmentation = augmentation_for(self.augment, self.sample_shape_, seed)
        views = _AUTO_VIEWS if self.inference_views == "auto" else self.inference_views
        if augmentation is None or views == 1:
            return torch.zeros(0, 2, 3)
        return augmentation.matrices(views - 1)

    def _keep_views_that_pay(self, distortions, fitted):
        """``distortions``, or none when they did not beat the image alone on held-out classes.

        Only for ``inference_views='auto'``, and only when classes were held
        out: the comparison is made on the selected network, before it is
        trained again on every class, in episodes drawn anew from the held-out
        samples (other pairings than those that selected the epoch).
        """
        if self.inference_views != "auto" or len(distortions) == 0 or fitted.selection is None:
            return distortions
        # Episodes drawn anew: those that chose the epoch favour the image alone.
        net, check = fitted.selected_net, fitted.check
        alone = check(net)
        with_views = check.score(
            lambda X: embed_views(net, X, distortions), similarity_of(net.criterion_)
        )
        return distortions if with_views > alone else torch.zeros(0, 2, 3)

    def _calibrate(self, X, codes, fitted, random_state):
        """``temperature_`` from one-shot episodes, on held-out classes when there are some."""
        if fitted.check is not None:
            episodes, net = fitted.check, fitted.selected_net
        else:
            episodes, net = OneShotEpisodes(X, codes, random_state), self.net_
        scores, truth = episodes.class_scores(
            lambda samples: embed_views(net, samples, self.inference_distortions_),
            similarity_of(net.criterion_),
        )
        return fit_temperature(scores, truth)

    def _warn_if_collapsed(self, embeddings):
        """Report the two faces of collapse: equal embeddings, loss at the margin."""
        if float(embeddings.std(0).max()) < 1e-6:
            problem = "every sample has the same embedding"
        elif (
            self.loss == "triplet"
            and self.best_epoch_ > 0
            and abs(self.loss_curve_[self.best_epoch_ - 1] - self.margin) < 0.01 * self.margin
        ):
            # d(a, p) == d(a, n) for every triplet: the net maps classes on top
            # of one another and the loss sits at exactly the margin.
            kept_loss = self.loss_curve_[self.best_epoch_ - 1]
            problem = f"the triplet loss is stuck at the margin ({kept_loss:.4f})"
        else:
            return
        warnings.warn(
            f"Training collapsed: {problem}, so the embedder cannot tell classes "
            "apart. Lower `lr`, change `margin` or `mining` (or the loss), or train longer.",
            ConvergenceWarning,
            stacklevel=4,
        )

    def _embed(self, X):
        """Embeddings of validated ``X`` as a CPU float32 tensor (eval, no_grad)."""
        return embed_views(self.net_, X, self.inference_distortions_)

    def _similarity(self, A, B):
        """Similarity matrix of two sets of embeddings (higher is more alike)."""
        return similarity_of(self.net_.criterion_)(A, B)

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
        check_is_fitted(self)
        pairs = validate_pairs(pairs, self.sample_shape_)
        samples = validate_samples(self, pairs.reshape(-1, *self.sample_shape_), reset=False)
        # Pairs of a gallery share samples: each distinct sample is embedded once.
        first, inverse = unique_samples(samples)
        embeddings = self._embed(samples[first])[torch.as_tensor(inverse)]
        return embeddings[0::2], embeddings[1::2]

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
        a, b = self._embed_pairs(pairs)
        return (a - b).norm(dim=1).numpy()

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
        scores = self._pair_similarity(pairs)
        return torch.sigmoid(scores).numpy() if self.loss == "bce" else scores.numpy()

    def _pair_similarity(self, pairs):
        """The Koch head's logit of each pair for ``loss='bce'``, else minus the distance."""
        a, b = self._embed_pairs(pairs)
        if self.loss == "bce":
            head = self.net_.criterion_.head
            device = next(head.parameters()).device
            with torch.no_grad():
                return head(a.to(device), b.to(device)).cpu()
        return -(a - b).norm(dim=1)

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
        codes = np.unique(np.asarray(y), return_inverse=True)[1].reshape(-1)
        check_consistent_length(X, codes)
        rows = np.flatnonzero(np.bincount(codes)[codes] >= 2)
        if len(rows) == 0:
            raise ValueError("score needs at least one class with two or more samples.")
        embeddings = self._embed(X)
        scores = class_scores(
            self._similarity,
            embeddings[rows],
            embeddings,
            torch.as_tensor(codes),
            int(codes.max()) + 1,
            query_index=torch.as_tensor(rows),
        )
        return float((scores.argmax(1).numpy() == codes[rows]).mean())

    def save_weights(self, path):
        """Save the trained weights to a file that loads without unpickling.

        The file holds tensors and plain numbers only, so
        :meth:`load_weights` reads it with ``torch.load(weights_only=True)``,
        which cannot run code from the file (``pickle`` can). Use it to share
        a model with people who should not have to trust you.

        Parameters
        ----------
        path : str or path-like
            The weight file.
        """
        check_is_fitted(self)
        torch.save(embedder_state(self), path)

    def load_weights(self, path):
        """Restore a trained embedder from :meth:`save_weights`'s file.

        Create the embedder with the parameters it was trained with (the
        architecture comes from them); no ``fit`` is needed. Weights saved on
        a GPU load on a CPU-only machine.

        Parameters
        ----------
        path : str or path-like
            The weight file.

        Returns
        -------
        self : SiameseEmbedder
            The embedder, ready to ``transform``.
        """
        validate_params(self)
        return self._restore(read_state(path, FORMAT), path)

    def _restore(self, state, path):
        """Set the fitted attributes from an :func:`embedder_state` dict read from ``path``."""
        validate_params(self)
        device = resolve_device(self.device)
        self.net_ = restore_net(state, path, self._shared_params(), device)
        self.sample_shape_ = tuple(state["sample_shape"])
        self.n_features_in_ = state["n_features_in"]
        self.temperature_ = state["temperature"]
        self.inference_distortions_ = state["inference_distortions"].cpu()
        self.inference_views_ = 1 + len(self.inference_distortions_)
        self.loss_curve_ = state["loss_curve"]
        self.n_iter_ = len(self.loss_curve_)
        self.validation_scores_ = state["validation_scores"]
        self.best_epoch_ = state["best_epoch"]
        self._default_module_args = state["default_module_args"]
        probe = np.zeros((2, *self.sample_shape_), np.float32)
        self._n_features_out = output_dim(self.net_.module_, probe)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

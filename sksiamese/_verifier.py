"""SiameseVerifier: same-or-different decisions trained from pair labels alone."""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._base import SHARED_CONSTRAINTS, RoutedParamsMixin, resolve_device, validate_pairs
from ._compat import StrOptions, _fit_context
from ._net import pair_scores
from ._scoring import platt_scaling
from ._selection import warn_if_untrained_is_best
from ._training import train_pair_net

_PARAMETERS = (
    "loss",
    "margin",
    "module",
    "embedding_dim",
    "max_epochs",
    "lr",
    "lr_schedule",
    "batch_size",
    "optimizer",
    "device",
    "callbacks",
    "early_stopping",
    "validation_fraction",
    "n_iter_no_change",
    "verbose",
    "random_state",
)


def _similarity(embedder, pairs):
    """A trained embedder's score of each pair: the Koch head's logit, or minus the distance."""
    return embedder._pair_similarity(pairs).numpy().astype(np.float64)


# Set only when the verifier trains its own network.
_TRAINING_ATTRIBUTES = ("net_", "n_iter_", "loss_curve_", "validation_scores_", "best_epoch_")


class SiameseVerifier(ClassifierMixin, RoutedParamsMixin, BaseEstimator):
    """Decide whether two samples belong together, trained from pair labels.

    For data labelled as pairs (genuine or forged signature, duplicate or
    distinct question) rather than by class. ``fit(pairs, y)`` trains the twin
    network on the given pairs; ``decision_function`` scores new pairs,
    ``predict_proba`` turns the score into a calibrated probability of "same"
    (Platt scaling, fitted on the pairs held out by ``early_stopping``), and
    ``predict`` thresholds it at 0.5. To pick another operating point, wrap the verifier in
    :class:`sklearn.model_selection.TunedThresholdClassifierCV` (for example
    for balanced accuracy) or :class:`sklearn.model_selection.FixedThresholdClassifier`.

    A :class:`SiameseEmbedder` already trained on class labels can be passed
    as ``embedder``: the verifier then only calibrates its pair scores, and
    scikit-learn's threshold tools work on it the same way.

    Parameters
    ----------
    embedder : FrozenEstimator or None, default=None
        ``None`` trains a twin network on the pairs, from the parameters
        below. A trained :class:`SiameseEmbedder` wrapped in
        :class:`~sklearn.frozen.FrozenEstimator` (pairs carry no class labels
        to train it on, and the wrapper keeps it trained through ``clone``)
        is used as it is: ``fit`` scores the pairs by its similarity and fits
        the calibrator on them, so give it pairs of classes the embedder never
        trained on; the training parameters below are then ignored.
    loss : {'contrastive', 'bce'}, default='contrastive'
        Contrastive loss on the distance of each pair, or Koch's learned head
        with binary cross-entropy. ``'triplet'`` is refused: triplets need
        class labels, which pairs do not carry (train a
        :class:`SiameseEmbedder` when you have them).
    margin : float, default=0.5
        Margin of the contrastive loss; ignored by ``'bce'``.
    module, embedding_dim, max_epochs, lr, lr_schedule, optimizer, device
        As in :class:`SiameseEmbedder`.
    callbacks, verbose, random_state, **kwargs
        As in :class:`SiameseEmbedder`.
    batch_size : int, default=128
        Pairs per training batch, and per inference batch.
    early_stopping : 'auto' or bool, default='auto'
        Keep what transfers: hold out ``validation_fraction`` of the pairs,
        measure their ROC AUC before training and after every epoch, train
        again on every pair up to the best epoch (0: the untrained network,
        with a warning), and keep that network. Pairs that share samples
        through "same" labels are held out together, with every pair that
        touches them, so that the held-out pairs come from classes training
        never saw as far as the pairs reveal classes (pairs of
        :func:`~sksiamese.pairs.make_pairs` do); otherwise random pairs are
        held out. The curve is in ``validation_scores_``. ``'auto'`` does this
        whenever both parts can hold same and different pairs, ``True``
        requires it and also stops after ``n_iter_no_change`` epochs without
        improvement, ``False`` trains every epoch on every pair.
    validation_fraction : float, default=0.2
        Share of the pairs held out by ``early_stopping``.
    n_iter_no_change : int, default=5
        Patience of ``early_stopping=True``, in epochs.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: different, same.
    embedder_ : FrozenEstimator
        The given ``embedder``, which scores the pairs; only with one.
    net_ : SiameseNet
        The trained skorch net; its module applies the branch to both
        members. Only without ``embedder``, as are the training attributes
        ``n_iter_``, ``loss_curve_``, ``validation_scores_`` and
        ``best_epoch_``.
    calibrator_ : LogisticRegression
        Maps ``decision_function`` to the probability of "same": Platt
        scaling (smoothed targets, no regularisation) fitted on the held-out
        pairs (one split, the one that chose the epoch) as scored by the
        network trained without them; on the training pairs when none were
        held out (``early_stopping=False``, or pairs that cannot be split),
        which makes the probabilities over-confident. With ``embedder``: on
        the pairs given to ``fit``.
    sample_shape_ : tuple of int
        Shape of one sample of a pair.
    n_features_in_ : int
        Number of features of one sample of a pair.
    n_iter_ : int
        Epochs the network of ``net_`` was trained.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    validation_scores_ : list of float or None
        ROC AUC of the held-out pairs: of the untrained network first, then
        after each epoch. ``None`` when no pairs were held out.
    best_epoch_ : int
        The epoch whose network was kept (0: the untrained network); the last
        epoch when no pairs were held out.

    See Also
    --------
    SiameseEmbedder : Trained from class labels; ``pair_score`` scores pairs.
    sksiamese.pairs.make_pairs : Balanced pairs from labelled samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sksiamese import SiameseVerifier
    >>> from sksiamese.pairs import make_pairs
    >>> X, y = load_digits(return_X_y=True)
    >>> pairs, same = make_pairs(X / 16, y, 2000, random_state=0)
    >>> verifier = SiameseVerifier(max_epochs=5, random_state=0).fit(pairs[:1500], same[:1500])
    >>> float(verifier.score(pairs[1500:], same[1500:])) > 0.8
    True
    """

    _parameter_constraints = {
        "embedder": [None, FrozenEstimator],
        **{name: SHARED_CONSTRAINTS[name] for name in _PARAMETERS},
        # Pairs carry no class labels, which module losses take.
        "loss": [StrOptions({"contrastive", "triplet", "bce"})],
    }

    def __init__(
        self,
        *,
        embedder=None,
        loss="contrastive",
        margin=0.5,
        module=None,
        embedding_dim=64,
        max_epochs=15,
        lr=3e-3,
        lr_schedule="onecycle",
        batch_size=128,
        optimizer=torch.optim.Adam,
        device="auto",
        callbacks=None,
        early_stopping="auto",
        validation_fraction=0.2,
        n_iter_no_change=5,
        verbose=0,
        random_state=None,
        **kwargs,
    ):
        self.embedder = embedder
        self.loss = loss
        self.margin = margin
        self.module = module
        self.embedding_dim = embedding_dim
        self.max_epochs = max_epochs
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.device = device
        self.callbacks = callbacks
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.verbose = verbose
        self.random_state = random_state
        self._store_routed(kwargs)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train on labelled pairs.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2) + sample_shape
            The pairs.
        y : array-like of shape (n_pairs,)
            1 where the two samples belong together, 0 where not.

        Returns
        -------
        self : SiameseVerifier
            The fitted verifier.
        """
        self._check_routed()
        if self.loss == "triplet" and self.embedder is None:
            raise ValueError(
                "loss='triplet' needs class labels to form triplets, and pairs only "
                "say same or different; use 'contrastive' or 'bce', or train a "
                "SiameseEmbedder on class labels and pass it as `embedder`."
            )
        pairs = validate_pairs(X)
        y = column_or_1d(y, warn=True)
        check_consistent_length(pairs, y)
        if set(np.unique(y).tolist()) != {0, 1}:
            raise ValueError(
                "y must hold both 0 (different) and 1 (same) and nothing else; "
                f"got the values {np.unique(y).tolist()}."
            )
        y = y.astype(np.int64)
        sample_shape = tuple(pairs.shape[2:])
        # Fitted attributes are set only once nothing can fail: a refit that
        # raises leaves the estimator as it was.
        if self.embedder is not None:
            embedder = self._trained_embedder(sample_shape)
            calibrator = platt_scaling(_similarity(embedder, pairs), y)
            self._start_fitted_state(sample_shape)
            self.embedder_, self.calibrator_ = embedder, calibrator
            return self
        params = self.get_params(deep=False)  # with the routed ones
        device = resolve_device(self.device)
        fitted = train_pair_net(params, pairs, y, device, check_random_state(self.random_state))
        self._start_fitted_state(sample_shape)
        self.net_ = fitted.net
        self._default_module_args = fitted.default_module_args
        self.n_iter_ = len(self.net_.history)
        self.loss_curve_ = list(self.net_.history[:, "train_loss"]) if self.n_iter_ else []
        if fitted.selection is None:
            self.validation_scores_, self.best_epoch_ = None, self.n_iter_
            calibration = pair_scores(self.net_, pairs), y
        else:
            selection, held = fitted.selection, fitted.held_out
            self.validation_scores_, self.best_epoch_ = selection.scores, selection.best_epoch
            warn_if_untrained_is_best(self, selection.scores, selection.best_epoch, "ROC AUC")
            # Scores of pairs the net never trained on: the net trained again
            # on every pair is calibrated by the map fitted on its held-out twin.
            calibration = pair_scores(fitted.selected_net, pairs[held]), y[held]
        scores, same = calibration
        self.calibrator_ = platt_scaling(scores, same)
        return self

    def _start_fitted_state(self, sample_shape):
        """Drop what an earlier fit of either kind left, and record the pairs' shape."""
        for name in (*_TRAINING_ATTRIBUTES, "embedder_", "_default_module_args"):
            vars(self).pop(name, None)
        self.classes_ = np.array([0, 1])
        self.sample_shape_ = sample_shape
        self.n_features_in_ = int(np.prod(sample_shape))

    def _trained_embedder(self, sample_shape):
        """The given embedder, checked to be a trained SiameseEmbedder for these pairs."""
        if not hasattr(self.embedder.estimator, "_pair_similarity"):
            raise TypeError(
                "embedder must wrap a SiameseEmbedder, which scores pairs; got a "
                f"FrozenEstimator of {type(self.embedder.estimator).__name__}."
            )
        try:
            check_is_fitted(self.embedder)
        except NotFittedError as error:
            raise NotFittedError(
                "embedder must be trained: pairs carry no class labels to train it "
                "on. Fit the SiameseEmbedder on class labels first, and pass it "
                "wrapped in FrozenEstimator."
            ) from error
        if self.embedder.sample_shape_ != sample_shape:
            raise ValueError(
                f"The pairs hold samples of shape {sample_shape}, and the embedder "
                f"was trained on samples of shape {self.embedder.sample_shape_}."
            )
        return self.embedder

    def decision_function(self, X):
        """Similarity of each pair: minus the distance, or the head's logit.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2) + sample_shape
            The pairs.

        Returns
        -------
        scores : ndarray of shape (n_pairs,)
            Higher means more alike.
        """
        check_is_fitted(self)
        pairs = validate_pairs(X, self.sample_shape_)
        if hasattr(self, "embedder_"):
            return _similarity(self.embedder_, pairs)
        return pair_scores(self.net_, pairs)

    def predict_proba(self, X):
        """Calibrated probabilities of "different" and "same".

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2) + sample_shape
            The pairs.

        Returns
        -------
        proba : ndarray of shape (n_pairs, 2)
            Columns follow ``classes_``: different, same.
        """
        scores = self.decision_function(X)
        return self.calibrator_.predict_proba(scores[:, None])

    def predict(self, X):
        """1 where the pair is more likely the same than not, else 0.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2) + sample_shape
            The pairs.

        Returns
        -------
        y_pred : ndarray of shape (n_pairs,)
            1 for same, 0 for different.
        """
        scores = self.decision_function(X)
        return self.calibrator_.predict(scores[:, None])

"""SiameseVerifier: same-or-different decisions trained from pair labels alone."""

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted
from torch import nn

from ._base import SHARED_CONSTRAINTS, RoutedParamsMixin, resolve_device, validate_pairs
from ._compat import _fit_context
from ._net import SiameseNet
from ._selection import (
    HeldOutPairAUC,
    KeepBestOnHeldOut,
    hold_out_pairs,
    pair_groups,
    selection_mode,
    warn_if_untrained_is_best,
)
from ._training import base_callbacks, default_module, mlp_data_args
from .losses import PairLoss


class PairBranch(nn.Module):
    """Applies one twin branch to both members of each pair: ``(B, 2, ...)`` to ``(B, 2, d)``."""

    def __init__(self, branch):
        super().__init__()
        self.branch = branch

    def forward(self, pairs):
        embeddings = self.branch(pairs.flatten(0, 1))
        return embeddings.view(len(pairs), 2, -1)


def pair_scores(net, pairs):
    """Similarity of each pair under a trained pair net, as float64 on the CPU."""
    embeddings = net.forward(pairs)
    criterion = net.criterion_
    device = next(criterion.parameters(), torch.empty(0)).device
    with torch.no_grad():
        return criterion.scores(embeddings.to(device).double()).cpu().numpy()


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


class SiameseVerifier(ClassifierMixin, RoutedParamsMixin, BaseEstimator):
    """Decide whether two samples belong together, trained from pair labels.

    For data labelled as pairs (genuine or forged signature, duplicate or
    distinct question) rather than by class. ``fit(pairs, y)`` trains the twin
    network on the given pairs; ``decision_function`` scores new pairs,
    ``predict_proba`` turns the score into a calibrated probability of "same"
    (Platt scaling on the training pairs), and ``predict`` thresholds it at
    0.5. To pick another operating point, wrap the verifier in
    :class:`sklearn.model_selection.TunedThresholdClassifierCV` (for example
    for balanced accuracy) or :class:`sklearn.model_selection.FixedThresholdClassifier`.

    Parameters
    ----------
    loss : {'contrastive', 'bce'}, default='contrastive'
        Contrastive loss on the distance of each pair, or Koch's learned head
        with binary cross-entropy. ``'triplet'`` is refused: triplets need
        class labels, which pairs do not carry (train a
        :class:`SiameseEmbedder` when you have them).
    margin : float, default=0.5
        Margin of the contrastive loss; ignored by ``'bce'``.
    module, embedding_dim, max_epochs, lr, lr_schedule, optimizer, device, \
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
    net_ : SiameseNet
        The trained skorch net; its module applies the branch to both members.
    calibrator_ : LogisticRegression
        Maps ``decision_function`` to the probability of "same".
    sample_shape_ : tuple of int
        Shape of one sample of a pair.
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

    _parameter_constraints = {name: SHARED_CONSTRAINTS[name] for name in _PARAMETERS}

    def __init__(
        self,
        *,
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
        """
        self._check_routed()
        if self.loss == "triplet":
            raise ValueError(
                "loss='triplet' needs class labels to form triplets, and pairs only "
                "say same or different; use 'contrastive' or 'bce', or train a "
                "SiameseEmbedder on class labels."
            )
        pairs = validate_pairs(X)
        y = np.asarray(y)
        check_consistent_length(pairs, y)
        if set(np.unique(y).tolist()) != {0, 1}:
            raise ValueError(
                "y must hold both 0 (different) and 1 (same) and nothing else; "
                f"got the values {np.unique(y).tolist()}."
            )
        self.classes_ = np.array([0, 1])
        self.sample_shape_ = tuple(pairs.shape[2:])
        # The classes behind the pairs, as far as same pairs reveal them.
        components = pair_groups(pairs, y)
        n_classes = len(np.unique(components[y == 1]))
        samples = pairs.reshape(-1, *self.sample_shape_)
        random_state = check_random_state(self.random_state)
        seed = int(random_state.randint(np.iinfo(np.int32).max))
        self._default_module_args = mlp_data_args(samples, n_classes, random_state)
        y = y.astype(np.int64)
        self.net_, self.validation_scores_, self.best_epoch_ = self._train_keeping_best(
            pairs, y, components, seed, random_state
        )
        if self.validation_scores_ is not None:
            warn_if_untrained_is_best(self, self.validation_scores_, self.best_epoch_, "ROC AUC")
        self.n_iter_ = len(self.net_.history)
        self.loss_curve_ = list(self.net_.history[:, "train_loss"]) if self.n_iter_ else []
        self.calibrator_ = LogisticRegression().fit(pair_scores(self.net_, pairs)[:, None], y)
        return self

    def _train_keeping_best(self, pairs, y, components, seed, random_state):
        """The net, its held-out curve and best epoch (see ``early_stopping``)."""
        split = None
        mode = selection_mode(self.early_stopping)
        if mode is not False:
            split = hold_out_pairs(components, y, self.validation_fraction, random_state)
            if split is None and mode is True:
                raise ValueError(
                    "early_stopping=True holds out pairs, but the pairs cannot be split "
                    "so that both parts hold same and different pairs."
                )
        if split is None:
            net = self._train(pairs, y, seed)
            return net, None, len(net.history)
        train, held = split
        auc = HeldOutPairAUC(pairs[held], y[held], pair_scores)
        patience = self.n_iter_no_change if mode is True else None
        selection = KeepBestOnHeldOut(auc, patience=patience)
        self._train(pairs[train], y[train], seed, callbacks=[("keep_best", selection)])
        net = self._train(pairs, y, seed, epochs=selection.best_epoch)
        return net, selection.scores, selection.best_epoch

    def _branch(self):
        if isinstance(self.module, nn.Module):
            return copy.deepcopy(self.module)
        routed = self._routed_params("module__")
        routed = {k.removeprefix("module__"): v for k, v in routed.items()}
        if self.module is None:
            branch, args = default_module(
                self.sample_shape_, self.embedding_dim, self._default_module_args
            )
            return branch(**{**args, **routed})
        return self.module(**routed)

    def _train(self, pairs, y, seed, *, callbacks=(), epochs=None):
        """Train a pair net from ``seed`` for ``epochs`` (default ``max_epochs``)."""
        device = resolve_device(self.device)
        cuda = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            branch = self._branch()
            branch.eval()
            with torch.no_grad():
                dim = branch(torch.as_tensor(pairs[0])).shape[1]
            branch.train()
            steps_per_epoch = -(-len(pairs) // self.batch_size)
            base = base_callbacks(self.get_params(), steps_per_epoch)
            net = SiameseNet(
                module=PairBranch(branch),
                criterion=PairLoss,
                criterion__loss=self.loss,
                criterion__margin=self.margin,
                criterion__embedding_dim=dim,
                optimizer=self.optimizer,
                lr=self.lr,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                iterator_train__shuffle=True,
                iterator_train__generator=torch.Generator().manual_seed(seed),
                train_split=None,
                callbacks=base + list(callbacks) + list(self.callbacks or []),
                verbose=self.verbose,
                device=device,
                **self._routed_params("optimizer__"),
                **self._routed_params("callbacks__"),
            )
            net.initialize()
            if epochs != 0:
                net.partial_fit(pairs, y, epochs=epochs)
            return net

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
        return pair_scores(self.net_, validate_pairs(X, self.sample_shape_))

    def predict_proba(self, X):
        """Calibrated probabilities of "different" and "same".

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2) + sample_shape
            The pairs.

        Returns
        -------
        proba : ndarray of shape (n_pairs, 2)
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
        """
        scores = self.decision_function(X)
        return self.calibrator_.predict(scores[:, None])

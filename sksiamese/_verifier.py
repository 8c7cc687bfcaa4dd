"""SiameseVerifier: same-or-different decisions trained from pair labels alone."""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._base import RoutedParamsMixin, resolve_device, validate_pairs
from ._calibration import platt_scaling
from ._compat import StrOptions, _fit_context
from ._net import pair_net_scores
from ._params import (
    TrainingParams,
    constraints,
    document_parameters,
    warn_unused_training_parameters,
)
from ._selection import train_on_pairs

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
# What the training of pairs reads of the parameters the verifier does not have.
_NOT_APPLICABLE = dict(
    mining="all",
    miner=None,
    classes_per_batch="auto",
    samples_per_class=2,
    accelerator=None,
    augment=False,
    inference_views=1,
)
# Set only when the verifier trains its own network.
_TRAINING_ATTRIBUTES = ("net_", "n_iter_", "loss_curve_", "validation_scores_", "best_epoch_")


@document_parameters(
    *_PARAMETERS,
    loss=(
        "{'contrastive', 'bce'}",
        """\
Contrastive loss on the distance of each pair, or Koch's learned head
with binary cross-entropy. ``'triplet'`` is refused: triplets need
class labels, which pairs do not carry (train a
:class:`SiameseEmbedder` when you have them).""",
    ),
    max_epochs="Number of epochs, each a pass over the pairs in shuffled batches.",
    batch_size="Pairs per training batch, and per inference batch.",
    early_stopping="""\
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
improvement, ``False`` trains every epoch on every pair.""",
    validation_fraction="Share of the pairs held out by ``early_stopping``.",
)
class SiameseVerifier(ClassifierMixin, RoutedParamsMixin, BaseEstimator):
    """Decide whether two samples belong together, trained from pair labels.

    For data labelled as pairs (genuine or forged signature, duplicate or
    distinct question) rather than by class. ``fit(pairs, y)`` trains the twin
    network on the given pairs; ``decision_function`` scores new pairs,
    ``predict_proba`` turns the score into a calibrated probability of "same"
    (Platt scaling, fitted on the pairs held out by ``early_stopping``), and
    ``predict`` thresholds it at 0.5. The labels ``y`` are any two values:
    the greater of the two, ``classes_[1]``, means "same" (1, ``True``,
    ``'genuine'``, ``'same'``), as it is the positive class of scikit-learn's
    binary classifiers; recode labels that sort the other way (``'match'``
    before ``'non-match'``) before ``fit``. To pick another operating point, wrap the verifier in
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
        trained on. The training parameters below then do not apply: ``fit``
        warns about any set away from its default.
    {parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels of ``y``, sorted: ``classes_[0]`` means different,
        ``classes_[1]`` same.
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
        Features of one sample of a pair, flattened (as
        :class:`SiameseEmbedder` counts them).
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
    >>> labels = np.where(same == 1, "genuine", "forged")
    >>> verifier.fit(pairs[:1500], labels[:1500]).classes_.tolist()
    ['forged', 'genuine']
    """

    _parameter_constraints = {
        "embedder": [None, FrozenEstimator],
        **constraints(
            _PARAMETERS,
            # Pairs carry no class labels, which module losses take.
            loss=[StrOptions({"contrastive", "triplet", "bce"})],
        ),
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
        self._store_parameters(locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train on labelled pairs.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2) + sample_shape
            The pairs.
        y : array-like of shape (n_pairs,)
            Two labels: ``classes_[1]``, the greater, where the two samples
            belong together, ``classes_[0]`` where not.

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
        if y is None:
            raise ValueError(
                "SiameseVerifier requires y to be passed, but the target y is None: "
                "label each pair as same or different."
            )
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes, same = np.unique(y, return_inverse=True)
        if len(classes) != 2:
            raise ValueError(
                "Only binary classification is supported: y must hold exactly two "
                "classes, one label for different pairs and one for same pairs; got "
                f"{len(classes)} class(es): {classes.tolist()[:10]}."
            )
        pairs = validate_pairs(X)
        check_consistent_length(pairs, y)
        same = same.reshape(-1).astype(np.int64)
        sample_shape = tuple(pairs.shape[2:])
        # Fitted attributes are set only once nothing can fail: a refit that
        # raises leaves the estimator as it was.
        if self.embedder is not None:
            warn_unused_training_parameters(self, "embedder is given")
            embedder = self._trained_embedder(sample_shape)
            calibrator = platt_scaling(_embedder_scores(embedder, pairs), same)
            self._start_fitted_state(classes, sample_shape)
            self.embedder_, self.calibrator_ = embedder, calibrator
            return self
        params = TrainingParams.of(self, **_NOT_APPLICABLE)
        device = resolve_device(self.device)
        trained = train_on_pairs(
            params, pairs, same, device, check_random_state(self.random_state), "SiameseVerifier"
        )
        if trained.held_out is None:
            calibration = pair_net_scores(trained.net, pairs), same
        else:
            # Scores of pairs the net never trained on: the net trained again
            # on every pair is calibrated by the map fitted on its held-out twin.
            held = trained.held_out
            calibration = pair_net_scores(trained.selected_net, pairs[held]), same[held]
        self._start_fitted_state(classes, sample_shape)
        self.net_ = trained.net
        self._default_module_args = trained.data_args
        self.loss_curve_ = (
            list(self.net_.history[:, "train_loss"]) if len(self.net_.history) else []
        )
        self.n_iter_ = len(self.loss_curve_)
        self.validation_scores_, self.best_epoch_ = trained.validation_scores, trained.best_epoch
        self.calibrator_ = platt_scaling(*calibration)
        return self

    def _start_fitted_state(self, classes, sample_shape):
        """Drop what an earlier fit of either kind left; record the labels and the pairs' shape."""
        for name in (*_TRAINING_ATTRIBUTES, "embedder_", "_default_module_args"):
            vars(self).pop(name, None)
        self.classes_ = classes
        self.sample_shape_ = sample_shape
        self.n_features_in_ = int(np.prod(sample_shape))

    def _trained_embedder(self, sample_shape):
        """The given embedder, checked to be a trained SiameseEmbedder for these pairs."""
        if not hasattr(self.embedder.estimator, "_paired_similarity"):
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
            return _embedder_scores(self.embedder_, pairs)
        return pair_net_scores(self.net_, pairs)

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
        """``classes_[1]`` where the pair is more likely the same than not, else ``classes_[0]``.

        Parameters
        ----------
        X : array-like of shape (n_pairs, 2) + sample_shape
            The pairs.

        Returns
        -------
        y_pred : ndarray of shape (n_pairs,)
            ``classes_[1]`` for same, ``classes_[0]`` for different.
        """
        scores = self.decision_function(X)
        return self.classes_[self.calibrator_.predict(scores[:, None])]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.target_tags.required = True
        return tags


def _embedder_scores(embedder, pairs):
    """A trained embedder's similarity of each pair, as float64."""
    return embedder.estimator._paired_similarity(pairs).numpy().astype(np.float64)

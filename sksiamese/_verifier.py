"""SiameseVerifier: is a sample what it claims to be, judged against K references."""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ._base import RoutedParamsMixin, resolve_device
from ._calibration import platt_scaling
from ._claims import (
    AGGREGATIONS,
    NORMALIZATIONS,
    ClaimRule,
    encode_claim_labels,
    expand_to_pairs,
    held_out_claims,
    validate_claims,
)
from ._compat import StrOptions, _fit_context
from ._net import embed_members, pair_net_embedding
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
    checkpoint_dir=None,
    warm_start=False,
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
again on every pair up to the latest epoch that beat the untrained
network (none: the untrained network, with a warning), and keep that
network. Pairs that share samples
through "same" labels are held out together, with every pair that
touches them, so that the held-out pairs come from classes training
never saw as far as the pairs reveal classes (pairs of
:func:`~sksiamese.pairs.make_pairs` do); otherwise random pairs are
held out. The curve is in ``validation_scores_``. ``'auto'`` does this
whenever both parts can hold same and different pairs, ``True``
requires it and also stops after ``n_iter_no_change`` epochs without
improvement, ``False`` trains every epoch on every pair. The pairs
of a claim (its questioned sample with each reference) are held out
together, and the epoch is chosen by the ROC AUC of single pairs, not
of the aggregated claim score that is then calibrated.""",
    validation_fraction="Share of the pairs held out by ``early_stopping``.",
)
class SiameseVerifier(ClassifierMixin, RoutedParamsMixin, BaseEstimator):
    """Decide whether a sample belongs with references, trained from labelled claims.

    For data labelled as pairs or claims (genuine or forged signature,
    duplicate or distinct question) rather than by class. Each sample of
    ``X`` is a claim: a questioned sample followed by K references of the
    identity it claims, shape ``(1 + K, *sample_shape)``; with K = 1 it is a
    pair. ``fit(X, y)`` trains the twin network on the claims' pairs
    (questioned, reference); ``decision_function`` scores new claims by
    ``aggregation`` and ``normalization``, ``predict_proba`` turns the score
    into a calibrated probability of "same" (Platt scaling, fitted on the
    claims held out by ``early_stopping``), and ``predict`` thresholds it at
    0.5. :class:`~sksiamese.ReferenceSet` keeps each identity's references
    and builds the claims; enrolling an identity never retrains.

    The labels ``y`` are any two values: the greater of the two,
    ``classes_[1]``, means "same" (1, ``True``, ``'genuine'``, ``'same'``), as
    it is the positive class of scikit-learn's binary classifiers; recode
    labels that sort the other way (``'match'`` before ``'non-match'``)
    before ``fit``. To pick another operating point, wrap the verifier in
    :class:`sklearn.model_selection.TunedThresholdClassifierCV` (for example
    for balanced accuracy, or the most genuine claims accepted at a target
    false-accept rate with
    :func:`~sksiamese.metrics.make_false_accept_scorer`) or
    :class:`sklearn.model_selection.FixedThresholdClassifier` (with
    :func:`~sksiamese.metrics.false_accept_threshold`).

    A :class:`SiameseEmbedder` already trained on class labels can be passed
    as ``embedder``: the verifier then only calibrates its claim scores, and
    scikit-learn's threshold tools work on it the same way.

    The number of references K is part of what is fitted (``n_references_``):
    the scores of 12 references are not distributed as those of one, so a
    verifier calibrated on one K refuses claims of another.

    Parameters
    ----------
    embedder : FrozenEstimator or None, default=None
        ``None`` trains a twin network on the claims' pairs, from the parameters
        below. A trained :class:`SiameseEmbedder` wrapped in
        :class:`~sklearn.frozen.FrozenEstimator` (pairs carry no class labels
        to train it on, and the wrapper keeps it trained through ``clone``)
        is used as it is: ``fit`` scores the claims by its similarity and fits
        the calibrator on them, so give it claims of classes the embedder never
        trained on. The training parameters below then do not apply: ``fit``
        warns about any set away from its default.
    aggregation : {{'mean', 'best', 'prototype'}}, default='mean'
        How a claim's K similarities become one score: their mean, the best
        of them (the nearest reference), or the similarity to the mean
        embedding of the references (the prototype). All three are the same
        for K = 1.
    normalization : {{'references', None}}, default='references'
        ``'references'`` divides the claim's aggregated distance by the mean
        distance between its own references, so that an identity whose
        samples vary much is allowed more; the spread is floored at a tenth
        of its median over the claims seen in ``fit``, so that
        near-identical references do not make extreme scores. With K = 1
        there is no spread to measure and the score is not normalised. ``None`` keeps the
        similarity (minus the distance, or the Koch head's logit).
    {parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels of ``y``, sorted: ``classes_[0]`` means different,
        ``classes_[1]`` same.
    n_references_ : int
        References per claim seen in ``fit`` (1 for pairs); ``predict`` and
        the other methods take claims with as many.
    embedder_ : FrozenEstimator
        The given ``embedder``, which scores the claims; only with one.
    net_ : SiameseNet
        The trained skorch net; its module applies the branch to both
        members. Only without ``embedder``, as are the training attributes
        ``n_iter_``, ``loss_curve_``, ``validation_scores_`` and
        ``best_epoch_``.
    calibrator_ : LogisticRegression
        Maps ``decision_function`` to the probability of "same": Platt
        scaling (smoothed targets, no regularisation) fitted on the held-out
        claims (one split, the one that chose the epoch) as scored by the
        network trained without them; on the training claims when none were
        held out (``early_stopping=False``, or claims that cannot be split),
        which makes the probabilities over-confident. With ``embedder``: on
        the claims given to ``fit``.
    sample_shape_ : tuple of int
        Shape of one sample of a claim.
    n_features_in_ : int
        Features of one sample of a claim, flattened (as
        :class:`SiameseEmbedder` counts them).
    n_iter_ : int
        Epochs the network of ``net_`` was trained.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    validation_scores_ : list of float or None
        ROC AUC of the held-out pairs: of the untrained network first, then
        after each epoch. ``None`` when no pairs were held out.
    best_epoch_ : int
        The epoch the held-out pairs chose (0: the untrained network was
        kept), the index of its score in ``validation_scores_``; the last
        epoch when no pairs were held out. The network was then trained again
        on every pair for ``n_iter_`` epochs: up to the latest epoch whose
        ROC AUC beat the untrained network's.

    See Also
    --------
    SiameseEmbedder : Trained from class labels; ``pair_score`` scores pairs.
    ReferenceSet : Enrolled references per identity; builds the claims.
    sksiamese.pairs.make_pairs : Balanced pairs from labelled samples.
    sksiamese.pairs.make_claims : Balanced claims from labelled samples.

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
        "aggregation": [StrOptions(set(AGGREGATIONS))],
        "normalization": [StrOptions(set(NORMALIZATIONS)), None],
    }

    def __init__(
        self,
        *,
        embedder=None,
        aggregation="mean",
        normalization="references",
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
        """Train on labelled claims (or pairs).

        Parameters
        ----------
        X : array-like of shape (n_claims, 1 + n_references) + sample_shape
            The claims: a questioned sample, then its references; pairs
            when ``n_references`` is 1.
        y : array-like of shape (n_claims,)
            Two labels: ``classes_[1]``, the greater, where the questioned
            sample belongs with its references, ``classes_[0]`` where not.

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
        classes, same = encode_claim_labels(y)
        claims = validate_claims(X)
        check_consistent_length(claims, same)
        sample_shape = tuple(claims.shape[2:])
        # Fitted attributes are set only once nothing can fail: a refit that
        # raises leaves the estimator as it was.
        if self.embedder is not None:
            warn_unused_training_parameters(self, "embedder is given")
            embedder = self._trained_embedder(sample_shape)
            similarity = embedder.estimator.similarity_
            members = embedder.estimator._embed_members(claims)
            rule = self._fitted_rule(similarity, members)
            calibrator = platt_scaling(rule.scores(similarity, members), same)
            self._start_fitted_state(classes, claims.shape, rule)
            self.embedder_, self.calibrator_ = embedder, calibrator
            return self
        params = TrainingParams.of(self, **_NOT_APPLICABLE)
        device = resolve_device(self.device)
        pairs, pair_same = expand_to_pairs(claims, same)
        n_references = claims.shape[1] - 1
        rng = check_random_state(self.random_state)
        units = np.repeat(np.arange(len(claims)), n_references)  # held out by whole claims
        trained = train_on_pairs(
            params, pairs, pair_same, device, rng, "SiameseVerifier", units=units
        )
        similarity = trained.net.criterion_.similarity
        members = _net_members(trained.net, claims)
        rule = self._fitted_rule(similarity, members)
        held = held_out_claims(trained.held_out, n_references, same)
        if held is None:
            calibration = rule.scores(similarity, members), same
        else:
            # Scores of claims the net never trained on: the net trained again
            # on every claim is calibrated by the map fitted on its held-out twin.
            selected = trained.selected_net
            held_members = _net_members(selected, claims[held])
            calibration = rule.scores(selected.criterion_.similarity, held_members), same[held]
        self._start_fitted_state(classes, claims.shape, rule)
        self.net_ = trained.net
        self._default_module_args = trained.data_args
        self.loss_curve_ = (
            list(self.net_.history[:, "train_loss"]) if len(self.net_.history) else []
        )
        self.n_iter_ = len(self.loss_curve_)
        self.validation_scores_, self.best_epoch_ = trained.validation_scores, trained.best_epoch
        self.calibrator_ = platt_scaling(*calibration)
        return self

    def _start_fitted_state(self, classes, claims_shape, rule):
        """Drop what an earlier fit of either kind left; record labels, claims' shape and rule."""
        for name in (*_TRAINING_ATTRIBUTES, "embedder_", "_default_module_args"):
            vars(self).pop(name, None)
        self.classes_ = classes
        self.n_references_ = claims_shape[1] - 1
        self.sample_shape_ = tuple(claims_shape[2:])
        self.n_features_in_ = int(np.prod(self.sample_shape_))
        # The rule the calibrator was fitted for, whatever set_params does later.
        self._rule = rule

    def _fitted_rule(self, similarity, members):
        return ClaimRule.fitted(self.aggregation, self.normalization, similarity, members)

    def _trained_embedder(self, sample_shape):
        """The given embedder, checked to be a trained SiameseEmbedder for these claims."""
        if not hasattr(self.embedder.estimator, "_embed_members"):
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
                f"The claims hold samples of shape {sample_shape}, and the embedder "
                f"was trained on samples of shape {self.embedder.sample_shape_}."
            )
        return self.embedder

    def decision_function(self, X):
        """Score of each claim: its similarity to the references, aggregated and normalised.

        Parameters
        ----------
        X : array-like of shape (n_claims, 1 + K) + sample_shape
            The claims, K the ``n_references_`` of ``fit`` (pairs for one).

        Returns
        -------
        scores : ndarray of shape (n_claims,)
            Higher means more likely the same; see ``aggregation`` and
            ``normalization``.
        """
        check_is_fitted(self)
        claims = validate_claims(X, self.sample_shape_, self.n_references_)
        if hasattr(self, "embedder_"):
            estimator = self.embedder_.estimator
            return self._rule.scores(estimator.similarity_, estimator._embed_members(claims))
        return self._rule.scores(self.net_.criterion_.similarity, _net_members(self.net_, claims))

    def predict_proba(self, X):
        """Calibrated probabilities of "different" and "same".

        Parameters
        ----------
        X : array-like of shape (n_claims, 1 + K) + sample_shape
            The claims, K the ``n_references_`` of ``fit`` (pairs for one).

        Returns
        -------
        proba : ndarray of shape (n_claims, 2)
            Columns follow ``classes_``: different, same.
        """
        scores = self.decision_function(X)
        return self.calibrator_.predict_proba(scores[:, None])

    def predict(self, X):
        """``classes_[1]`` where the claim is more likely the same than not, else ``classes_[0]``.

        Parameters
        ----------
        X : array-like of shape (n_claims, 1 + K) + sample_shape
            The claims, K the ``n_references_`` of ``fit`` (pairs for one).

        Returns
        -------
        y_pred : ndarray of shape (n_claims,)
            ``classes_[1]`` for same, ``classes_[0]`` for different.
        """
        scores = self.decision_function(X)
        return self.classes_[self.calibrator_.predict(scores[:, None])]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is (n_claims, 1 + K, *sample_shape). two_d_array stays True, untrue
        # as it is: scikit-learn runs none of its checks on an estimator
        # without it, and tests/test_common.py lists those that feed 2-D X.
        tags.input_tags.three_d_array = True
        tags.classifier_tags.multi_class = False
        tags.target_tags.required = True
        return tags


def _net_members(net, claims):
    """Embeddings ``(n_claims, 1 + K, dim)`` of the members of each claim under a pair net."""
    return embed_members(pair_net_embedding(net), claims)

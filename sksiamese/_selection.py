"""Keep what transfers: choose the training state on data held out from training.

A similarity learned from few classes can over-fit them and compare *new*
classes worse than the untrained network does. So, by default (with 4 to 49
classes, and always for pairs), ``fit`` holds out part of the training data
(:mod:`sksiamese._held_out`), scores the untrained network and the network
after every epoch on it (one-shot accuracy on held-out classes, or ROC AUC on
held-out pairs), and keeps the best state, the untrained one included. This
module owns that rule and returns what it decided as a :class:`TrainedNet`.

The rule, documented in the estimators' ``early_stopping`` parameter:

- classes: ``max(5, validation_fraction * C)`` of the ``C`` classes with two
  or more samples are held out, never more than half of them, and at least two
  must be held out and two left for training (so ``C >= 4``). A trained
  epoch is kept only if it beats the untrained net beyond the noise of the
  held-out episodes (the 95% interval of its gain, episode by episode). With
  fewer than ``FEW_CLASSES`` classes the held-out classes are too large a
  share of the data to give up: the net is trained again on every class for as many
  epochs as the latest epoch that still beats the untrained net beyond
  noise, with the learning-rate schedule of that many epochs (so that
  ``'onecycle'`` anneals to its end). Not the best epoch's count: trained on
  more classes, the net over-fits later than on the classes left after the
  hold-out; in the three development runs where retraining had stopped
  before the last epoch, training on transferred better
  (``benchmarks/defaults_panel.py``). Otherwise (only under
  ``early_stopping=True``: ``'auto'`` does not hold classes out there) the
  selected net is kept.
- pairs: pairs that share samples through "same" labels form groups (the
  classes behind the pairs, as far as the pairs reveal them); whole groups are
  held out, and the pairs that touch them, until ``validation_fraction`` of the
  pairs is held out. When that is impossible (one group holds most pairs) a
  random ``validation_fraction`` of the pairs is held out instead. The net is
  then trained again on every pair, as for few classes.
"""

import copy
import dataclasses
from typing import Any

import numpy as np
from skorch.callbacks import Callback

from ._distributed import (
    check_data_parallel,
    decided_once,
    join_launched_group,
    local_device,
    world,
)
from ._held_out import (
    HeldOutPairAUC,
    OneShotEpisodes,
    hold_out_classes,
    hold_out_pairs,
    pair_groups,
)
from ._intervals import ci95_half_width
from ._training import draw_seeds, fit_net, mlp_data_args
from ._warnings import warn

# Below this many classes, the net is retrained on all of them (up to the latest
# epoch that clearly transferred), and the default MLP starts from the input's geometry.
FEW_CLASSES = 50


def selection_mode(early_stopping):
    """``'auto'``, ``True`` or ``False`` from the parameter (NumPy booleans included)."""
    return early_stopping if isinstance(early_stopping, str) else bool(early_stopping)


@dataclasses.dataclass(frozen=True)
class TrainedNet:
    """What the training of one fit decided.

    Attributes
    ----------
    net : SiameseNet
        The net to keep: trained on every row, or the selected state, or
        trained again on every row for ``epochs`` epochs where the rule says
        so.
    data_args : dict
        The default module's arguments that depend on the training data.
    validation_scores : list of float or None
        The held-out score of the untrained net, then of each epoch;
        ``None`` when nothing was held out.
    best_epoch : int
        The epoch the held-out rows chose (0: the untrained net); the last
        one when nothing was held out.
    epochs : int
        The epochs ``net`` was trained: ``best_epoch``, or, where it was
        trained again on every row, the latest epoch that beats the
        untrained net beyond noise (``KeepBestOnHeldOut.latest_clear_gain``).
    selected_net : SiameseNet or None
        The net trained without the held-out rows, at ``epochs``: what
        held-out choices made after the selection score (calibration,
        test-time views). Where ``net`` was trained again, it stands for
        that net, which saw more rows on a schedule of its own length.
    held_out : ndarray of int or None
        The held-out rows (pairs, for the verifier).
    check : OneShotEpisodes or None
        Episodes on the held-out classes other than those that chose the
        epoch, for the choices made after it (test-time views, calibration).
    """

    net: Any
    data_args: dict
    validation_scores: list | None = None
    best_epoch: int | None = None
    epochs: int | None = None
    selected_net: Any = None
    held_out: Any = None
    check: Any = None


def train_on_classes(params, X, codes, device, random_state, owner):
    """Train the net of an embedder's fit, selecting on held-out classes by the rule."""
    join_launched_group(device)
    device = local_device(device)
    seeds = draw_seeds(random_state)
    check_data_parallel(params, X, codes, seeds)
    mode = selection_mode(params.early_stopping)
    n_classes = int((np.bincount(codes) >= 2).sum())
    few = n_classes < FEW_CLASSES
    if params.start_from is not None:  # warm_start: the fitted network's architecture
        data_args = params.start_from[1]
    else:
        data_args = mlp_data_args(X, few, np.random.RandomState(seeds["scale"]))
    split = scorer = check = None
    if mode is True or (mode == "auto" and few):
        rng = np.random.RandomState(seeds["split"])
        split = _required(
            hold_out_classes(codes, params.validation_fraction, rng),
            mode,
            "holds out classes, which needs at least four classes with two or more "
            "samples; use early_stopping='auto' or False.",
        )
    if split is not None:
        held = split[1]
        rng = np.random.RandomState(seeds["valid"])
        scorer = OneShotEpisodes(X[held], codes[held], rng)
        check = OneShotEpisodes(X[held], codes[held], rng)
    # With few classes, too many were held out to give them up: train again on
    # every class, up to the latest epoch that still transferred.
    trained = _train(
        params, X, codes, data_args, device, seeds, split, scorer, retrain=few, pairs=False
    )
    _warn_if_untrained_is_best(owner, trained, "1-shot accuracy")
    return dataclasses.replace(trained, check=check)


def train_on_pairs(params, pairs, same, device, random_state, owner, *, units=None):
    """Train the net of a verifier's fit, selecting on held-out pairs by the rule.

    ``validation_fraction`` of the pairs are held out (grouped by the classes
    the "same" labels reveal), scored by ROC AUC, and the net is trained
    again on every pair up to the latest epoch that beat the untrained net.
    ``units`` (the claim of each pair) keeps the pairs of a claim together:
    all held out, or none.
    """
    seeds = draw_seeds(random_state)
    if world()[1] > 1:
        raise ValueError(
            "Data-parallel training shares class-balanced batches between the processes; "
            f"{owner} trained on pairs runs in one process."
        )
    components = pair_groups(pairs, same)
    # The classes behind the pairs, as far as same pairs reveal them.
    n_classes = len(np.unique(components[same == 1]))
    samples = pairs.reshape(-1, *pairs.shape[2:])
    data_args = mlp_data_args(
        samples, n_classes < FEW_CLASSES, np.random.RandomState(seeds["scale"])
    )
    mode = selection_mode(params.early_stopping)
    split = scorer = None
    if mode is not False:
        rng = np.random.RandomState(seeds["split"])
        split = _required(
            _whole_units(
                hold_out_pairs(components, same, params.validation_fraction, rng), units, same
            ),
            mode,
            "holds out pairs, but the pairs cannot be split so that both parts "
            "hold same and different pairs.",
        )
    if split is not None:
        scorer = HeldOutPairAUC(pairs[split[1]], same[split[1]])
    trained = _train(
        params, pairs, same, data_args, device, seeds, split, scorer, retrain=True, pairs=True
    )
    _warn_if_untrained_is_best(owner, trained, "ROC AUC")
    return trained


def _whole_units(split, units, same):
    """``split`` widened so that each unit is held out whole; ``None`` if a part loses a label."""
    if split is None or units is None:
        return split
    held = np.isin(units, units[split[1]])
    if any(len(np.unique(same[part])) < 2 for part in (held, ~held)):
        return None
    return np.flatnonzero(~held), np.flatnonzero(held)


def _required(split, mode, why):
    """``split``; under ``early_stopping=True``, an error when nothing could be held out."""
    if split is None and mode is True:
        raise ValueError(f"early_stopping=True {why}")
    return split


def _train(params, X, y, data_args, device, seeds, split, scorer, *, retrain, pairs):
    """Every epoch on every row without a ``split``; else selected on its held-out rows."""
    if split is not None:
        return _train_keeping_best(
            params, X, y, data_args, device, seeds, split, scorer, retrain=retrain, pairs=pairs
        )
    net = fit_net(params, X, y, data_args, device, seeds, pairs=pairs)
    epochs = len(net.history)
    return TrainedNet(net=net, data_args=data_args, best_epoch=epochs, epochs=epochs)


def _train_keeping_best(params, X, y, data_args, device, seeds, split, scorer, *, retrain, pairs):
    """Train on ``split[0]`` keeping the epoch ``scorer`` rates best on ``split[1]``.

    With ``retrain``, the net is then trained again on every row for as many
    epochs as the latest epoch that beats the untrained net beyond noise,
    its learning-rate schedule spanning them.
    """

    def fit(rows, **kwargs):
        return fit_net(params, X[rows], y[rows], data_args, device, seeds, pairs=pairs, **kwargs)

    patience = params.n_iter_no_change if selection_mode(params.early_stopping) is True else None
    # Where the net is trained again, the selected net ends at the epochs the
    # retraining runs to: calibration and views are chosen on it.
    selection = KeepBestOnHeldOut(
        scorer, patience=patience, keep="latest_gain" if retrain else "best"
    )
    selected_net = fit(split[0], callbacks=[("keep_best", selection)])
    net, epochs = selected_net, selection.best_epoch
    if retrain:
        # The latest epoch that still transfers (on more classes the net
        # over-fits later), the schedule fitted to it: the learning rate then
        # anneals to its end, where the first training's longer schedule,
        # stopped there, would leave it high.
        epochs = selection.latest_clear_gain()
        shorter = dataclasses.replace(params, max_epochs=max(epochs, 1))
        # ``epochs`` 0 builds the net without training it: the untrained one.
        net = fit_net(shorter, X, y, data_args, device, seeds, pairs=pairs, epochs=epochs)
    return TrainedNet(
        net=net,
        data_args=data_args,
        validation_scores=selection.scores,
        best_epoch=selection.best_epoch,
        epochs=epochs,
        selected_net=selected_net,
        held_out=split[1],
    )


class KeepBestOnHeldOut(Callback):
    """skorch callback: score the net before training and after each epoch, choose the best.

    The score of the untrained net is the first entry of ``scores``, so a
    net that training only made worse comes back untrained. Each epoch's score
    is also recorded in the net's history as ``valid_score`` (and
    ``valid_score_best``).

    A scorer may rate the net on each of several items (the held-out
    episodes); the score is then their mean, and only epochs that beat the
    untrained net *clearly* (the 95% interval of their item-by-item gain
    lies above zero) can be the best. On few held-out classes one-shot
    accuracy is noisy, and a trained net that seems a little better than the
    untrained one on them has transferred worse to new classes than the raw
    input (``benchmarks/defaults_panel.py``). Each epoch is tested on its
    own, with no correction for testing many: over 30 epochs, a net that
    training did not help at all passes more often than one time in 40.
    With ``patience``, an epoch counts as an improvement only when it
    becomes the best by this rule.

    Parameters
    ----------
    scorer : callable
        ``scorer(net)`` returns a score, or an array of per-item scores,
        higher is better.
    patience : int or None, default=None
        Stop after this many epochs without improvement; ``None`` runs every
        epoch (the one-cycle schedule's last epochs, at a low learning rate,
        are often the best).
    keep : {'best', 'latest_gain'}, default='best'
        The state the net ends training in: the best epoch's, or that of
        the latest epoch that beats the untrained net clearly
        (:meth:`latest_clear_gain`), the epochs a net trained again on every
        row runs to, so that choices made on this net stand for that one.

    Attributes
    ----------
    scores : list of float
        The untrained net's score, then each epoch's.
    best_epoch : int
        The best epoch; 0 is the untrained net.
    """

    def __init__(self, scorer, patience=None, keep="best"):
        self.scorer = scorer
        self.patience = patience
        self.keep = keep

    def initialize(self):
        self.scores, self.best_epoch, self._items = [], 0, []
        self._kept_state = None
        return self

    def latest_clear_gain(self):
        """The latest epoch that beats the untrained net beyond noise; 0 when none does.

        Never before ``best_epoch``, which beats it too.
        """
        if self.best_epoch == 0:
            return 0
        gaining = [
            epoch
            for epoch in range(self.best_epoch, len(self._items))
            if self._beats_untrained(self._items[epoch])
        ]
        return gaining[-1]

    def state(self):
        """The selection so far, as a checkpoint saves it (:mod:`sksiamese._checkpoints`)."""
        return {"items": self._items, "best_epoch": self.best_epoch, "kept": self._kept_state}

    def restore(self, state):
        """Continue from a checkpoint's :meth:`state`."""
        self._items, self.best_epoch = state["items"], state["best_epoch"]
        self._kept_state = state["kept"]
        self.scores = [float(items.mean()) for items in self._items]

    def _rate(self, net):
        # Data-parallel: process 0 scores, and every process takes its decision.
        return decided_once(lambda: np.atleast_1d(np.asarray(self.scorer(net), dtype=float)))

    @staticmethod
    def _state(net):
        return copy.deepcopy((net.module_.state_dict(), net.criterion_.state_dict()))

    def on_train_begin(self, net, **kwargs):
        # Per-item scores of every epoch (the untrained net's first), and the
        # state to end in so far.
        self._items = [self._rate(net)]
        self._kept_state = self._state(net)
        self.scores, self.best_epoch = [float(self._items[0].mean())], 0

    def on_epoch_end(self, net, **kwargs):
        items = self._rate(net)
        self._items.append(items)
        score = float(items.mean())
        self.scores.append(score)
        # The best of the epochs that beat the untrained net beyond noise.
        gains = self._beats_untrained(items)
        is_best = score > self.scores[self.best_epoch] and gains
        net.history.record("valid_score", score)
        net.history.record("valid_score_best", is_best)
        if is_best:
            self.best_epoch = len(self.scores) - 1
        if is_best or (gains and self.keep == "latest_gain"):
            self._kept_state = self._state(net)
        stalled = len(self.scores) - 1 - self.best_epoch
        if self.patience is not None and stalled >= self.patience:
            raise KeyboardInterrupt  # how skorch's own EarlyStopping ends the fit loop

    def _beats_untrained(self, items):
        return _clear_gain(items - self._items[0])  # the untrained net's

    def on_train_end(self, net, **kwargs):
        module_state, criterion_state = self._kept_state
        net.module_.load_state_dict(module_state)
        net.criterion_.load_state_dict(criterion_state)
        # A copy of the weights, not needed after training: not kept with
        # the net (the per-item scores are, for ``latest_clear_gain``).
        self._kept_state = None


def _clear_gain(gains):
    """Whether per-item ``gains`` are positive beyond noise: their 95% interval lies above 0.

    A single item (one ROC AUC) has no spread to judge by: any gain counts.
    """
    if len(gains) < 2:
        return gains.mean() > 0
    return gains.mean() - ci95_half_width(gains) > 0


def _warn_if_untrained_is_best(owner, trained, measure):
    """Warn when no epoch beat the untrained network on the held-out data."""
    scores = trained.validation_scores
    if scores is None or trained.best_epoch != 0 or len(scores) < 2:
        return
    warn(
        f"No training epoch clearly beat the untrained network on held-out data ({measure}: "
        f"untrained {scores[0]:.3f}, best epoch {max(scores[1:]):.3f}), so "
        f"{owner} keeps the untrained network. Training on few "
        "classes over-fits them; add classes, lower `lr` or `max_epochs`, or pass "
        "`early_stopping=False` to keep the trained network anyway.",
        UserWarning,
    )

"""Building and running the skorch net for one fit."""

import copy

import numpy as np
import torch
from sklearn.utils import Bunch
from sklearn.utils.extmath import row_norms
from skorch.callbacks import LRScheduler, ProgressBar
from skorch.dataset import Dataset
from torch.optim.lr_scheduler import OneCycleLR

from ._batches import ClassBalancedBatches
from ._net import FiniteLoss, SiameseNet, accelerated_net_class
from ._selection import (
    FEW_CLASSES,
    KeepBestOnHeldOut,
    OneShotEpisodes,
    drop_callback,
    hold_out_classes,
    selection_mode,
)
from .augmentation import RandomAffine
from .losses import BCEPairLoss, ContrastiveLoss, TripletLoss
from .modules import ConvBranch, MLPBranch


def default_module(sample_shape, embedding_dim, data_args=None):
    """The default branch for samples of ``sample_shape`` and its arguments.

    ``data_args`` are the arguments that depend on the training data, from
    :func:`mlp_data_args`; they apply to the MLP only.
    """
    if len(sample_shape) == 1:
        args = {"n_features": sample_shape[0], "embedding_dim": embedding_dim}
        return MLPBranch, {**args, **(data_args or {})}
    return ConvBranch, {"input_shape": sample_shape, "embedding_dim": embedding_dim}


def mlp_data_args(X, n_classes, rng):
    """The MLP's arguments that depend on the data: input scale and residual start.

    The input scale is the median norm of (a random 2,048 of) the samples.
    The branch starts from the input's geometry when the data has fewer than
    ``FEW_CLASSES`` classes with two or more samples (see
    :class:`~sksiamese.modules.MLPBranch`); its embeddings are then not
    L2-normalised, so that the untrained branch keeps the input's Euclidean
    distances (the raw-input baseline; exactly when ``embedding_dim >=
    n_features``), not their cosines.
    """
    if X.ndim != 2:
        return {}
    rows = rng.choice(X.shape[0], min(X.shape[0], 2048), replace=False)
    scale = float(np.median(np.sqrt(row_norms(X[np.sort(rows)], squared=True))))
    return {"input_scale": scale if scale > 0 else 1.0, "residual": n_classes < FEW_CLASSES}


def criterion_for(params, embedding_dim):
    """The loss class named by ``params['loss']`` and its arguments."""
    loss, mining = params["loss"], params["mining"]
    if loss == "triplet":
        return TripletLoss, {"margin": params["margin"], "mining": mining}
    if mining == "semi_hard":
        raise ValueError(f"loss={loss!r} supports mining='batch_hard' or 'all', not 'semi_hard'.")
    if loss == "contrastive":
        return ContrastiveLoss, {"margin": params["margin"], "mining": mining}
    return BCEPairLoss, {"embedding_dim": embedding_dim, "mining": mining}


def base_callbacks(params, steps_per_epoch):
    """The library's own callbacks: a finite-loss guard and the lr schedule."""
    callbacks = [("finite_loss", FiniteLoss())]
    if params["lr_schedule"] == "onecycle":
        one_cycle = LRScheduler(
            policy=OneCycleLR,
            max_lr=params["lr"],
            total_steps=params["max_epochs"] * steps_per_epoch,
            step_every="batch",
        )
        callbacks.append(("lr_schedule", one_cycle))
    return callbacks


def classes_per_batch(params):
    """``params['classes_per_batch']``, with ``'auto'`` resolved for the loss."""
    if isinstance(params["classes_per_batch"], str):  # 'auto'
        # Chosen on Omniglot validation alphabets: larger batches mean harder
        # in-batch negatives, which helped contrastive and collapsed triplet.
        return 64 if params["loss"] == "contrastive" else 32
    return params["classes_per_batch"]


def _prefixed(prefix, params):
    return {f"{prefix}__{k}": v for k, v in params.items()}


def _steps_per_epoch(params, codes):
    """Training batches per epoch for the class codes ``codes``."""
    batches = ClassBalancedBatches(
        Dataset(np.zeros(len(codes)), codes),
        params["batch_size"],
        classes_per_batch=classes_per_batch(params),
        samples_per_class=params["samples_per_class"],
        seed=0,
    )
    return len(batches)


def augmentation_for(augment, sample_shape, seed):
    """The :class:`RandomAffine` of one fit, or ``None`` when it does not augment.

    ``augment`` is the estimator parameter: a bool, ``'auto'`` (images only)
    or a ``RandomAffine`` whose ranges are used with the fit's own seed.
    """
    images = len(sample_shape) >= 2
    if isinstance(augment, str):  # 'auto'
        augment = images
    if not augment:
        return None
    if not images:
        raise ValueError("augment needs images (n, H, W) or (n, C, H, W); X is 2-D.")
    template = augment if isinstance(augment, RandomAffine) else RandomAffine()
    return template.with_seed(seed)


def build_net(params, sample_shape, device, seeds, steps_per_epoch, data_args=None, callbacks=()):
    """A ``SiameseNet`` for the estimator parameters ``params``.

    ``params`` is the dictionary of the estimator's shared parameters
    (including routed ``module__*`` ones); ``data_args`` those of the default
    module that depend on the training data (:func:`mlp_data_args`);
    ``callbacks`` more of the library's own, run before the user's.
    """
    module = params["module"]
    module_args = {}
    if module is None:
        module, module_args = default_module(sample_shape, params["embedding_dim"], data_args)
    elif isinstance(module, torch.nn.Module):
        module = copy.deepcopy(module)
    # Routed parameters (``module__residual=False``) override the defaults.
    routed = {**_prefixed("module", module_args), **{k: v for k, v in params.items() if "__" in k}}
    criterion, criterion_args = criterion_for(params, params["embedding_dim"])
    balanced = dict(
        classes_per_batch=classes_per_batch(params),
        samples_per_class=params["samples_per_class"],
        device=None if params["accelerator"] is not None else device,
    )
    callbacks = base_callbacks(params, steps_per_epoch) + list(callbacks)
    if params["verbose"]:
        # skorch's PrintLog prints the epoch table whenever verbose is set.
        callbacks.append(("progress_bar", ProgressBar(batches_per_epoch="auto")))
    augmentation = augmentation_for(params["augment"], sample_shape, seeds["augment"])
    net_class, placement = SiameseNet, {"device": device}
    accelerator = params["accelerator"]
    if accelerator is not None:
        net_class, placement = accelerated_net_class(), {"accelerator": accelerator}
        if accelerator.device_placement:
            placement["device"] = None  # the accelerator places the module
        seeds = {**seeds, "train": seeds["train"] + accelerator.process_index}
    return net_class(
        module=module,
        augmentation=augmentation,
        criterion=criterion,
        optimizer=params["optimizer"],
        lr=params["lr"],
        max_epochs=params["max_epochs"],
        batch_size=params["batch_size"],
        iterator_train=ClassBalancedBatches,
        train_split=None,
        callbacks=callbacks + list(params["callbacks"] or []),
        verbose=params["verbose"],
        **placement,
        **_prefixed("criterion", criterion_args),
        **_prefixed("iterator_train", {**balanced, "seed": seeds["train"]}),
        **routed,
    )


def _output_dim(net, X):
    """Embedding size of the initialised module, from one forward pass."""
    probe = torch.as_tensor(X[:2].toarray() if hasattr(X, "toarray") else X[:2])
    net.module_.eval()
    with torch.no_grad():
        out = net.module_(probe.to(next(net.module_.parameters()).device))
    if out.dim() != 2 or len(out) != len(probe):
        raise ValueError(
            "The module must map a batch of n samples to an (n, embedding_dim) "
            f"tensor; it returned shape {tuple(out.shape)} for {len(probe)} samples."
        )
    return out.shape[1]


def draw_seeds(random_state):
    """Independent integer seeds for each source of randomness of one fit."""
    names = ("init", "train", "valid", "split", "augment")
    values = random_state.randint(np.iinfo(np.int32).max, size=len(names))
    return dict(zip(names, map(int, values), strict=True))


def _fit(params, X, codes, data_args, device, seeds, *, callbacks=(), epochs=None):
    """Build a net and train it for ``epochs`` (all of ``max_epochs`` by default)."""
    cuda = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seeds["init"])
        steps_per_epoch = _steps_per_epoch(params, codes)
        net = build_net(params, X.shape[1:], device, seeds, steps_per_epoch, data_args, callbacks)
        net.initialize()
        dim = _output_dim(net, X)
        if params["loss"] == "bce" and dim != params["embedding_dim"]:
            net.set_params(criterion__embedding_dim=dim)
        if epochs != 0:
            net.partial_fit(X, codes, epochs=epochs)
    return net


def train_net(params, X, codes, device, random_state):
    """Build and train the net, keeping what transfers to held-out classes.

    Returns a ``Bunch``: ``net``, the trained net; ``default_module_args``,
    the default module's data-dependent arguments; and, when classes were
    held out (see :mod:`sksiamese._selection` for the rule), ``selection``,
    the ``KeepBestOnHeldOut`` callback with its ``scores`` and
    ``best_epoch``, ``selected_net``, the net trained without the held-out
    classes (``net`` itself unless it was trained again on every class), and
    ``check``, other episodes on the held-out classes for choices made after
    the selection. Without held-out classes these three are ``None``. Torch's
    global random state is restored after.
    """
    seeds = draw_seeds(random_state)
    mode = selection_mode(params["early_stopping"])
    n_classes = int((np.bincount(codes) >= 2).sum())
    data_args = mlp_data_args(X, n_classes, np.random.RandomState(seeds["split"]))
    split = None
    # With many classes, 'auto' trains on all of them: on the Omniglot validation
    # alphabets holding out 10% of 136 or 544 classes cost 0.8 to 2.4 points of
    # 1-shot accuracy for each loss, and no selection saved a network there.
    if mode is True or (mode == "auto" and n_classes < FEW_CLASSES):
        split = hold_out_classes(
            codes, params["validation_fraction"], np.random.RandomState(seeds["split"])
        )
        if split is None and mode is True:
            raise ValueError(
                "early_stopping=True holds out classes, which needs at least four "
                "classes with two or more samples; use early_stopping='auto' or False."
            )
    if split is None:
        net = _fit(params, X, codes, data_args, device, seeds)
        return Bunch(
            net=net, default_module_args=data_args, selection=None, selected_net=None, check=None
        )
    train, held = split
    rng = np.random.RandomState(seeds["valid"])
    episodes = OneShotEpisodes(X[held], codes[held], rng)
    check = OneShotEpisodes(X[held], codes[held], rng)
    patience = params["n_iter_no_change"] if mode is True else None
    selection = KeepBestOnHeldOut(episodes, patience=patience)
    keep_best = [("keep_best", selection)]
    selected = _fit(params, X[train], codes[train], data_args, device, seeds, callbacks=keep_best)
    drop_callback(selected, "keep_best")  # it holds held-out samples: not pickled with the net
    net = selected
    if n_classes < FEW_CLASSES:
        # Too many classes were held out to give them up: train again on every
        # class, with the same schedule, up to the epoch that transferred best.
        net = _fit(params, X, codes, data_args, device, seeds, epochs=selection.best_epoch)
    return Bunch(
        net=net,
        default_module_args=data_args,
        selection=selection,
        selected_net=selected,
        check=check,
    )

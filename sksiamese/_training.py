"""Building and training the skorch net of one fit, for the embedder and the verifier."""

import copy
import functools

import numpy as np
import torch
from sklearn.utils import Bunch
from sklearn.utils.extmath import row_norms
from skorch.callbacks import LRScheduler, ProgressBar
from skorch.dataset import Dataset
from torch.optim.lr_scheduler import OneCycleLR

from ._batches import ClassBalancedBatches
from ._net import (
    FiniteLoss,
    PairBranch,
    SiameseNet,
    accelerated_net_class,
    pair_scores,
    release_training_state,
)
from ._selection import (
    FEW_CLASSES,
    HeldOutPairAUC,
    KeepBestOnHeldOut,
    OneShotEpisodes,
    hold_out_classes,
    hold_out_pairs,
    pair_groups,
    selection_mode,
)
from .augmentation import RandomAffine
from .losses import BCEPairLoss, ContrastiveLoss, EmbeddingLoss, PairLoss, TripletLoss
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
    if isinstance(loss, ContrastiveLoss | TripletLoss | BCEPairLoss):
        raise ValueError(
            f"loss={type(loss).__name__}(...) is one of sksiamese's own losses: pass "
            "its name ('contrastive', 'triplet' or 'bce') with `margin` and `mining`."
        )
    if isinstance(loss, torch.nn.Module):
        # Copies: training changes the loss's own parameters; fit leaves params alone.
        return EmbeddingLoss, {"loss": copy.deepcopy(loss), "miner": copy.deepcopy(params["miner"])}
    if params["miner"] is not None:
        raise ValueError(
            f"miner applies to a module loss; loss={loss!r} chooses its pairs and "
            "triplets with `mining`."
        )
    if loss == "triplet":
        return TripletLoss, {"margin": params["margin"], "mining": mining}
    if mining == "semi_hard":
        raise ValueError(f"loss={loss!r} supports mining='batch_hard' or 'all', not 'semi_hard'.")
    if loss == "contrastive":
        return ContrastiveLoss, {"margin": params["margin"], "mining": mining}
    return BCEPairLoss, {"embedding_dim": embedding_dim, "mining": mining}


def one_cycle_per_group(optimizer, **kwargs):
    """``OneCycleLR`` whose every parameter group peaks at its own learning rate.

    A loss with parameters of its own may be given another rate through
    ``optimizer__param_groups``; a single ``max_lr`` would override it.
    """
    peaks = [group.get("max_lr", group["lr"]) for group in optimizer.param_groups]
    return OneCycleLR(optimizer, max_lr=peaks, **kwargs)


def base_callbacks(params, steps_per_epoch):
    """The library's own callbacks: a finite-loss guard and the lr schedule."""
    callbacks = [("finite_loss", FiniteLoss())]
    if params["lr_schedule"] == "onecycle":
        one_cycle = LRScheduler(
            policy=one_cycle_per_group,
            total_steps=params["max_epochs"] * steps_per_epoch,
            # The optimizer's own momentum (Adam's beta1, SGD's momentum) is
            # the user's: torch's default would cycle it, and give plain SGD one.
            cycle_momentum=False,
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


def branch_factory(params, sample_shape, data_args=None):
    """The twin branch as ``(factory, kwargs)``, built by skorch at ``initialize``.

    A module class or ``None`` (the default branch, with ``data_args`` from
    :func:`mlp_data_args`) gets the routed ``module__*`` arguments, which
    override the defaults. An instance is deep-copied at each build, so that
    the estimator's own instance is never trained in place nor moved to a
    device, and a pickled model holds no device tensors outside skorch's
    device-mapped ``module_``.
    """
    module = params["module"]
    routed = {k.removeprefix("module__"): v for k, v in params.items() if k.startswith("module__")}
    if isinstance(module, torch.nn.Module):
        if routed:
            raise ValueError(
                f"module__* arguments ({sorted(routed)}) configure a module class; "
                "module is an instance, so set them on it instead."
            )
        return functools.partial(copy.deepcopy, module), {}
    if module is None:
        module, args = default_module(sample_shape, params["embedding_dim"], data_args)
        if isinstance(params["loss"], torch.nn.Module) and "residual" in args:
            # Module losses (pytorch-metric-learning's) normalise inside the loss:
            # compared by distance, the embeddings must be normalised as trained.
            args = {**args, "normalize": True}
        return module, {**args, **routed}
    return module, routed


def build_net(
    params,
    sample_shape,
    device,
    seeds,
    steps_per_epoch,
    data_args=None,
    callbacks=(),
    *,
    pairs=False,
):
    """A ``SiameseNet`` for the estimator parameters ``params``.

    ``params`` is the dictionary of the estimator's parameters (including
    routed ``module__*``, ``optimizer__*`` and ``callbacks__*`` ones);
    ``data_args`` those of the default module that depend on the training
    data (:func:`mlp_data_args`); ``callbacks`` more of the library's own,
    run before the user's. With ``pairs`` the net learns from labelled pairs
    ``(n, 2, ...)`` (:class:`~sksiamese._net.PairBranch` and
    :class:`~sksiamese.losses.PairLoss`, shuffled batches); otherwise from
    class labels (the loss named by ``params['loss']`` on class-balanced
    batches, with augmentation and accelerate).
    """
    branch, branch_args = branch_factory(params, sample_shape, data_args)
    if pairs:
        task = dict(
            module=PairBranch,
            module__branch=branch,
            criterion=PairLoss,
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(seeds["train"]),
            **_prefixed("module", branch_args),
            criterion__loss=params["loss"],
            criterion__margin=params["margin"],
            criterion__embedding_dim=params["embedding_dim"],
        )
    else:
        task = class_task(params, branch, branch_args, sample_shape, device, seeds)
    callbacks = base_callbacks(params, steps_per_epoch) + list(callbacks)
    if params["verbose"]:
        # skorch's PrintLog prints the epoch table whenever verbose is set.
        callbacks.append(("progress_bar", ProgressBar(batches_per_epoch="auto")))
    net_class, placement = SiameseNet, {"device": device}
    accelerator = params.get("accelerator")
    if accelerator is not None:
        net_class, placement = accelerated_net_class(), {"accelerator": accelerator}
        if accelerator.device_placement:
            placement["device"] = None  # the accelerator places the module
    routed = {k: v for k, v in params.items() if k.startswith("optimizer__")}
    # Copies: training changes a callback's state, and fit leaves parameters alone.
    routed.update(copy.deepcopy({k: v for k, v in params.items() if k.startswith("callbacks__")}))
    return net_class(
        optimizer=params["optimizer"],
        lr=params["lr"],
        max_epochs=params["max_epochs"],
        batch_size=params["batch_size"],
        train_split=None,
        callbacks=callbacks + copy.deepcopy(list(params["callbacks"] or [])),
        verbose=params["verbose"],
        **placement,
        **task,
        **routed,
    )


def class_task(params, branch, branch_args, sample_shape, device, seeds):
    """The net's arguments for learning from class labels (see :func:`build_net`)."""
    criterion, criterion_args = criterion_for(params, params["embedding_dim"])
    accelerator = params["accelerator"]
    train_seed = seeds["train"] + (accelerator.process_index if accelerator is not None else 0)
    balanced = dict(
        classes_per_batch=classes_per_batch(params),
        samples_per_class=params["samples_per_class"],
        device=None if accelerator is not None else device,
        seed=train_seed,
    )
    return dict(
        module=branch,
        augmentation=augmentation_for(params["augment"], sample_shape, seeds["augment"]),
        criterion=criterion,
        iterator_train=ClassBalancedBatches,
        **_prefixed("module", branch_args),
        **_prefixed("criterion", criterion_args),
        **_prefixed("iterator_train", balanced),
    )


def output_dim(module, samples):
    """Embedding size of an initialised branch, from one forward pass on ``samples``."""
    # A copy: the samples may be a read-only view, which torch warns about.
    probe = torch.tensor(samples.toarray() if hasattr(samples, "toarray") else samples)
    module.eval()
    with torch.no_grad():
        out = module(probe.to(next(module.parameters()).device))
    if out.dim() != 2 or len(out) != len(probe):
        raise ValueError(
            "The module must map a batch of n samples to an (n, embedding_dim) "
            f"tensor; it returned shape {tuple(out.shape)} for {len(probe)} samples."
        )
    return out.shape[1]


def branch_of(net):
    """The twin branch of a net built by :func:`build_net`, for samples or pairs."""
    return net.module_.branch if isinstance(net.module_, PairBranch) else net.module_


def draw_seeds(random_state):
    """Independent integer seeds for each source of randomness of one fit."""
    names = ("init", "train", "valid", "split", "augment", "scale")
    values = random_state.randint(np.iinfo(np.int32).max, size=len(names))
    return dict(zip(names, map(int, values), strict=True))


def fit_net(params, X, y, data_args, device, seeds, *, pairs=False, callbacks=(), epochs=None):
    """Build a net and train it for ``epochs`` (all of ``max_epochs`` by default).

    ``X`` holds samples labelled by class codes ``y``, or with ``pairs``
    pairs ``(n, 2, ...)`` labelled 1 (same) or 0 (different). Torch's global
    random state is restored after. The net comes back without the state
    only training needs (:func:`~sksiamese._net.release_training_state`).
    """
    cuda = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    sample_shape = X.shape[2:] if pairs else X.shape[1:]
    steps_per_epoch = -(-len(X) // params["batch_size"]) if pairs else _steps_per_epoch(params, y)
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seeds["init"])
        net = build_net(
            params, sample_shape, device, seeds, steps_per_epoch, data_args, callbacks, pairs=pairs
        )
        net.initialize()
        dim = output_dim(branch_of(net), X[0] if pairs else X[:2])
        if params["loss"] == "bce" and dim != params["embedding_dim"]:
            net.set_params(criterion__embedding_dim=dim)
        if epochs != 0:
            net.partial_fit(X, y, epochs=epochs)
    release_training_state(net)
    return net


def _require_split(split, mode, why):
    """Refuse ``early_stopping=True`` when nothing could be held out."""
    if split is None and mode is True:
        raise ValueError(f"early_stopping=True {why}")


def _train_keeping_best(params, X, y, data_args, device, seeds, split, scorer, *, retrain, pairs):
    """The net of one fit: trained on every row, or selected on held-out rows.

    With a ``split`` ``(train, held_out)``, the net is trained on ``train``
    while :class:`KeepBestOnHeldOut` keeps the epoch ``scorer`` rates best,
    then, with ``retrain``, trained again on every row up to that epoch.
    Returns a ``Bunch`` of ``net``, ``default_module_args``, ``selection``
    (the callback, with the curve) and ``selected_net`` (the net trained on
    ``train``), the last two ``None`` without a split.
    """

    def fit(rows, **kwargs):
        return fit_net(params, X[rows], y[rows], data_args, device, seeds, pairs=pairs, **kwargs)

    result = Bunch(net=None, default_module_args=data_args, selection=None, selected_net=None)
    if split is None:
        result.net = fit(slice(None))
        return result
    patience = None
    if selection_mode(params["early_stopping"]) is True:
        patience = params["n_iter_no_change"]
    result.selection = KeepBestOnHeldOut(scorer, patience=patience)
    result.selected_net = fit(split[0], callbacks=[("keep_best", result.selection)])
    result.net = result.selected_net
    if retrain:
        result.net = fit(slice(None), epochs=result.selection.best_epoch)
    return result


def train_net(params, X, codes, device, random_state):
    """Build and train the net, keeping what transfers to held-out classes.

    Returns a ``Bunch``: ``net``, the trained net; ``default_module_args``,
    the default module's data-dependent arguments; and, when classes were
    held out (see :mod:`sksiamese._selection` for the rule), ``selection``,
    the ``KeepBestOnHeldOut`` callback with its ``scores`` and
    ``best_epoch``, ``selected_net``, the net trained without the held-out
    classes (``net`` itself unless it was trained again on every class), and
    ``check``, other episodes on the held-out classes for choices made after
    the selection (test-time views, calibration). Without held-out classes
    these three are ``None``.
    """
    seeds = draw_seeds(random_state)
    mode = selection_mode(params["early_stopping"])
    n_classes = int((np.bincount(codes) >= 2).sum())
    data_args = mlp_data_args(X, n_classes, np.random.RandomState(seeds["scale"]))
    split = scorer = check = None
    # With many classes, 'auto' trains on all of them: on the Omniglot validation
    # alphabets holding out 10% of 136 or 544 classes cost 0.8 to 2.4 points of
    # 1-shot accuracy for each loss, and no selection saved a network there.
    if mode is True or (mode == "auto" and n_classes < FEW_CLASSES):
        split = hold_out_classes(
            codes, params["validation_fraction"], np.random.RandomState(seeds["split"])
        )
        _require_split(
            split,
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
    # every class, with the same schedule, up to the epoch that transferred best.
    result = _train_keeping_best(
        params,
        X,
        codes,
        data_args,
        device,
        seeds,
        split,
        scorer,
        retrain=n_classes < FEW_CLASSES,
        pairs=False,
    )
    result.check = check
    return result


def train_pair_net(params, pairs, same, device, random_state):
    """Build and train a pair net, keeping what transfers to held-out pairs.

    The verifier's counterpart of :func:`train_net`: ``validation_fraction``
    of the pairs are held out (grouped by the classes the "same" labels
    reveal, :func:`~sksiamese._selection.hold_out_pairs`), scored by ROC AUC,
    and the net is trained again on every pair up to the best epoch. Returns
    a ``Bunch`` with ``net``, ``default_module_args``, ``selection`` and
    ``selected_net`` as :func:`train_net` does, and ``held_out``, the indices
    of the held-out pairs (``None`` when none were).
    """
    seeds = draw_seeds(random_state)
    components = pair_groups(pairs, same)
    # The classes behind the pairs, as far as same pairs reveal them.
    n_classes = len(np.unique(components[same == 1]))
    samples = pairs.reshape(-1, *pairs.shape[2:])
    data_args = mlp_data_args(samples, n_classes, np.random.RandomState(seeds["scale"]))
    mode = selection_mode(params["early_stopping"])
    split = scorer = held = None
    if mode is not False:
        split = hold_out_pairs(
            components, same, params["validation_fraction"], np.random.RandomState(seeds["split"])
        )
        _require_split(
            split,
            mode,
            "holds out pairs, but the pairs cannot be split so that both parts "
            "hold same and different pairs.",
        )
    if split is not None:
        held = split[1]
        scorer = HeldOutPairAUC(pairs[held], same[held], pair_scores)
    result = _train_keeping_best(
        params, pairs, same, data_args, device, seeds, split, scorer, retrain=True, pairs=True
    )
    result.held_out = held
    return result

"""Building and training the skorch net of one fit, for the embedder and the verifier.

What to train on and which epoch to keep is the held-out selection's job
(:mod:`sksiamese._selection`); this module turns a
:class:`~sksiamese._params.TrainingParams` into a ``SiameseNet`` and trains it.
"""

import copy
import functools

import numpy as np
import torch
from sklearn.utils.extmath import row_norms
from skorch.callbacks import LRScheduler, ProgressBar
from skorch.dataset import Dataset
from torch.optim.lr_scheduler import OneCycleLR

from ._batches import ClassBalancedBatches
from ._checkpoints import phase_checkpoint
from ._distributed import check_processes_agree, world
from ._net import FiniteLoss, PairBranch, SiameseNet, accelerated_net_class, release_training_state
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


def mlp_data_args(X, residual, rng):
    """The MLP's arguments that depend on the data: input scale and residual start.

    The input scale is the median norm of (a random 2,048 of) the samples.
    With ``residual`` (few training classes, see :mod:`sksiamese._selection`)
    the branch starts from the input's geometry (see
    :class:`~sksiamese.modules.MLPBranch`); its embeddings are then not
    L2-normalised, so that the untrained branch keeps the input's Euclidean
    distances (the raw-input baseline; exactly when ``embedding_dim >=
    n_features``), not their cosines.
    """
    if X.ndim != 2:
        return {}
    rows = rng.choice(X.shape[0], min(X.shape[0], 2048), replace=False)
    scale = float(np.median(np.sqrt(row_norms(X[np.sort(rows)], squared=True))))
    return {"input_scale": scale if scale > 0 else 1.0, "residual": residual}


def criterion_for(params, embedding_dim):
    """The loss class named by ``params.loss`` and its arguments.

    ``embedding_dim`` is the size of the branch's embeddings, which a
    learned similarity (the Koch head of ``'bce'``) compares.
    """
    loss, mining = params.loss, params.mining
    if isinstance(loss, ContrastiveLoss | TripletLoss | BCEPairLoss):
        raise ValueError(
            f"loss={type(loss).__name__}(...) is one of sksiamese's own losses: pass "
            "its name ('contrastive', 'triplet' or 'bce') with `margin` and `mining`."
        )
    if isinstance(loss, torch.nn.Module):
        # Copies: training changes the loss's own parameters; fit leaves params alone.
        return EmbeddingLoss, {"loss": copy.deepcopy(loss), "miner": copy.deepcopy(params.miner)}
    if params.miner is not None:
        raise ValueError(
            f"miner applies to a module loss; loss={loss!r} chooses its pairs and "
            "triplets with `mining`."
        )
    if loss == "triplet":
        return TripletLoss, {"margin": params.margin, "mining": mining}
    if mining == "semi_hard":
        raise ValueError(f"loss={loss!r} supports mining='batch_hard' or 'all', not 'semi_hard'.")
    if loss == "contrastive":
        return ContrastiveLoss, {"margin": params.margin, "mining": mining}
    if loss == "bce":
        return BCEPairLoss, {"embedding_dim": embedding_dim, "mining": mining}
    raise ValueError(f"Unknown loss {loss!r}: 'contrastive', 'triplet', 'bce' or a module.")


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
    if params.lr_schedule == "onecycle":
        one_cycle = LRScheduler(
            policy=one_cycle_per_group,
            total_steps=params.max_epochs * steps_per_epoch,
            # The optimizer's own momentum (Adam's beta1, SGD's momentum) is
            # the user's: torch's default would cycle it, and give plain SGD one.
            cycle_momentum=False,
            step_every="batch",
        )
        callbacks.append(("lr_schedule", one_cycle))
    return callbacks


def classes_per_batch(params):
    """``params.classes_per_batch``, with ``'auto'`` resolved for the loss."""
    if isinstance(params.classes_per_batch, str):  # 'auto'
        # Larger batches hold harder in-batch negatives, which helped
        # contrastive and collapsed triplet (docs/benchmarks.md).
        return 64 if params.loss == "contrastive" else 32
    return params.classes_per_batch


def _prefixed(prefix, params):
    return {f"{prefix}__{k}": v for k, v in params.items()}


def steps_per_epoch(params, y, *, pairs):
    """Training batches per epoch: shuffled batches of pairs, or class-balanced ones."""
    if pairs:
        return -(-len(y) // params.batch_size)
    batches = ClassBalancedBatches(
        Dataset(np.zeros(len(y)), y),
        params.batch_size,
        classes_per_batch=classes_per_batch(params),
        samples_per_class=params.samples_per_class,
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
    module = params.module
    routed = params.routed_with("module__")
    if isinstance(module, torch.nn.Module):
        if routed:
            raise ValueError(
                f"module__* arguments ({sorted(routed)}) configure a module class; "
                "module is an instance, so set them on it instead."
            )
        return functools.partial(copy.deepcopy, module), {}
    if module is None:
        module, args = default_module(sample_shape, params.embedding_dim, data_args)
        if isinstance(params.loss, torch.nn.Module) and "residual" in args:
            # Module losses (pytorch-metric-learning's) normalise inside the loss:
            # compared by distance, the embeddings must be normalised as trained.
            args = {**args, "normalize": True}
        return module, {**args, **routed}
    return module, routed


def output_dim(module, samples):
    """Embedding size of a branch, from one forward pass on ``samples`` (in eval mode)."""
    # A copy: the samples may be a read-only view, which torch warns about.
    probe = torch.tensor(samples.toarray() if hasattr(samples, "toarray") else samples)
    module.eval()
    with torch.no_grad():
        out = module(probe.to(next(module.parameters(), probe).device))
    if out.dim() != 2 or len(out) != len(probe):
        raise ValueError(
            "The module must map a batch of n samples to an (n, embedding_dim) "
            f"tensor; it returned shape {tuple(out.shape)} for {len(probe)} samples."
        )
    return out.shape[1]


def _branch_output_dim(branch, branch_args, sample_shape):
    """The embedding size of the branch ``branch(**branch_args)`` builds, before training.

    Built once aside, torch's random state restored after: the net's own
    branch is then initialised exactly as if this probe had not run.
    """
    with torch.random.fork_rng(devices=[]):
        return output_dim(branch(**branch_args), np.zeros((2, *sample_shape), np.float32))


def build_net(params, sample_shape, device, seeds, steps, data_args=None, callbacks=(), *, pairs):
    """A ``SiameseNet`` for the training parameters ``params``.

    ``data_args`` are the default module's arguments that depend on the
    training data (:func:`mlp_data_args`); ``steps`` the batches of an epoch
    (for the lr schedule); ``callbacks`` more of the library's own, run
    before the user's. With ``pairs`` the net learns from labelled pairs
    ``(n, 2, ...)`` (:class:`~sksiamese._net.PairBranch` and
    :class:`~sksiamese.losses.PairLoss`, shuffled batches); otherwise from
    class labels (the loss named by ``params.loss`` on class-balanced
    batches, with augmentation and accelerate).
    """
    branch, branch_args = branch_factory(params, sample_shape, data_args)
    embedding_dim = _branch_output_dim(branch, branch_args, sample_shape)
    if pairs:
        task = dict(
            module=PairBranch,
            module__branch=branch,
            criterion=PairLoss,
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(seeds["train"]),
            **_prefixed("module", branch_args),
            criterion__loss=params.loss,
            criterion__margin=params.margin,
            criterion__embedding_dim=embedding_dim,
        )
    else:
        task = _class_task(params, branch, branch_args, embedding_dim, sample_shape, device, seeds)
    callbacks = base_callbacks(params, steps) + list(callbacks)
    if params.verbose:
        # skorch's PrintLog prints the epoch table whenever verbose is set.
        callbacks.append(("progress_bar", ProgressBar(batches_per_epoch="auto")))
    net_class, placement = SiameseNet, {"device": device}
    if params.accelerator is not None:
        net_class, placement = accelerated_net_class(), {"accelerator": params.accelerator}
        if params.accelerator.device_placement:
            placement["device"] = None  # the accelerator places the module
    # Copies: training changes a callback's state, and fit leaves parameters alone.
    routed = {
        **_prefixed("optimizer", params.routed_with("optimizer__")),
        **copy.deepcopy(_prefixed("callbacks", params.routed_with("callbacks__"))),
    }
    return net_class(
        optimizer=params.optimizer,
        lr=params.lr,
        max_epochs=params.max_epochs,
        batch_size=params.batch_size,
        train_split=None,
        callbacks=callbacks + copy.deepcopy(list(params.callbacks or [])),
        verbose=params.verbose,
        **placement,
        **task,
        **routed,
    )


def _class_task(params, branch, branch_args, embedding_dim, sample_shape, device, seeds):
    """The net's arguments for learning from class labels (see :func:`build_net`)."""
    criterion, criterion_args = criterion_for(params, embedding_dim)
    accelerator = params.accelerator
    balanced = dict(
        classes_per_batch=classes_per_batch(params),
        samples_per_class=params.samples_per_class,
        device=None if accelerator is not None else device,
        seed=seeds["train"],
        share=world(),  # data-parallel: the same batch drawn, a share of it kept
    )
    return dict(
        module=branch,
        augmentation=augmentation_for(params.augment, sample_shape, seeds["augment"]),
        criterion=criterion,
        iterator_train=ClassBalancedBatches,
        **_prefixed("module", branch_args),
        **_prefixed("criterion", criterion_args),
        **_prefixed("iterator_train", balanced),
    )


def draw_seeds(random_state):
    """Independent integer seeds for each source of randomness of one fit."""
    names = ("init", "train", "valid", "split", "augment", "scale")
    values = random_state.randint(np.iinfo(np.int32).max, size=len(names))
    return dict(zip(names, map(int, values), strict=True))


def forked_rng(device):
    """``torch.random.fork_rng`` over the CPU and ``device``'s GPU: the global state is restored."""
    cuda = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)


def fit_net(params, X, y, data_args, device, seeds, *, pairs, callbacks=(), epochs=None):
    """Build a net and train it for ``epochs`` (all of ``max_epochs`` by default).

    ``X`` holds samples labelled by class codes ``y``, or with ``pairs``
    pairs ``(n, 2, ...)`` labelled 1 (same) or 0 (different). Torch's global
    random state is restored after. The net comes back without the state
    only training needs (:func:`~sksiamese._net.release_training_state`).
    """
    sample_shape = X.shape[2:] if pairs else X.shape[1:]
    steps = steps_per_epoch(params, y, pairs=pairs)
    with forked_rng(device):
        torch.manual_seed(seeds["init"])
        net = build_net(
            params, sample_shape, device, seeds, steps, data_args, callbacks, pairs=pairs
        )
        net.initialize()
        if params.start_from is not None:  # warm_start: the fitted net's weights
            _load_fitted(net, params.start_from[0])
        # Same seeds, same module: a difference here is a different configuration.
        check_processes_agree(initial_weights=list(net.module_.state_dict().values()))
        todo = net.max_epochs if epochs is None else epochs
        if params.checkpoint_dir is not None and todo:
            checkpoint, done = phase_checkpoint(params.checkpoint_dir, params, seeds, X, y, net)
            check_processes_agree(epochs_in_checkpoint=done)
            net.callbacks_.append(("checkpoint", checkpoint.initialize()))
            todo -= done
        if epochs != 0:
            net.partial_fit(X, y, epochs=todo)
    release_training_state(net)
    return net


def _load_fitted(net, fitted):
    """warm_start: ``net`` takes the weights of ``fitted``, which must be the same network."""
    try:
        net.module_.load_state_dict(fitted.module_.state_dict())
        net.criterion_.load_state_dict(fitted.criterion_.state_dict())
    except RuntimeError as error:
        raise ValueError(
            "warm_start continues the fitted network, but the settings now build another "
            "(a changed module, loss or embedding_dim); set warm_start=False to train "
            f"a new one. {error}"
        ) from error

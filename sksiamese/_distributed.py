"""Data-parallel training on ``torch.distributed``: a share of every batch, the loss on all of it.

Every process draws the same class-balanced batch and embeds its own share
of the classes (:class:`~sksiamese._batches.ClassBalancedBatches`); the
embeddings and labels of all shares are gathered, in rank order, so that the
loss and its miner see the whole batch, as one process would. Only this
process's own embeddings carry a gradient (as in pytorch-metric-learning's
``DistributedLossWrapper``), so each process's gradient is its share of the
whole batch's, and the gradients are summed across processes (not averaged,
as ``DistributedDataParallel`` would, which pytorch-metric-learning undoes by
scaling the loss by the world size); the loss's own parameters, whose
gradient each process computes from the whole batch, are averaged.
Decisions taken on held-out data are taken by process 0 and broadcast.

Processes are started by ``torchrun`` (or ``accelerate launch``); a fit joins
the process group their environment describes when none is initialized.
"""

import numbers
import os

import torch
import torch.distributed as dist

from ._fingerprints import data_digest, digest, settings_digest


def world():
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def join_launched_group(device):
    """Initialise the process group ``torchrun`` describes, when it started several processes.

    Needs nothing from the user's script beyond the launch: ``WORLD_SIZE``,
    ``RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` come from ``torchrun``.
    NCCL for CUDA devices, gloo for the CPU.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not launched or not dist.is_available() or dist.is_initialized():
        return
    if torch.device(device).type == "cuda":
        # NCCL's object exchanges (decisions, agreement checks) use the
        # current device: each process's own GPU, not all GPU 0.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def local_device(device):
    """``device``, as this process's own GPU (``LOCAL_RANK``) in a data-parallel fit."""
    if torch.device(device).type != "cuda" or torch.device(device).index is not None:
        return device
    if world()[1] == 1:
        return device
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"


def gather_batch(embeddings, labels):
    """Every process's ``embeddings`` and ``labels``, concatenated in rank order.

    This process's own rows are the tensors given, which keep their
    gradient; the others are copies. Shares may differ in size (a skipped
    unreadable file): they are padded to the largest for the exchange.
    """
    rank, world_size = world()
    if world_size == 1:
        return embeddings, labels
    sizes = _all_gather(torch.tensor([len(embeddings)], device=embeddings.device))
    largest = int(max(sizes))
    padded = [_pad(tensor.detach(), largest) for tensor in (embeddings, labels)]
    gathered = [_all_gather(tensor) for tensor in padded]
    parts = [
        [tensor[:size] for tensor, size in zip(all_ranks, sizes, strict=True)]
        for all_ranks in gathered
    ]
    parts[0][rank], parts[1][rank] = embeddings, labels
    return torch.cat(parts[0]), torch.cat(parts[1])


def _pad(tensor, length):
    return torch.cat([tensor, tensor.new_zeros((length - len(tensor), *tensor.shape[1:]))])


def _all_gather(tensor):
    parts = [torch.empty_like(tensor) for _ in range(world()[1])]
    dist.all_gather(parts, tensor.contiguous())
    return parts


def combine_gradients(shares, wholes=()):
    """Make every process's gradients those of the whole batch, in one exchange.

    The gradients of ``shares`` (the embedding network's parameters) are each
    process's share of the whole batch's (:func:`gather_batch`): they are
    summed. Those of ``wholes`` (the loss's own parameters, a pair head)
    come from the loss of the whole gathered batch on every process: they
    are averaged, which keeps them the same on every process.
    """
    world_size = world()[1]
    shares = [p.grad for p in shares if p.grad is not None]
    wholes = [p.grad for p in wholes if p.grad is not None]
    grads = shares + wholes
    if world_size == 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in shares] + [g.reshape(-1) / world_size for g in wholes])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    for grad, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        grad.copy_(part.view_as(grad))


def share_buffers(module):
    """Give every process process 0's buffers (batch-norm running statistics).

    Each process updates them from its own share of the batch; as
    ``DistributedDataParallel`` does, process 0's are kept, so that every
    process holds the same network. One exchange per dtype.
    """
    if world()[1] == 1:
        return
    by_dtype = {}
    for buffer in module.buffers():
        by_dtype.setdefault(buffer.dtype, []).append(buffer)
    for buffers in by_dtype.values():
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.broadcast(flat, src=0)
        for buffer, part in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
            buffer.copy_(part.view_as(buffer))


def decided_once(decide):
    """``decide()`` run by process 0 only, its result sent to every process.

    Should ``decide()`` fail, every process raises, instead of the others
    waiting for a result that never comes.
    """
    rank, world_size = world()
    if world_size == 1:
        return decide()
    outcome = [None]
    if rank == 0:
        try:
            outcome = [(True, decide())]
        except Exception as error:
            outcome = [(False, error)]
            dist.broadcast_object_list(outcome, src=0)
            raise
    dist.broadcast_object_list(outcome, src=0)
    succeeded, value = outcome[0]
    if not succeeded:
        raise RuntimeError(f"Process 0 of this data-parallel fit failed: {value!r}") from value
    return value


def check_processes_agree(**facts):
    """Raise when the processes were given different ``facts`` (data, parameters).

    Each fact (a list is a list of parts) is reduced to a digest
    (:mod:`sksiamese._fingerprints`); the error names those on which a
    process differs from process 0.
    """
    rank, world_size = world()
    if world_size == 1:
        return
    mine = {
        name: digest(*value) if isinstance(value, list) else digest(value)
        for name, value in facts.items()
    }
    every = [None] * world_size
    dist.all_gather_object(every, mine)
    differing = sorted(name for name in mine if any(d[name] != every[0][name] for d in every))
    if differing:
        raise ValueError(
            f"The {world_size} processes of this data-parallel fit were given different "
            f"{', '.join(differing)} (process {rank} differs from process 0 or another "
            "does): every process must call fit with the same data and parameters."
        )


def check_data_parallel(params, X, codes, seeds):
    """In a data-parallel fit, check that every process has the same data and settings."""
    if world()[1] == 1:
        return
    if params.accelerator is not None:
        raise ValueError(
            "accelerator= wraps the module in its own DistributedDataParallel, which "
            "averages gradients that sksiamese's data-parallel training sums: launch "
            "with torchrun or accelerate launch, and leave accelerator=None."
        )
    if not isinstance(params.random_state, numbers.Integral):
        raise ValueError(
            "Data-parallel training needs an int random_state, so that every process "
            f"draws the same batches and initial weights; got {params.random_state!r}."
        )
    check_processes_agree(
        data=data_digest(X, codes),
        settings=settings_digest(params, seeds),
        # Checkpointing adds exchanges (the epochs saved): all or none.
        checkpointing=params.checkpoint_dir is not None,
    )

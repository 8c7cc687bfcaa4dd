"""Checkpoints of a fit, written after every epoch, from which a killed fit resumes.

A fit trains one net or two (the held-out selection, then the retraining on
every class): each is a *phase*, with a file of its own in
``checkpoint_dir``, named by a digest of the fit's settings and seeds, the
phase's data, its initial weights and its epochs. The file holds everything
the next epoch depends on: weights, optimizer, learning-rate schedule, the
held-out selection's scores, the batch sampler's and the augmentation's
random generators, torch's global generators (CPU and CUDA), and the history. Resumed, the
phase ends with the weights an uninterrupted fit ends with (bitwise on the
CPU). skorch's own ``Checkpoint`` saves the parameters, optimizer and
history, not the schedule nor the generators a bitwise resume needs.

Files are written whole to a temporary name and renamed, so a kill while
writing leaves the previous checkpoint; each carries a SHA-256 digest of its
content, so a damaged file is refused, never read as something else.
"""

import io
import numbers
import os
import uuid
from pathlib import Path

import torch
import torch.distributed as dist
from skorch.callbacks import Callback

from ._distributed import world
from ._fingerprints import data_digest, digest, settings_digest

_MAGIC = b"sksiamese-checkpoint-1\n"
# The random generators of each process (the rest of the state is the same in all).
_OWN_GENERATORS = ("torch_rng", "cuda_rng", "augmentation_rng")
_SUFFIX = ".ckpt"


class PhaseCheckpoint(Callback):
    """skorch callback: restore a phase's saved state at its start, save it after each epoch.

    Parameters
    ----------
    path : pathlib.Path
        The phase's file (:func:`phase_checkpoint`).
    settings : str
        The fit's settings digest, recorded in the file and checked against
        every checkpoint of the folder.
    resume : dict or None, default=None
        The state to restore at the start of training, read from ``path``.
    """

    def __init__(self, path, settings, resume=None):
        self.path = path
        self.settings = settings
        self.resume = resume

    def on_train_begin(self, net, **kwargs):
        # Runs after the library's other callbacks began: the lr schedule
        # exists (to load into) and the selection scored the untrained net.
        if self.resume is not None:
            _restore(net, self._own_generators(self.resume))
            self.resume = None

    def on_epoch_end(self, net, **kwargs):
        state = _capture(net)
        rank, world_size = world()
        if world_size > 1:
            # Each process draws its own augmentation and dropout: every
            # process's generators are saved, in the one file process 0 writes.
            every = [None] * world_size
            dist.all_gather_object(every, {key: state[key] for key in _OWN_GENERATORS})
            state["generators_by_process"] = every
        if rank == 0:
            write_checkpoint(self.path, self.settings, state)

    def _own_generators(self, state):
        """``state`` with this process's own generators, when several processes saved theirs."""
        every = state.get("generators_by_process")
        rank, world_size = world()
        saved = 1 if every is None else len(every)
        if saved == world_size:
            return state if every is None else {**state, **every[rank]}
        raise ValueError(
            f"The checkpoint {self.path} was written by a fit in {saved} process(es); "
            f"resume it with as many, not {world_size}."
        )


def phase_checkpoint(folder, params, seeds, X, y, net):
    """The :class:`PhaseCheckpoint` of the phase training ``net`` on ``(X, y)``; its epochs done.

    Refuses a folder holding checkpoints of other settings or seeds.
    """
    if not isinstance(params.random_state, numbers.Integral):
        raise ValueError(
            "checkpoint_dir needs an int random_state: a resumed fit must draw the same "
            f"batches as the fit it continues; got random_state={params.random_state!r}."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # max_epochs aside: the retraining phase runs fewer epochs than the fit's
    # max_epochs; each phase's file is named by the epochs it runs.
    settings = settings_digest(params, seeds, leave_out=("max_epochs",))
    for existing in sorted(folder.glob(f"*{_SUFFIX}")):
        _read_header(existing, settings)
    weights = list(net.module_.state_dict().values()) + list(net.criterion_.state_dict().values())
    phase = digest(settings, data_digest(X, y), net.max_epochs, *weights)
    path = folder / f"phase-{phase[:20]}{_SUFFIX}"
    resume = read_checkpoint(path, settings) if path.exists() else None
    done = 0 if resume is None else len(resume["history"])
    return PhaseCheckpoint(path, settings, resume), done


def write_checkpoint(path, settings, state):
    """Write ``state`` to ``path`` whole, or leave the previous file as it was."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    content = buffer.getvalue()
    header = _MAGIC + settings.encode() + b"\n" + digest(content).encode() + b"\n"
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with open(partial, "wb") as file:
            file.write(header + content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_checkpoint(path, settings):
    """The state saved in ``path``; a ``ValueError`` for a damaged file or other settings."""
    with open(path, "rb") as file:
        _check_header(path, file, settings)
        expected = file.readline().strip().decode(errors="replace")
        content = file.read()
    if digest(content) != expected:
        raise ValueError(
            f"The checkpoint {path} is damaged: its content does not match its digest "
            "(a partial copy, or a changed file). Delete it to train that phase again."
        )
    # The digest detects damage, not tampering: checkpoint_dir must be trusted,
    # as a pickle must. Loaded on the CPU; the net moves it to its devices.
    return torch.load(io.BytesIO(content), map_location="cpu", weights_only=False)


def _read_header(path, settings):
    with open(path, "rb") as file:
        _check_header(path, file, settings)


def _check_header(path, file, settings):
    if file.readline() != _MAGIC:
        raise ValueError(f"{path} is not a sksiamese checkpoint, or its start is damaged.")
    recorded = file.readline().strip().decode(errors="replace")
    if recorded != settings:
        raise ValueError(
            f"The checkpoint {path} is of a fit with other settings or another "
            "random_state: a fit resumes only its own. Use another checkpoint_dir, or "
            "delete the folder's checkpoints to start over."
        )


def _capture(net):
    """What the next epoch of ``net`` depends on."""
    callbacks = dict(net.callbacks_)
    schedule, selection = callbacks.get("lr_schedule"), callbacks.get("keep_best")
    return {
        "module": net.module_.state_dict(),
        "criterion": net.criterion_.state_dict(),
        "optimizer": net.optimizer_.state_dict(),
        "history": net.history,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "batches_rng": net.training_batches_rng(),
        "augmentation_rng": _generator_state(net.augmentation),
        "schedule": None
        if schedule is None
        else (
            schedule.lr_scheduler_.state_dict(),
            schedule.batch_idx_,
        ),
        "selection": None if selection is None else selection.state(),
    }


def _restore(net, state):
    net.module_.load_state_dict(state["module"])
    net.criterion_.load_state_dict(state["criterion"])
    net.optimizer_.load_state_dict(state["optimizer"])
    net.history = state["history"]
    torch.set_rng_state(state["torch_rng"])
    cuda_rng = state["cuda_rng"]
    if cuda_rng is not None and len(cuda_rng) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_rng)
    net.resume_training_batches_rng(state["batches_rng"])
    if state["augmentation_rng"] is not None:
        net.augmentation.generator.set_state(state["augmentation_rng"])
    callbacks = dict(net.callbacks_)
    if state["schedule"] is not None:
        schedule_state, callbacks["lr_schedule"].batch_idx_ = state["schedule"]
        callbacks["lr_schedule"].lr_scheduler_.load_state_dict(schedule_state)
    if state["selection"] is not None:
        callbacks["keep_best"].restore(state["selection"])


def _generator_state(augmentation):
    return None if augmentation is None else augmentation.generator.get_state()

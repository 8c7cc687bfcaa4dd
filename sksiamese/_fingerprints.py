"""Digests that tell whether two fits were given the same data and settings.

Data-parallel processes compare them before training
(:mod:`sksiamese._distributed`); a checkpoint records them, so that a fit
never resumes from another's (:mod:`sksiamese._checkpoints`).
"""

import hashlib
import re

import numpy as np
import torch

from ._image_paths import ImageFiles
from ._params import TRAINING_PARAMETERS

# Parameters that do not change what a fit computes (where it runs, what it
# prints, where it saves), or that are counted apart (the seeds); every other
# training parameter counts, those added later included.
_NOT_SETTINGS = frozenset(
    {"device", "accelerator", "callbacks", "verbose"}
    | {"random_state", "checkpoint_dir", "warm_start"}
)
_SETTINGS = tuple(name for name in TRAINING_PARAMETERS if name not in _NOT_SETTINGS)


def digest(*parts):
    """SHA-256 of ``parts``: arrays and tensors by shape, dtype and bytes, the rest by ``repr``.

    Memory addresses are left out of a ``repr`` (a function's, an object's
    without one of its own): another process would see other addresses.
    """
    hasher = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            part = part.detach().cpu().numpy()
        if isinstance(part, np.ndarray):
            hasher.update(repr((part.shape, part.dtype)).encode())
            part = np.ascontiguousarray(part).tobytes()
        hasher.update(part if isinstance(part, bytes) else _stable_repr(part).encode())
    return hasher.hexdigest()


def _stable_repr(value):
    """``repr(value)`` without memory addresses, which differ from one process to the next."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def data_digest(X, y):
    """Digest of training data: every label, and the samples' shape and first and last rows.

    Files are known by their paths and decoding options. Hashing every
    sample of an array would cost a pass over it; a change of data that
    keeps its shape, labels, first and last 64 rows goes unnoticed.
    """
    if isinstance(X, ImageFiles):
        return digest(X.paths, sorted((k, repr(v)) for k, v in vars(X).items() if k != "paths"), y)
    head, tail = X[:64], X[-64:]
    if hasattr(head, "toarray"):
        head, tail = head.toarray(), tail.toarray()
    return digest(X.shape, head, tail, np.asarray(y))


def settings_digest(params, seeds, leave_out=()):
    """Digest of the settings that change what a fit computes, and of its seeds.

    Objects (a module, a pytorch-metric-learning loss) count by their
    ``repr``, which may not show every attribute. Routed ``module__*``,
    ``optimizer__*`` and ``callbacks__*`` arguments count too. ``leave_out``
    names settings not to count.
    """
    settings = [getattr(params, name) for name in _SETTINGS if name not in leave_out]
    return digest(*settings, sorted(params.routed.items()), sorted(seeds.items()))

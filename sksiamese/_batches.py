"""Batch iterators used by :class:`SiameseNet`.

skorch builds its iterators as ``iterator(dataset, batch_size=..., **params)``;
these classes follow that signature so skorch's own ``get_iterator`` drives
them. They index whole batches at once instead of collating one sample at a
time, which is what a ``DataLoader`` over a skorch ``Dataset`` would do.
"""

import numpy as np
import scipy.sparse as sp
import torch

from ._image_paths import ImageFiles, file_batches


def _as_tensor_source(X):
    """Dense arrays become a tensor sharing their memory; sparse and files stay as they are."""
    return X if sp.issparse(X) or isinstance(X, ImageFiles) else torch.as_tensor(X)


def _take(X, index):
    """Rows ``index`` of ``X`` as a dense tensor; sparse rows densified here."""
    if sp.issparse(X):
        return torch.from_numpy(X[index.numpy()].toarray())
    return X[index.to(X.device)]


# Share of the free GPU memory the training data may take to be kept there.
_DEVICE_SHARE = 0.25


def _on_device(X, device):
    """``X`` copied once to a CUDA ``device`` when dense and small enough, else ``X``.

    Batches gathered from data already on the GPU cost no host-to-device copy.
    """
    if device is None or torch.device(device).type != "cuda" or not isinstance(X, torch.Tensor):
        return X
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    if X.element_size() * X.nelement() > _DEVICE_SHARE * free:
        return X
    return X.to(device)


def _to_device(batch, device):
    """Move a CPU batch to a CUDA ``device`` through pinned memory, without blocking."""
    if device is None or batch.device.type != "cpu" or torch.device(device).type != "cuda":
        return batch
    return batch.pin_memory().to(device, non_blocking=True)


def _batches_of(X, y, indices, *, training, keep_empty=False):
    """``(X, y)`` of each batch of ``indices``; image files decoded in their workers."""
    if isinstance(X, ImageFiles):
        yield from file_batches(X, y, indices, training=training, keep_empty=keep_empty)
        return
    for index in indices:
        yield _take(X, index), None if y is None else y[index.to(y.device)]


class SequentialBatches:
    """Consecutive batches of ``(X, y)`` in their original order, for inference.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
    batch_size : int
    """

    def __init__(self, dataset, batch_size):
        self.X = _as_tensor_source(dataset.X)
        self.y = None if dataset.y is None else torch.as_tensor(dataset.y)
        self.batch_size = batch_size

    def __len__(self):
        return -(-self.X.shape[0] // self.batch_size)

    def _indices(self):
        for start in range(0, self.X.shape[0], self.batch_size):
            yield torch.arange(start, min(start + self.batch_size, self.X.shape[0]))

    def __iter__(self):
        yield from _batches_of(self.X, self.y, self._indices(), training=False)


class ClassBalancedBatches:
    """Batches of ``classes_per_batch`` classes times ``samples_per_class`` samples.

    Every batch holds positive pairs, which in-batch losses need; plain shuffled
    batches over many classes hold almost none. Only classes with at least two
    samples are drawn; a class with fewer than ``samples_per_class`` samples
    contributes all of them. An epoch has as many batches as it takes to show
    about ``len(dataset)`` samples.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        ``dataset.y`` holds integer class codes. ``dataset.X`` may be
        :class:`~sksiamese.datasets.ImageFiles`: batches are then drawn
        from the labels here and decoded in its ``DataLoader`` workers.
    batch_size : int
        Unused; present because skorch passes it to every iterator.
    classes_per_batch : int
        Classes per batch (P); capped by the number of eligible classes.
    samples_per_class : int
        Samples per class (K).
    seed : int
        Seed of the batch sampler.
    share : tuple of (int, int), default=(0, 1)
        ``(rank, world_size)`` of a data-parallel fit: every process draws
        the same batch and keeps the ``rank``-th of ``world_size`` equal
        shares of its classes.
    device : str or torch.device, default=None
        Where the batches are used. For CUDA, dense data is copied to the GPU
        once when it takes at most a quarter of the free GPU memory, and
        batches are gathered there; otherwise each batch goes through pinned
        memory with a non-blocking copy. Sampling stays on the CPU, so the
        batches do not depend on the device.
    """

    def __init__(
        self,
        dataset,
        batch_size,
        *,
        classes_per_batch,
        samples_per_class,
        seed,
        share=(0, 1),
        device=None,
    ):
        self.device = device
        self.X = _on_device(_as_tensor_source(dataset.X), device)
        labels = torch.as_tensor(dataset.y)
        self.y = labels.to(self.X.device) if isinstance(self.X, torch.Tensor) else labels
        self.samples_per_class = samples_per_class
        self.generator = torch.Generator().manual_seed(seed)
        self._members = self._class_members(labels)
        self.classes_per_batch = min(classes_per_batch, len(self._members))
        self.rank, self.world_size = share
        if self.classes_per_batch % self.world_size:
            raise ValueError(
                f"{self.world_size} processes cannot share batches of "
                f"{self.classes_per_batch} classes equally: set classes_per_batch to a "
                "multiple of the number of processes (with at least that many classes "
                "of two or more samples)."
            )
        per_batch = self.classes_per_batch * samples_per_class
        self.n_batches = max(1, round(len(self.y) / per_batch))

    @staticmethod
    def _class_members(y):
        """Padded ``(n_classes, max_count)`` index table of the eligible classes."""
        # One stable sort, not a scan of y per class: O(n log n) time and O(n)
        # memory with a hundred thousand classes. Members stay in index order.
        order = torch.argsort(y, stable=True)
        _, counts = torch.unique_consecutive(y[order], return_counts=True)
        members = [m for m in torch.split(order, counts.tolist()) if len(m) >= 2]
        return torch.nn.utils.rnn.pad_sequence(members, batch_first=True, padding_value=-1)

    def __len__(self):
        return self.n_batches

    def _draw(self):
        n_classes, width = self._members.shape
        g = self.generator
        chosen = self._members[torch.randperm(n_classes, generator=g)[: self.classes_per_batch]]
        # Random keys, padding last: the K smallest keys of each row are a
        # uniform sample without replacement of that class's members.
        keys = torch.rand(chosen.shape, generator=g).masked_fill(chosen < 0, 2.0)
        k = min(self.samples_per_class, width)
        picked = chosen.gather(1, keys.topk(k, dim=1, largest=False).indices)
        share = self.classes_per_batch // self.world_size
        picked = picked[self.rank * share : (self.rank + 1) * share]
        return picked[picked >= 0]

    def _draws(self):
        for _ in range(self.n_batches):
            yield self._draw()

    def __iter__(self):
        # Data-parallel: every process takes part in every step, even with a
        # share of unreadable files only.
        shared = self.world_size > 1
        for X, y in _batches_of(self.X, self.y, self._draws(), training=True, keep_empty=shared):
            yield _to_device(X, self.device), _to_device(y, self.device)


def can_form_positive_pair(y_codes, n_classes=2):
    """Whether ``n_classes`` classes of ``y_codes`` have at least two samples each."""
    return int((np.bincount(y_codes) >= 2).sum()) >= n_classes

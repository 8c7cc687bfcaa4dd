"""The skorch engine: a ``NeuralNet`` whose loss comes from in-batch pairs."""

import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import get_len, unpack_data
from skorch.utils import to_tensor

from ._base import unique_samples
from ._batches import SequentialBatches
from ._distributed import combine_gradients, gather_batch, share_buffers, world

# Rows of every inference batch are padded to a multiple of this.
ROW_BLOCK = 8


class _SiameseSteps:
    """What sksiamese adds to a skorch net, shared by the plain and accelerated nets.

    A dataset without targets (what skorch's ``forward`` builds for inference)
    is read in plain consecutive batches, while labelled data goes through
    ``iterator_train``, the class-balanced batches that
    in-batch losses need. The criterion receives ``(embeddings, labels)``,
    which skorch's ``get_loss`` already passes as ``(y_pred, y_true)``.
    ``augmentation``, a callable mapping a batch of images to distorted images,
    is applied to training batches on the net's device. In a data-parallel
    fit (:mod:`sksiamese._distributed`) the loss sees every process's share
    of the batch and the gradients are combined over the processes.
    """

    def __init__(self, *args, augmentation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augmentation = augmentation
        self._training_batches = self._resumed_batches_rng = None

    def get_iterator(self, dataset, training=False):
        if dataset.y is None:
            return SequentialBatches(dataset, self.batch_size)
        iterator = super().get_iterator(dataset, training=training)
        if training:
            # Kept for checkpoints, which save and restore its random generator.
            self._training_batches = iterator
            if self._resumed_batches_rng is not None:
                iterator.generator.set_state(self._resumed_batches_rng)
                self._resumed_batches_rng = None
        return iterator

    def training_batches_rng(self):
        """The state of the training batches' generator; ``None`` before training."""
        batches = self._training_batches
        return None if batches is None else batches.generator.get_state()

    def resume_training_batches_rng(self, state):
        """Give the next training batches the generator state ``state`` (a checkpoint's)."""
        self._resumed_batches_rng = state

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch's epoch, but the batch losses are read from the device once, at
        # its end: skorch's ``.item()`` per batch makes the host wait for the GPU
        # to finish each batch before it queues the next.
        if iterator is None:
            return
        losses = []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            self.history.record_batch(f"{prefix}_batch_size", get_len(batch[0]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if losses:
            batches = self.history[-1]["batches"][-len(losses) :]
            for entry, loss in zip(batches, torch.stack(losses).tolist(), strict=True):
                entry[f"{prefix}_loss"] = loss
        self.history.record(f"{prefix}_batch_count", len(losses))

    def evaluation_step(self, batch, training=False):
        # BLAS computes a row of a matrix product the same way whatever the
        # other rows only for some row counts (here: multiples of 4, or 12 and
        # more); padding inference batches to a multiple of ROW_BLOCK makes a
        # sample's embedding independent of the batch it is computed in.
        Xi, yi = unpack_data(batch)
        n_rows = len(Xi)
        padding = 0 if training else -n_rows % ROW_BLOCK  # no padding rows in batch norm
        if padding:
            Xi = torch.cat([Xi, Xi.new_zeros((padding, *Xi.shape[1:]))])
        return super().evaluation_step((Xi, yi), training=training)[:n_rows]

    def train_step_single(self, batch, **fit_params):
        Xi, yi = unpack_data(batch)
        if self.augmentation is not None and len(Xi):  # a data-parallel share may be empty
            batch = self.augmentation(to_tensor(Xi, device=self.device)), yi
        step = super().train_step_single(batch, **fit_params)
        if world()[1] > 1:
            embedding = list(self.module_.parameters())
            shared = {id(p) for p in embedding}  # a criterion may hold the module
            loss_own = [p for p in self.criterion_.parameters() if id(p) not in shared]
            combine_gradients(embedding, loss_own)
            share_buffers(self.module_)
        return step

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if training and world()[1] > 1:  # the loss and its miner see every share
            y_true = to_tensor(y_true, device=y_pred.device)
            y_pred, y_true = gather_batch(y_pred, y_true)
        return super().get_loss(y_pred, y_true, X=X, training=training)


class SiameseNet(_SiameseSteps, NeuralNet):
    """skorch ``NeuralNet`` training one twin branch from class labels."""


def accelerated_net_class():
    """``SiameseNet`` on skorch's ``AccelerateMixin`` (Hugging Face accelerate).

    Imported on demand: accelerate is an optional dependency.
    """
    from skorch.hf import AccelerateMixin

    class AcceleratedSiameseNet(_SiameseSteps, AccelerateMixin, NeuralNet):
        """``SiameseNet`` whose training runs through an ``accelerate.Accelerator``.

        accelerate places the batches of the ``DataLoader`` objects it prepares;
        the class-balanced batches are not one, so they are moved to the
        accelerator's device here. One process only: a data-parallel fit goes
        through :mod:`sksiamese._distributed`, which refuses an accelerator.
        """

        def infer(self, x, **fit_params):
            return super().infer(to_tensor(x, device=self.accelerator.device), **fit_params)

        def get_loss(self, y_pred, y_true, X=None, training=False):
            y_true = to_tensor(y_true, device=self.accelerator.device)
            return super().get_loss(y_pred, y_true, X=X, training=training)

    return AcceleratedSiameseNet


class PairBranch(torch.nn.Module):
    """One twin branch applied to both members of each pair: ``(B, 2, ...)`` to ``(B, 2, d)``.

    Parameters
    ----------
    branch : callable
        Builds the branch from ``branch_args``: a module class, or a
        function returning a module.
    **branch_args
        Its arguments.
    """

    def __init__(self, branch, **branch_args):
        super().__init__()
        self.branch = branch(**branch_args)

    def forward(self, pairs):
        embeddings = self.branch(pairs.flatten(0, 1))
        return embeddings.view(len(pairs), 2, -1)


def embed_members(embed, groups):
    """Embeddings of every member of each group, shape ``(n_groups, n_members, dim)``.

    ``groups`` is ``(n_groups, n_members, *sample_shape)``: pairs, or claims
    with their references. Groups share samples (a gallery's pairs, a
    writer's references), so each distinct sample goes through
    ``embed(samples) -> (n, dim) tensor`` once.
    """
    samples = groups.reshape(-1, *groups.shape[2:])
    first, inverse = unique_samples(samples)
    embeddings = embed(samples[first])[torch.as_tensor(inverse)]
    return embeddings.view(len(groups), groups.shape[1], -1)


def pair_net_embedding(net):
    """``embed(samples) -> (n, dim) tensor`` of a trained pair net.

    ``PairBranch`` embeds the two members of a pair independently: the
    samples go through it two by two (the last one twice when their number
    is odd).
    """

    def embed(samples):
        padded = samples[np.r_[np.arange(len(samples)), -1]] if len(samples) % 2 else samples
        embedded = net.forward(padded.reshape(-1, 2, *samples.shape[1:])).flatten(0, 1)
        return embedded[: len(samples)]

    return embed


def pair_net_scores(net, pairs):
    """Similarity of each pair under a trained pair net, as float64 on the CPU."""
    members = embed_members(pair_net_embedding(net), pairs).double()
    return net.criterion_.similarity.paired(members[:, 0], members[:, 1]).numpy()


def release_training_state(net):
    """Drop what only training needed from a trained net, before it becomes fitted state.

    The held-out selection's callback holds held-out samples, and skorch's
    lr scheduler holds the optimizer, whose device tensors would make a net
    pickled on a GPU fail to load without CUDA: skorch maps only its own
    ``module_``, ``criterion_`` and ``optimizer_`` to the CPU.
    Re-initialising the callbacks clears what they held (callbacks record
    their results in the history, which stays).
    """
    net.callbacks = [
        cb for cb in net.callbacks if not (isinstance(cb, tuple) and cb[0] == "keep_best")
    ]
    net.initialize_callbacks()
    net._training_batches = None  # holds the training data


class FiniteLoss(Callback):
    """Stop training with an error at the end of an epoch whose loss was NaN or infinite.

    Checked once an epoch, from the history, so that no batch waits for the
    device to report its loss (:meth:`_SiameseSteps.run_single_epoch`).
    """

    def on_epoch_end(self, net, **kwargs):
        batches = net.history[-1]["batches"]
        losses = [batch["train_loss"] for batch in batches if "train_loss" in batch]
        for batch, loss in enumerate(losses, 1):
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"The training loss became {loss} in epoch {len(net.history)} (batch "
                    f"{batch} of {len(losses)}). Lower `lr`, check the input for extreme "
                    "values, or use a module whose outputs stay bounded."
                )

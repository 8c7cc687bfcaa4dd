"""The skorch engine: a ``NeuralNet`` whose loss comes from in-batch pairs."""

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from ._batches import SequentialBatches


class _SiameseSteps:
    """What sksiamese adds to a skorch net, shared by the plain and accelerated nets.

    A dataset without targets (what skorch's ``forward`` builds for inference)
    is read in plain consecutive batches, while labelled data goes through
    ``iterator_train``, the class-balanced batches that
    in-batch losses need. The criterion receives ``(embeddings, labels)``,
    which skorch's ``get_loss`` already passes as ``(y_pred, y_true)``.
    ``augmentation``, a callable mapping a batch of images to distorted images,
    is applied to training batches on the net's device.
    """

    # The lr scheduler and early stopping hold the optimizer and copies of the
    # weights, in ``callbacks_`` and in the ``callbacks`` list that shares its
    # instances. Pickled among skorch's device-mapped attributes (a prefix),
    # a net trained on a GPU unpickles on a machine without CUDA.
    cuda_dependent_attributes_ = ["callbacks"]

    def __init__(self, *args, augmentation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augmentation = augmentation

    def get_iterator(self, dataset, training=False):
        if dataset.y is None:
            return SequentialBatches(dataset, self.batch_size)
        return super().get_iterator(dataset, training=training)

    def train_step_single(self, batch, **fit_params):
        if self.augmentation is not None:
            Xi, yi = unpack_data(batch)
            batch = self.augmentation(to_tensor(Xi, device=self.device)), yi
        return super().train_step_single(batch, **fit_params)


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
        accelerator's device here. Each process draws its own batches (the
        sampler is seeded with the process index), which makes the processes
        of a multi-GPU launch train data-parallel on different batches.
        """

        def infer(self, x, **fit_params):
            return super().infer(to_tensor(x, device=self.accelerator.device), **fit_params)

        def get_loss(self, y_pred, y_true, X=None, training=False):
            y_true = to_tensor(y_true, device=self.accelerator.device)
            return super().get_loss(y_pred, y_true, X=X, training=training)

    return AcceleratedSiameseNet


class FiniteLoss(Callback):
    """Stop training with an error as soon as a batch loss is NaN or infinite."""

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if loss is not None and not torch.isfinite(loss):
            epoch = len(net.history)
            raise FloatingPointError(
                f"The training loss became {loss.item()} in epoch {epoch}. "
                "Lower `lr`, check the input for extreme values, or use a "
                "module whose outputs stay bounded."
            )

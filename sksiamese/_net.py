"""The skorch engine: a ``NeuralNet`` whose loss comes from in-batch pairs."""

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from ._batches import SequentialBatches


class SiameseNet(NeuralNet):
    """skorch ``NeuralNet`` training one twin branch from class labels.

    It differs from ``NeuralNet`` in one place: a dataset without targets (what
    skorch's ``forward`` builds for inference) is read in plain consecutive
    batches, while labelled data goes through ``iterator_train`` /
    ``iterator_valid``, the class-balanced batches that in-batch losses need.
    The criterion receives ``(embeddings, labels)``, which skorch's
    ``get_loss`` already passes as ``(y_pred, y_true)``. ``augmentation``, a
    module mapping a batch of images to distorted images, is applied to
    training batches on the net's device.
    """

    def __init__(self, *args, augmentation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augmentation = augmentation

    def train_step_single(self, batch, **fit_params):
        if self.augmentation is not None:
            Xi, yi = unpack_data(batch)
            batch = self.augmentation(to_tensor(Xi, device=self.device)), yi
        return super().train_step_single(batch, **fit_params)

    def get_iterator(self, dataset, training=False):
        if dataset.y is None:
            return SequentialBatches(dataset, self.batch_size)
        return super().get_iterator(dataset, training=training)


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

"""Test-time augmentation: each image embedded as the mean of fixed distorted views of it."""

import numpy as np
import torch
from skorch.dataset import Dataset

from ._batches import SequentialBatches
from ._image_paths import ImageFiles
from ._training import augmentation_for
from .augmentation import distort

# Images distorted at a time (bounds the copies).
_VIEW_CHUNK = 4096
# Image files decoded at a time, by one worker each.
_FILE_CHUNK = 256
# Views that inference_views='auto' tries.
_AUTO_VIEWS = 8


def embed_views(net, X, distortions):
    """Embeddings of ``X`` under ``net``, each the mean over the image and its distortions.

    Test-time augmentation: the mean is rescaled to the views' mean norm, so
    that L2-normalised embeddings stay on the unit sphere where the margin and
    head were fitted. Without distortions, the plain embeddings. A CPU float32
    tensor either way (eval mode, no gradients).
    """
    if len(distortions) == 0:
        return net.forward(X).float()
    chunks = []
    for chunk in _image_chunks(X):
        images = torch.as_tensor(chunk, device=net.device)
        views = [images] + [distort(images, theta) for theta in distortions]
        embeddings = torch.stack([net.forward(view).float() for view in views])
        mean = embeddings.mean(0)
        scale = embeddings.norm(dim=2).mean(0) / mean.norm(dim=1).clamp_min(1e-12)
        chunks.append(mean * scale[:, None])
    return torch.cat(chunks)


def _image_chunks(X):
    """``X`` in chunks of images; files decoded in their ``DataLoader`` workers."""
    if not isinstance(X, ImageFiles):
        for start in range(0, len(X), _VIEW_CHUNK):
            yield X[start : start + _VIEW_CHUNK]
        return
    for images, _ in SequentialBatches(Dataset(X), _FILE_CHUNK):
        yield images


def draw_distortions(augment, inference_views, sample_shape, random_state):
    """The fixed affine maps of test-time augmentation, ``(views - 1, 2, 3)``.

    Drawn once at ``fit`` from the training ranges of ``augment``; none when
    it does not augment or ``inference_views`` is 1.
    """
    seed = int(random_state.randint(np.iinfo(np.int32).max))
    augmentation = augmentation_for(augment, sample_shape, seed)
    views = _AUTO_VIEWS if inference_views == "auto" else inference_views
    if augmentation is None or views == 1:
        return torch.zeros(0, 2, 3)
    return augmentation.matrices(views - 1)


def keep_views_that_pay(inference_views, distortions, trained):
    """``distortions``, or none when they did not beat the image alone on held-out classes.

    Only for ``inference_views='auto'``, and only when classes were held out
    (``trained``, a :class:`~sksiamese._selection.TrainedNet`): the comparison
    is made on the selected network, before it is trained again on every
    class, in episodes drawn anew from the held-out samples (other pairings
    than those that selected the epoch).
    """
    if inference_views != "auto" or len(distortions) == 0 or trained.check is None:
        return distortions
    # Episodes drawn anew: those that chose the epoch favour the image alone.
    net, check = trained.selected_net, trained.check
    similarity = net.criterion_.similarity
    alone = check.score(net.forward, similarity)
    with_views = check.score(lambda X: embed_views(net, X, distortions), similarity)
    return distortions if with_views > alone else torch.zeros(0, 2, 3)

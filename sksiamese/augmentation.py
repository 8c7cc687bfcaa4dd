"""Random affine distortions of image batches, on the fly and in torch.

Koch et al. (2015) distort each training image by a random rotation, shear,
scale and translation. Here one random affine map per image is drawn from a
seeded generator (reproducible on any device) and applied with
``affine_grid`` / ``grid_sample`` on the device the batch lives on.
"""

import math

import torch
from torch.nn import functional as F

__all__ = ["RandomAffine"]


class RandomAffine:
    """Random rotation, shear, scale and translation of a batch of images.

    Parameters uniformly drawn per image, in the ranges of Koch et al.
    Areas moved in from outside the image are filled with 0, the background
    of images with ink = 1 and paper = 0.

    Parameters
    ----------
    rotation : float, default=10.0
        Largest rotation, in degrees either way.
    shear : float, default=0.3
        Largest shear factor either way.
    scale : tuple of float, default=(0.8, 1.2)
        Range of the scale factor of each axis.
    translation : float, default=0.1
        Largest shift either way, as a fraction of the image size.
    seed : int, default=0
        Seed of the generator of the distortions.

    Notes
    -----
    A plain callable rather than a ``torch.nn.Module``: it has no weights, and
    skorch treats a module attribute of the net as part of the network.
    """

    def __init__(self, rotation=10.0, shear=0.3, scale=(0.8, 1.2), translation=0.1, seed=0):
        self.rotation = rotation
        self.shear = shear
        self.scale = scale
        self.translation = translation
        self.generator = torch.Generator().manual_seed(seed)

    def _uniform(self, n, low, high):
        return low + (high - low) * torch.rand(n, generator=self.generator)

    def matrices(self, n):
        """``(n, 2, 3)`` affine matrices in ``affine_grid``'s normalised coordinates."""
        angle = self._uniform(n, -self.rotation, self.rotation) * math.pi / 180
        shear_x, shear_y = (self._uniform(n, -self.shear, self.shear) for _ in range(2))
        scale_x, scale_y = (self._uniform(n, *self.scale) for _ in range(2))
        # The image spans [-1, 1], so a shift of a fraction f of it is 2 f.
        shift = self._uniform(2 * n, -2 * self.translation, 2 * self.translation).view(n, 2)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rotate = torch.stack([cos, -sin, sin, cos], 1).view(n, 2, 2)
        shear = torch.stack([torch.ones(n), shear_x, shear_y, torch.ones(n)], 1).view(n, 2, 2)
        scale = torch.diag_embed(torch.stack([scale_x, scale_y], 1))
        return torch.cat([rotate @ shear @ scale, shift[:, :, None]], dim=2)

    def __call__(self, images):
        squeeze = images.dim() == 3
        batch = images.unsqueeze(1) if squeeze else images
        theta = self.matrices(len(batch)).to(device=batch.device, dtype=batch.dtype)
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        out = F.grid_sample(batch, grid, align_corners=False, padding_mode="zeros")
        return out.squeeze(1) if squeeze else out

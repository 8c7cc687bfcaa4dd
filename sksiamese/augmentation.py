"""Random affine distortions of image batches, on the fly and in torch.

For handwriting, :class:`RandomStrokes` also thickens or thins the strokes
(a pen's width varies from one signature to the next; the shape does not).

Koch et al. (2015) distort each training image by a random rotation, shear,
scale and translation. Here one random affine map per image is drawn from a
seeded generator (reproducible on any device) and applied with
``affine_grid`` / ``grid_sample`` on the device the batch lives on.

The default ranges were chosen on Omniglot validation alphabets at 28x28
(``benchmarks/select_omniglot.py``): none of the three losses collapsed under
them, and they helped each. Koch's own ranges (shear 0.3, scale 0.8 to 1.2)
were set for 105x105 images; at 28x28 they made batch-hard triplet training
collapse.
"""

import math
from numbers import Integral

import torch
from torch.nn import functional as F

__all__ = ["RandomAffine", "RandomStrokes", "change_stroke_width", "distort"]


def distort(images, theta):
    """Apply affine maps to a batch of images.

    Areas moved in from outside the image are filled with 0, the background
    of images with ink = 1 and paper = 0.

    Parameters
    ----------
    images : torch.Tensor of shape (n, H, W) or (n, C, H, W)
        The images.
    theta : torch.Tensor of shape (n, 2, 3) or (2, 3)
        Affine maps in ``affine_grid``'s normalised coordinates; a single map
        is applied to every image.

    Returns
    -------
    distorted : torch.Tensor of the shape of ``images``
        Each image resampled under its map (bilinear, zeros outside).
    """
    squeeze = images.dim() == 3
    batch = images.unsqueeze(1) if squeeze else images
    theta = theta.to(device=batch.device, dtype=batch.dtype).expand(len(batch), 2, 3)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    out = F.grid_sample(batch, grid, align_corners=False, padding_mode="zeros")
    return out.squeeze(1) if squeeze else out


class RandomAffine:
    """Random rotation, shear, scale and translation of a batch of images.

    Parameters are drawn uniformly and independently for each image.

    Parameters
    ----------
    rotation : float, default=10.0
        Largest rotation, in degrees either way.
    shear : float, default=0.1
        Largest shear factor either way.
    scale : tuple of float, default=(0.9, 1.1)
        Range of the scale factor of each axis.
    translation : float, default=0.05
        Largest shift either way, as a fraction of the image size.
    seed : int, default=0
        Seed of the generator of the distortions.

    Notes
    -----
    Pass an instance as an estimator's ``augment`` to train with other ranges;
    the estimator replaces its seed with one drawn from its ``random_state``.
    A plain callable rather than a ``torch.nn.Module``: it has no weights, and
    skorch treats a module attribute of the net as part of the network.
    """

    def __init__(self, rotation=10.0, shear=0.1, scale=(0.9, 1.1), translation=0.05, seed=0):
        self.rotation = rotation
        self.shear = shear
        self.scale = scale
        self.translation = translation
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def __repr__(self):
        return (
            f"RandomAffine(rotation={self.rotation!r}, shear={self.shear!r}, "
            f"scale={tuple(self.scale)!r}, translation={self.translation!r}, seed={self.seed!r})"
        )

    def with_seed(self, seed):
        """A new ``RandomAffine`` with the same ranges and generator seed ``seed``."""
        return type(self)(self.rotation, self.shear, self.scale, self.translation, seed=seed)

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
        return distort(images, self.matrices(len(images)))


def change_stroke_width(images, widths):
    """Thicken or thin the ink of each image by a square filter.

    Ink is 1 on a 0 background (``load_images(invert=True)``). A positive
    width ``w`` replaces each pixel by the maximum of its ``(2 w + 1)``-pixel
    square (the strokes grow by ``w`` pixels on each side); a negative one by
    the minimum (they shrink); 0 leaves the image as it is.

    Parameters
    ----------
    images : torch.Tensor of shape (n, H, W) or (n, C, H, W)
        The images.
    widths : torch.Tensor of int of shape (n,)
        Each image's change of width, in pixels.

    Returns
    -------
    changed : torch.Tensor of the shape of ``images``
        Each image with its ink grown or shrunk by its width.
    """
    squeeze = images.dim() == 3
    batch = images.unsqueeze(1) if squeeze else images
    out = batch.clone()
    widths = torch.as_tensor(widths, device=batch.device)
    for width in widths.unique().tolist():
        if width == 0:
            continue
        rows = widths == width
        radius = abs(width)
        # Thinning is the thickening of the background: the max filter of -x.
        sign = 1.0 if width > 0 else -1.0
        pooled = F.max_pool2d(sign * batch[rows], 2 * radius + 1, stride=1, padding=radius)
        out[rows] = sign * pooled
    return out.squeeze(1) if squeeze else out


class RandomStrokes(RandomAffine):
    """A random affine map and a random change of stroke width, for handwriting.

    Each image's strokes are first thickened or thinned by an integer number
    of pixels drawn uniformly from ``[-stroke_width, stroke_width]``
    (:func:`change_stroke_width`), then distorted as by
    :class:`RandomAffine`. Ink must be 1 on a 0 background.

    Parameters
    ----------
    rotation, shear, scale, translation : float or tuple of float
        The ranges of the affine map, as in :class:`RandomAffine` (with its
        defaults).
    stroke_width : int, default=1
        Largest change of stroke width, in pixels either way.
    seed : int, default=0
        Seed of the generator of the distortions.

    Notes
    -----
    Pass an instance as an estimator's ``augment``. On CEDAR signatures at
    32x64 and 48x96, ``stroke_width=1`` cost 10 to 13 points of equal error
    rate on development writers (``benchmarks/signature_strokes.py``): a
    pixel is a large share of a stroke there. Try it on larger images of
    thicker strokes, and measure. Test-time views
    (``inference_views``) use the affine maps only: a fixed change of width
    would only make every view thicker or thinner.
    """

    def __init__(
        self,
        rotation=10.0,
        shear=0.1,
        scale=(0.9, 1.1),
        translation=0.05,
        stroke_width=1,
        seed=0,
    ):
        if not isinstance(stroke_width, Integral) or stroke_width < 0:
            raise ValueError(f"stroke_width must be a non-negative int, got {stroke_width!r}.")
        self.stroke_width = int(stroke_width)
        super().__init__(rotation, shear, scale, translation, seed)

    def __repr__(self):
        return (
            f"RandomStrokes(rotation={self.rotation!r}, shear={self.shear!r}, "
            f"scale={tuple(self.scale)!r}, translation={self.translation!r}, "
            f"stroke_width={self.stroke_width!r}, seed={self.seed!r})"
        )

    def with_seed(self, seed):
        """A new ``RandomStrokes`` with the same ranges and generator seed ``seed``."""
        return type(self)(
            self.rotation, self.shear, self.scale, self.translation, self.stroke_width, seed=seed
        )

    def __call__(self, images):
        widths = torch.randint(
            -self.stroke_width, self.stroke_width + 1, (len(images),), generator=self.generator
        )
        return super().__call__(change_stroke_width(images, widths))

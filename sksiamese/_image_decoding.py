"""``load_images``' pixel work: each file decoded, converted, resized, then all stacked.

Finding the files and their labels is ``_image_files``' job; this module
checks the decoding options and turns bytes into pixels, for ``load_images``
and for :class:`~sksiamese.datasets.ImageFiles` alike.
"""

import io
from numbers import Integral

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Modes that hold one grey level per pixel; the others (RGB, palette, CMYK...) count as colour.
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
# Pillow raises these for files it cannot decode; OSError also covers truncated files.
_DECODE_ERRORS = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    Image.DecompressionBombError,
)
# Modes of more than 8 bits per grey level, which Pillow's convert("L") clips.
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def _check_arguments(image_size, color, background, pattern, target, on_error):
    """``(height, width)`` of ``image_size``, once every option is checked."""
    height, width = _check_size(image_size)
    if background not in ("keep", "remove"):
        raise ValueError(f"background must be 'keep' or 'remove'; got {background!r}.")
    if target is not None and pattern is None:
        raise ValueError("target names a group of `pattern`; pass a pattern with it.")
    if color not in (None, True, False):
        raise ValueError(f"color must be True, False or None; got {color!r}.")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    return height, width


def _check_size(image_size):
    """``(height, width)`` of an int or a pair of positive ints; a ``ValueError`` otherwise."""
    try:
        size = (image_size,) * 2 if isinstance(image_size, Integral) else tuple(image_size)
        height, width = size
    except (TypeError, ValueError):
        size, height, width = (), None, None
    valid = all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in size)
    if height is None or not valid:
        raise ValueError(
            f"image_size must be a positive int or a (height, width) pair of them; "
            f"got {image_size!r}."
        )
    return int(height), int(width)


def _fit_all(names, read, size, keep_aspect, on_error, source):
    """Every file of ``names`` decoded and fitted to ``size``; unreadable ones skipped if asked.

    Returns the fitted images, whether each one's file was grey, the indices
    into ``names`` of the files read, and the names of those skipped.
    """
    # Each image is resized as soon as it is read, in its own kind (grey or
    # colour), so that memory holds small images only.
    fitted, grey, kept, skipped = [], [], [], []
    for i, name in enumerate(names):
        try:
            image, grey_file = _decode(read[name](), size, keep_aspect)
        except _DECODE_ERRORS as error:
            if on_error == "raise":
                raise ValueError(
                    f"Cannot read {name} in {source}: {error}. Pass on_error='skip' to "
                    "leave unreadable files out."
                ) from error
            skipped.append(name)
            continue
        grey.append(grey_file)
        fitted.append(image)
        kept.append(i)
    return fitted, grey, kept, skipped


def _decode(data, size, keep_aspect):
    """One file's bytes as an image fitted to ``size`` in its own kind, and whether it is grey."""
    image = Image.open(io.BytesIO(data))
    image.load()  # decodes now: a truncated file fails here
    grey = image.mode in _GREY_MODES
    # Photos store their orientation apart from their pixels.
    image = _eight_bit(ImageOps.exif_transpose(image))
    return _fit(image.convert("L" if grey else "RGB"), size, keep_aspect), grey


def _eight_bit(image):
    """``image`` as 8 bits per channel, wide grey levels rescaled and transparency on white."""
    if image.mode in _WIDE_GREY_MODES:
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            top = 1.0 if values.max(initial=0) <= 1 else values.max()
        else:  # 16-bit levels, also when Pillow stores them in 32-bit "I"
            top = 65535.0 if values.max(initial=0) <= 65535 else values.max()
        scaled = np.clip(values / top, 0, 1) * 255
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if image.mode in ("LA", "La", "RGBA", "RGBa", "PA") or "transparency" in image.info:
        # Transparent areas are the paper: composite onto white.
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba)
    return image


def _fit(image, size, keep_aspect):
    """``image`` resized to ``size`` (width, height); padded with its own background if asked."""
    width, height = size
    if image.size == size:
        return image  # nothing to scale nor pad (as after resizing to its own size)
    if not keep_aspect:
        return _resize(image, size)
    scale = min(width / image.width, height / image.height)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = _resize(image, inner)
    pixels = np.asarray(image)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    # The median border pixel is the paper (or the backdrop) the image is padded with.
    background = tuple(int(v) for v in np.atleast_1d(np.median(border, axis=0)))
    canvas = Image.new(image.mode, size, background if len(background) > 1 else background[0])
    canvas.paste(image, ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas


def _resize(image, size):
    """``image`` resized to ``size`` (width, height), by area when shrinking."""
    # Area averaging when shrinking keeps thin strokes; bilinear when enlarging.
    shrinking = size[0] < image.width or size[1] < image.height
    return image.resize(size, Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)


def _resolve_color(color, grey, names, source):
    """Whether to return colour images; ``grey`` flags the files of grey levels."""
    if color is not None:
        return color
    if grey.all() or not grey.any():
        return not grey.all()
    first_grey, first_colour = names[int(np.argmax(grey))], names[int(np.argmax(~grey))]
    raise ValueError(
        f"{source} mixes grey images ({grey.sum()}, e.g. {first_grey!r}) and colour "
        f"images ({(~grey).sum()}, e.g. {first_colour!r}); pass color=False to convert "
        "all to grey levels or color=True to RGB."
    )


def _stack(images, colour):
    """The images converted to one kind, as a float32 array in ``[0, 1]``, channels first."""
    mode = "RGB" if colour else "L"
    data = np.stack([np.asarray(image.convert(mode)) for image in images]).astype(np.float32)
    data /= 255
    if colour:
        # PyTorch's convolutions take channels first.
        data = np.ascontiguousarray(data.transpose(0, 3, 1, 2))
    return data


def _finish(images, colour, background, invert):
    """PIL images as ``load_images`` gives them: stacked, then cleaned and inverted if asked."""
    data = _stack(images, colour)
    if background == "remove":
        data = np.stack([_remove_background(image) for image in data])
    return 1 - data if invert else data


def _otsu_threshold(levels):
    """Otsu's threshold of grey levels in ``[0, 1]``: the split of largest variance between."""
    counts, edges = np.histogram(levels, bins=256, range=(0.0, 1.0))
    weights = counts / max(1, counts.sum())
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(weights)
    below_mass = np.cumsum(weights * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (below_mass[-1] * below - below_mass) ** 2 / (below * (1 - below))
    return centres[int(np.nanargmax(np.nan_to_num(between, nan=-1.0)))]


def _remove_background(image):
    """Every pixel lighter than the image's Otsu threshold set to white (``image`` in [0, 1]).

    Scans of one collection often differ in paper shade (CEDAR's genuine
    signatures and its forgeries do, by scanner), which a network then learns
    instead of the ink.
    """
    luminance = image if image.ndim == 2 else image.mean(0)
    paper = luminance > _otsu_threshold(luminance)
    cleaned = image.copy()
    cleaned[..., paper] = 1.0
    return cleaned

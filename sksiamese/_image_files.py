"""``load_images``: a folder or zip of image files as arrays, in the spirit of ``load_files``."""

import io
import os
import re
import warnings
import zipfile
from numbers import Integral
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from sklearn.utils import Bunch

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".webp"}
)
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


def _image_files(path):
    """``(name, reader)`` of every image file under a folder or in a zip, sorted by name.

    ``name`` is the path relative to the folder (or the member name), with
    ``/`` separators; hidden files and macOS resource forks are left out.
    Also returns the open ``ZipFile`` (``None`` for a folder), for the caller
    to close.
    """
    if isinstance(path, str | os.PathLike):
        path = Path(os.fspath(path))
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist.")
        if path.is_dir():
            files = {
                file.relative_to(path).as_posix(): file
                for file in path.rglob("*")
                if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES
            }
            names = sorted(name for name in files if not _hidden(name))
            return [(name, files[name].read_bytes) for name in names], None
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is neither a folder nor a zip file.")
    archive = zipfile.ZipFile(path)
    names = sorted(
        info.filename
        for info in archive.infolist()
        if not info.is_dir()
        and PurePosixPath(info.filename).suffix.lower() in IMAGE_SUFFIXES
        and not _hidden(info.filename)
    )
    return [(name, lambda name=name: archive.read(name)) for name in names], archive


def _relative_names(names):
    """Names with the one top folder that holds everything dropped, for a zip of a folder.

    ``faces.zip`` made from ``faces/`` holds ``faces/ann/1.png``: its classes
    are those of the folder, ``ann``. The top folder stays when dropping it
    would leave files outside every sub-folder.
    """
    parts = [PurePosixPath(name).parts for name in names]
    tops = {p[0] for p in parts}
    if len(tops) == 1 and all(len(p) >= 3 for p in parts):
        return ["/".join(p[1:]) for p in parts]
    return names


def _hidden(name):
    parts = PurePosixPath(name).parts
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


def _labels(names, pattern, target, source):
    """The kept names, their target and the pattern's named groups, one column each."""
    if pattern is None:
        parents = [PurePosixPath(name).parent.as_posix() for name in names]
        loose = [name for name, parent in zip(names, parents, strict=True) if parent == "."]
        if loose:
            raise ValueError(
                f"{len(loose)} image files of {source} are not inside a class sub-folder "
                f"(e.g. {loose[0]!r}): put each class in a sub-folder, or pass a "
                "`pattern` that reads the class from the file names."
            )
        return names, np.array(parents), {}
    regex = re.compile(pattern)
    groups = list(regex.groupindex)
    if not groups:
        raise ValueError(f"pattern={pattern!r} has no named group, such as (?P<writer>\\d+).")
    target = groups[0] if target is None else target
    if target not in groups:
        raise ValueError(f"target={target!r} is not a named group of pattern {pattern!r}.")
    matches = [(name, regex.search(name)) for name in names]
    kept = [(name, match) for name, match in matches if match is not None]
    if not kept:
        raise ValueError(
            f"pattern={pattern!r} matches none of the {len(names)} image files of "
            f"{source} (e.g. {names[0]!r}); it is searched in each path relative to it."
        )
    columns = {group: np.array([match[group] or "" for _, match in kept]) for group in groups}
    return [name for name, _ in kept], columns[target], columns


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


def _fit(image, size, keep_aspect):
    """``image`` resized to ``size`` (width, height); padded with its own background if asked."""
    width, height = size
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
    # Area averaging when shrinking keeps thin strokes; bilinear when enlarging.
    shrinking = size[0] < image.width or size[1] < image.height
    return image.resize(size, Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)


def load_images(
    path,
    *,
    image_size=(64, 64),
    color=None,
    invert=False,
    background="keep",
    keep_aspect=True,
    pattern=None,
    target=None,
    on_error="raise",
    return_X_y=False,
):
    """Load a folder or a zip of images, labelled by sub-folder or by file name.

    In the spirit of :func:`sklearn.datasets.load_files`: ``data`` holds one
    resized image per file, ``target`` a class index per image into
    ``target_names``. Files are read in the sorted order of their paths;
    files of other types (and hidden files) are left out. Photos are turned
    upright as their EXIF orientation says.

    Parameters
    ----------
    path : str, path-like or binary file object
        A folder, searched recursively, or a zip file (or an open binary
        file holding one).
    image_size : int or tuple of (int, int), default=(64, 64)
        ``(height, width)`` of every image in ``data``; an int for squares.
    color : bool or None, default=None
        ``False`` converts every image to grey levels, ``True`` to RGB.
        ``None`` keeps the files' own kind, and refuses a collection that
        mixes grey and colour files (palette images count as colour).
    invert : bool, default=False
        ``False`` keeps intensities as stored (white paper is 1). ``True``
        returns ``1 - intensity``: dark ink on white paper becomes high values
        on a zero background, as in Omniglot (paper of another shade stays
        above zero, see ``background``).
    background : {'keep', 'remove'}, default='keep'
        ``'remove'`` sets every pixel lighter than the image's Otsu threshold
        to white, after resizing and padding: scans then share one paper
        shade and keep only their ink. For scanned documents whose paper shade
        differs with the scanner or the session: in CEDAR, genuine signatures
        and forgeries were scanned on different paper shades, and that shade
        alone told them apart on the training writers (an equal error rate of
        0.03%, ``benchmarks/signatures.py``).
    keep_aspect : bool, default=True
        ``True`` scales each image to fit ``image_size`` with its aspect ratio
        kept, centred and padded with its background (the median of its
        border pixels). ``False`` stretches it to ``image_size``.
    pattern : str or None, default=None
        ``None``: each image's class is its sub-folder (its path relative to
        ``path``, without the file name); images directly in ``path`` are
        refused. A regular expression with named groups: searched in each
        file's path relative to ``path`` (``/`` separators); files that do not
        match are left out, and each named group becomes a column of
        ``groups``. For CEDAR, ``r"(?P<kind>original|forgeries)_(?P<writer>\\d+)_\\d+"``.
        In a zip whose files all sit in one top folder (a zipped folder),
        paths are taken relative to that folder.
    target : str or None, default=None
        The named group of ``pattern`` that gives the class; ``None`` takes
        the first one. Only with ``pattern``.
    on_error : {'raise', 'skip'}, default='raise'
        What to do with image files that cannot be decoded: raise a
        ``ValueError`` naming the file, or leave them out with a warning that
        counts them (their names are in ``skipped``).
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of the ``Bunch``.

    Returns
    -------
    data : Bunch
        ``data``: float32 array in ``[0, 1]`` of shape ``(n, height, width)``
        for grey images or ``(n, 3, height, width)`` for colour ones (channels
        first, as PyTorch's convolutions take them). ``target``: int array of
        indices into ``target_names`` (sorted class names). ``groups``: a
        ``Bunch`` of string arrays, one per named group of ``pattern`` (empty
        without one); ``pandas.DataFrame(groups)`` makes it a table.
        ``filenames``: the path of each image (``'<zip>/<member>'`` in a
        zip; a file object is named by its ``name``, else ``'<zip>'``).
        ``skipped``: files left out by ``on_error='skip'``. ``DESCR``: what
        was loaded, and how.
    (data, target) : tuple
        With ``return_X_y=True``.

    Examples
    --------
    >>> import io, zipfile
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> with zipfile.ZipFile(buffer, "w") as archive:
    ...     for name in ["ann/1.png", "ann/2.png", "bob/1.png"]:
    ...         image = io.BytesIO()
    ...         Image.new("L", (40, 20), 255).save(image, format="PNG")
    ...         archive.writestr(name, image.getvalue())
    >>> from sksiamese.datasets import load_images
    >>> faces = load_images(buffer, image_size=(16, 32))
    >>> faces.data.shape, faces.target.tolist(), faces.target_names.tolist()
    ((3, 16, 32), [0, 0, 1], ['ann', 'bob'])
    """
    height, width = _check_size(image_size)
    if background not in ("keep", "remove"):
        raise ValueError(f"background must be 'keep' or 'remove'; got {background!r}.")
    if target is not None and pattern is None:
        raise ValueError("target names a group of `pattern`; pass a pattern with it.")
    if color not in (None, True, False):
        raise ValueError(f"color must be True, False or None; got {color!r}.")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    if isinstance(path, str | os.PathLike):
        source = os.fspath(path)
    else:
        source = str(getattr(path, "name", "<zip>"))
    files, archive = _image_files(path)
    try:
        if not files:
            kinds = ", ".join(sorted(IMAGE_SUFFIXES))
            raise ValueError(f"{source} holds no image files ({kinds}).")
        read = dict(files)
        relative = [name for name, _ in files]
        if archive is not None:
            relative = _relative_names(relative)
            read = dict(zip(relative, read.values(), strict=True))
        names, labels, columns = _labels(relative, pattern, target, source)
        members = dict(zip(relative, (name for name, _ in files), strict=True))
        # Each image is resized as soon as it is read, in its own kind (grey or
        # colour), so that memory holds small images only.
        fitted, grey, kept, skipped = [], [], [], []
        for i, name in enumerate(names):
            try:
                image = Image.open(io.BytesIO(read[name]()))
                image.load()  # decodes now: a truncated file fails here
                grey_file = image.mode in _GREY_MODES
                # Photos store their orientation apart from their pixels.
                image = _eight_bit(ImageOps.exif_transpose(image))
                own_mode = "L" if grey_file else "RGB"
                resized = _fit(image.convert(own_mode), (width, height), keep_aspect)
            except _DECODE_ERRORS as error:
                if on_error == "raise":
                    raise ValueError(
                        f"Cannot read {name} in {source}: {error}. Pass on_error='skip' to "
                        "leave unreadable files out."
                    ) from error
                skipped.append(name)
                continue
            grey.append(grey_file)
            fitted.append(resized)
            kept.append(i)
    finally:
        if archive is not None:
            archive.close()
    if skipped:
        warnings.warn(
            f"Skipped {len(skipped)} unreadable image files of {source} (e.g. {skipped[0]!r}).",
            UserWarning,
            stacklevel=2,
        )
    if not fitted:
        raise ValueError(f"None of the {len(names)} image files of {source} could be read.")
    colour = _resolve_color(color, np.array(grey), [names[i] for i in kept], source)
    mode = "RGB" if colour else "L"
    data = np.stack([np.asarray(image.convert(mode)) for image in fitted]).astype(np.float32)
    data /= 255
    if colour:
        data = np.ascontiguousarray(data.transpose(0, 3, 1, 2))
    if background == "remove":
        data = np.stack([_remove_background(image) for image in data])
    if invert:
        data = 1 - data
    labels = labels[kept]
    target_names, codes = np.unique(labels, return_inverse=True)
    if return_X_y:
        return data, codes
    prefix = f"{source}/"
    return Bunch(
        data=data,
        target=codes,
        target_names=target_names,
        groups=Bunch(**{group: column[kept] for group, column in columns.items()}),
        filenames=np.array([prefix + members[names[i]] for i in kept]),
        skipped=skipped,
        DESCR=(
            f"{len(data)} images of {source} in {len(target_names)} classes "
            f"({'by ' + repr(pattern) if pattern else 'by sub-folder'}), "
            f"{'colour' if colour else 'grey'}, {height}x{width}, "
            f"{'aspect kept and padded' if keep_aspect else 'stretched'}"
            f"{', background removed' if background == 'remove' else ''}"
            f"{', inverted' if invert else ''}; {len(skipped)} unreadable files skipped."
        ),
    )


def _check_size(image_size):
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

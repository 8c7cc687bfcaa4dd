"""``load_images``: a folder or zip of image files as arrays, in the spirit of ``load_files``."""

import io
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
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError)


def _image_files(path):
    """``(name, reader)`` of every image file under a folder or in a zip, sorted by name.

    ``name`` is the path relative to the folder (or the member name), with
    ``/`` separators; hidden files and macOS resource forks are left out.
    Also returns the open ``ZipFile`` (``None`` for a folder), for the caller
    to close.
    """
    if isinstance(path, str | Path):
        path = Path(path)
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
    path : str or path-like
        A folder, searched recursively, or a zip file.
    image_size : int or tuple of (int, int), default=(64, 64)
        ``(height, width)`` of every image in ``data``; an int for squares.
    color : bool or None, default=None
        ``False`` converts every image to grey levels, ``True`` to RGB.
        ``None`` keeps the files' own kind, and refuses a collection that
        mixes grey and colour files (palette images count as colour).
    invert : bool, default=False
        ``False`` keeps intensities as stored (white paper is 1). ``True``
        returns ``1 - intensity``: dark ink on light paper becomes high values
        on a zero background, as in Omniglot and for scanned signatures.
    keep_aspect : bool, default=True
        ``True`` scales each image to fit ``image_size`` with its aspect ratio
        kept, centred and padded with its background (the median of its
        border pixels). ``False`` stretches it to ``image_size``. On the
        CEDAR training writers (scans from 183 to 256 pixels wide, 63 to 256
        high, at 48x96), keeping the aspect gave the better verification (see
        ``docs/benchmarks.md``).
    pattern : str or None, default=None
        ``None``: each image's class is its sub-folder (its path relative to
        ``path``, without the file name); images directly in ``path`` are
        refused. A regular expression with named groups: searched in each
        file's path relative to ``path`` (``/`` separators); files that do not
        match are left out, and each named group becomes a column of
        ``groups``. For CEDAR, ``r"(?P<kind>original|forgeries)_(?P<writer>\\d+)_\\d+"``.
    target : str or None, default=None
        The named group of ``pattern`` that gives the class; ``None`` takes
        the first one. Ignored without ``pattern``.
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
        ``filenames``: the path of each image (``'<zip>/<member>'`` in a zip).
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
    if color not in (None, True, False):
        raise ValueError(f"color must be True, False or None; got {color!r}.")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    source = str(path) if isinstance(path, str | Path) else "the zip file"
    files, archive = _image_files(path)
    try:
        if not files:
            kinds = ", ".join(sorted(IMAGE_SUFFIXES))
            raise ValueError(f"{source} holds no image files ({kinds}).")
        read = dict(files)
        names, labels, columns = _labels([name for name, _ in files], pattern, target, source)
        # Each image is resized as soon as it is read, in its own kind (grey or
        # colour), so that memory holds small images only.
        fitted, grey, kept, skipped = [], [], [], []
        for i, name in enumerate(names):
            try:
                image = Image.open(io.BytesIO(read[name]()))
                image.load()  # decodes now: a truncated file fails here
                # Photos store their orientation apart from their pixels.
                image = ImageOps.exif_transpose(image)
            except _DECODE_ERRORS as error:
                if on_error == "raise":
                    raise ValueError(
                        f"Cannot read {name} in {source}: {error}. Pass on_error='skip' to "
                        "leave unreadable files out."
                    ) from error
                skipped.append(name)
                continue
            grey.append(image.mode in _GREY_MODES)
            own_mode = "L" if grey[-1] else "RGB"
            fitted.append(_fit(image.convert(own_mode), (width, height), keep_aspect))
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
    if invert:
        data = 1 - data
    labels = labels[kept]
    target_names, codes = np.unique(labels, return_inverse=True)
    if return_X_y:
        return data, codes
    prefix = f"{source}/" if archive is not None else f"{Path(source)}/"
    return Bunch(
        data=data,
        target=codes,
        target_names=target_names,
        groups=Bunch(**{group: column[kept] for group, column in columns.items()}),
        filenames=np.array([prefix + names[i] for i in kept]),
        skipped=skipped,
        DESCR=(
            f"{len(data)} images of {source} in {len(target_names)} classes "
            f"({'by ' + repr(pattern) if pattern else 'by sub-folder'}), "
            f"{'colour' if colour else 'grey'}, {height}x{width}, "
            f"{'aspect kept and padded' if keep_aspect else 'stretched'}"
            f"{', inverted' if invert else ''}; {len(skipped)} unreadable files skipped."
        ),
    )


def _check_size(image_size):
    size = (image_size, image_size) if isinstance(image_size, Integral) else image_size
    try:
        height, width = size
    except (TypeError, ValueError):
        height = width = None
    valid = all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in size or ())
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

"""``load_images``: a folder or zip of image files as arrays, in the spirit of ``load_files``.

This module finds the files, reads their labels and puts the result
together; ``_image_decoding`` turns each file's bytes into pixels.
"""

import os
import re
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from sklearn.utils import Bunch

from ._image_decoding import _check_arguments, _finish, _fit_all, _resolve_color
from ._image_paths import ImageFiles
from ._warnings import warn

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".webp"}
)


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
    decode=True,
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
    decode : bool, default=True
        ``False`` reads no pixel: ``data`` is then an
        :class:`~sksiamese.datasets.ImageFiles` of the files (a folder only),
        which the estimators take as they take the array and decode batch by
        batch, with these options, in ``DataLoader`` worker processes. For
        collections larger than memory. Unreadable files are then found when
        a batch reads them (``on_error`` says what happens).
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
    height, width = _check_arguments(image_size, color, background, pattern, target, on_error)
    source = _source_name(path)
    files, archive = _image_files(path)
    if not decode:
        options = dict(image_size=(height, width), color=color, invert=invert)
        options.update(background=background, keep_aspect=keep_aspect, on_error=on_error)
        return _undecoded(path, files, archive, source, pattern, target, options, return_X_y)
    try:
        relative, read, members = _relative_files(files, archive, source)
        names, labels, columns = _labels(relative, pattern, target, source)
        fitted, grey, kept, skipped = _fit_all(
            names, read, (width, height), keep_aspect, on_error, source
        )
    finally:
        if archive is not None:
            archive.close()
    if skipped:
        warn(
            f"Skipped {len(skipped)} unreadable image files of {source} (e.g. {skipped[0]!r}).",
            UserWarning,
        )
    if not fitted:
        raise ValueError(f"None of the {len(names)} image files of {source} could be read.")
    colour = _resolve_color(color, np.array(grey), [names[i] for i in kept], source)
    data = _finish(fitted, colour, background, invert)
    groups = {group: column[kept] for group, column in columns.items()}
    filenames = np.array([f"{source}/{members[names[i]]}" for i in kept])
    details = (
        f" ({'by ' + repr(pattern) if pattern else 'by sub-folder'}), "
        f"{'colour' if colour else 'grey'}, {height}x{width}, "
        f"{'aspect kept and padded' if keep_aspect else 'stretched'}"
        f"{', background removed' if background == 'remove' else ''}"
        f"{', inverted' if invert else ''}; {len(skipped)} unreadable files skipped."
    )
    what = f"images of {source}"
    return _result(data, labels[kept], groups, filenames, skipped, return_X_y, what, details)


def _result(data, labels, groups, filenames, skipped, return_X_y, what, details):
    """What ``load_images`` returns: ``(data, codes)``, or the Bunch of ``what`` and ``details``."""
    target_names, codes = np.unique(labels, return_inverse=True)
    if return_X_y:
        return data, codes
    return Bunch(
        data=data,
        target=codes,
        target_names=target_names,
        groups=Bunch(**groups),
        filenames=filenames,
        skipped=skipped,
        DESCR=f"{len(data)} {what} in {len(target_names)} classes{details}",
    )


def _undecoded(path, files, archive, source, pattern, target, options, return_X_y):
    """``load_images(decode=False)``: the files as :class:`ImageFiles`, with their labels."""
    if archive is not None:
        archive.close()
        raise ValueError(
            f"decode=False reads the files from a folder; {source} is a zip: extract it, "
            "or load it decoded."
        )
    names, labels, columns = _labels([name for name, _ in files], pattern, target, source)
    paths = [Path(os.fspath(path), name) for name in names]
    data = ImageFiles(paths, **options)
    what = f"image files of {source}"
    details = f", not decoded: each decoded to {data.sample_shape} when a batch needs it."
    return _result(data, labels, columns, data.paths, [], return_X_y, what, details)


def _source_name(path):
    """What messages and ``filenames`` call ``path``: its own name, a file object's, or '<zip>'."""
    if isinstance(path, str | os.PathLike):
        return os.fspath(path)
    return str(getattr(path, "name", "<zip>"))


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


def _relative_files(files, archive, source):
    """The files' names relative to the collection, a reader by name, and each one's own name.

    The own name is the path under the folder or the member of the zip; a
    zipped folder's relative names drop that folder (``_relative_names``).
    """
    if not files:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ValueError(f"{source} holds no image files ({kinds}).")
    own = [name for name, _ in files]
    read, relative = dict(files), own
    if archive is not None:
        relative = _relative_names(own)
        read = dict(zip(relative, read.values(), strict=True))
    return relative, read, dict(zip(relative, own, strict=True))


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
    """Whether ``name`` is a hidden file, in a hidden folder or a macOS resource fork."""
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

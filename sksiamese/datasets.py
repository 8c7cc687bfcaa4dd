"""Omniglot, loaded the way scikit-learn's ``fetch_*`` functions load data, and your own images.

Files come from the official repository (github.com/brendenlake/omniglot,
MIT licence) into a cache folder, are checked against a known digest, and are
decoded once into an array cache beside them. A folder that already holds the
zip files works offline.
"""

import contextlib
import functools
import hashlib
import os
import shutil
import urllib.request
import uuid
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from sklearn.utils import Bunch

from ._image_files import load_images
from ._image_paths import ImageFiles

__all__ = ["ImageFiles", "fetch_omniglot", "fetch_omniglot_runs", "get_data_home", "load_images"]

_BASE_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"

# (algorithm, digest). SHA-256 where we computed it from the official files;
# the official repository publishes no digest, and for the two full subsets
# only the MD5 sums that torchvision's loader pins are known.
_FILES = {
    "background": ("images_background.zip", ("md5", "68d2efa1b9178cc56df9314c21c6e718")),
    "evaluation": ("images_evaluation.zip", ("md5", "6b91aef0f799c5bb55b94e3f2daec811")),
    "background_small1": (
        "images_background_small1.zip",
        ("sha256", "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"),
    ),
    "background_small2": (
        "images_background_small2.zip",
        ("sha256", "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"),
    ),
    "runs": (
        "all_runs.zip",
        ("sha256", "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325"),
    ),
}
_URLS = {name: _BASE_URL + file for name, (file, _) in _FILES.items()}
_URLS["runs"] = _BASE_URL + "one-shot-classification/all_runs.zip"

DESCR = """\
Omniglot (Lake, Salakhutdinov and Tenenbaum, 2015): 1,623 handwritten
characters from 50 alphabets, each drawn once by 20 people, 105x105 pixels.
The 'background' set (30 alphabets, 964 characters) is for training, the
'evaluation' set (20 alphabets, 659 characters) for testing;
'background_small1' and 'background_small2' are two subsets of 5 alphabets
each. Here ink = 1 and paper = 0. Licence: MIT,
https://github.com/brendenlake/omniglot."""


def get_data_home(data_home=None):
    """The folder where datasets are cached, created if missing.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder. ``None`` takes the environment variable ``SKSIAMESE_DATA``,
        else ``~/sksiamese_data``.

    Returns
    -------
    data_home : pathlib.Path
        The folder, created if it did not exist.
    """
    if data_home is None:
        data_home = os.environ.get("SKSIAMESE_DATA", Path("~", "sksiamese_data"))
    data_home = Path(data_home).expanduser()
    data_home.mkdir(parents=True, exist_ok=True)
    return data_home


def _digest(path, algorithm):
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _check_digest(path, name):
    algorithm, expected = _FILES[name][1]
    if _digest(path, algorithm) != expected:
        raise OSError(
            f"{path} is corrupt: its {algorithm.upper()} digest is not {expected}. "
            f"Delete it to download it again from {_URLS[name]}."
        )


@contextlib.contextmanager
def _replacing(path):
    """A temporary path beside ``path``, moved onto it if the block succeeds.

    ``path`` is then either complete or untouched: an interrupted download, a
    wrong digest or a full disk removes the temporary file instead. The block
    creates the file, so it gets the usual permissions (``mkstemp``'s are
    private to the user, wrong for a shared data folder).
    """
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _zip_path(name, data_home, download_if_missing):
    """Path of the verified zip file ``name``, downloading it if allowed."""
    folder = get_data_home(data_home) / "omniglot"
    path = folder / _FILES[name][0]
    if not path.exists():
        if not download_if_missing:
            raise OSError(
                f"{path} is missing and download_if_missing=False; download it "
                f"from {_URLS[name]} or allow the download."
            )
        folder.mkdir(parents=True, exist_ok=True)
        with _replacing(path) as partial:
            with open(partial, "wb") as file, urllib.request.urlopen(_URLS[name]) as response:
                shutil.copyfileobj(response, file)
            _check_digest(partial, name)
    return path


def _decode(data, image_size):
    """Ink-is-one uint8 image (0-255) from PNG bytes, resized if asked."""
    image = Image.open(data).convert("L")
    if image_size is not None:
        image = image.resize((image_size, image_size), Image.Resampling.BOX)
    return 255 - np.asarray(image, dtype=np.uint8)


@contextlib.contextmanager
def _png_members(path):
    """``{name: opener}`` of the PNG files of an ``images_*`` zip or extracted folder.

    Names are ``images_*/<alphabet>/<character>/<file>.png`` in both.
    """
    if path.is_dir():
        yield {
            file.relative_to(path.parent).as_posix(): functools.partial(file.open, "rb")
            for file in path.rglob("*.png")
        }
        return
    with zipfile.ZipFile(path) as archive:
        yield {name: functools.partial(archive.open, name) for name in archive.namelist()}


def _read_images(path, image_size):
    """Decode every character image of an ``images_*`` zip or folder, in sorted order."""
    images, target, alphabet, drawer = [], [], [], []
    with _png_members(path) as members:
        for member in sorted(members):
            parts = PurePosixPath(member).parts
            if not member.endswith(".png") or len(parts) != 4:
                continue
            _, language, character, filename = parts
            with members[member]() as data:
                images.append(_decode(data, image_size))
            target.append(f"{language}/{character}")
            alphabet.append(language)
            drawer.append(int(filename.removesuffix(".png").split("_")[1]))
    if not images:
        raise OSError(f"{path} holds no images_*/<alphabet>/<character>/<drawing>.png files.")
    return np.stack(images), np.array(target), np.array(alphabet), np.array(drawer)


def _cached_arrays(name, path, image_size):
    """Decoded arrays, cached beside the zip; the cache is skipped if read-only."""
    cache = path.with_name(f"{path.stem}_{image_size or 'full'}.npz")
    if cache.exists():
        with np.load(cache) as arrays:
            return tuple(arrays[key] for key in ("images", "target", "alphabet", "drawer"))
    if path.is_file():  # an extracted folder is the user's own: no digest to check
        _check_digest(path, name)
    arrays = _read_images(path, image_size)
    try:
        with _replacing(cache) as partial, open(partial, "wb") as file:
            np.savez(file, images=arrays[0], target=arrays[1], alphabet=arrays[2], drawer=arrays[3])
    except OSError:
        pass  # a read-only data folder still loads, only slower next time
    return arrays


def _check_image_size(image_size):
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise ValueError(f"image_size must be a positive int or None; got {image_size!r}.")


def _add_rotations(images, target, alphabet, drawer):
    """Append each image's 90, 180 and 270 degree rotations as new classes."""
    rotated = [np.rot90(images, k, axes=(1, 2)) for k in range(4)]
    targets = [target] + [np.char.add(target, f"/rot{90 * k}") for k in range(1, 4)]
    return (
        np.concatenate(rotated),
        np.concatenate(targets),
        np.tile(alphabet, 4),
        np.tile(drawer, 4),
    )


def fetch_omniglot(
    subset="background",
    *,
    data_home=None,
    download_if_missing=True,
    image_size=None,
    rotations=False,
    return_X_y=False,
):
    """Load an Omniglot subset (classification, one class per character).

    Parameters
    ----------
    subset : {'background', 'evaluation', 'background_small1', \
            'background_small2'}, default='background'
        Which alphabets. The 20 official one-shot runs are drawn from
        'evaluation': keep it for testing.
    data_home : str or path-like, default=None
        Cache folder (see :func:`get_data_home`); the zip files live in its
        ``omniglot`` subfolder. A folder extracted from the zip there
        (``omniglot/images_background/<alphabet>/<character>/*.png``) is read
        instead, offline and without the digest check that downloaded files
        get.
    download_if_missing : bool, default=True
        Download a missing file; otherwise raise ``OSError``.
    image_size : int, default=None
        Resize the 105x105 images to ``image_size`` x ``image_size`` (28 is
        the usual choice); ``None`` keeps them whole.
    rotations : bool, default=False
        Also return every image rotated by 90, 180 and 270 degrees, each
        rotation of a character as a class of its own
        (``'Greek/character01/rot90'``): a common way to quadruple the
        training classes of Omniglot (Santoro et al. 2016, Vinyals et al.
        2016), since a rotated character looks like another character. For
        training sets only; evaluate on upright images.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a ``Bunch``.

    Returns
    -------
    data : Bunch
        ``data``: ndarray of shape (n_images, size, size), float32 in [0, 1],
        ink = 1. ``target``: ``'Alphabet/characterNN'`` per image.
        ``alphabet``: the alphabet of each image. ``drawer``: which of the 20
        people drew it (1-20). ``DESCR``: a description.
    (data, target) : tuple if ``return_X_y`` is True
        The images and their ``'Alphabet/characterNN'`` labels.

    Examples
    --------
    >>> from sksiamese.datasets import fetch_omniglot
    >>> omniglot = fetch_omniglot("background_small1", image_size=28)  # doctest: +SKIP
    >>> omniglot.data.shape  # doctest: +SKIP
    (2720, 28, 28)
    """
    if subset not in _FILES or subset == "runs":
        choices = sorted(set(_FILES) - {"runs"})
        raise ValueError(f"subset must be one of {choices}; got {subset!r}.")
    _check_image_size(image_size)
    folder = get_data_home(data_home) / "omniglot" / PurePosixPath(_FILES[subset][0]).stem
    if folder.is_dir():
        path = folder
    else:
        path = _zip_path(subset, data_home, download_if_missing)
    arrays = _cached_arrays(subset, path, image_size)
    if rotations:
        arrays = _add_rotations(*arrays)
    images, target, alphabet, drawer = arrays
    data = images.astype(np.float32) / 255
    if return_X_y:
        return data, target
    return Bunch(data=data, target=target, alphabet=alphabet, drawer=drawer, DESCR=DESCR)


def fetch_omniglot_runs(*, data_home=None, download_if_missing=True, image_size=None):
    """Load the 20 official within-alphabet 20-way one-shot runs.

    Each run (Lake et al., 2015) holds one drawing of each of 20 characters
    of one evaluation alphabet (the support set) and 20 other drawings of the
    same characters (the queries).

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder (see :func:`get_data_home`).
    download_if_missing : bool, default=True
        Download ``all_runs.zip`` if missing; otherwise raise ``OSError``.
    image_size : int, default=None
        Resize the images as in :func:`fetch_omniglot`.

    Returns
    -------
    runs : list of 20 Bunch
        ``support_data`` (20, size, size) and ``support_target`` (20,);
        ``query_data`` (20, size, size) and ``query_target`` (20,), the
        support class of each query. Targets name the support image
        (``'class07'``); images are float32 with ink = 1.
    """
    _check_image_size(image_size)
    path = _zip_path("runs", data_home, download_if_missing)
    _check_digest(path, "runs")
    runs = []
    with zipfile.ZipFile(path) as archive:

        def image(member):
            with archive.open(member) as data:
                return _decode(data, image_size).astype(np.float32) / 255

        for run in range(1, 21):
            labels = archive.read(f"run{run:02d}/class_labels.txt").decode().split()
            queries, supports = labels[0::2], labels[1::2]
            support_files = sorted(set(supports))
            runs.append(
                Bunch(
                    support_data=np.stack([image(f) for f in support_files]),
                    support_target=np.array([PurePosixPath(f).stem for f in support_files]),
                    query_data=np.stack([image(f) for f in queries]),
                    query_target=np.array([PurePosixPath(f).stem for f in supports]),
                )
            )
    return runs

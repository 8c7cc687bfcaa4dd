"""Shared data setup of the Omniglot benchmarks.

The benchmarks read the official zip files from a data folder: ``--data-home``,
else ``$SKSIAMESE_DATA``, else a cache folder seeded with a copy of the files in
``../shared/data/omniglot`` when that exists (so the decoded-array cache can be
written beside them). The shared copy of ``images_background.zip`` was
re-zipped, so its digest is not the official one: it is extracted into the
data folder instead, which ``fetch_omniglot`` reads without a digest check.
"""

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from sksiamese.datasets import fetch_omniglot

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
# The official archives, copied as they are (their digests are checked).
OFFICIAL = ("images_background_small1.zip", "images_background_small2.zip", "all_runs.zip")


def data_home(requested=None):
    if requested or os.environ.get("SKSIAMESE_DATA"):
        return requested or os.environ["SKSIAMESE_DATA"]
    home = Path(tempfile.gettempdir()) / "sksiamese_benchmark_data"
    (home / "omniglot").mkdir(parents=True, exist_ok=True)
    for name in OFFICIAL:
        target = home / "omniglot" / name
        if (SHARED / name).exists() and not target.exists():
            shutil.copy(SHARED / name, target)
    return home


def background_folder(home):
    """Extract the shared copy of the 30 background alphabets under ``home``.

    ``fetch_omniglot`` reads an extracted ``omniglot/images_background`` folder
    before any zip, so a copy of the re-zipped archive left in ``home`` (whose
    digest it would refuse) does no harm. Without a shared copy nothing is
    done, and ``fetch_omniglot`` downloads the official zip. The files go to a
    temporary folder first, so a failed extraction leaves no partial folder.
    """
    folder = Path(home) / "omniglot" / "images_background"
    shared = SHARED / "images_background.zip"
    if folder.is_dir() or not shared.exists():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        with zipfile.ZipFile(shared) as archive:
            archive.extractall(scratch)
        try:
            os.replace(Path(scratch) / "images_background", folder)
        except OSError:
            if not folder.is_dir():  # not another benchmark extracting it first
                raise


def upright_mask(target):
    """Mask of the images that are not rotated copies (``'.../rot90'`` classes)."""
    return np.char.find(np.asarray(target).astype(str), "/rot") < 0


def background_small(home, image_size=28, rotations=True):
    """``background_small1`` + ``background_small2``, each image once.

    The two subsets share the Greek and Latin alphabets (1,000 images), so the
    union is deduplicated by character and drawer.
    """
    parts = [
        fetch_omniglot(subset, data_home=home, image_size=image_size, rotations=rotations)
        for subset in ("background_small1", "background_small2")
    ]
    X = np.concatenate([part.data for part in parts])
    y = np.concatenate([part.target for part in parts])
    drawer = np.concatenate([part.drawer for part in parts])
    keys = np.char.add(np.char.add(y, "#"), drawer.astype(str))
    _, first = np.unique(keys, return_index=True)
    first.sort()
    return X[first], y[first]


def held_out_alphabets(alphabet):
    """The 5 background alphabets held out to choose the full setting's parameters.

    Drawn once by ``np.random.default_rng(0)`` from the 30 sorted names:
    Blackfoot, Burmese, Greek, Inuktitut and Malay. Blackfoot (14 characters)
    and Inuktitut (16) are too small for 20-way episodes, so validation
    episodes come from the other three; the draw is kept as it was made.
    """
    names = np.unique(alphabet)
    return names[np.sort(np.random.default_rng(0).choice(len(names), 5, replace=False))]


def background_full(home, image_size=28, rotations=True):
    """The 30 background alphabets (964 characters): a ``Bunch`` from ``fetch_omniglot``."""
    background_folder(home)
    return fetch_omniglot("background", data_home=home, image_size=image_size, rotations=rotations)

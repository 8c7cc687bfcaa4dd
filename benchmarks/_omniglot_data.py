"""Shared data setup of the Omniglot benchmarks.

The benchmarks read the official zip files from a data folder: ``--data-home``,
else ``$SKSIAMESE_DATA``, else a cache folder seeded with a copy of the files in
``../shared/data/omniglot`` when that exists (so the decoded-array cache can be
written beside them).
"""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from sksiamese.datasets import fetch_omniglot

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


def data_home(requested=None):
    if requested or os.environ.get("SKSIAMESE_DATA"):
        return requested or os.environ["SKSIAMESE_DATA"]
    home = Path(tempfile.gettempdir()) / "sksiamese_benchmark_data"
    (home / "omniglot").mkdir(parents=True, exist_ok=True)
    for source in SHARED.glob("*.zip"):
        target = home / "omniglot" / source.name
        if not target.exists():
            shutil.copy(source, target)
    return home


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

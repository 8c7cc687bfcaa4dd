"""CEDAR signatures for the benchmarks, read from the shared data folder.

CEDAR (Center of Excellence for Document Analysis and Recognition, University
at Buffalo; research use) holds 55 writers, each with 24 genuine signatures and
24 skilled forgeries of them by other people. Users obtain it from CEDAR; the
benchmarks read ``cedar/cedar_signatures.zip`` from ``$SKSIAMESE_DATA``, else
from ``../shared/data``.
"""

import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
_NAME = re.compile(r"(?P<kind>original|forgeries)_(?P<writer>\d+)_(?P<n>\d+)\.png$")


def zip_path():
    for home in (os.environ.get("SKSIAMESE_DATA"), SHARED):
        if home and (Path(home) / "cedar" / "cedar_signatures.zip").exists():
            return Path(home) / "cedar" / "cedar_signatures.zip"
    raise FileNotFoundError(
        "cedar/cedar_signatures.zip is in neither $SKSIAMESE_DATA nor " + str(SHARED)
    )


def _fit_into(image, shape):
    """Scale ``image`` to fit ``shape`` (height, width), aspect kept, centred on paper."""
    height, width = shape
    scale = min(height / image.height, width / image.width)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new("L", (width, height), 255)
    canvas.paste(
        image.resize(size, Image.Resampling.BOX), ((width - size[0]) // 2, (height - size[1]) // 2)
    )
    return canvas


def load_cedar(shape=(48, 96)):
    """Images (ink = 1, float32), writer and genuine flag of every signature.

    The decoded arrays are cached as ``cedar/cedar_<H>x<W>.npz`` under
    ``$SKSIAMESE_DATA`` when it is set, and read from there whenever the cache
    exists (then the zip is not needed).
    """
    home = os.environ.get("SKSIAMESE_DATA")
    cache = Path(home, "cedar", f"cedar_{shape[0]}x{shape[1]}.npz") if home else None
    if cache is not None and cache.exists():
        with np.load(cache) as arrays:
            images, writers, genuine = arrays["images"], arrays["writers"], arrays["genuine"]
    else:
        images, writers, genuine = _decode_all(shape)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, images=images, writers=writers, genuine=genuine)
    return images.astype(np.float32) / 255, writers, genuine


def _decode_all(shape):
    images, writers, genuine = [], [], []
    with zipfile.ZipFile(zip_path()) as archive:
        for member in sorted(archive.namelist()):
            match = _NAME.search(member)
            if match is None:
                continue
            image = Image.open(io.BytesIO(archive.read(member))).convert("L")
            images.append(255 - np.asarray(_fit_into(image, shape), dtype=np.uint8))
            writers.append(int(match["writer"]))
            genuine.append(match["kind"] == "original")
    return np.stack(images), np.array(writers), np.array(genuine)

"""Loaders on a temporary data_home: copies of the shared Omniglot files where
a test needs the real data, small synthetic archives everywhere else."""

import hashlib
import io
import shutil
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sksiamese import datasets
from sksiamese.datasets import fetch_omniglot, fetch_omniglot_runs, get_data_home

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
FILES = ["images_background_small1.zip", "images_background_small2.zip", "all_runs.zip"]

needs_data = pytest.mark.skipif(
    not all((SHARED / name).exists() for name in FILES), reason="needs ../shared/data/omniglot"
)


@pytest.fixture(scope="module")
def data_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("data_home")
    (home / "omniglot").mkdir()
    for name in FILES:
        shutil.copy(SHARED / name, home / "omniglot" / name)
    return home


def png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    """A 12-image stand-in for background_small1, served from a file URL.

    Returns the (n, 6, 6) paper-is-255 pixels it holds, in sorted order.
    """
    source = tmp_path / "server" / "images_background_small1.zip"
    source.parent.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (12, 6, 6), dtype=np.uint8)
    with zipfile.ZipFile(source, "w") as archive:
        for i, image in enumerate(pixels):
            alphabet, character, drawer = ("Greek", "Latin")[i // 6], i // 3 % 2 + 1, i % 3 + 1
            member = f"{alphabet}/character{character:02d}/{character:04d}_{drawer:02d}.png"
            archive.writestr(f"images_background_small1/{member}", png(image))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setitem(datasets._FILES, "background_small1", (source.name, ("sha256", digest)))
    monkeypatch.setitem(datasets._URLS, "background_small1", source.as_uri())
    return pixels


@needs_data
def test_background_small1_at_28_pixels(data_home):
    omniglot = fetch_omniglot(
        "background_small1", data_home=data_home, download_if_missing=False, image_size=28
    )
    assert omniglot.data.shape == (2720, 28, 28)
    assert omniglot.data.dtype == np.float32
    assert omniglot.data.min() == 0.0 and omniglot.data.max() == 1.0
    assert omniglot.data.mean() < 0.2  # ink = 1 on paper = 0: mostly zeros
    assert len(np.unique(omniglot.target)) == 136
    assert set(np.unique(omniglot.alphabet)) == {
        "Balinese",
        "Early_Aramaic",
        "Greek",
        "Korean",
        "Latin",
    }
    assert omniglot.target[0] == "Balinese/character01"
    np.testing.assert_array_equal(np.unique(omniglot.drawer), np.arange(1, 21))
    assert "Omniglot" in omniglot.DESCR


@pytest.mark.slow
@needs_data
def test_full_size_images_and_return_X_y(data_home):
    X, y = fetch_omniglot("background_small2", data_home=data_home, return_X_y=True)
    assert X.shape == (3120, 105, 105) and y.shape == (3120,)


@needs_data
def test_the_twenty_official_runs(data_home):
    runs = fetch_omniglot_runs(data_home=data_home, download_if_missing=False, image_size=28)
    assert len(runs) == 20
    for run in runs:
        assert run.support_data.shape == run.query_data.shape == (20, 28, 28)
        assert len(set(run.support_target)) == 20
        assert set(run.query_target) == set(run.support_target)
    # Run 1's first query is a drawing of class 8 (its class_labels.txt).
    assert runs[0].query_target[0] == "class08"


def test_missing_file_names_the_file_and_its_url(tmp_path):
    with pytest.raises(OSError, match=r"images_evaluation\.zip.*github\.com/brendenlake"):
        fetch_omniglot("evaluation", data_home=tmp_path, download_if_missing=False)


def test_corrupt_file_is_caught_by_its_checksum(tmp_path):
    (tmp_path / "omniglot").mkdir()
    with zipfile.ZipFile(tmp_path / "omniglot" / "images_background_small1.zip", "w") as archive:
        archive.writestr("images_background_small1/Greek/character01/0001_01.png", b"not a png")
    with pytest.raises(OSError, match="corrupt.*SHA256"):
        fetch_omniglot("background_small1", data_home=tmp_path, download_if_missing=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="subset must be one of"):
        fetch_omniglot("training", data_home=tmp_path)
    with pytest.raises(ValueError, match="image_size"):
        fetch_omniglot("background_small1", data_home=tmp_path, image_size=0)
    with pytest.raises(ValueError, match="image_size"):
        fetch_omniglot_runs(data_home=tmp_path, image_size=2.5)


def test_data_home_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SKSIAMESE_DATA", str(tmp_path / "cache"))
    assert get_data_home() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()


@needs_data
def test_rotations_are_new_classes(data_home):
    upright = fetch_omniglot("background_small1", data_home=data_home, image_size=28)
    rotated = fetch_omniglot(
        "background_small1", data_home=data_home, image_size=28, rotations=True
    )
    n = len(upright.data)
    assert rotated.data.shape == (4 * n, 28, 28)
    assert len(np.unique(rotated.target)) == 4 * len(np.unique(upright.target))
    np.testing.assert_array_equal(rotated.data[:n], upright.data)
    np.testing.assert_array_equal(rotated.data[n : 2 * n], np.rot90(upright.data, 1, axes=(1, 2)))
    assert rotated.target[n] == upright.target[0] + "/rot90"
    np.testing.assert_array_equal(rotated.alphabet[n : 2 * n], upright.alphabet)


@needs_data
def test_download_checks_the_digest_and_caches_the_file(tmp_path, monkeypatch):
    from sksiamese import datasets

    monkeypatch.setitem(datasets._URLS, "runs", (SHARED / "all_runs.zip").as_uri())
    runs = fetch_omniglot_runs(data_home=tmp_path, image_size=14)
    assert (tmp_path / "omniglot" / "all_runs.zip").exists()
    assert runs[0].support_data.shape == (20, 14, 14)


def test_a_corrupt_download_is_refused_and_removed(tmp_path, monkeypatch):
    wrong = tmp_path / "wrong.zip"  # not the runs file
    wrong.write_bytes(b"PK not the runs file")
    monkeypatch.setitem(datasets._URLS, "runs", wrong.as_uri())
    with pytest.raises(OSError, match="corrupt"):
        fetch_omniglot_runs(data_home=tmp_path / "home")
    assert list((tmp_path / "home" / "omniglot").iterdir()) == []


def test_download_and_array_cache_of_a_synthetic_archive(tmp_path, synthetic, monkeypatch):
    X, y = fetch_omniglot("background_small1", data_home=tmp_path, return_X_y=True)
    np.testing.assert_array_equal(X, (255 - synthetic) / np.float32(255))
    assert y[0] == "Greek/character01" and y[-1] == "Latin/character02"
    small = fetch_omniglot("background_small1", data_home=tmp_path, image_size=3)
    assert small.data.shape == (12, 3, 3)
    folder = tmp_path / "omniglot"
    assert {path.name for path in folder.iterdir()} == {
        "images_background_small1.zip",
        "images_background_small1_full.npz",
        "images_background_small1_3.npz",
    }
    # Later calls read the cache, not the archive.
    monkeypatch.setattr(datasets, "_read_images", lambda *args: pytest.fail("decoded again"))
    np.testing.assert_array_equal(fetch_omniglot("background_small1", data_home=tmp_path).data, X)


class Dropped(io.BytesIO):
    """A response whose connection drops after the first block."""

    def __init__(self, error):
        super().__init__(b"PK" * 1000)
        self.error = error

    def read(self, size=-1):
        if self.tell():
            raise self.error
        return super().read(size)


@pytest.mark.parametrize("error", [ConnectionResetError("reset by peer"), KeyboardInterrupt()])
def test_an_interrupted_download_leaves_no_file(tmp_path, synthetic, monkeypatch, error):
    with monkeypatch.context() as patched:
        patched.setattr(urllib.request, "urlopen", lambda url: Dropped(error))
        with pytest.raises(type(error)):
            fetch_omniglot("background_small1", data_home=tmp_path)
    assert list((tmp_path / "omniglot").iterdir()) == []
    # Nothing half-written stands in the way of the next try.
    assert len(fetch_omniglot("background_small1", data_home=tmp_path).data) == 12


def test_a_failed_cache_write_leaves_no_cache(tmp_path, synthetic, monkeypatch):
    def disk_full(file, **arrays):
        file.write(b"PK\x03\x04 truncated")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(np, "savez", disk_full)
        first = fetch_omniglot("background_small1", data_home=tmp_path)
    assert [path.name for path in (tmp_path / "omniglot").iterdir()] == [
        "images_background_small1.zip"
    ]
    # No truncated cache to trip over: the next call decodes and caches anew.
    again = fetch_omniglot("background_small1", data_home=tmp_path)
    np.testing.assert_array_equal(again.data, first.data)
    assert (tmp_path / "omniglot" / "images_background_small1_full.npz").exists()


def test_an_extracted_folder_is_read_offline_as_its_zip(tmp_path, synthetic):
    from_zip = fetch_omniglot("background_small1", data_home=tmp_path / "a")
    folder = tmp_path / "b" / "omniglot"
    with zipfile.ZipFile(tmp_path / "server" / "images_background_small1.zip") as archive:
        archive.extractall(folder)
    # Not a byte of the zip is there, and downloading is off: the folder serves.
    from_folder = fetch_omniglot(
        "background_small1", data_home=tmp_path / "b", download_if_missing=False
    )
    np.testing.assert_array_equal(from_folder.data, from_zip.data)
    for key in ("target", "alphabet", "drawer"):
        np.testing.assert_array_equal(from_folder[key], from_zip[key])
    assert (folder / "images_background_small1_full.npz").exists()


def test_an_extracted_folder_without_drawings_is_refused(tmp_path):
    (tmp_path / "omniglot" / "images_background_small1" / "Greek").mkdir(parents=True)
    with pytest.raises(OSError, match="holds no images_"):
        fetch_omniglot("background_small1", data_home=tmp_path, download_if_missing=False)

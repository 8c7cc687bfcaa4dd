"""Images left on disk: ImageFiles in fit, transform, predict and GridSearchCV, and bad files."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese.datasets import ImageFiles, load_images

FAST = dict(max_epochs=2, augment=False, inference_views=1, random_state=0)


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """Ten digit classes of 12 images each, as 8x8 PNG files in one folder per class."""
    root = tmp_path_factory.mktemp("digits")
    X, y = load_digits(return_X_y=True)
    for digit in range(10):
        (root / str(digit)).mkdir()
        for i, row in enumerate(X[y == digit][:12]):
            pixels = (row.reshape(8, 8) * 255 / 16).round().astype(np.uint8)
            Image.fromarray(pixels).save(root / str(digit) / f"{i:02d}.png")
    return root


def test_undecoded_files_decode_as_load_images_does(digit_folder):
    options = dict(image_size=(12, 10), invert=True, background="remove", keep_aspect=True)
    decoded = load_images(digit_folder, **options)
    files = load_images(digit_folder, decode=False, **options)
    assert isinstance(files.data, ImageFiles)
    assert files.data.shape == decoded.data.shape
    np.testing.assert_array_equal(files.data.to_array(), decoded.data)
    np.testing.assert_array_equal(files.target, decoded.target)
    np.testing.assert_array_equal(files.data[[3, 5]].to_array(), decoded.data[[3, 5]])
    np.testing.assert_array_equal(files.data[7], decoded.data[7])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_fit_on_files_equals_fit_on_the_array(digit_folder, num_workers, monkeypatch):
    array = load_images(digit_folder, image_size=8)
    files = load_images(digit_folder, image_size=8, decode=False)
    files.data.num_workers = num_workers
    in_memory = SiameseEmbedder(**FAST).fit(array.data, array.target)
    # Fails when anything in fit decodes the whole collection at once.
    monkeypatch.setattr(ImageFiles, "to_array", lambda self: pytest.fail("decoded everything"))
    on_disk = SiameseEmbedder(**FAST).fit(files.data, files.target)
    np.testing.assert_array_equal(on_disk.transform(files.data), in_memory.transform(array.data))
    assert on_disk.loss_curve_ == in_memory.loss_curve_


def test_test_time_views_decode_files_in_workers(digit_folder, monkeypatch):
    array = load_images(digit_folder, image_size=8)
    files = load_images(digit_folder, image_size=8, decode=False)
    params = dict(FAST, augment="auto", inference_views=3)
    in_memory = SiameseEmbedder(**params).fit(array.data, array.target)
    monkeypatch.setattr(ImageFiles, "to_array", lambda self: pytest.fail("decoded everything"))
    on_disk = SiameseEmbedder(**params).fit(files.data, files.target)
    assert on_disk.inference_views_ == 3
    np.testing.assert_array_equal(on_disk.transform(files.data), in_memory.transform(array.data))


def test_a_list_of_paths_is_decoded_with_the_defaults(digit_folder):
    files = load_images(digit_folder, decode=False)
    paths = [str(path) for path in files.filenames]
    clf = OneShotClassifier(**FAST).fit(paths, files.target)
    assert clf.sample_shape_ == (64, 64)
    np.testing.assert_array_equal(clf.predict(paths[:10]), clf.predict(files.data[:10]))
    with pytest.raises(ValueError, match=r"shape \(8, 8\).*fitted on samples of shape \(64, 64\)"):
        clf.predict(load_images(digit_folder, image_size=8, decode=False).data)


def test_grid_search_over_files_equals_grid_search_over_the_array(digit_folder):
    array = load_images(digit_folder, image_size=8)
    files = load_images(digit_folder, image_size=8, decode=False)
    grid = {"margin": [0.5, 1.0]}
    searches = [
        GridSearchCV(OneShotClassifier(**FAST), grid, cv=2).fit(X, array.target)
        for X in (array.data, files.data)
    ]
    scores = [search.cv_results_["mean_test_score"] for search in searches]
    np.testing.assert_array_equal(scores[1], scores[0])
    assert searches[1].best_params_ == searches[0].best_params_


def corrupt_copy(folder, tmp_path, victim):
    """A copy of ``folder`` whose file ``victim`` (relative) holds bytes that are no image."""
    for path in folder.rglob("*.png"):
        target = tmp_path / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (tmp_path / victim).write_bytes(b"not an image")
    return tmp_path


def test_an_unreadable_file_mid_fit_is_an_error_naming_it(digit_folder, tmp_path):
    files = load_images(digit_folder, image_size=8, decode=False)
    corrupt_copy(digit_folder, tmp_path, "3/05.png")
    moved = ImageFiles([tmp_path / Path(f).relative_to(digit_folder) for f in files.filenames])
    with pytest.raises(ValueError, match=r"Cannot read the image file .*3/05\.png"):
        SiameseEmbedder(**FAST).fit(moved, files.target)


@pytest.mark.parametrize("views", [1, 3])
def test_skipped_files_are_left_out_and_counted(digit_folder, tmp_path, views):
    corrupt_copy(digit_folder, tmp_path, "3/05.png")
    files = load_images(tmp_path, image_size=8, decode=False, on_error="skip")
    params = dict(FAST, augment="auto", inference_views=views, early_stopping=False)
    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable image files .*3/05\.png"):
        embedder = SiameseEmbedder(**params).fit(files.data, files.target)
    # Inference keeps a row for every sample: the unreadable one is an all-zero image.
    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable"):
        embeddings = embedder.transform(files.data)
    unreadable = [i for i, name in enumerate(files.filenames) if name.endswith("3/05.png")]
    blank = np.zeros((1, 8, 8), np.float32)
    np.testing.assert_array_equal(embeddings[unreadable], embedder.transform(blank))


class DyingWorkerFiles(ImageFiles):
    """ImageFiles whose decoding worker is killed when it reaches one file."""

    def decode(self, path):
        if path.endswith("4/02.png") and os.getpid() != self.parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().decode(path)


def test_a_worker_that_dies_is_an_error_not_a_hang(digit_folder):
    files = load_images(digit_folder, image_size=8, decode=False)
    dying = DyingWorkerFiles(files.filenames, image_size=8, num_workers=1)
    dying.parent = os.getpid()
    with pytest.raises(RuntimeError, match="DataLoader worker"):
        SiameseEmbedder(**FAST, early_stopping=False).fit(dying, files.target)


def test_bad_image_files_arguments():
    with pytest.raises(ValueError, match="non-empty sequence"):
        ImageFiles([])
    with pytest.raises(ValueError, match="num_workers"):
        ImageFiles(["a.png"], color=False, num_workers=-1)
    with pytest.raises(ValueError, match="could be read"):
        ImageFiles(["missing.png"])

"""load_images: folders and zips of image files, labels, sizes, and its errors."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from sksiamese.datasets import load_images


def png(mode="L", size=(40, 20), fill=255, ink=None):
    """PNG bytes of a ``size`` (width, height) image, with an optional dark ``ink`` box."""
    image = Image.new(mode, size, fill)
    if ink is not None:
        image.paste(0 if mode == "L" else (0, 0, 0), ink)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_folder(root, files):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


SIGNATURES = {
    "scans/original_1_1.png": png(ink=(5, 5, 15, 15)),
    "scans/original_1_2.png": png(),
    "scans/forgeries_1_1.png": png(),
    "scans/original_12_1.png": png(),
    "scans/notes.txt": b"not an image",
    "scans/.hidden.png": b"ignored",
    "__MACOSX/scans/._original_1_1.png": b"ignored",
}
PATTERN = r"(?P<kind>original|forgeries)_(?P<writer>\d+)_\d+\.png$"


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_named_groups_become_columns_and_the_target(tmp_path, container):
    if container == "folder":
        path = write_folder(tmp_path / "data", SIGNATURES)
    else:
        path = write_zip(tmp_path / "data.zip", SIGNATURES)
    bunch = load_images(path, image_size=(10, 20), pattern=PATTERN, target="writer")
    assert bunch.data.shape == (4, 10, 20) and bunch.data.dtype == np.float32
    assert bunch.target_names.tolist() == ["1", "12"]
    # Sorted paths: forgeries_1_1, original_12_1, original_1_1, original_1_2.
    assert bunch.target.tolist() == [0, 1, 0, 0]
    assert bunch.groups.kind.tolist() == ["forgeries", "original", "original", "original"]
    assert bunch.groups.writer.tolist() == ["1", "12", "1", "1"]
    assert bunch.filenames[0].endswith("scans/forgeries_1_1.png")
    assert bunch.skipped == [] and "4 images" in bunch.DESCR
    X, y = load_images(path, image_size=(10, 20), pattern=PATTERN, return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)
    assert y.tolist() == [0, 1, 1, 1]  # the first group, kind, by default


def test_sub_folders_are_the_classes(tmp_path):
    files = {"ann/a.png": png(), "ann/b.jpg": png(), "bob/smiles/c.png": png()}
    bunch = load_images(write_folder(tmp_path, files), image_size=8)
    assert bunch.target_names.tolist() == ["ann", "bob/smiles"]
    assert bunch.target.tolist() == [0, 0, 1] and bunch.data.shape == (3, 8, 8)
    assert dict(bunch.groups) == {}


def test_polarity_and_aspect(tmp_path):
    # A 40x20 white page with a black 10x10 box in its top-left corner.
    files = {"a/page.png": png(size=(40, 20), ink=(0, 0, 10, 10))}
    root = write_folder(tmp_path, files)
    kept = load_images(root, image_size=(20, 20))
    # Scaled by half to 20x10, centred on rows 5-14, padded with the paper's white.
    assert kept.data[0, :5].min() == 1.0 and kept.data[0, 15:].min() == 1.0
    np.testing.assert_array_equal(kept.data[0, 5:10, :5], 0.0)
    inverted = load_images(root, image_size=(20, 20), invert=True)
    np.testing.assert_array_equal(inverted.data, 1 - kept.data)
    stretched = load_images(root, image_size=(20, 20), keep_aspect=False)
    np.testing.assert_array_equal(stretched.data[0, :10, :5], 0.0)
    assert stretched.data[0, 10:].min() == 1.0


def test_colour_images_come_channels_first(tmp_path):
    files = {"a/x.png": png("RGB", fill=(255, 0, 0)), "b/y.png": png("RGB", fill=(0, 0, 255))}
    root = write_folder(tmp_path, files)
    data = load_images(root, image_size=(4, 6)).data
    assert data.shape == (2, 3, 4, 6)
    np.testing.assert_array_equal(data[0, :, 0, 0], [1.0, 0.0, 0.0])
    grey = load_images(root, image_size=(4, 6), color=False).data
    assert grey.shape == (2, 4, 6)


def test_mixed_grey_and_colour_files_are_refused_unless_a_mode_is_asked(tmp_path):
    root = write_folder(tmp_path, {"a/x.png": png("L"), "a/y.png": png("RGB", fill=(9, 9, 9))})
    with pytest.raises(ValueError, match=r"mixes grey images \(1, e.g. 'a/x.png'\).*color=False"):
        load_images(root)
    assert load_images(root, color=True).data.shape[1] == 3
    assert load_images(root, color=False).data.ndim == 3


def test_unreadable_files_are_refused_or_skipped_and_counted(tmp_path):
    root = write_folder(tmp_path, {"a/good.png": png(), "a/broken.png": b"\x89PNG truncated"})
    with pytest.raises(ValueError, match="Cannot read a/broken.png.*on_error='skip'"):
        load_images(root)
    with pytest.warns(UserWarning, match="Skipped 1 unreadable image files") as record:
        bunch = load_images(root, on_error="skip")
    assert record[0].filename == __file__  # the warning points at the caller's line
    assert bunch.skipped == ["a/broken.png"] and len(bunch.data) == 1
    assert "1 unreadable files skipped" in bunch.DESCR


def test_a_folder_of_nothing_readable_is_refused(tmp_path):
    root = write_folder(tmp_path, {"a/broken.png": b"no"})
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="None of the 1 image files"):
        load_images(root, on_error="skip")


@pytest.mark.parametrize(
    "files, params, error, message",
    [
        ({}, {}, ValueError, "holds no image files"),
        ({"readme.txt": b"x"}, {}, ValueError, "holds no image files"),
        ({"loose.png": png()}, {}, ValueError, "not inside a class sub-folder"),
        (SIGNATURES, {"pattern": r"signature_(?P<id>\d+)"}, ValueError, "matches none of the 4"),
        (SIGNATURES, {"pattern": r"original_(\d+)"}, ValueError, "has no named group"),
        (SIGNATURES, {"pattern": PATTERN, "target": "id"}, ValueError, "'id' is not a named"),
        (SIGNATURES, {"image_size": (0, 5)}, ValueError, "positive int"),
        (SIGNATURES, {"image_size": "big"}, ValueError, "positive int"),
        (SIGNATURES, {"on_error": "ignore"}, ValueError, "on_error must be"),
        (SIGNATURES, {"color": "rgb"}, ValueError, "color must be"),
    ],
)
def test_clear_errors(tmp_path, files, params, error, message):
    root = write_folder(tmp_path / "data", files)
    root.mkdir(exist_ok=True)
    with pytest.raises(error, match=message):
        load_images(root, **params)


def test_paths_that_are_neither_a_folder_nor_a_zip(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_images(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(png())
    with pytest.raises(ValueError, match="neither a folder nor a zip"):
        load_images(tmp_path / "file.png")


def test_photos_are_turned_as_their_exif_orientation_says(tmp_path):
    # A landscape page with a black box top-left, stored with "rotate 90 degrees
    # clockwise to display" (orientation 6): shown, it is a portrait page with the box
    # top-right.
    image = Image.new("L", (40, 20), 255)
    image.paste(0, (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    data = load_images(
        write_folder(tmp_path, {"a/photo.png": buffer.getvalue()}), image_size=(40, 20)
    ).data
    np.testing.assert_array_equal(data[0, :10, 10:], 0.0)
    assert data[0, 10:].min() == 1.0 and data[0, :, :10].min() == 1.0


def test_padding_takes_each_image_own_paper_and_remove_makes_it_white(tmp_path):
    # A tall grey page (level 200) with a black box: padded left and right with its grey.
    files = {"a/page.png": png(size=(10, 40), fill=200, ink=(0, 0, 10, 10))}
    root = write_folder(tmp_path, files)
    kept = load_images(root, image_size=(20, 20)).data[0]
    np.testing.assert_allclose(kept[:, :7], 200 / 255)  # 5 columns wide, centred: 7.5 each side
    np.testing.assert_array_equal(kept[:5, 8:12], 0.0)
    removed = load_images(root, image_size=(20, 20), background="remove").data[0]
    assert removed.max() == 1.0 and set(np.unique(removed)) == {0.0, 1.0}
    np.testing.assert_array_equal(removed == 0.0, kept == 0.0)  # the ink stays as it was
    inverted = load_images(root, image_size=(20, 20), background="remove", invert=True).data
    np.testing.assert_array_equal(inverted[0], 1 - removed)


def test_wide_grey_levels_and_transparency(tmp_path):
    ramp = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    sixteen = io.BytesIO()
    Image.fromarray(ramp).save(sixteen, format="PNG")  # mode I;16
    ink_on_nothing = Image.new("LA", (8, 8), (0, 0))  # black, fully transparent
    ink_on_nothing.paste((0, 255), (0, 0, 4, 8))  # the left half opaque black
    alpha = io.BytesIO()
    ink_on_nothing.save(alpha, format="PNG")
    files = {"a/sixteen.png": sixteen.getvalue(), "a/alpha.png": alpha.getvalue()}
    data = load_images(write_folder(tmp_path, files), image_size=8).data
    alpha_image, sixteen_image = data  # sorted names: alpha, sixteen
    np.testing.assert_allclose(sixteen_image, np.round(ramp / 65535 * 255) / 255)
    np.testing.assert_array_equal(alpha_image[:, :4], 0.0)
    np.testing.assert_array_equal(alpha_image[:, 4:], 1.0)  # transparency is white paper


def test_a_zipped_folder_loads_as_the_folder(tmp_path):
    files = {"ann/1.png": png(), "ann/2.png": png(ink=(0, 0, 5, 5)), "bob/1.png": png()}
    folder = load_images(write_folder(tmp_path / "faces", files), image_size=8)
    zipped_files = {f"faces/{name}": data for name, data in files.items()}
    zipped = load_images(write_zip(tmp_path / "faces.zip", zipped_files), image_size=8)
    assert zipped.target_names.tolist() == folder.target_names.tolist() == ["ann", "bob"]
    np.testing.assert_array_equal(zipped.data, folder.data)
    assert zipped.filenames[0].endswith("faces.zip/faces/ann/1.png")


def test_path_likes_file_objects_and_array_sizes(tmp_path):
    class Where:
        def __init__(self, path):
            self.path = path

        def __fspath__(self):
            return str(self.path)

    files = {"ann/1.png": png(), "bob/1.png": png()}
    root = write_folder(tmp_path / "faces", files)
    assert load_images(Where(root), image_size=np.array([4, 6])).data.shape == (2, 4, 6)
    with open(write_zip(tmp_path / "faces.zip", files), "rb") as file:
        bunch = load_images(file, image_size=4)
    assert bunch.filenames[0] == f"{tmp_path / 'faces.zip'}/ann/1.png"
    assert load_images(root, image_size=4, color=True).data.shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match="pass a pattern with it"):
        load_images(root, target="writer")
    with pytest.raises(ValueError, match="background must be"):
        load_images(root, background="clean")

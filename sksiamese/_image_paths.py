"""Images left on disk: :class:`ImageFiles`, decoded batch by batch in ``DataLoader`` workers.

``load_images(..., decode=False)`` returns one; a plain sequence of paths
becomes one with ``load_images``' defaults. The estimators take it where they
take an array of images: the batch iterators of :mod:`sksiamese._batches`
draw the indices of a batch in the main process and hand them to
:func:`file_batches`, whose workers read and decode those files only.
"""

import copy
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ._image_decoding import _DECODE_ERRORS, _GREY_MODES, _check_arguments, _decode, _finish
from ._warnings import warn


class ImageFiles:
    """Image files read and decoded only when a batch needs them.

    Behaves as the float32 array ``load_images`` would return for the same
    files and options (``shape``, ``ndim``, ``len``, row indexing), without
    holding it: ``files[rows]`` (rows an array, a mask or a slice) is the
    ``ImageFiles`` of those files, so ``GridSearchCV`` splits it as it splits
    an array; ``files[i]`` decodes image ``i`` (an error for an unreadable
    file, whatever ``on_error``). The estimators decode training
    and inference batches in ``num_workers`` ``DataLoader`` worker processes.

    Parameters
    ----------
    paths : sequence of str or path-like
        The image files, one sample each.
    image_size, invert, background, keep_aspect
        As in :func:`~sksiamese.datasets.load_images`.
    color : bool or None, default=None
        As in ``load_images``; ``None`` takes the kind (grey or colour) of the
        first readable file, and converts every other file to it.
    on_error : {'raise', 'skip'}, default='raise'
        A file that cannot be read: stop with a ``ValueError`` naming it, or
        skip it and count it (a warning after each pass over the data names
        one). A skipped file is left out of its training batch; in inference,
        where every sample needs its row, it is embedded as an all-zero image.
    num_workers : int or None, default=None
        Worker processes decoding batches; ``None`` takes the CPU cores this
        process may use (shared among the data-parallel processes of the
        machine), at most 8; 0 decodes in the main process.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from sksiamese.datasets import ImageFiles
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ["a.png", "b.png"]:
    ...     Image.new("L", (40, 20), 255).save(folder / name)
    >>> files = ImageFiles([folder / "a.png", folder / "b.png"], image_size=16)
    >>> files.shape, files[0].shape
    ((2, 16, 16), (16, 16))
    """

    def __init__(
        self,
        paths,
        *,
        image_size=(64, 64),
        color=None,
        invert=False,
        background="keep",
        keep_aspect=True,
        on_error="raise",
        num_workers=None,
    ):
        self.height, self.width = _check_arguments(
            image_size, color, background, None, None, on_error
        )
        self.paths = np.asarray([os.fspath(path) for path in paths], dtype=str)
        if self.paths.ndim != 1 or len(self.paths) == 0:
            raise ValueError("ImageFiles needs a non-empty sequence of file paths.")
        self.color = _first_kind(self.paths) if color is None else color
        self.invert, self.background, self.keep_aspect = invert, background, keep_aspect
        self.on_error = on_error
        if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 0):
            raise ValueError(f"num_workers must be None or an int >= 0; got {num_workers!r}.")
        self.num_workers = num_workers

    @property
    def sample_shape(self):
        """The shape of one decoded image: ``(H, W)`` or ``(3, H, W)``."""
        return (3, self.height, self.width) if self.color else (self.height, self.width)

    @property
    def shape(self):
        return (len(self.paths), *self.sample_shape)

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and key[1] is Ellipsis:
            key = key[0]  # scikit-learn's _safe_indexing asks for array[rows, ...]
        if isinstance(key, int | np.integer):
            return self.decode(self.paths[key])
        subset = copy.copy(self)
        subset.paths = self.paths[np.asarray(key) if not isinstance(key, slice) else key]
        return subset

    def __repr__(self):
        return f"ImageFiles({len(self)} files, each decoded to {self.sample_shape})"

    def workers(self):
        """The number of decoding worker processes (``num_workers`` resolved)."""
        if self.num_workers is not None:
            return self.num_workers
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        cores = len(usable) if usable else os.cpu_count() or 1
        # Processes of a data-parallel fit on this machine share its cores.
        return max(1, min(8, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))

    def decode(self, path):
        """One file decoded as ``load_images`` decodes it: float32 in ``[0, 1]``."""
        try:
            image, _ = _decode(Path(path).read_bytes(), (self.width, self.height), self.keep_aspect)
        except _DECODE_ERRORS as error:  # OSError covers a missing or unreadable file
            raise ValueError(f"Cannot read the image file {path}: {error}") from error
        return _finish([image], self.color, self.background, self.invert)[0]

    def to_array(self):
        """Every image decoded into one float32 array, as ``load_images`` returns it."""
        return np.stack([self.decode(path) for path in self.paths])


def _first_kind(paths):
    """Whether the first file that opens holds colour (``True``) or grey levels."""
    for path in paths:
        try:
            with Image.open(path) as image:  # reads the header only
                return image.mode not in _GREY_MODES
        except _DECODE_ERRORS:
            continue
    raise ValueError(f"None of the {len(paths)} image files could be read (e.g. {paths[0]}).")


def as_image_files(X):
    """``X`` as :class:`ImageFiles` when it is one or a 1-D sequence of paths, else ``None``."""
    if isinstance(X, ImageFiles):
        return X
    if not isinstance(X, list | tuple | np.ndarray) or len(X) == 0:
        return None
    if isinstance(X, np.ndarray) and (X.ndim != 1 or X.dtype.kind not in "UO"):
        return None
    if all(isinstance(item, str | os.PathLike) for item in X):
        return ImageFiles(X)
    return None


class _DecodedBatches(torch.utils.data.Dataset):
    """The files of each batch of indices decoded together, in a worker process."""

    def __init__(self, files, labels, *, training):
        self.files, self.labels, self.training = files, labels, training

    def __len__(self):
        return len(self.files)

    def __getitems__(self, index):
        """``(images, labels, skipped)``: the images decoded, their labels, the files skipped."""
        images, kept, skipped = [], [], []
        for position, i in enumerate(index):
            path = self.files.paths[i]
            try:
                images.append(self.files.decode(path))
            except ValueError:
                if self.files.on_error == "raise":
                    raise
                skipped.append(str(path))
                if self.training:
                    continue  # left out of the batch
                images.append(np.zeros(self.files.sample_shape, np.float32))
            kept.append(position)
        shape = (0, *self.files.sample_shape)
        stacked = np.stack(images) if images else np.zeros(shape, np.float32)
        labels = None if self.labels is None else self.labels[np.asarray(index)[kept]]
        return torch.from_numpy(stacked), labels, skipped


def _as_is(batch):
    return batch


def file_batches(files, labels, batches, *, training, keep_empty=False):
    """``(images, labels)`` of each batch of indices of ``batches``, decoded in workers.

    ``labels`` is a tensor of every file's label, or ``None``. ``batches`` is
    iterated in this process (the draw of class-balanced batches stays here);
    the workers read and decode the files of each batch. With
    ``on_error='skip'``, unreadable files are left out of their training
    batch (or zeros in inference) and a warning after the last batch counts them.
    A batch left empty is dropped, unless ``keep_empty`` (a data-parallel
    process must take part in every step, its share empty or not).
    """
    loader = torch.utils.data.DataLoader(
        _DecodedBatches(files, labels, training=training),
        batch_sampler=batches,
        num_workers=files.workers(),
        collate_fn=_as_is,
        # Its own generator for the workers' seeds: taking them from torch's
        # global one would shift what dropout and random miners draw next.
        generator=torch.Generator().manual_seed(0),
    )
    skipped, batches = [], iter(loader)
    try:
        for images, batch_labels, missed in batches:
            skipped += missed
            if len(images) or keep_empty:
                yield images, batch_labels
    except (ConnectionError, EOFError) as error:
        # A worker killed while handing a batch over breaks the pipe before
        # torch notices it died; say so as torch does when it notices.
        raise RuntimeError(
            f"A DataLoader worker decoding image files exited unexpectedly ({error!r}); "
            "a worker killed (by the system when memory runs out, for instance) ends the "
            "pass. Lower num_workers or the batch size if memory is short."
        ) from error
    finally:
        # An error keeps the iterator alive in its traceback, and with it
        # torch's record of its worker processes: a dead worker would then be
        # reported again at any later signal. Stop them now.
        if hasattr(batches, "_shutdown_workers"):
            batches._shutdown_workers()
    if skipped:
        warn(
            f"Skipped {len(skipped)} unreadable image files in this pass over the data "
            f"(e.g. {skipped[0]!r}): on_error='skip' leaves them out of training batches "
            "and embeds them as all-zero images.",
            UserWarning,
        )

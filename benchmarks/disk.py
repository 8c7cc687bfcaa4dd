"""Training from image files on disk: memory and images per second against the in-memory array.

The benchmark writes a folder of ``--images`` generated 64x64 grey PNG files
(``--classes`` classes, each a random 8x8 pattern drawn shifted and with
noise; made here, never committed), then fits one epoch of a
``SiameseEmbedder`` on ``load_images(folder, decode=False)``: the files are
decoded batch by batch in ``DataLoader`` worker processes. The float32 array
of 200,000 such images would take 3.3 GB; the run's peak memory is sampled
every 0.1 s as the proportional set size (PSS: shared pages counted once) of
the process and its workers together, summed.

The same fit then runs on the decoded array of the first ``--in-memory``
classes' images (a subset: the whole array is what the disk path avoids),
in a process of its own. Images per second count the training batches of the
epoch over skorch's epoch duration, in both runs. The network is a light
ConvBranch (1 block of 8 channels): the benchmark measures the data path,
which the default network (about 80 images/s at 64x64 on 2 CPU cores) would
hide behind its own cost.

Run: ``python benchmarks/disk.py [--images 200000] [--classes 20000] [--folder PATH]``
(needs psutil, which ``dask[distributed]`` installs).
"""

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from sksiamese import SiameseEmbedder
from sksiamese.datasets import load_images

SIZE = 64
NETWORK = dict(module__channels=8, module__n_blocks=1)


def write_images(folder, n_images, n_classes, seed=0):
    """``n_images`` PNG files in ``n_classes`` sub-folders; reused when already complete."""
    done = folder / f".complete-{n_images}-{n_classes}-{seed}"
    if done.exists():
        return
    per_class = np.diff(np.linspace(0, n_images, n_classes + 1).round().astype(int))
    # One task per class, each seeded by its label: the same files whatever the pool.
    tasks = [(folder, label, count, seed) for label, count in enumerate(per_class)]
    with multiprocessing.Pool() as pool:
        pool.starmap(_write_class, tasks, chunksize=64)
    done.touch()


def _write_class(folder, label, count, seed):
    rng = np.random.RandomState([seed, label])
    pattern = np.kron(rng.rand(8, 8) < 0.4, np.ones((6, 6))) * 200.0
    (folder / f"{label:05d}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        canvas = np.zeros((SIZE, SIZE))
        top, left = rng.randint(0, SIZE - 48, size=2)
        canvas[top : top + 48, left : left + 48] = pattern
        canvas += rng.normal(0, 20, canvas.shape)
        pixels = np.clip(canvas, 0, 255).astype(np.uint8)
        # Fast, light compression: the benchmark measures reading, not writing.
        Image.fromarray(pixels).save(folder / f"{label:05d}" / f"{i:03d}.png", compress_level=1)


class PeakMemory:
    """Peak summed PSS of this process and its children, sampled in a thread."""

    def __init__(self, interval=0.1):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _sample(self):
        process = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for member in [process, *process.children(recursive=True)]:
                try:
                    total += member.memory_full_info().pss
                except psutil.Error:  # a worker that has just exited
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def one_epoch(X, y):
    """Images per second of one training epoch, its duration, and the whole fit's."""
    start = time.perf_counter()
    embedder = SiameseEmbedder(
        max_epochs=1, augment=False, inference_views=1, random_state=0, **NETWORK
    ).fit(X, y)
    fit_s = time.perf_counter() - start
    history = embedder.net_.history
    images = sum(history[-1, "batches", :, "train_batch_size"])
    return images / history[-1, "dur"], history[-1, "dur"], fit_s


def in_memory(folder, n_classes):
    """``one_epoch`` on the decoded array of the first ``n_classes`` classes, as JSON."""
    files = load_images(folder, image_size=SIZE, decode=False)
    first = files.target < n_classes
    X, y = files.data[first].to_array(), files.target[first]
    rate, epoch_s, fit_s = one_epoch(X, y)
    print(json.dumps(dict(rate=rate, epoch_s=epoch_s, fit_s=fit_s, n=len(X))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200_000)
    parser.add_argument("--classes", type=int, default=20_000)
    parser.add_argument("--in-memory", type=int, default=2_000, help="classes decoded in memory")
    parser.add_argument("--folder", type=Path, default=None, help="reuse or keep the images here")
    parser.add_argument("--_in-memory-of", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._in_memory_of is not None:
        return in_memory(args._in_memory_of, args.in_memory)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="sksiamese-disk-"))
    start = time.perf_counter()
    write_images(folder, args.images, args.classes)
    print(f"{args.images} images in {args.classes} classes under {folder}", end=" ")
    print(f"({time.perf_counter() - start:.0f} s to write or find)")

    with PeakMemory() as peak:
        files = load_images(folder, image_size=SIZE, decode=False)
        disk_rate, disk_epoch, disk_fit = one_epoch(files.data, files.target)
    workers = files.data.workers()
    command = [sys.executable, __file__, "--_in-memory-of", str(folder)]
    command += ["--in-memory", str(args.in_memory)]
    memory = json.loads(subprocess.check_output(command, text=True).splitlines()[-1])

    print(f"\nOne epoch, {SIZE}x{SIZE} grey, ConvBranch {NETWORK}, {os.cpu_count()} CPU cores")
    print(f"{'data':<34}{'images':>9}{'epoch s':>9}{'fit s':>8}{'images/s':>10}")
    print(
        f"{f'files on disk ({workers} workers)':<34}{len(files.data):>9}"
        f"{disk_epoch:>9.1f}{disk_fit:>8.1f}{disk_rate:>10.0f}"
    )
    print(
        f"{'in-memory array (subset)':<34}{memory['n']:>9}"
        f"{memory['epoch_s']:>9.1f}{memory['fit_s']:>8.1f}{memory['rate']:>10.0f}"
    )
    gb = peak.peak / 1e9
    array_gb = len(files.data) * SIZE * SIZE * 4 / 1e9
    print(f"peak memory of the disk run (PSS, workers included): {gb:.2f} GB; ", end="")
    print(f"its float32 array alone: {array_gb:.1f} GB; goal: under 2 GB")
    print(
        f"peak_rss_gb={gb:.3f} images_per_s={disk_rate:.0f} "
        f"in_memory_images_per_s={memory['rate']:.0f} images={len(files.data)} workers={workers}"
    )


if __name__ == "__main__":
    main()

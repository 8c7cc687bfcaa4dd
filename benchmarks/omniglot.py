"""Koch et al.'s Omniglot comparison, rebuilt on the 20 official one-shot runs.

Training data: ``background_small1`` + ``background_small2`` (8 alphabets,
242 characters, each also rotated by 90/180/270 degrees as new classes) at
28x28, on the CPU. Test: the 20 official within-alphabet 20-way one-shot runs
(400 queries), reported once per model. sksiamese rows use the default
parameters apart from ``loss`` and ``random_state``; nothing was tuned on the
runs (defaults were chosen on validation alphabets, see
``benchmarks/select_omniglot.py``).

Run: ``python benchmarks/omniglot.py [--data-home DIR] [--losses triplet ...]``
"""

import argparse
import time

import numpy as np
import torch
from _omniglot_data import background_small, data_home
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese._base import resolve_device
from sksiamese.datasets import fetch_omniglot_runs

KOCH, HUMAN = 0.920, 0.955


def run_accuracy(transform, runs):
    """Accuracy of 1-NN in ``transform``'s space on each run, and a 95% interval."""
    per_run = []
    for run in runs:
        support = transform(run.support_data)
        nearest = KNeighborsClassifier(1).fit(support, run.support_target)
        per_run.append(nearest.score(transform(run.query_data), run.query_target))
    per_run = np.array(per_run)
    return per_run.mean(), 1.96 * per_run.std(ddof=1) / np.sqrt(len(per_run))


def siamese_accuracy(embedder, runs):
    per_run = []
    for run in runs:
        one_shot = OneShotClassifier(embedder=FrozenEstimator(embedder))
        one_shot.fit(run.support_data, run.support_target)
        per_run.append(one_shot.score(run.query_data, run.query_target))
    per_run = np.array(per_run)
    return per_run.mean(), 1.96 * per_run.std(ddof=1) / np.sqrt(len(per_run))


def flat(images):
    return images.reshape(len(images), -1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home")
    parser.add_argument("--losses", nargs="+", default=["contrastive", "triplet", "bce"])
    parser.add_argument("--skip-baselines", action="store_true")
    args = parser.parse_args()

    home = data_home(args.data_home)
    X, y = background_small(home)
    upright = np.array(["/rot" not in label for label in y])
    runs = fetch_omniglot_runs(data_home=home, image_size=28)
    device = resolve_device("auto")
    threads = f"{torch.get_num_threads()} threads"
    where = torch.cuda.get_device_name() if device == "cuda" else threads
    print(f"training: {len(X)} images of {len(set(y))} classes (rotations included), 28x28")
    print(f"sksiamese trains on {device} ({where})")

    rows = []
    if not args.skip_baselines:
        rows.append(("pixels + 1-NN", *run_accuracy(flat, runs), 0.0))
        start = time.perf_counter()
        pca = PCA(64, random_state=0).fit(flat(X[upright]))
        rows.append(
            (
                "PCA(64) + 1-NN",
                *run_accuracy(lambda Z: pca.transform(flat(Z)), runs),
                time.perf_counter() - start,
            )
        )
        start = time.perf_counter()
        # NCA is quadratic in the samples: fitted on the upright images after
        # PCA to 64 dimensions, 50 iterations.
        nca = make_pipeline(
            PCA(64, random_state=0), NeighborhoodComponentsAnalysis(max_iter=50, random_state=0)
        ).fit(flat(X[upright]), y[upright])
        rows.append(
            (
                "PCA(64) + NCA + 1-NN",
                *run_accuracy(lambda Z: nca.transform(flat(Z)), runs),
                time.perf_counter() - start,
            )
        )
    for loss in args.losses:
        start = time.perf_counter()
        embedder = SiameseEmbedder(loss=loss, random_state=0).fit(X, y)
        seconds = time.perf_counter() - start
        rows.append((f"sksiamese loss={loss!r}", *siamese_accuracy(embedder, runs), seconds))

    print("\n20-way 1-shot accuracy on the 20 official Omniglot runs (400 queries)")
    print(f"{'method':<28}{'accuracy':>10}{'95% interval':>16}{'fit time':>11}")
    for name, mean, half, seconds in rows:
        print(f"{name:<28}{mean:>10.1%}{'+/- ' + format(half, '.1%'):>16}{seconds:>10.0f}s")
    print(f"{'Koch et al. 2015 (anchor)':<28}{KOCH:>10.1%}{'(30 alphabets)':>16}")
    print(f"{'humans (Lake et al.)':<28}{HUMAN:>10.1%}")


if __name__ == "__main__":
    main()

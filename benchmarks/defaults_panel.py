"""The development panel of the defaults: few training classes, new classes at test.

With fewer than 50 training classes the defaults hold some classes out,
score every epoch on them, and train again on every class up to the latest
epoch that beats the untrained network clearly, or keep the untrained
network when none does (``early_stopping='auto'``). This panel checks, on development data
(and on digits 5-9, which issue 23 asked for, though they are the transfer
panel's test part: ``docs/benchmarks.md``), that this costs nothing where training helps (it matches
``early_stopping=False``, which trains every epoch on every class, within
noise) and still keeps the raw input where training does not help.

Each setting trains a ``SiameseEmbedder`` on a few classes and scores 1-shot
accuracy on classes it never saw, in 200 episodes, beside the raw input
(pixels) in the same episodes; "best, epochs" are the defaults'
``best_epoch_`` and ``n_iter_``:

- ``cedar``: signatures at 32x64 (background removed), the genuine
  signatures of 20 or 30 writers drawn from writers 1-30, one class per
  writer; new: writers 31-40, 10-way 1-shot. Writers 41-55 are not scored.
- ``omniglot``: ``background_small1`` at 28x28; 20 or 40 characters drawn
  for training, 20 others for the test, 10-way 1-shot. The evaluation
  alphabets are not scored.
- ``digits``: scikit-learn's digits, 64 features; train on 0-4, new 5-9,
  5-way 1-shot (one split: the seed varies the fit and the episodes only).

Each setting runs with several seeds (the draw of classes and the fit).
The summary pools the seeds' episodes and pairs them: its 95% intervals
measure the noise of the episodes, not how much a fit varies from seed to
seed, which the per-seed rows show.

Run: ``python benchmarks/defaults_panel.py [--panels cedar omniglot digits]
[--seeds 0 1]``
"""

import argparse
import functools
import time

import numpy as np
from _omniglot_data import data_home
from signatures import load
from sklearn.datasets import load_digits
from sklearn.preprocessing import FunctionTransformer

from sksiamese import SiameseEmbedder
from sksiamese._intervals import ci95_half_width
from sksiamese.datasets import fetch_omniglot
from sksiamese.metrics import one_shot_accuracy


def flat(X):
    return X.reshape(len(X), -1)


@functools.cache
def cedar_images():
    return load((32, 64), keep_aspect=True)


def cedar(n_classes, seed):
    X, writers, genuine = cedar_images()
    drawn = np.random.default_rng(seed).choice(np.arange(1, 31), n_classes, replace=False)
    train = genuine & np.isin(writers, drawn)
    new = genuine & np.isin(writers, np.arange(31, 41))
    return X[train], writers[train], X[new], writers[new], 10


def omniglot(n_classes, seed):
    characters = fetch_omniglot("background_small1", data_home=data_home(), image_size=28)
    names = np.unique(characters.target)
    drawn = np.random.default_rng(seed).permutation(names)
    train = np.isin(characters.target, drawn[:n_classes])
    new = np.isin(characters.target, drawn[n_classes : n_classes + 20])
    X, y = characters.data, characters.target
    return X[train], y[train], X[new], y[new], 10


def digits(n_classes, seed):  # one split, whatever the seed
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return X[y < 5], y[y < 5], X[y >= 5], y[y >= 5], 5


PANELS = {"cedar": (cedar, (20, 30)), "omniglot": (omniglot, (20, 40)), "digits": (digits, (5,))}


def accuracy(estimator, X, y, n_way, seed):
    """Each episode's 1-shot accuracy; the same episodes for every estimator of a seed."""
    result = one_shot_accuracy(
        estimator, X, y, n_way=n_way, n_queries=1, n_episodes=200, random_state=seed
    )
    return np.asarray(result.episode_scores)


def paired(differences):
    """Mean of paired per-episode differences and the half-width of its 95% interval."""
    differences = np.concatenate(differences)
    return differences.mean(), ci95_half_width(differences)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", nargs="+", choices=list(PANELS), default=list(PANELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = parser.parse_args()
    rows = []
    header = (
        f"{'panel':>8} | {'classes':>7} | {'seed':>4} | {'pixels':>6} | {'defaults':>8} | "
        f"{'best, epochs':>12} | {'no selection':>12} | {'fit s (defaults, none)':>22}"
    )
    print(header)
    for panel in args.panels:
        make, sizes = PANELS[panel]
        for n_classes in sizes:
            for seed in args.seeds:
                X, y, X_new, y_new, n_way = make(n_classes, seed)
                row = {"pixels": accuracy(FunctionTransformer(flat), X_new, y_new, n_way, seed)}
                for name, params in [("defaults", {}), ("no_selection", {"early_stopping": False})]:
                    start = time.perf_counter()
                    embedder = SiameseEmbedder(random_state=seed, **params).fit(X, y)
                    row[f"{name}_s"] = time.perf_counter() - start
                    row[name] = accuracy(embedder, X_new, y_new, n_way, seed)
                    if name == "defaults":
                        row["epochs"] = f"{embedder.best_epoch_}, {embedder.n_iter_}"
                rows.append((panel, n_classes, seed, row))
                print(
                    f"{panel:>8} | {n_classes:>7} | {seed:>4} | {row['pixels'].mean():>6.3f} | "
                    f"{row['defaults'].mean():>8.3f} | {row['epochs']:>12} | "
                    f"{row['no_selection'].mean():>12.3f} | "
                    f"{row['defaults_s']:>10.0f}, {row['no_selection_s']:>9.0f}",
                    flush=True,
                )
    print(
        "\nSeeds pooled, paired by episode (95% intervals): defaults minus no selection, "
        "defaults minus pixels"
    )
    settings = sorted({(panel, n) for panel, n, _, _ in rows}, key=str)
    summary = []
    for panel, n_classes in settings:
        runs = [row for p, n, _, row in rows if (p, n) == (panel, n_classes)]
        gap = paired([r["defaults"] - r["no_selection"] for r in runs])
        lead = paired([r["defaults"] - r["pixels"] for r in runs])
        summary.append((panel, n_classes, gap, lead))
        print(
            f"{panel:>8} | {n_classes:>7} | {gap[0]:>+7.3f} ± {gap[1]:.3f} | "
            f"{lead[0]:>+7.3f} ± {lead[1]:.3f}"
        )
    for panel, n_classes, gap, lead in summary:
        print(
            f"panel={panel} classes={n_classes} defaults_minus_no_selection={gap[0]:.4f} "
            f"ci95={gap[1]:.4f} defaults_minus_pixels={lead[0]:.4f} ci95_pixels={lead[1]:.4f}"
        )


if __name__ == "__main__":
    main()

"""The transfer panel: similarity on classes never seen in training, beside the raw input.

Each regime trains on some classes and is tested on others, and prints
sksiamese (default parameters, apart from ``loss`` and ``random_state``) beside
the raw input (pixels, 1-nearest-neighbour or pixel distance) and
scikit-learn's NeighborhoodComponentsAnalysis, on the same episodes or pairs,
with 95% intervals:

- ``digits``: scikit-learn's 8x8 digits as 64 features; train on 0-4, test on
  5-9 (the quick start of earlier releases): 5-way 1-shot in 200 episodes, and
  a ``SiameseVerifier`` trained on 3,000 pairs of 0-4, scored on 2,000 pairs
  of 5-9 (ROC AUC; balanced accuracy of ``TunedThresholdClassifierCV``).
- ``few-classes``: 300 Omniglot images at 28x28 (30 characters of
  ``background_small1``, 10 drawings each); test: the 20 official runs.
- ``signatures``: CEDAR at 48x96, writers 1-40 for training (each writer's
  genuine signatures one class, their forgeries another); test: writers 41-55,
  15-way 1-shot on genuine signatures, and verification of genuine-genuine
  against genuine-forgery pairs (skilled forgeries).
- ``omniglot``: ``background_small1`` + ``background_small2`` at 28x28, without
  and with rotations as extra classes, each built-in loss; test: the 20
  official runs.

The test parts (digits 5-9, writers 41-55, the official runs) chose nothing:
defaults were chosen on development data (see ``docs/benchmarks.md``).

Run: ``python benchmarks/transfer.py [--regimes digits few-classes ...]``
"""

import argparse
import time

import numpy as np
import torch
from _cedar_data import load_cedar
from _omniglot_data import background_small, data_home
from omniglot import flat, run_accuracy, siamese_accuracy
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import TunedThresholdClassifierCV
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sksiamese import SiameseEmbedder, SiameseVerifier
from sksiamese._base import resolve_device
from sksiamese._intervals import ci95_half_width
from sksiamese.datasets import fetch_omniglot, fetch_omniglot_runs
from sksiamese.metrics import equal_error_rate, one_shot_accuracy
from sksiamese.pairs import make_pairs

LOSSES = ("contrastive", "triplet", "bce")
# Parameters set from the command line (``--max-epochs 1`` for a smoke run).
OVERRIDES = {}


def mean_ci(values):
    values = np.asarray(values, dtype=float)
    return values.mean(), ci95_half_width(values)


def auc_ci(y_true, scores, groups=None, n_boot=200):
    """ROC AUC and the half-width of its 95% bootstrap interval.

    The bootstrap draws ``groups`` (writers, whose pairs share signatures)
    with replacement, or single pairs when there are none.
    """
    groups = np.arange(len(y_true)) if groups is None else np.asarray(groups)
    names, members = np.unique(groups, return_inverse=True)
    by_group = [np.flatnonzero(members == g) for g in range(len(names))]
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(n_boot):
        index = np.concatenate([by_group[g] for g in rng.integers(len(names), size=len(names))])
        boots.append(roc_auc_score(y_true[index], scores[index]))
    return roc_auc_score(y_true, scores), 1.96 * np.std(boots)


def episode_accuracy(method, X, y, n_way, n_queries):
    """1-shot accuracy of a fitted embedder or transformer in 200 seeded episodes.

    The episodes depend on ``y`` and the seed only, so every method is scored
    on the same ones.
    """
    result = one_shot_accuracy(
        method, X, y, n_way=n_way, n_queries=n_queries, n_episodes=200, random_state=0
    )
    return result.mean, result.ci95


def pixels():
    return FunctionTransformer(flat)


def pca_nca():
    """NCA after PCA to 64 dimensions, 50 iterations (NCA is quadratic in the samples)."""
    return make_pipeline(
        FunctionTransformer(flat),
        PCA(64, random_state=0),
        NeighborhoodComponentsAnalysis(max_iter=50, random_state=0),
    )


def row(table, name, value, half, seconds=None, kind="accuracy"):
    table.append((name, value, half, seconds, kind))


def print_table(title, table):
    print(f"\n{title}")
    for name, value, half, seconds, kind in table:
        shown = f"{value:.1%}" if kind == "accuracy" else f"{value:.3f}"
        spread = f"+/- {half:.1%}" if kind == "accuracy" else f"+/- {half:.3f}"
        timing = "" if seconds is None else f"{seconds:7.1f} s"
        print(f"  {name:<46}{kind:>10} {shown:>8} {spread:>12} {timing}")


def timed(fit):
    start = time.perf_counter()
    fitted = fit()
    return fitted, time.perf_counter() - start


def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    seen = y < 5
    X_new, y_new = X[~seen], y[~seen]
    # One support per class, every other sample of the class a query.
    n_queries = np.unique(y_new, return_counts=True)[1].min() - 1
    table = []
    row(table, "pixels + 1-NN", *episode_accuracy(pixels().fit(X), X_new, y_new, 5, n_queries))
    nca, seconds = timed(
        lambda: NeighborhoodComponentsAnalysis(random_state=0).fit(X[seen], y[seen])
    )
    row(table, "NCA + 1-NN", *episode_accuracy(nca, X_new, y_new, 5, n_queries), seconds)
    for loss in LOSSES:
        embedder, seconds = timed(
            lambda loss=loss: SiameseEmbedder(loss=loss, random_state=0, **OVERRIDES).fit(
                X[seen], y[seen]
            )
        )
        accuracy = episode_accuracy(embedder, X_new, y_new, 5, n_queries)
        row(
            table,
            f"sksiamese loss={loss!r} (best epoch {embedder.best_epoch_})",
            *accuracy,
            seconds,
        )
    print_table("digits: train on 0-4, 5-way 1-shot on 5-9 (200 episodes)", table)

    pairs, same = make_pairs(X[seen], y[seen], 3000, random_state=0)
    test_pairs, test_same = make_pairs(X_new, y_new, 2000, random_state=1)
    table = []
    distance = np.linalg.norm(test_pairs[:, 0] - test_pairs[:, 1], axis=1)
    row(table, "pixel distance", *auc_ci(test_same, -distance), kind="ROC AUC")
    nca_pairs = nca.transform(test_pairs.reshape(-1, 64)).reshape(len(test_pairs), 2, -1)
    nca_distance = np.linalg.norm(nca_pairs[:, 0] - nca_pairs[:, 1], axis=1)
    row(table, "NCA distance", *auc_ci(test_same, -nca_distance), kind="ROC AUC")
    for loss in ("contrastive", "bce"):
        verifier, seconds = timed(
            lambda loss=loss: SiameseVerifier(loss=loss, random_state=0, **OVERRIDES).fit(
                pairs, same
            )
        )
        scores = verifier.decision_function(test_pairs)
        name = f"SiameseVerifier loss={loss!r} (best epoch {verifier.best_epoch_})"
        row(table, name, *auc_ci(test_same, scores), seconds, kind="ROC AUC")
    tuned = TunedThresholdClassifierCV(
        SiameseVerifier(random_state=0, **OVERRIDES), scoring="balanced_accuracy", cv=3
    ).fit(pairs, same)
    balanced = balanced_accuracy_score(test_same, tuned.predict(test_pairs))
    row(table, "TunedThresholdClassifierCV(SiameseVerifier)", balanced, np.nan, kind="bal. acc.")
    print_table("digits: verifier trained on 3,000 pairs of 0-4, 2,000 pairs of 5-9", table)


def omniglot_runs_table(title, X, y, runs, losses, baselines):
    table = []
    if baselines:
        row(table, "pixels + 1-NN", *run_accuracy(flat, runs))
        upright = np.array(["/rot" not in label for label in y])
        nca, seconds = timed(lambda: pca_nca().fit(X[upright], y[upright]))
        row(table, "PCA(64) + NCA + 1-NN", *run_accuracy(nca.transform, runs), seconds)
    for loss in losses:
        embedder, seconds = timed(
            lambda loss=loss: SiameseEmbedder(loss=loss, random_state=0, **OVERRIDES).fit(X, y)
        )
        name = f"sksiamese loss={loss!r} (best epoch {embedder.best_epoch_})"
        row(table, name, *siamese_accuracy(embedder, runs), seconds)
    print_table(title, table)


def few_classes(home):
    train = fetch_omniglot("background_small1", data_home=home, image_size=28)
    rng = np.random.default_rng(0)
    characters = rng.choice(np.unique(train.target), 30, replace=False)
    keep = np.isin(train.target, characters) & (train.drawer <= 10)
    runs = fetch_omniglot_runs(data_home=home, image_size=28)
    omniglot_runs_table(
        "few classes: 300 Omniglot images (30 characters x 10), 20 official runs (20-way 1-shot)",
        train.data[keep],
        train.target[keep],
        runs,
        LOSSES,
        baselines=True,
    )


def omniglot(home, losses):
    runs = fetch_omniglot_runs(data_home=home, image_size=28)
    for rotations in (False, True):
        X, y = background_small(home, rotations=rotations)
        omniglot_runs_table(
            f"Omniglot small1 + small2 ({len(X)} images, {len(set(y))} classes, rotations "
            f"{'as classes' if rotations else 'off'}), 20 official runs (20-way 1-shot)",
            X,
            y,
            runs,
            losses,
            baselines=not rotations,
        )


def signature_pairs(writers, genuine, test_writers):
    """Genuine-genuine (same) and genuine-forgery (different) pairs of each test writer."""
    first, second, same, owner = [], [], [], []
    for writer in test_writers:
        real = np.flatnonzero((writers == writer) & genuine)
        forged = np.flatnonzero((writers == writer) & ~genuine)
        i, j = np.triu_indices(len(real), 1)
        first += [real[i], np.repeat(real, len(forged))]
        second += [real[j], np.tile(forged, len(real))]
        same += [np.ones(len(i), int), np.zeros(len(real) * len(forged), int)]
        owner.append(np.full(len(i) + len(real) * len(forged), writer))
    return tuple(map(np.concatenate, (first, second, same, owner)))


def signatures():
    X, writers, genuine = load_cedar()
    train = writers <= 40
    # Each writer's genuine signatures are a class, their forgeries another.
    labels = np.where(genuine, writers, -writers)
    test = ~train & genuine
    first, second, same, owner = signature_pairs(writers, genuine, np.arange(41, 56))
    pairs = np.stack([X[first], X[second]], axis=1)

    one_shot, verification = [], []
    accuracy = episode_accuracy(pixels().fit(X), X[test], writers[test], 15, 23)
    row(one_shot, "pixels + 1-NN", *accuracy)
    distance = np.linalg.norm(flat(X[first]) - flat(X[second]), axis=1)
    row(verification, "pixel distance", *auc_ci(same, -distance, owner), kind="ROC AUC")
    row(verification, "pixel distance", equal_error_rate(same, -distance), np.nan, kind="EER")
    nca, seconds = timed(lambda: pca_nca().fit(X[train], labels[train]))
    accuracy = episode_accuracy(nca, X[test], writers[test], 15, 23)
    row(one_shot, "PCA(64) + NCA + 1-NN", *accuracy, seconds)
    nca_distance = np.linalg.norm(nca.transform(X[first]) - nca.transform(X[second]), axis=1)
    row(verification, "PCA(64) + NCA distance", *auc_ci(same, -nca_distance, owner), kind="ROC AUC")
    for loss in LOSSES:
        embedder, seconds = timed(
            lambda loss=loss: SiameseEmbedder(loss=loss, random_state=0, **OVERRIDES).fit(
                X[train], labels[train]
            )
        )
        name = f"sksiamese loss={loss!r} (best epoch {embedder.best_epoch_})"
        accuracy = episode_accuracy(embedder, X[test], writers[test], 15, 23)
        row(one_shot, name, *accuracy, seconds)
        scores = embedder.pair_score(pairs)
        row(verification, name, *auc_ci(same, scores, owner), seconds, kind="ROC AUC")
        row(verification, name, equal_error_rate(same, scores), np.nan, kind="EER")
    print_table("signatures: CEDAR writers 1-40 train, 15-way 1-shot on writers 41-55", one_shot)
    print_table(
        f"signatures: writers 41-55, {same.sum()} genuine and {(1 - same).sum()} "
        "skilled-forgery pairs",
        verification,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--regimes",
        nargs="+",
        default=["digits", "few-classes", "signatures", "omniglot"],
        choices=["digits", "few-classes", "signatures", "omniglot"],
    )
    parser.add_argument("--omniglot-losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    parser.add_argument("--data-home")
    parser.add_argument("--max-epochs", type=int, help="override (smoke runs only)")
    args = parser.parse_args()
    if args.max_epochs is not None:
        OVERRIDES["max_epochs"] = args.max_epochs
    device = resolve_device("auto")
    where = (
        torch.cuda.get_device_name() if device == "cuda" else f"{torch.get_num_threads()} threads"
    )
    print(f"sksiamese trains on {device} ({where}); times are fit seconds")
    home = data_home(args.data_home)
    for regime in args.regimes:
        start = time.perf_counter()
        if regime == "digits":
            digits()
        elif regime == "few-classes":
            few_classes(home)
        elif regime == "signatures":
            signatures()
        else:
            omniglot(home, args.omniglot_losses)
        print(f"  ({regime}: {time.perf_counter() - start:.0f} s in all)", flush=True)


if __name__ == "__main__":
    main()

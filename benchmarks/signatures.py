"""Writer-independent signature verification on CEDAR, with skilled forgeries.

CEDAR (University at Buffalo; research use) holds 55 writers, each with 24
genuine signatures and 24 skilled forgeries of them by other people. Users
obtain it from CEDAR; this script reads ``cedar/cedar_signatures.zip`` from
``$SKSIAMESE_DATA``, else from ``../shared/data``, through
``sksiamese.datasets.load_images``.

Protocol (the standard writer-independent one): the pairs of a writer are all
276 genuine-genuine pairs ("same") and 276 genuine-forgery pairs drawn from
the 576 ("different"). Writers 1-40 are the training writers: the networks
train on writers 1-30, and writers 31-40 choose the operating thresholds.
Writers 41-55, never seen, are the test. Three ways to score a pair:

- pixels: minus the Euclidean distance of the two images;
- ``SiameseVerifier``, trained on the pairs of writers 1-30 (pair labels only);
- ``SiameseEmbedder``, trained on the signatures of writers 1-30 with each
  writer's genuine signatures one class and their forgeries another, scored by
  ``pair_score``.

Reported on the test writers: ROC AUC, equal error rate (EER), and the false
accept (FAR) and false reject (FRR) rates at two thresholds chosen on writers
31-40: the one ``TunedThresholdClassifierCV`` picks for balanced accuracy,
and the one that accepts 1% of their forgeries. Each figure comes with a 95%
interval from a bootstrap over the 15 test writers (their pairs share
signatures, so writers are the unit).

The method and the image option (aspect kept or stretched, 48x96 or 64x128)
are chosen on the training writers alone: both networks are trained on writers
1-30 for each option, and the pair with the lowest EER on writers 31-40 wins,
ties broken by the larger separation d' (the difference of the mean scores of
genuine and forged pairs over their pooled standard deviation), which does not
saturate when both separate the writers perfectly. That selection table is
printed first; the test table then shows every method at the chosen option.
Nothing here was chosen on writers 41-55.

Cost: on one GPU, a few minutes. On 2 CPU cores an embedder trains in about
5 minutes, but the verifier, which sees 552 pairs of every writer in each of
its 15 epochs (twice: once with pairs held out, once on all of them), takes
hours; ``--no-verifier`` leaves it out.

Run: ``python benchmarks/signatures.py [--seed 0] [--no-verifier]``
"""

import argparse
import time

import numpy as np
import torch
from _cedar_data import zip_path
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import TunedThresholdClassifierCV

from sksiamese import SiameseEmbedder, SiameseVerifier
from sksiamese.datasets import load_images
from sksiamese.metrics import equal_error_rate

PATTERN = r"(?P<kind>original|forgeries)_(?P<writer>\d+)_\d+\.png$"
TRAIN, TUNE, TEST = range(1, 31), range(31, 41), range(41, 56)
IMAGE_OPTIONS = [(size, keep) for size in ((48, 96), (64, 128)) for keep in (True, False)]


def load(image_size, keep_aspect):
    """Signatures (ink = 1), writer and genuine flag of every image."""
    cedar = load_images(
        zip_path(),
        image_size=image_size,
        keep_aspect=keep_aspect,
        invert=True,
        pattern=PATTERN,
        target="writer",
    )
    return cedar.data, cedar.groups.writer.astype(int), cedar.groups.kind == "original"


def writer_pairs(writers, genuine, chosen, seed=0):
    """Each chosen writer's 276 genuine pairs and 276 of the 576 genuine-forgery pairs."""
    rng = np.random.default_rng(seed)
    first, second, same, owner = [], [], [], []
    for writer in chosen:
        real = np.flatnonzero((writers == writer) & genuine)
        forged = np.flatnonzero((writers == writer) & ~genuine)
        i, j = np.triu_indices(len(real), 1)
        k = rng.choice(len(real) * len(forged), len(i), replace=False)
        first += [real[i], real[k // len(forged)]]
        second += [real[j], forged[k % len(forged)]]
        same += [np.ones(len(i), int), np.zeros(len(i), int)]
        owner.append(np.full(2 * len(i), writer))
    return tuple(map(np.concatenate, (first, second, same, owner)))


def as_pairs(X, first, second):
    return np.stack([X[first], X[second]], axis=1)


def timed(fit):
    start = time.perf_counter()
    return fit(), time.perf_counter() - start


def train_embedder(X, writers, genuine, seed):
    """The recipe, trained on writers 1-30: a writer's genuine signatures one class,
    their forgeries another."""
    train = np.isin(writers, TRAIN)
    labels = np.where(genuine, writers, -writers)[train]
    return timed(lambda: SiameseEmbedder(random_state=seed).fit(X[train], labels))


def train_verifier(X, writers, genuine, seed):
    """A verifier trained on the pairs of writers 1-30 (pair labels only)."""
    first, second, same, _ = writer_pairs(writers, genuine, TRAIN, seed)
    pairs = as_pairs(X, first, second)
    return timed(lambda: SiameseVerifier(random_state=seed).fit(pairs, same))


def option_name(size, keep_aspect):
    return f"{size[0]}x{size[1]}, {'aspect kept' if keep_aspect else 'stretched'}"


def rates(same, accepted):
    """False accept rate (forgeries accepted) and false reject rate (genuine refused)."""
    return accepted[same == 0].mean(), 1 - accepted[same == 1].mean()


def bootstrap(statistic, owner, n_rounds=1000, seed=0):
    """95% percentile interval of ``statistic(rows)`` over writers drawn with replacement."""
    rng = np.random.default_rng(seed)
    writers = np.unique(owner)
    rows_of = {w: np.flatnonzero(owner == w) for w in writers}
    draws = [
        statistic(np.concatenate([rows_of[w] for w in rng.choice(writers, len(writers))]))
        for _ in range(n_rounds)
    ]
    return np.percentile(np.array(draws), [2.5, 97.5], axis=0)


def evaluate(score, writers, genuine, seed):
    """Every test figure of one scoring function, with its bootstrap interval."""
    tune_first, tune_second, tune_same, _ = writer_pairs(writers, genuine, TUNE, seed)
    tune_scores = score((tune_first, tune_second))
    tuned = TunedThresholdClassifierCV(LogisticRegression(), scoring="balanced_accuracy")
    tuned.fit(tune_scores[:, None], tune_same)
    # The score above which 1% of the tuning writers' forgeries are accepted.
    one_percent = np.quantile(tune_scores[tune_same == 0], 0.99)
    first, second, same, owner = writer_pairs(writers, genuine, TEST, seed)
    scores = score((first, second))
    accepted_tuned = tuned.predict(scores[:, None]) == 1
    accepted_fixed = scores > one_percent

    def figures(rows):
        return np.array(
            [
                roc_auc_score(same[rows], scores[rows]),
                equal_error_rate(same[rows], scores[rows]),
                *rates(same[rows], accepted_tuned[rows]),
                *rates(same[rows], accepted_fixed[rows]),
            ]
        )

    return figures(np.arange(len(same))), bootstrap(figures, owner), len(same)


def separation(same, scores):
    """d': the gap between the mean scores of same and different pairs, in pooled deviations."""
    a, b = scores[same == 1], scores[same == 0]
    return (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2)


def select(seed, with_verifier):
    """Train every method on writers 1-30 for each image option; keep the best on 31-40."""
    print("Selection on the training writers: trained on writers 1-30, measured on writers 31-40")
    print(f"{'image option':>22} | {'method':>15} | {'ROC AUC':>7} | {'EER':>6} | {'d':>5} | fit s")
    trainers = {"SiameseEmbedder": train_embedder}
    if with_verifier:
        trainers["SiameseVerifier"] = train_verifier
    results = []
    for option in IMAGE_OPTIONS:
        data = load(*option)
        first, second, same, _ = writer_pairs(*data[1:], TUNE, seed)
        for method, train in trainers.items():
            model, seconds = train(*data, seed)
            scores = pair_scorer(model, data[0])((first, second))
            eer, d = equal_error_rate(same, scores), separation(same, scores)
            print(
                f"{option_name(*option):>22} | {method:>15} | "
                f"{roc_auc_score(same, scores):>7.4f} | {eer:>6.2%} | {d:>5.2f} | {seconds:.1f}",
                flush=True,
            )
            results.append(((eer, -d), method, option, data, model, seconds))
    _, chosen, option, *_ = min(results, key=lambda result: result[0])
    print(f"Chosen: {chosen} at {option_name(*option)}")
    kept = [result for result in results if result[2] == option]
    return chosen, option, kept[0][3], {method: (model, t) for _, method, _, _, model, t in kept}


def pair_scorer(model, X):
    """A function of ``(first, second)`` indices into ``X`` scoring those pairs."""
    score = model.pair_score if hasattr(model, "pair_score") else model.decision_function
    return lambda p: score(as_pairs(X, *p))


def test(seed, with_verifier):
    chosen, option, (X, writers, genuine), models = select(seed, with_verifier)
    flat = X.reshape(len(X), -1)
    methods = {"pixel distance": (lambda p: -np.linalg.norm(flat[p[0]] - flat[p[1]], axis=1), None)}
    for method, (model, seconds) in models.items():
        label = f"{method}{' (chosen)' if method == chosen else ''}"
        methods[label] = (pair_scorer(model, X), seconds)
    print(
        f"\nCEDAR at {option_name(*option)}: networks trained on writers 1-30, "
        "thresholds chosen on writers 31-40, tested on writers 41-55 (never seen); "
        "95% intervals over test writers"
    )
    columns = ["ROC AUC", "EER", "FAR tuned", "FRR tuned", "FAR @1%", "FRR @1%"]
    print(f"{'method':>26} | " + " | ".join(f"{c:>21}" for c in columns) + " | fit s")
    for name, (score, seconds) in methods.items():
        values, (low, high), n_pairs = evaluate(score, writers, genuine, seed)
        cells = [
            f"{v:.4f} [{lo:.4f}, {hi:.4f}]" if i == 0 else f"{v:.2%} [{lo:.1%}, {hi:.1%}]"
            for i, (v, lo, hi) in enumerate(zip(values, low, high, strict=True))
        ]
        fit = "" if seconds is None else f"{seconds:.1f}"
        print(f"{name:>26} | " + " | ".join(f"{c:>21}" for c in cells) + f" | {fit}", flush=True)
    print(f"({n_pairs} test pairs, half genuine-genuine, half genuine-skilled forgery)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-verifier", action="store_true", help="leave the verifier out")
    args = parser.parse_args()
    print(f"torch device: {'cuda' if torch.cuda.is_available() else 'cpu'}")
    test(args.seed, with_verifier=not args.no_verifier)


if __name__ == "__main__":
    main()

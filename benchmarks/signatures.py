"""Writer-independent signature verification on CEDAR, with skilled forgeries.

CEDAR (University at Buffalo; research use) holds 55 writers, each with 24
genuine signatures and 24 skilled forgeries of them by other people. Users
obtain it from CEDAR; this script reads ``cedar/cedar_signatures.zip`` from
``$SKSIAMESE_DATA``, else from ``../shared/data``, through
``sksiamese.datasets.load_images``.

Preprocessing: scaled to fit the image size, inverted (ink = 1), and
``background='remove'``. CEDAR's genuine signatures and its forgeries were
scanned on paper of different shades: on the training writers 31-40, the
difference of the two scans' median pixel alone separates genuine from
forged pairs (printed below as "paper shade"). Removing the background (every
pixel lighter than the image's Otsu threshold made white) leaves the ink.

Protocol (the standard writer-independent one): the pairs of a writer are all
276 genuine-genuine pairs ("same") and 276 genuine-forgery pairs drawn from
the 576 ("different"). Writers 1-40 are the training writers: the networks
train on writers 1-30, and writers 31-40 choose the method, the image option
and the thresholds. Writers 41-55, never seen, are the test. Ways to score a
pair:

- pixel distance: minus the Euclidean distance of the two images;
- paper shade: minus the difference of the median pixels of the two raw scans
  (background kept), to show what the preprocessing removes;
- ``SiameseVerifier``, trained on the pairs of writers 1-30 (pair labels only);
- ``SiameseEmbedder``, trained on the signatures of writers 1-30 with each
  writer's genuine signatures one class and their forgeries another, and
  wrapped in ``SiameseVerifier(embedder=FrozenEstimator(...))``, which is
  calibrated on the pairs of writers 31-40.

Reported on the test writers: ROC AUC, equal error rate (EER), and the false
accept (FAR) and false reject (FRR) rates at two thresholds chosen on writers
31-40: the one ``TunedThresholdClassifierCV(FrozenEstimator(verifier))``
picks for balanced accuracy (for the two baselines, the same tool over a
logistic regression of their score), and the score that accepts 1% of their
forgeries. Each figure comes with a 95% interval from a bootstrap over the 15
test writers (their pairs share signatures, so writers are the unit); it
holds the networks and the thresholds fixed, so it leaves out their own
variation, and it is [0, 0] when no writer has an error.

Selection, on the training writers alone: each network is trained on writers
1-30 for each image option (aspect kept or stretched; 48x96 or 64x128); each
method keeps its option with the lowest EER on writers 31-40, ties broken by
the larger separation d' (the gap between the mean scores of genuine and
forged pairs, in pooled standard deviations), and the method with the better
(EER, d') of the two is "chosen". Each method is then tested at its own
option. Nothing here is chosen on writers 41-55.

Cost: on one GPU, a few minutes. On 2 CPU cores an embedder trains in about
5 minutes, and the verifier, which sees 552 pairs of every writer in each of
its 15 epochs (twice: once with pairs held out, once on all of them), about 3
minutes an epoch; ``--no-verifier`` leaves it out.

Run: ``python benchmarks/signatures.py [--seed 0] [--no-verifier]``
"""

import argparse
import time

import numpy as np
import torch
from _cedar_data import zip_path
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import TunedThresholdClassifierCV

from sksiamese import SiameseEmbedder, SiameseVerifier
from sksiamese.datasets import load_images
from sksiamese.metrics import equal_error_rate

PATTERN = r"(?P<kind>original|forgeries)_(?P<writer>\d+)_\d+\.png$"
TRAIN, TUNE, TEST = range(1, 31), range(31, 41), range(41, 56)
IMAGE_OPTIONS = [(size, keep) for size in ((48, 96), (64, 128)) for keep in (True, False)]


def load(image_size, keep_aspect, background="remove"):
    """Signatures (ink = 1), writer and genuine flag of every image."""
    cedar = load_images(
        zip_path(),
        image_size=image_size,
        keep_aspect=keep_aspect,
        invert=True,
        background=background,
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


def timed(fit):
    start = time.perf_counter()
    return fit(), time.perf_counter() - start


def train_embedder(X, writers, genuine, seed):
    """Trained on writers 1-30, each writer's genuine signatures one class, their
    forgeries another; wrapped as a verifier calibrated on writers 31-40."""
    train = np.isin(writers, TRAIN)
    labels = np.where(genuine, writers, -writers)[train]
    embedder, seconds = timed(lambda: SiameseEmbedder(random_state=seed).fit(X[train], labels))
    first, second, same, _ = writer_pairs(writers, genuine, TUNE, seed)
    pairs = np.stack([X[first], X[second]], axis=1)
    return SiameseVerifier(embedder=FrozenEstimator(embedder)).fit(pairs, same), seconds


def train_verifier(X, writers, genuine, seed):
    """A verifier trained on the pairs of writers 1-30 (pair labels only)."""
    first, second, same, _ = writer_pairs(writers, genuine, TRAIN, seed)
    pairs = np.stack([X[first], X[second]], axis=1)
    return timed(lambda: SiameseVerifier(random_state=seed).fit(pairs, same))


TRAINERS = {"SiameseEmbedder": train_embedder, "SiameseVerifier": train_verifier}


def option_name(size, keep_aspect):
    return f"{size[0]}x{size[1]}, {'aspect kept' if keep_aspect else 'stretched'}"


def separation(same, scores):
    """d': the gap between the mean scores of same and different pairs, in pooled deviations."""
    a, b = scores[same == 1], scores[same == 0]
    return (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2)


class ScoreThreshold:
    """A baseline pair score, thresholded as the verifiers are (on writers 31-40)."""

    def __init__(self, score):
        self.score = score

    def decision_function(self, pairs):
        return self.score(pairs)

    def tuned(self, pairs, same):
        tuned = TunedThresholdClassifierCV(LogisticRegression(), scoring="balanced_accuracy")
        tuned.fit(self.score(pairs)[:, None], same)
        return lambda new: tuned.predict(self.score(new)[:, None]) == 1


def tuned_verifier(verifier):
    """``tuned(pairs, same)``: the verifier frozen, its threshold tuned on those pairs."""

    def tuned(pairs, same):
        model = TunedThresholdClassifierCV(FrozenEstimator(verifier), scoring="balanced_accuracy")
        model.fit(pairs, same)
        return lambda new: model.predict(new) == 1

    return tuned


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


def evaluate(score, tuned, X, writers, genuine, seed):
    """Every test figure of one method, with its bootstrap interval."""
    tune_first, tune_second, tune_same, _ = writer_pairs(writers, genuine, TUNE, seed)
    tune_pairs = np.stack([X[tune_first], X[tune_second]], axis=1)
    tune_scores = score(tune_pairs)
    accept = tuned(tune_pairs, tune_same)
    # The score above which 1% of the tuning writers' forgeries are accepted.
    one_percent = np.quantile(tune_scores[tune_same == 0], 0.99)
    first, second, same, owner = writer_pairs(writers, genuine, TEST, seed)
    pairs = np.stack([X[first], X[second]], axis=1)
    scores = score(pairs)
    accepted_tuned, accepted_fixed = accept(pairs), scores > one_percent

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


def select(seed, methods):
    """Train each method on writers 1-30 for each image option; measure on writers 31-40."""
    print("Selection on the training writers: trained on writers 1-30, measured on writers 31-40")
    print(f"{'image option':>22} | {'method':>15} | {'ROC AUC':>7} | {'EER':>6} | {'d':>5} | fit s")
    best = {}
    for option in IMAGE_OPTIONS:
        X, writers, genuine = data = load(*option)
        first, second, same, _ = writer_pairs(writers, genuine, TUNE, seed)
        pairs = np.stack([X[first], X[second]], axis=1)
        if option == IMAGE_OPTIONS[0]:
            raw = load(*option, background="keep")[0]
            for name, scores in [
                ("paper shade", paper_shade(np.stack([raw[first], raw[second]], axis=1))),
                ("pixel distance", pixel_distance(pairs)),
            ]:
                auc, eer = roc_auc_score(same, scores), equal_error_rate(same, scores)
                print(
                    f"{option_name(*option):>22} | {name:>15} | {auc:>7.4f} | {eer:>6.2%} | "
                    f"{separation(same, scores):>5.2f} |"
                )
        for method in methods:
            model, seconds = TRAINERS[method](*data, seed)
            scores = model.decision_function(pairs)
            eer, d = equal_error_rate(same, scores), separation(same, scores)
            print(
                f"{option_name(*option):>22} | {method:>15} | "
                f"{roc_auc_score(same, scores):>7.4f} | {eer:>6.2%} | {d:>5.2f} | {seconds:.1f}",
                flush=True,
            )
            key = (eer, -d)
            if method not in best or key < best[method][0]:
                best[method] = (key, option, data, model, seconds)
    chosen = min(best, key=lambda method: best[method][0])
    for method, (_, option, *_) in best.items():
        print(f"{method}: {option_name(*option)}{' (chosen)' if method == chosen else ''}")
    return chosen, best


def paper_shade(pairs):
    """Minus the difference of the two images' median pixels: the paper's shade, for scans."""
    medians = np.median(pairs.reshape(len(pairs), 2, -1), axis=2)
    return -np.abs(medians[:, 0] - medians[:, 1])


def pixel_distance(pairs):
    return -np.linalg.norm((pairs[:, 0] - pairs[:, 1]).reshape(len(pairs), -1), axis=1)


def test(seed, with_verifier):
    methods = list(TRAINERS) if with_verifier else ["SiameseEmbedder"]
    chosen, best = select(seed, methods)
    option, data = best[chosen][1], best[chosen][2]
    raw = (load(*option, background="keep")[0], *data[1:])
    rows = [
        (f"{name} ({kind})", option, images, baseline.decision_function, baseline.tuned, None)
        for name, kind, images, baseline in [
            ("pixel distance", "ink", data, ScoreThreshold(pixel_distance)),
            ("paper shade", "raw scans", raw, ScoreThreshold(paper_shade)),
        ]
    ]
    for method, (_, method_option, method_data, model, seconds) in best.items():
        label = f"{method}{' (chosen)' if method == chosen else ''}"
        rows.append(
            (
                label,
                method_option,
                method_data,
                model.decision_function,
                tuned_verifier(model),
                seconds,
            )
        )
    print(
        "\nCEDAR, background removed: networks trained on writers 1-30, thresholds chosen on "
        "writers 31-40, tested on writers 41-55 (never seen); 95% intervals over test writers"
    )
    columns = ["ROC AUC", "EER", "FAR tuned", "FRR tuned", "FAR @1%", "FRR @1%"]
    print(
        f"{'method':>28} | {'image':>19} | " + " | ".join(f"{c:>21}" for c in columns) + " | fit s"
    )
    for name, method_option, method_data, score, tuned, seconds in rows:
        values, (low, high), n_pairs = evaluate(score, tuned, *method_data, seed)
        cells = [
            f"{v:.4f} [{lo:.4f}, {hi:.4f}]" if i == 0 else f"{v:.2%} [{lo:.1%}, {hi:.1%}]"
            for i, (v, lo, hi) in enumerate(zip(values, low, high, strict=True))
        ]
        fit = "" if seconds is None else f"{seconds:.1f}"
        print(
            f"{name:>28} | {option_name(*method_option):>19} | "
            + " | ".join(f"{c:>21}" for c in cells)
            + f" | {fit}",
            flush=True,
        )
    print(f"({n_pairs} test pairs, half genuine-genuine, half genuine-skilled forgery)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-verifier", action="store_true", help="leave the verifier out")
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"torch device: {device}")
    test(args.seed, with_verifier=not args.no_verifier)


if __name__ == "__main__":
    main()

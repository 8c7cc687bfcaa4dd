"""Calibration of a one-shot classifier's probabilities when no class was held out.

With 50 classes or more, ``early_stopping='auto'`` holds none out, and the
embedder's softmax temperature is fitted on one-shot episodes of training
classes (over-confident: the network trained on them). This benchmark
measures what that temperature gives on classes never seen in training.

Development data only: an embedder is trained on ``background_small1`` (136
characters, 28x28, 5 epochs, one view) and frozen; on the characters of the
``background_small2`` alphabets that ``background_small1`` lacks, 100
episodes of 20 ways, one support and one query image per class, are
classified by a ``OneShotClassifier`` on the frozen embedder, which takes the
embedder's temperature. Scored by the expected calibration error (10 bins)
of the top-class probability, beside the uncalibrated softmax (temperature
1) of the same scores.

Run: ``SKSIAMESE_DATA=... python benchmarks/embedder_calibration.py [--seeds 0 1]``
"""

import argparse
import warnings

import numpy as np
from _omniglot_data import data_home
from sklearn.frozen import FrozenEstimator

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese.datasets import fetch_omniglot
from sksiamese.metrics import expected_calibration_error

N_EPISODES, N_WAY = 100, 20


def episodes(y, rng):
    """``(support, query)`` row indices of each episode: one of each per class."""
    classes = np.unique(y)
    for _ in range(N_EPISODES):
        pairs = [
            rng.choice(np.flatnonzero(y == c), 2, replace=False)
            for c in rng.choice(classes, N_WAY, replace=False)
        ]
        yield np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def top_class(embedder, X, y, temperature=None):
    """Whether each episode query's top class is right, and its probability."""
    right, confidence = [], []
    for support, query in episodes(y, np.random.RandomState(0)):
        clf = OneShotClassifier(embedder=FrozenEstimator(embedder)).fit(X[support], y[support])
        if temperature is not None:
            clf.temperature_ = temperature
        proba = clf.predict_proba(X[query])
        right.append(clf.classes_[proba.argmax(1)] == y[query])
        confidence.append(proba.max(1))
    return np.concatenate(right), np.concatenate(confidence)


def main(seeds, home):
    background = fetch_omniglot("background_small1", data_home=home, image_size=28)
    task = fetch_omniglot("background_small2", data_home=home, image_size=28)
    new = ~np.isin(task.alphabet, np.unique(background.alphabet))
    X, y = task.data[new], task.target[new]
    print(
        f"trained on {len(np.unique(background.target))} classes; "
        f"{N_EPISODES} {N_WAY}-way episodes on {len(np.unique(y))} new characters"
    )
    print(f"{'seed':>4}{'temperature':>13}{'accuracy':>10}{'ECE':>8}{'ECE, T=1':>10}")
    lines = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # this short training's convergence notes
            embedder = SiameseEmbedder(max_epochs=5, inference_views=1, random_state=seed)
            embedder.fit(background.data, background.target)
        right, confidence = top_class(embedder, X, y)
        raw_right, raw_confidence = top_class(embedder, X, y, temperature=1.0)
        ece = expected_calibration_error(right, confidence)
        raw = expected_calibration_error(raw_right, raw_confidence)
        print(
            f"{seed:>4}{embedder.temperature_:>13.4f}{right.mean():>10.3f}{ece:>8.3f}{raw:>10.3f}"
        )
        lines.append(
            f"seed={seed} temperature={embedder.temperature_:.4f} accuracy={right.mean():.3f} "
            f"ece={ece:.4f} ece_uncalibrated={raw:.4f}"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--data-home")
    args = parser.parse_args()
    main(args.seeds, data_home(args.data_home))

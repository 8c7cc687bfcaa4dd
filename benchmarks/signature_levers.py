"""Levers of the signature verifier, measured on the training writers only.

Each candidate is a :class:`SiameseVerifier` trained on pairs of CEDAR writers
1-30 and scored by equal error rate on all pairs of writers 31-40 (276
genuine-genuine and 276 genuine-forgery pairs each); writers 41-55, the test,
are not read. The images and pairs are those of the gallery example
``plot_signature_verification.py``: 32x64, aspect kept, background removed,
ink = 1, and one generator (seed 0) that draws the training pairs and then
the pairs of writers 31-40. A candidate that draws more training pairs
therefore also draws other genuine-forgery pairs for writers 31-40.

Run: ``python benchmarks/signature_levers.py '{"max_epochs": 12}' ...``
(each argument is one candidate as JSON: the verifier's parameters, plus
``"per_kind"``, the pairs of each kind per training writer, default 40, and
``"seed"``, its ``random_state``, default 0; ``early_stopping=False`` unless
given).
"""

import argparse
import json
import time

import numpy as np
from signatures import load

from sksiamese import SiameseVerifier
from sksiamese.metrics import equal_error_rate


def writer_pairs(X, writer, genuine, writers, rng, per_kind=None):
    """Genuine-genuine pairs of each writer (all, or ``per_kind``), and as many
    genuine-forgery pairs.

    A copy of the gallery example's own function, kept identical so that the
    figures here are those of the example's draw.
    """
    first, second, same = [], [], []
    for who in writers:
        real = np.flatnonzero((writer == who) & genuine)
        forged = np.flatnonzero((writer == who) & ~genuine)
        i, j = np.triu_indices(len(real), 1)
        n = len(i) if per_kind is None else per_kind
        keep = rng.choice(len(i), n, replace=False)
        k = rng.choice(len(real) * len(forged), n, replace=False)
        first += [real[i[keep]], real[k // len(forged)]]
        second += [real[j[keep]], forged[k % len(forged)]]
        same += [np.ones(n, int), np.zeros(n, int)]
    first, second = np.concatenate(first), np.concatenate(second)
    return np.stack([X[first], X[second]], axis=1), np.concatenate(same)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="+", help="parameters as JSON objects")
    args = parser.parse_args()
    X, writer, genuine = load((32, 64), keep_aspect=True)
    for candidate in args.candidates:
        params = {"early_stopping": False, **json.loads(candidate)}
        per_kind, seed = params.pop("per_kind", 40), params.pop("seed", 0)
        rng = np.random.default_rng(0)
        train_pairs, train_same = writer_pairs(X, writer, genuine, range(1, 31), rng, per_kind)
        tune_pairs, tune_same = writer_pairs(X, writer, genuine, range(31, 41), rng)
        start = time.perf_counter()
        verifier = SiameseVerifier(random_state=seed, **params).fit(train_pairs, train_same)
        seconds = time.perf_counter() - start
        eer = equal_error_rate(tune_same, verifier.decision_function(tune_pairs))
        print(f"{candidate}: EER on writers 31-40 {eer:.2%}, fit {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()

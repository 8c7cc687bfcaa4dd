"""Identity galleries: ``predict`` against as many classes as enrolled examples.

A ``SiameseEmbedder`` on 32-dimensional features, frozen inside a
``OneShotClassifier`` that enrols N support examples, each its own class (a
face or signature gallery), and 10,000 queries. ``predict`` keeps only each
query's best class (bounded memory); beside it, in the same run, the dense
path of ``decision_function`` (a float64 ``(n_queries, n_classes)`` matrix),
which is what ``predict`` computed before, timed where it fits in memory.

Each measurement runs in a fresh process. Its memory is the peak resident
memory (``ru_maxrss``, a high-water mark) the whole child adds after its data
is made: training the embedder, enrolling and the call together, an upper
bound on what the call adds.

Run: ``python benchmarks/gallery.py [--sizes 10000 100000]``
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from sklearn.frozen import FrozenEstimator

from sksiamese import OneShotClassifier, SiameseEmbedder

N_QUERIES, DIM = 10_000, 32
# The dense matrix is timed only up to this many classes (8 bytes a score).
DENSE_LIMIT = 10_000


def measure(n_classes, method):
    """Run in a child process: time and memory growth of one call."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2_000, DIM)).astype(np.float32)
    support = rng.normal(size=(n_classes, DIM)).astype(np.float32)
    queries = rng.normal(size=(N_QUERIES, DIM)).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    embedder = SiameseEmbedder(max_epochs=1, random_state=0).fit(X, np.arange(2_000) % 100)
    clf = OneShotClassifier(embedder=FrozenEstimator(embedder)).fit(support, np.arange(n_classes))
    start = time.perf_counter()
    getattr(clf, method)(queries)
    seconds = time.perf_counter() - start
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {"seconds": seconds, "growth_mib": growth / 1024}


def run_child(n_classes, method):
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n_classes), method],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), args.child[1])))
        return
    print(f"{N_QUERIES:,} queries, {DIM}-d embeddings, one enrolled example per class")
    print(
        f"{'classes':>10} | {'predict s':>9} | {'growth MiB':>10} | "
        f"{'dense decision_function s':>25} | {'growth MiB':>10} | {'dense matrix MiB':>16}"
    )
    for n_classes in args.sizes:
        ours = run_child(n_classes, "predict")
        dense_mib = N_QUERIES * n_classes * 8 / 2**20
        if n_classes <= DENSE_LIMIT:
            dense = run_child(n_classes, "decision_function")
            dense_cells = f"{dense['seconds']:>25.1f} | {dense['growth_mib']:>10.0f}"
        else:
            dense_cells = f"{'not run':>25} | {'':>10}"
        print(
            f"{n_classes:>10,} | {ours['seconds']:>9.1f} | {ours['growth_mib']:>10.0f} | "
            f"{dense_cells} | {dense_mib:>16.0f}"
        )


if __name__ == "__main__":
    main()

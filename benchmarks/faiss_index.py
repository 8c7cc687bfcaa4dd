"""Exact search against faiss indexes on a gallery of a million enrolled embeddings.

``OneShotClassifier(aggregation='nearest')`` enrols 1,000,000 64-dimensional
embeddings, each its own identity, and identifies 10,000 queries with
``predict``: once with the exact search (``index='exact'``, the default) and
once with each faiss index. The embeddings are given directly (the embedder is
a frozen identity ``FunctionTransformer``), so the figures are those of the
search alone.

Data (synthetic; no data set of a million identities is at hand): unit
vectors whose coordinates have standard deviations decaying as
``1 / sqrt(i)``, so that, like trained embeddings, they spread over few
directions; each query is an enrolled vector plus isotropic noise (standard
deviation 1 over the whole vector, about the distance between two
enrolled vectors), renormalised.

Figures: build is ``fit`` (enrolment and index construction); queries per
second is that of ``predict``; recall@1 is the share of queries whose
predicted identity is the exact search's (the same run's); identified is the
share whose prediction is the identity the query was drawn from; index MiB is
the size of faiss's serialised index; growth is the peak resident memory the
child process adds after loading its data (``VmHWM`` after, reset through
``/proc/self/clear_refs``, minus ``VmRSS`` before; Linux only): enrolment, index
and search together. Every contender also keeps ``support_embeddings_``
(244 MiB), which shares the loaded gallery's memory here (the embedder is the
identity), so it is not in the growth. Each contender runs in a fresh
process, one after the other, on all cores (faiss and torch use both here).

Run: ``python benchmarks/faiss_index.py [--gallery 1000000] [--queries 10000]``
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier

DIM, NOISE = 64, 1.0
CONTENDERS = [
    ("exact", None),
    ("Flat", None),
    ("HNSW32", "efSearch=64"),
    ("HNSW32", "efSearch=256"),
    ("IVF1024,Flat", "nprobe=16"),
    ("IVF1024,Flat", "nprobe=64"),
    ("IVF1024,PQ32", "nprobe=16"),
]
DATA = ("gallery", "queries", "truth")


def make_data(n_gallery, n_queries, folder):
    """Write the gallery, the queries and their identities to ``folder``."""
    rng = np.random.default_rng(0)
    scale = 1 / np.sqrt(np.arange(1, DIM + 1))
    gallery = rng.normal(size=(n_gallery, DIM)) * scale
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    truth = rng.choice(n_gallery, n_queries, replace=False)
    queries = gallery[truth] + NOISE / np.sqrt(DIM) * rng.normal(size=(n_queries, DIM))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    np.save(folder / "gallery.npy", gallery.astype(np.float32))
    np.save(folder / "queries.npy", queries.astype(np.float32))
    np.save(folder / "truth.npy", truth)


def memory_kib(field):
    """A memory figure of this process from ``/proc/self/status``, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_memory():
    """Reset the peak resident memory to the current one, and return it (KiB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return memory_kib("VmRSS")


def measure(folder, index, index_params):
    """Run in a child process: build time, search time, memory; predictions saved to ``folder``."""
    gallery, queries, truth = (np.load(folder / f"{name}.npy") for name in DATA)
    n_gallery, n_queries = len(gallery), len(queries)
    before = reset_peak_memory()
    clf = OneShotClassifier(
        embedder=FrozenEstimator(FunctionTransformer()),
        aggregation="nearest",
        index=index,
        index_params=index_params,
    )
    start = time.perf_counter()
    clf.fit(gallery, np.arange(n_gallery))
    build = time.perf_counter() - start
    start = time.perf_counter()
    predicted = clf.predict(queries)
    search = time.perf_counter() - start
    growth = memory_kib("VmHWM") - before
    np.save(folder / f"{index}-{index_params}.npy", predicted)
    index_mib = 0.0
    if clf.index_ is not None:
        import faiss

        index_mib = faiss.serialize_index(clf.index_).nbytes / 2**20
    return {
        "build_s": build,
        "queries_per_s": n_queries / search,
        "identified": float((predicted == truth).mean()),
        "index_mib": index_mib,
        "growth_mib": growth / 1024,
    }


def run_child(folder, index, index_params):
    command = [sys.executable, __file__, "--child", str(folder), index, str(index_params)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, index, params = args.child
        print(json.dumps(measure(Path(folder), index, None if params == "None" else params)))
        return
    print(
        f"{args.gallery:,} enrolled {DIM}-d embeddings (one per identity), "
        f"{args.queries:,} queries, predict"
    )
    header = (
        f"{'index':>13} | {'params':>12} | {'build s':>8} | {'queries/s':>9} | "
        f"{'recall@1':>8} | {'identified':>10} | {'index MiB':>9} | {'growth MiB':>10}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(args.gallery, args.queries, folder)
        for index, params in CONTENDERS:
            row = run_child(folder, index, params)
            exact, found = (
                np.load(folder / f"{name}.npy") for name in ("exact-None", f"{index}-{params}")
            )
            recall = float((found == exact).mean())
            print(
                f"{index:>13} | {params or '':>12} | {row['build_s']:>8.1f} | "
                f"{row['queries_per_s']:>9,.0f} | {recall:>8.4f} | {row['identified']:>10.4f} | "
                f"{row['index_mib']:>9.0f} | {row['growth_mib']:>10.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""Inference: ``transform`` throughput against a plain ``no_grad`` loop, and
``OneShotClassifier.predict`` memory and time as the support set grows.

The comparison with the plain loop embeds each image once
(``inference_views=1``); the default test-time augmentation of images
(``inference_views=8``) is timed beside it, and is about 8 times slower by
design.

Each support size runs in a fresh process, so its peak resident memory
(``ru_maxrss``) is its own. Embeddings are random 64-d unit vectors enrolled
with ``aggregation='nearest'`` (every support example is compared), through a
frozen identity embedder, so the figures measure the query-support scoring.

Run: ``python benchmarks/inference.py``
"""

import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier, SiameseEmbedder

N_QUERIES, DIM = 10_000, 64


def transform_throughput(repeats=3):
    rng = np.random.default_rng(0)
    X = rng.random((5_000, 28, 28), dtype=np.float32)
    y = np.repeat(np.arange(500), 10)
    params = dict(max_epochs=1, device="cpu", random_state=0)
    embedder = SiameseEmbedder(inference_views=1, **params).fit(X[:640], y[:640])
    with_views = SiameseEmbedder(**params).fit(X[:640], y[:640])
    module = embedder.net_.module_

    def plain():
        with torch.no_grad():
            return torch.cat(
                [module(torch.from_numpy(X[i : i + 256])) for i in range(0, len(X), 256)]
            )

    rates = {"sksiamese transform": [], "plain no_grad loop": [], "8 views (default)": []}
    for _ in range(repeats):
        for name, call in (
            ("sksiamese transform", lambda: embedder.transform(X)),
            ("plain no_grad loop", plain),
            ("8 views (default)", lambda: with_views.transform(X)),
        ):
            start = time.perf_counter()
            call()
            rates[name].append(len(X) / (time.perf_counter() - start))
    return {name: float(np.median(values)) for name, values in rates.items()}


def predict_once(n_support):
    """Run in a child process: time and peak memory of one predict call."""
    rng = np.random.default_rng(0)
    support = rng.normal(size=(n_support, DIM)).astype(np.float32)
    support /= np.linalg.norm(support, axis=1, keepdims=True)
    labels = np.arange(n_support) % 1_000
    queries = rng.normal(size=(N_QUERIES, DIM)).astype(np.float32)
    identity = FrozenEstimator(FunctionTransformer().fit(support[:2]))
    clf = OneShotClassifier(embedder=identity, aggregation="nearest").fit(support, labels)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    clf.predict(queries)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_mib": peak / 1024, "growth_mib": (peak - before) / 1024}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(predict_once(int(sys.argv[2]))))
        return
    rates = transform_throughput()
    print(
        f"transform, 5,000 images 28x28, {torch.get_num_threads()} threads (images/s, median of 3)"
    )
    for name, rate in rates.items():
        print(f"  {name:<22}{rate:>8.0f}")
    ratio = rates["sksiamese transform"] / rates["plain no_grad loop"]
    print(f"  ratio sksiamese transform (1 view) / plain loop: {ratio:.2f}")
    print(f"\npredict, {N_QUERIES:,} queries against n support embeddings (64-d, 1,000 classes)")
    print(
        f"{'n support':>10}{'seconds':>10}{'peak RSS':>12}"
        f"{'growth in predict':>20}{'full matrix':>14}"
    )
    for n_support in (10_000, 100_000):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n_support)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout)
        full = N_QUERIES * n_support * 8 / 2**20
        print(
            f"{n_support:>10,}{r['seconds']:>10.1f}{r['peak_mib']:>10.0f} MiB"
            f"{r['growth_mib']:>15.0f} MiB"
            f"{full:>10.0f} MiB"
        )


if __name__ == "__main__":
    main()

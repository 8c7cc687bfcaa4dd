"""
Embedding on a Dask cluster
===========================

A gallery too large for one machine is kept in a ``dask.array``, and the
workers of a cluster embed and classify it one block of rows at a time with
:func:`~sksiamese.parallel.transform_blocks` and
:func:`~sksiamese.parallel.predict_blocks`. Here a ``LocalCluster`` of two
workers stands in for a real one (``Client("scheduler-address:8786")``), on
synthetic feature vectors; the results equal those of one process.
"""

# %%
import dask.array as da
import numpy as np
from dask.distributed import Client, LocalCluster
from sklearn.datasets import make_blobs
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese.parallel import predict_blocks, transform_blocks

# 40 classes to train on, and 200 new ones to enrol and query: 8 informative
# features among 24 of noise, which the embedder learns to ignore.
informative, y = make_blobs(n_samples=6000, centers=240, n_features=8, random_state=0)
noise = np.random.default_rng(0).normal(scale=4.0, size=(6000, 24))
X = np.hstack([informative, noise]).astype(np.float32)
train, new = y < 40, y >= 40
embedder = SiameseEmbedder(max_epochs=5, random_state=0).fit(X[train], y[train])
support = np.concatenate([np.flatnonzero(y == c)[:1] for c in np.unique(y[new])])
queries = np.setdiff1d(np.flatnonzero(new), support)
clf = OneShotClassifier(embedder=FrozenEstimator(embedder)).fit(X[support], y[support])

# %%
# The queries, in blocks of 1,000 rows, as they would be read from shared storage.
blocks = da.from_array(X[queries], chunks=(1000, 32))
with LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster:
    with Client(cluster):
        embeddings = transform_blocks(embedder, blocks).compute()
        predicted = predict_blocks(clf, blocks).compute()

print(f"{len(queries)} queries in {blocks.numblocks[0]} blocks on 2 workers")
print(
    "embeddings equal to one process:", np.array_equal(embeddings, embedder.transform(X[queries]))
)
print("predictions equal to one process:", np.array_equal(predicted, clf.predict(X[queries])))
pixels = FrozenEstimator(FunctionTransformer().fit(X))  # the raw features as embeddings
raw = OneShotClassifier(embedder=pixels).fit(X[support], y[support]).predict(X[queries])
print(f"1-shot accuracy over {len(support)} new classes: {np.mean(predicted == y[queries]):.1%}")
print(f"  raw features, 1-nearest neighbour:   {np.mean(raw == y[queries]):.1%}")

"""Quick start: recognise handwritten characters never seen in training.

A siamese embedder is trained on Omniglot's ``background_small1`` (5
alphabets, 136 characters, 20 drawings each, at 28x28). It is then tested on
the 20 official one-shot runs of Lake et al. (2015): each run enrols *one*
drawing of each of 20 characters from an alphabet the embedder never saw and
classifies 20 other drawings of them (20-way 1-shot), without retraining.
Pixel 1-nearest-neighbour on the same runs is the baseline.

The data (1.3 MB and 0.3 MB) is downloaded from the official repository on
the first run, checked by digest and cached in ``$SKSIAMESE_DATA`` (default
``~/sksiamese_data``).

Run: ``python examples/quickstart.py``
"""

import time

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese.datasets import fetch_omniglot, fetch_omniglot_runs

start = time.perf_counter()
train = fetch_omniglot("background_small1", image_size=28)
runs = fetch_omniglot_runs(image_size=28)

embedder = SiameseEmbedder(random_state=0).fit(train.data, train.target)
fit_seconds = time.perf_counter() - start

siamese, pixels = [], []
for run in runs:
    one_shot = OneShotClassifier(embedder=FrozenEstimator(embedder))
    one_shot.fit(run.support_data, run.support_target)  # enrols; no training
    siamese.append(one_shot.score(run.query_data, run.query_target))
    flat = KNeighborsClassifier(n_neighbors=1).fit(
        run.support_data.reshape(20, -1), run.support_target
    )
    pixels.append(flat.score(run.query_data.reshape(20, -1), run.query_target))


def summary(scores):
    half_width = 1.96 * np.std(scores, ddof=1) / np.sqrt(len(scores))
    return f"{np.mean(scores):6.1%} +/- {half_width:.1%}"


print(f"Trained on {len(train.data)} images of {len(set(train.target))} characters.")
print("20-way 1-shot accuracy on the 20 official Omniglot runs (new alphabets):")
print(f"  sksiamese (data and fit {fit_seconds:.0f} s): {summary(siamese)}")
print(f"  pixel 1-nearest-neighbour:       {summary(pixels)}")
print(f"Total: {time.perf_counter() - start:.0f} s")

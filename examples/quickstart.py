"""Quick start: recognise digits never seen in training from one example each.

A siamese embedder is trained on scikit-learn's digits 0-4 only. Digits 5-9
are then new classes: each episode enrols one random example of each (a 5-way
1-shot task, no retraining) and classifies the rest. Pixel 1-nearest-neighbour
on the same episodes is the baseline; scikit-learn's
NeighborhoodComponentsAnalysis, a linear metric learned from the same digits
0-4, shows what another learned metric transfers.

Run: ``python examples/quickstart.py``
"""

import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis

from sksiamese import OneShotClassifier, SiameseEmbedder

N_EPISODES = 200

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixels in [0, 1]
seen = y < 5

start = time.perf_counter()
embedder = SiameseEmbedder(random_state=0).fit(X[seen], y[seen])
fit_seconds = time.perf_counter() - start
nca = NeighborhoodComponentsAnalysis(random_state=0).fit(X[seen], y[seen])

X_new, y_new = X[~seen], y[~seen]
rng = np.random.default_rng(0)
siamese, pixels, linear = [], [], []
for _ in range(N_EPISODES):
    support = [rng.choice(np.flatnonzero(y_new == c)) for c in np.unique(y_new)]
    query = np.setdiff1d(np.arange(len(y_new)), support)
    one_shot = OneShotClassifier(embedder=FrozenEstimator(embedder))
    one_shot.fit(X_new[support], y_new[support])
    siamese.append(one_shot.score(X_new[query], y_new[query]))
    nearest = KNeighborsClassifier(n_neighbors=1).fit(X_new[support], y_new[support])
    pixels.append(nearest.score(X_new[query], y_new[query]))
    nearest.fit(nca.transform(X_new[support]), y_new[support])
    linear.append(nearest.score(nca.transform(X_new[query]), y_new[query]))


def summary(scores):
    half_width = 1.96 * np.std(scores, ddof=1) / np.sqrt(len(scores))
    return f"{np.mean(scores):.1%} +/- {half_width:.1%}"


print(f"5-way 1-shot accuracy on digits 5-9, never seen in training ({N_EPISODES} episodes)")
print(f"  sksiamese, trained on digits 0-4 ({fit_seconds:.1f} s fit):      {summary(siamese)}")
print(f"  pixel 1-nearest-neighbour (baseline):               {summary(pixels)}")
print(f"  NCA trained on digits 0-4, then 1-nearest-neighbour: {summary(linear)}")

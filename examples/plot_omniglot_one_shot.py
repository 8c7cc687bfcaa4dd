"""
One-shot recognition of Omniglot characters
===========================================

Train a :class:`~sksiamese.SiameseEmbedder` on the small Omniglot background
sets, then solve one of the 20 official 20-way one-shot runs: each of the 20
characters of an alphabet never seen in training is enrolled from a single
drawing, and 20 new drawings are classified. The figure shows the support set
and each query with its prediction (green when right, red when wrong).

The data is downloaded to ``~/sksiamese_data`` (or ``$SKSIAMESE_DATA``) on
first use. Training is shortened to about a minute on a CPU; the full
comparison is ``benchmarks/omniglot.py``.
"""

# %%
# Training data: 8 background alphabets, with rotations as extra classes
import matplotlib.pyplot as plt
import numpy as np
from sklearn.frozen import FrozenEstimator

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese.datasets import fetch_omniglot, fetch_omniglot_runs

small1, small2 = (
    fetch_omniglot(subset, image_size=28, rotations=True)
    for subset in ("background_small1", "background_small2")
)
# Greek and Latin are in both subsets, drawing for drawing: take them once.
not_in_small1 = ~np.isin(small2.alphabet, small1.alphabet)
X = np.concatenate([small1.data, small2.data[not_in_small1]])
y = np.concatenate([small1.target, small2.target[not_in_small1]])

# %%
# Train the twin network (short schedule for the example)
embedder = SiameseEmbedder(max_epochs=4, random_state=0).fit(X, y)

# %%
# Enrol one run's 20 characters from one drawing each, classify 20 queries
run = fetch_omniglot_runs(image_size=28)[0]
one_shot = OneShotClassifier(embedder=FrozenEstimator(embedder))
one_shot.fit(run.support_data, run.support_target)
predicted = one_shot.predict(run.query_data)
accuracy = np.mean(predicted == run.query_target)

# %%
# The support set, then each query with its predicted character
fig, axes = plt.subplots(4, 10, figsize=(10, 4.8))
for ax, image, label in zip(axes[:2].flat, run.support_data, run.support_target, strict=True):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(label, fontsize=7)
for ax, image, guess, truth in zip(
    axes[2:].flat, run.query_data, predicted, run.query_target, strict=True
):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(guess, fontsize=7, color="green" if guess == truth else "red")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"Run 1: support (top two rows), queries with predictions ({accuracy:.0%} right)")
fig.tight_layout()
plt.show()

"""
One-shot recognition of Omniglot characters
===========================================

Train a :class:`~sksiamese.SiameseEmbedder` on the small Omniglot background
sets, then solve one of the 20 official 20-way one-shot runs: each of the 20
characters of an alphabet never seen in training is enrolled from a single
drawing, and 20 new drawings are classified. The figure shows the support set
and each query with its prediction (green when right, red when wrong).

Then another domain, Koch et al.'s MNIST experiment in miniature: the same
embedder, which saw only Omniglot characters, enrols one handwritten digit of
each class from scikit-learn's ``load_digits`` and classifies the others
(10-way 1-shot), beside pixels.

The data is downloaded to ``~/sksiamese_data`` (or ``$SKSIAMESE_DATA``) on
first use. Training is shortened to about a minute on a CPU; the full
comparison is ``benchmarks/omniglot.py``.
"""

# %%
# Training data: 8 background alphabets, with rotations as extra classes
import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import zoom
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese.datasets import fetch_omniglot, fetch_omniglot_runs
from sksiamese.metrics import one_shot_accuracy

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

# %%
# Another domain, handwritten digits: enrol one per class, classify the rest
#
# ``load_digits`` holds 1,797 digits of 8x8 pixels (0-16, ink high). As MNIST
# frames its digits, each is scaled up to 20x20 (bilinear) and centred in a
# 28x28 image with ink in [0, 1]: the size and polarity the embedder trained
# on, though with broader, softer strokes than Omniglot's. Each episode enrols
# one random digit of each class and classifies the others (as many of each
# class as the smallest class allows); 100 episodes, the same for the embedder
# and for pixels. Koch et al. ran this on MNIST (70.3% for their network
# trained on Omniglot, 26.5% for pixels); ``load_digits`` is smaller, cleaner
# and from fewer writers, so its figures are not comparable with theirs.
digits = load_digits()
scaled = zoom(digits.images / 16, (1, 20 / 8, 20 / 8), order=1)
X_digits = np.pad(scaled, ((0, 0), (4, 4), (4, 4))).astype(np.float32)
n_rest = np.bincount(digits.target).min() - 1
episodes = dict(n_way=10, k_shot=1, n_queries=n_rest, n_episodes=100, random_state=0)
flat = X_digits.reshape(len(X_digits), -1)
pixels = one_shot_accuracy(FunctionTransformer().fit(flat), flat, digits.target, **episodes)
siamese = one_shot_accuracy(embedder, X_digits, digits.target, **episodes)
print("10-way 1-shot accuracy on load_digits (100 episodes), trained on Omniglot only:")
print(f"  sksiamese: {siamese.mean:.1%} +/- {siamese.ci95:.1%}")
print(f"  pixels:    {pixels.mean:.1%} +/- {pixels.ci95:.1%}")

fig, axes = plt.subplots(1, 10, figsize=(10, 1.3))
for ax, digit in zip(axes, range(10), strict=True):
    ax.imshow(X_digits[np.flatnonzero(digits.target == digit)[0]], cmap="gray_r")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(
    f"Digits as the embedder sees them: sksiamese {siamese.mean:.0%}, pixels {pixels.mean:.0%}"
)
plt.show()

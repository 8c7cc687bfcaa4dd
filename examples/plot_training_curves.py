"""
Training curves of the three losses
===================================

The same network trained with each loss on digits 0-4. ``loss_curve_`` holds
the mean training loss of each epoch (the losses have different scales, so
each curve is divided by its first value); ``score`` on digits 5-9, never
seen in training, measures what transfers.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from sksiamese import SiameseEmbedder

X, y = load_digits(return_X_y=True)
X = X / 16.0
seen = y < 5

fig, ax = plt.subplots(figsize=(7, 4))
for loss in ("contrastive", "triplet", "bce"):
    embedder = SiameseEmbedder(loss=loss, max_epochs=20, random_state=0).fit(X[seen], y[seen])
    curve = [value / embedder.loss_curve_[0] for value in embedder.loss_curve_]
    unseen = embedder.score(X[~seen], y[~seen])
    ax.plot(range(1, len(curve) + 1), curve, label=f"{loss} (1-NN on unseen digits {unseen:.0%})")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss / first epoch's")
ax.legend()
plt.show()

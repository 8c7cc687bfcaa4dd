"""
What transfers, epoch by epoch
==============================

By default ``fit`` holds out some of the training classes, measures 1-shot
accuracy on them before training and after every epoch, and trains a network
only where an epoch beats the untrained one beyond the noise of the held-out
episodes (``early_stopping='auto'``); it then trains again on every class, up
to the latest such epoch (``n_iter_`` epochs). ``validation_scores_`` holds
that curve, epoch 0 being the untrained network.

Here each loss trains on digits 0-4 only; two of the five digits are held out
inside ``fit``. With so few classes the learned metric soon over-fits the
training digits and the held-out accuracy falls, so the network kept is an
early one, or the untrained one: the default MLP starts from the Euclidean
distance of the raw pixels when fewer than 50 classes train it.
``best_epoch_`` is the epoch the held-out digits chose, 0 for the untrained
network.
"""

# %%
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from sksiamese import SiameseEmbedder

X, y = load_digits(return_X_y=True)
X = X / 16.0
seen = y < 5

fig, ax = plt.subplots(figsize=(7, 4))
for loss in ("contrastive", "triplet", "bce"):
    with warnings.catch_warnings():
        # The untrained network may win; fit says so with a UserWarning.
        warnings.simplefilter("ignore", UserWarning)
        embedder = SiameseEmbedder(loss=loss, max_epochs=20, random_state=0).fit(X[seen], y[seen])
    curve = embedder.validation_scores_
    (line,) = ax.plot(range(len(curve)), curve, label=f"{loss} (best epoch {embedder.best_epoch_})")
    ax.plot(embedder.best_epoch_, curve[embedder.best_epoch_], "o", color=line.get_color())
ax.set_xlabel("epoch (0: untrained)")
ax.set_ylabel("1-shot accuracy on held-out digits")
ax.legend()
plt.show()

"""
Digits in the embedding, before and after training
==================================================

A :class:`~sksiamese.SiameseEmbedder` maps each 8x8 digit to a 64-d
embedding. Projected to 2-D with PCA, the embeddings of an untrained twin
network mix the classes; after training with the triplet loss, each digit
forms its own cluster.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from sksiamese import SiameseEmbedder

X, y = load_digits(return_X_y=True)
X = X / 16.0

# One epoch at a negligible learning rate leaves the network as initialised.
untrained = SiameseEmbedder(max_epochs=1, lr=1e-12, lr_schedule="constant", random_state=0)
trained = SiameseEmbedder(random_state=0)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for ax, embedder, title in zip(
    axes, (untrained, trained), ("untrained", "trained (triplet loss)"), strict=True
):
    embedded = PCA(2).fit_transform(embedder.fit(X, y).transform(X))
    points = ax.scatter(*embedded.T, c=y, cmap="tab10", s=6)
    ax.set_title(f"{title}: leave-one-out 1-NN accuracy {embedder.score(X, y):.0%}")
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(points, ax=axes, label="digit")
plt.show()

"""
A one-shot classifier in an ensemble with a random forest
=========================================================

Many classes with few examples each: the 3 Omniglot alphabets of
``background_small2`` that ``background_small1`` lacks (76 characters), 5
drawings of each to train on and 15 to test. A random forest learns from the
pixels of those 5 drawings only; a :class:`~sksiamese.OneShotClassifier`
enrols them in an embedding trained beforehand on the other alphabets
(``background_small1``), with no retraining; scikit-learn's
``VotingClassifier`` averages the two's calibrated probabilities.

With 5 examples of each of 76 classes the forest's probabilities are nearly
flat, so the vote follows the one-shot classifier: the ensemble pays off when
the conventional model is strong in its own right (more examples per class,
or informative tabular features beside the images).

The data is downloaded to ``~/sksiamese_data`` (or ``$SKSIAMESE_DATA``) on
first use.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import RandomForestClassifier, VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sksiamese import OneShotClassifier, SiameseEmbedder
from sksiamese.datasets import fetch_omniglot

background = fetch_omniglot("background_small1", image_size=28)
embedder = SiameseEmbedder(random_state=0).fit(background.data, background.target)

task = fetch_omniglot("background_small2", image_size=28)
new = ~np.isin(task.alphabet, np.unique(background.alphabet))
X = task.data[new].reshape(new.sum(), -1)  # one feature per pixel, for the forest
y, train = task.target[new], task.drawer[new] <= 5

# The one-shot classifier sees the same rows, reshaped back to images.
to_images = FunctionTransformer(lambda Z: Z.reshape(len(Z), 28, 28))
models = {
    "random forest": RandomForestClassifier(n_estimators=300, random_state=0),
    "OneShotClassifier": make_pipeline(
        to_images, OneShotClassifier(embedder=FrozenEstimator(embedder))
    ),
}
models["soft vote of both"] = VotingClassifier(list(models.items()), voting="soft")
accuracy = {
    name: model.fit(X[train], y[train]).score(X[~train], y[~train])
    for name, model in models.items()
}

# %%
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.barh(list(accuracy), list(accuracy.values()), color=["grey", "tab:blue", "tab:green"])
for row, value in enumerate(accuracy.values()):
    ax.text(value, row, f" {value:.1%}", va="center")
ax.set_xlim(0, 1)
ax.set_xlabel(f"test accuracy, {len(np.unique(y))} classes, 5 training examples each")
fig.tight_layout()
plt.show()

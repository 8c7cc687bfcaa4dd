"""
Losses from pytorch-metric-learning, on new Omniglot alphabets
===============================================================

``loss=`` takes any loss of `pytorch-metric-learning
<https://kevinmusgrave.github.io/pytorch-metric-learning/>`_ (``pip install
sksiamese[pml]``), and ``miner=`` any of its miners, beside the built-in
``'contrastive'``, ``'triplet'`` and ``'bce'``. Here each trains the same
network on Omniglot's ``background_small1`` (136 characters at 28x28), and is
scored by 20-way 1-shot accuracy on the alphabets of ``background_small2``
that it never saw (Japanese katakana, Sanskrit, Tagalog; episodes draw
their characters from all three): validation alphabets, not the evaluation
ones. ArcFace learns a centre per class, at its
own learning rate (``optimizer__param_groups``).

To keep the gallery fast, each trains 5 epochs (the default is 30), so these
are short-budget figures, not a ranking of the losses.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from pytorch_metric_learning import losses, miners
from sklearn.preprocessing import FunctionTransformer

from sksiamese import SiameseEmbedder
from sksiamese.datasets import fetch_omniglot
from sksiamese.metrics import one_shot_accuracy

train = fetch_omniglot("background_small1", image_size=28)
valid = fetch_omniglot("background_small2", image_size=28)
new = ~np.isin(valid.alphabet, np.unique(train.alphabet))
X_new, y_new = valid.data[new], valid.target[new]
n_classes = len(np.unique(train.target))

candidates = {
    "contrastive (ours)": {},
    "MultiSimilarity + miner": dict(
        loss=losses.MultiSimilarityLoss(), miner=miners.MultiSimilarityMiner()
    ),
    "NTXent": dict(loss=losses.NTXentLoss(temperature=0.1)),
    "ArcFace": dict(
        loss=losses.ArcFaceLoss(num_classes=n_classes, embedding_size=64),
        optimizer__param_groups=[("loss.*", {"lr": 1e-2})],
    ),
}

# %%
# Pixels first: the raw-input baseline on the same episodes.
flat = X_new.reshape(len(X_new), -1)
pixels = one_shot_accuracy(
    FunctionTransformer().fit(flat), flat, y_new, n_way=20, k_shot=1, n_episodes=200, random_state=0
)
names, means, intervals = ["pixels"], [pixels.mean], [pixels.ci95]
print(f"{'pixels':>24}: {pixels.mean:.1%} +/- {pixels.ci95:.1%}")
for name, params in candidates.items():
    start = time.perf_counter()
    embedder = SiameseEmbedder(max_epochs=5, random_state=0, **params)
    embedder.fit(train.data, train.target)
    accuracy = one_shot_accuracy(
        embedder, X_new, y_new, n_way=20, k_shot=1, n_episodes=200, random_state=0
    )
    seconds = time.perf_counter() - start
    print(f"{name:>24}: {accuracy.mean:.1%} +/- {accuracy.ci95:.1%} ({seconds:.0f} s)")
    names.append(name)
    means.append(accuracy.mean)
    intervals.append(accuracy.ci95)

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(names, means, xerr=intervals, color=["gray"] + ["C0"] * len(candidates))
ax.set_xlabel("20-way 1-shot accuracy, new alphabets (95% interval)")
ax.set_xlim(0, 1)
ax.invert_yaxis()
plt.show()

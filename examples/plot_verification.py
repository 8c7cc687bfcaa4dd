"""
Verification: same character or not?
====================================

Verification asks whether two samples belong together, for pairs of classes
never seen in training. An embedder trained on the ``background_small1``
alphabets scores pairs of characters from three other alphabets with
``pair_score``; the ROC curve shows every trade-off between false accepts
(different characters called the same) and false rejects. The threshold is
chosen on one half of the pairs, for a false-accept rate of at most 5%, and its
errors are counted on the other half. (With pair labels only, train a
:class:`~sksiamese.SiameseVerifier` instead and let scikit-learn's
``TunedThresholdClassifierCV`` choose its threshold.)
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

from sksiamese import SiameseEmbedder
from sksiamese.datasets import fetch_omniglot
from sksiamese.metrics import verification_metrics
from sksiamese.pairs import make_pairs

background = fetch_omniglot("background_small1", image_size=28)
embedder = SiameseEmbedder(random_state=0).fit(background.data, background.target)

task = fetch_omniglot("background_small2", image_size=28)
new = ~np.isin(task.alphabet, np.unique(background.alphabet))
X, y = task.data[new], task.target[new]

# Balanced pairs: as many of one character as of two different ones.
pairs, labels = make_pairs(X, y, 4000, random_state=0)
scores = embedder.pair_score(pairs)
tune, test = np.arange(2000), np.arange(2000, 4000)

false_accept, true_accept, thresholds = roc_curve(labels[tune], scores[tune])
threshold = thresholds[np.flatnonzero(false_accept <= 0.05)[-1]]
accepted = scores[test] >= threshold
far = np.mean(accepted[labels[test] == 0])
frr = np.mean(~accepted[labels[test] == 1])
summary = verification_metrics(embedder, pairs[test], labels[test])

# %%
fpr, tpr, _ = roc_curve(labels[test], scores[test])
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.plot(fpr, tpr, label=f"ROC AUC {summary.roc_auc:.3f}, EER {summary.equal_error_rate:.1%}")
ax.plot(
    far,
    1 - frr,
    "o",
    color="tab:red",
    label=f"threshold {threshold:.2f}: {far:.1%} false accepts, {frr:.1%} false rejects",
)
ax.set_xlabel("false-accept rate")
ax.set_ylabel("true-accept rate (1 - false-reject rate)")
ax.legend(loc="lower right", fontsize=8)
ax.set_title("pairs of characters from 3 unseen alphabets", fontsize=10)
plt.show()

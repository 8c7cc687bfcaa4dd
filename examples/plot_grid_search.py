"""
Grid search over loss and margin, scored on unseen classes
==========================================================

``GridSearchCV`` reaches ``loss`` and ``margin`` directly. The folds hold out
whole classes (``GroupKFold`` with ``groups=y``) and
:func:`~sksiamese.metrics.make_one_shot_scorer` scores one-shot episodes on
the held-out classes, so the search selects for recognising new classes from
one example, not for fitting the training classes. (``bce`` has no margin: its
row is constant up to noise.)
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, GroupKFold

from sksiamese import OneShotClassifier
from sksiamese.metrics import make_one_shot_scorer

X, y = load_digits(return_X_y=True)
X = X / 16.0
losses, margins = ["contrastive", "triplet", "bce"], [0.2, 0.5, 1.0]
search = GridSearchCV(
    OneShotClassifier(max_epochs=5, random_state=0),
    {"loss": losses, "margin": margins},
    scoring=make_one_shot_scorer(n_way=3, k_shot=1, n_queries=10, n_episodes=30),
    cv=GroupKFold(3),
).fit(X, y, groups=y)

scores = np.array(search.cv_results_["mean_test_score"]).reshape(len(losses), len(margins))
fig, ax = plt.subplots(figsize=(5, 3.5))
image = ax.imshow(scores, cmap="viridis")
ax.set_xticks(range(len(margins)), [str(m) for m in margins])
ax.set_yticks(range(len(losses)), losses)
ax.set_xlabel("margin")
for (row, col), value in np.ndenumerate(scores):
    ax.text(col, row, f"{value:.0%}", ha="center", va="center", color="white")
fig.colorbar(image, label="3-way 1-shot accuracy on held-out digits")
ax.set_title(f"best: {search.best_params_}", fontsize=9)
plt.show()

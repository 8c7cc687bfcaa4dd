"""
Heavy class imbalance
=====================

Digits 0-4 have 100 training examples each, digits 5-9 only 3. A logistic
regression fitted on this set leans towards the frequent classes; a
:class:`~sksiamese.OneShotClassifier` compares each query with one prototype
per class, however many examples built it, so a rare class is not outvoted.
Recall per class on a balanced test set shows the difference.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.model_selection import train_test_split

from sksiamese import OneShotClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
rng = np.random.default_rng(0)
keep = np.concatenate(
    [rng.choice(np.flatnonzero(y_pool == c), 100 if c < 5 else 3, replace=False) for c in range(10)]
)
X_train, y_train = X_pool[keep], y_pool[keep]

models = {
    "logistic regression": LogisticRegression(max_iter=2000),
    "OneShotClassifier": OneShotClassifier(random_state=0),
}
fig, ax = plt.subplots(figsize=(7, 3.5))
for offset, (name, model) in zip((-0.2, 0.2), models.items(), strict=True):
    predicted = model.fit(X_train, y_train).predict(X_test)
    recall = recall_score(y_test, predicted, average=None)
    balanced = balanced_accuracy_score(y_test, predicted)
    ax.bar(
        np.arange(10) + offset,
        recall,
        width=0.4,
        label=f"{name} (balanced accuracy {balanced:.0%})",
    )
ax.axvspan(4.5, 9.5, color="grey", alpha=0.1)
ax.text(7, 1.02, "3 training examples each", ha="center")
ax.set_xticks(range(10))
ax.set_xlabel("digit")
ax.set_ylabel("recall")
ax.set_ylim(0, 1.1)
ax.legend(loc="lower left", fontsize=8)
plt.show()

"""
Calibrated probabilities on classes never seen in training
==========================================================

A probability of 0.9 should be right nine times out of ten. Scores of the data
a network trained on are more confident than its scores of new data, so
sksiamese fits its calibration on data the network did not train on:

* :class:`~sksiamese.SiameseVerifier` fits Platt's sigmoid on the pairs that
  ``early_stopping`` holds out, scored by the network trained without them.
* :class:`~sksiamese.SiameseEmbedder` fits the softmax temperature on one-shot
  episodes (one support example per class), of held-out classes when it holds
  some out; :class:`~sksiamese.OneShotClassifier` uses it for a one-shot
  support set. With 50 classes or more ``early_stopping='auto'`` holds none
  out; ``early_stopping=True`` does, here to calibrate on them.

Both are shown on characters of three alphabets that training never saw,
against the probabilities one would get by calibrating on the training data
itself (the verifier) or not at all (the classifier's raw softmax). The
reliability diagrams plot the observed frequency against the predicted
probability, binned; the expected calibration error (ECE) is the mean gap,
weighted by the bins' sizes.

The sigmoid fitted on the training pairs without a penalty is over-confident.
scikit-learn's default ``LogisticRegression()`` on the same pairs shrinks the
slope (``C=1``), which can land close to calibrated by chance of the scores'
scale, and not by design: on development splits it did as well as the
held-out fit or better (``benchmarks/calibration.py``, figures on the
benchmarks page).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import softmax
from sklearn.calibration import calibration_curve
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier
from sksiamese.datasets import fetch_omniglot
from sksiamese.metrics import expected_calibration_error
from sksiamese.pairs import make_pairs

background = fetch_omniglot("background_small1", image_size=28)
task = fetch_omniglot("background_small2", image_size=28)
new = ~np.isin(task.alphabet, np.unique(background.alphabet))
X_new, y_new = task.data[new], task.target[new]

# %%
# Verification: Platt scaling on held-out pairs, or on the training pairs
# -----------------------------------------------------------------------
train_pairs, train_same = make_pairs(background.data, background.target, 4000, random_state=0)
verifier = SiameseVerifier(max_epochs=8, random_state=0).fit(train_pairs, train_same)
test_pairs, test_same = make_pairs(X_new, y_new, 4000, random_state=1)

# The alternatives: sigmoids fitted on the scores of the pairs the network trained on.
train_scores = verifier.decision_function(train_pairs)[:, None]
test_scores = verifier.decision_function(test_pairs)[:, None]
verification = {
    name: model.fit(train_scores, train_same).predict_proba(test_scores)[:, 1]
    for name, model in [
        ("training pairs, no penalty", LogisticRegression(C=np.inf)),
        ("training pairs, L2 (C=1)", LogisticRegression()),
    ]
}
verification["held-out pairs (the verifier)"] = verifier.predict_proba(test_pairs)[:, 1]

# %%
# One-shot classification: the raw softmax, or the fitted temperature
# -------------------------------------------------------------------
# 1-shot tasks of up to 20 characters of one new alphabet, as in Lake et al.'s runs.
embedder = SiameseEmbedder(max_epochs=10, early_stopping=True, random_state=0)
embedder.fit(background.data, background.target)
rng = np.random.RandomState(0)
confidence = {"raw softmax (temperature 1)": [], "fitted temperature": []}
correct = []
for _ in range(40):
    alphabet = rng.choice(np.unique(task.alphabet[new]))
    characters = np.unique(y_new[task.alphabet[new] == alphabet])
    classes = rng.choice(characters, min(20, len(characters)), replace=False)
    pair = np.array([rng.choice(np.flatnonzero(y_new == c), 2, replace=False) for c in classes])
    clf = OneShotClassifier(embedder=FrozenEstimator(embedder)).fit(
        X_new[pair[:, 0]], y_new[pair[:, 0]]
    )
    scores = clf.decision_function(X_new[pair[:, 1]])
    correct.append(clf.classes_[scores.argmax(1)] == y_new[pair[:, 1]])
    confidence["raw softmax (temperature 1)"].append(softmax(scores, axis=1).max(1))
    confidence["fitted temperature"].append(clf.predict_proba(X_new[pair[:, 1]]).max(1))
correct = np.concatenate(correct)
confidence = {name: np.concatenate(values) for name, values in confidence.items()}

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
panels = [
    (axes[0], "pairs of unseen characters: P(same)", test_same, verification),
    (axes[1], "up to 20-way 1-shot: top-class confidence", correct.astype(int), confidence),
]
for ax, title, truth, probabilities in panels:
    ax.plot([0, 1], [0, 1], ":", color="gray")
    for name, proba in probabilities.items():
        frequency, predicted = calibration_curve(truth, proba, n_bins=10)
        ece = expected_calibration_error(truth, proba)
        print(f"{title} | {name}: ECE {ece:.3f}")
        ax.plot(predicted, frequency, "o-", label=f"{name}: ECE {ece:.3f}")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
print(f"1-shot accuracy on the new alphabets: {correct.mean():.1%}")
plt.tight_layout()
plt.show()

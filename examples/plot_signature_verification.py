"""
Signature verification: skilled forgeries, writers never seen
==============================================================

Does this signature come from the person who signed before? A siamese
network answers for writers it never saw in training, from one genuine
signature of theirs, and against *skilled* forgeries: other people who
practised imitating the signature.

The data is CEDAR (Center of Excellence for Document Analysis and
Recognition, University at Buffalo; research use): 55 writers, each with 24
genuine signatures and 24 skilled forgeries. It is not downloaded: obtain it
from CEDAR, save the images as ``cedar/cedar_signatures.zip`` (files named
``original_<writer>_<n>.png`` and ``forgeries_<writer>_<n>.png``) under the
folder that ``SKSIAMESE_DATA`` names (default ``~/sksiamese_data``).

The protocol is the standard writer-independent one. The network trains on
writers 1-30, writers 31-40 choose the decision threshold, and writers 41-55
are the test. A writer's pairs are all 276 pairs of two genuine signatures
("same") and as many pairs of a genuine signature and a forgery ("different").

The recipe: a :class:`~sksiamese.SiameseVerifier` trained from the pair
labels alone (genuine-genuine "same", genuine-forgery "different"), whose
threshold scikit-learn's
:class:`~sklearn.model_selection.TunedThresholdClassifierCV` chooses on pairs
of writers it never saw. It was chosen on writers 31-40 over a
:class:`~sksiamese.SiameseEmbedder` trained with each writer's forgeries as a
class of their own (``benchmarks/signatures.py``, default parameters, one
GPU: equal error rate 21.4% on writers 41-55 against pixel distance's 44.8%).
To keep this example to a minute or two on a CPU, the verifier here sees
images of 32x64 and 80 pairs of each training writer for 6 epochs (the
benchmark: 48x96, 552 pairs for 15 epochs, twice). Its equal error rate on
writers 31-40, printed below, compares with the benchmark's 13.2% there.

One preprocessing step matters more than any parameter: CEDAR's genuine
signatures and its forgeries were scanned on paper of different shades, and
that shade alone tells them apart. ``background='remove'`` makes the paper
white, so that the network has only the ink to learn from.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import TunedThresholdClassifierCV

from sksiamese import SiameseVerifier
from sksiamese.datasets import get_data_home, load_images
from sksiamese.metrics import equal_error_rate

# %%
# Load the signatures
# -------------------
# :func:`~sksiamese.datasets.load_images` reads the zip. A regular expression
# with named groups reads the writer and the kind (genuine or forged) from
# each file name; scans of different sizes are scaled to 32x64 with their
# aspect ratio kept, their paper made white, and inverted so that ink is 1 on
# a zero background.

path = get_data_home() / "cedar" / "cedar_signatures.zip"
if not path.exists():
    raise FileNotFoundError(
        f"{path} is missing: obtain CEDAR from the University at Buffalo "
        "(https://cedar.buffalo.edu) and save its images there as a zip."
    )
cedar = load_images(
    path,
    image_size=(32, 64),
    invert=True,
    background="remove",
    pattern=r"(?P<kind>original|forgeries)_(?P<writer>\d+)_\d+\.png$",
    target="writer",
)
X, writer, genuine = cedar.data, cedar.groups.writer.astype(int), cedar.groups.kind == "original"
print(cedar.DESCR)

fig, axes = plt.subplots(4, 4, figsize=(8, 3.2))
for row, (who, real) in enumerate([(41, True), (41, False), (42, True), (42, False)]):
    shown = np.flatnonzero((writer == who) & (genuine == real))[:4]
    for ax, i in zip(axes[row], shown, strict=True):
        ax.imshow(X[i], cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(f"{who}\n{'genuine' if real else 'forged'}", fontsize=8)
fig.suptitle("Genuine signatures and skilled forgeries of two test writers")
plt.show()

# %%
# Pairs of each writer
# --------------------


def writer_pairs(writers, rng, per_kind=None):
    """Genuine-genuine pairs of each writer (all, or ``per_kind``), and as many
    genuine-forgery pairs."""
    first, second, same = [], [], []
    for who in writers:
        real = np.flatnonzero((writer == who) & genuine)
        forged = np.flatnonzero((writer == who) & ~genuine)
        i, j = np.triu_indices(len(real), 1)
        n = len(i) if per_kind is None else per_kind
        keep = rng.choice(len(i), n, replace=False)
        k = rng.choice(len(real) * len(forged), n, replace=False)
        first += [real[i[keep]], real[k // len(forged)]]
        second += [real[j[keep]], forged[k % len(forged)]]
        same += [np.ones(n, int), np.zeros(n, int)]
    first, second = np.concatenate(first), np.concatenate(second)
    return np.stack([X[first], X[second]], axis=1), np.concatenate(same)


rng = np.random.default_rng(0)
train_pairs, train_same = writer_pairs(range(1, 31), rng, per_kind=40)
tune_pairs, tune_same = writer_pairs(range(31, 41), rng)
test_pairs, test_same = writer_pairs(range(41, 56), rng)

# %%
# Train on writers 1-30, choose the threshold on writers 31-40
# ------------------------------------------------------------
# The verifier learns from pair labels alone. Frozen, it is then only
# thresholded: ``TunedThresholdClassifierCV`` picks the probability threshold
# that maximises balanced accuracy on the pairs of writers 31-40, which the
# network never saw.

verifier = SiameseVerifier(max_epochs=6, early_stopping=False, random_state=0)
verifier.fit(train_pairs, train_same)
tuned = TunedThresholdClassifierCV(FrozenEstimator(verifier), scoring="balanced_accuracy").fit(
    tune_pairs, tune_same
)
print(f"threshold on the probability of 'same': {tuned.best_threshold_:.3f}")

# %%
# Writers 41-55, never seen
# -------------------------
# Beside the raw input: minus the Euclidean distance of the two images.

scores = verifier.decision_function(test_pairs)
pixels = -np.linalg.norm(test_pairs[:, 0] - test_pairs[:, 1], axis=(1, 2))
fig, ax = plt.subplots(figsize=(4.5, 4))
for name, values in [("sksiamese", scores), ("pixel distance", pixels)]:
    false_accept, true_accept, _ = roc_curve(test_same, values)
    auc, eer = roc_auc_score(test_same, values), equal_error_rate(test_same, values)
    ax.plot(false_accept, true_accept, label=f"{name}: AUC {auc:.3f}, EER {eer:.1%}")
    print(f"{name}: ROC AUC {auc:.3f}, equal error rate {eer:.1%}")
ax.plot([0, 1], [0, 1], ":", color="gray")
ax.set_xlabel("false accept rate (forgeries accepted)")
ax.set_ylabel("1 - false reject rate")
ax.set_title("ROC on writers 41-55")
ax.legend(loc="lower right", fontsize=8)
plt.show()

# %%
# The scores of genuine and forged pairs, and the chosen threshold: the
# probability threshold mapped back through the verifier's calibration (a
# sigmoid of the score, minus the embedding distance).

tuned_accepts = tuned.predict(test_pairs) == 1
slope, intercept = verifier.calibrator_.coef_[0, 0], verifier.calibrator_.intercept_[0]
threshold = (np.log(tuned.best_threshold_ / (1 - tuned.best_threshold_)) - intercept) / slope
fig, ax = plt.subplots(figsize=(6, 3))
bins = np.linspace(scores.min(), scores.max(), 50)
ax.hist(scores[test_same == 1], bins, alpha=0.6, label="genuine-genuine")
ax.hist(scores[test_same == 0], bins, alpha=0.6, label="genuine-forgery")
ax.axvline(threshold, color="black", linestyle="--", label="threshold (writers 31-40)")
ax.set_xlabel("pair score (minus the embedding distance)")
ax.set_ylabel("pairs")
ax.legend(fontsize=8)
plt.show()

# %%
# False accepts and false rejects on the test writers, at the tuned threshold
# and at the score that accepts 1% of the forgeries of writers 31-40.

tune_scores = verifier.decision_function(tune_pairs)
print(f"equal error rate on writers 31-40: {equal_error_rate(tune_same, tune_scores):.1%}")
one_percent = np.quantile(tune_scores[tune_same == 0], 0.99)
print(f"{'threshold':>34} | {'FAR':>6} | {'FRR':>6}")
for name, accepted in [
    ("tuned for balanced accuracy", tuned_accepts),
    ("1% FAR on writers 31-40", scores > one_percent),
]:
    far = accepted[test_same == 0].mean()
    frr = 1 - accepted[test_same == 1].mean()
    print(f"{name:>34} | {far:>6.1%} | {frr:>6.1%}")

"""
Signature verification: a questioned signature against the writer's references
================================================================================

Is this signature by the person it claims to be? A bank or an office keeps a
few genuine signatures of each account (a specimen card) and compares a
questioned signature with all of them. A siamese network does this for
writers it never saw in training, against *skilled* forgeries: other people
who practised imitating the signature.

The data is CEDAR (Center of Excellence for Document Analysis and
Recognition, University at Buffalo; research use): 55 writers, each with 24
genuine signatures and 24 skilled forgeries. It is not downloaded: obtain it
from CEDAR, save the images as ``cedar/cedar_signatures.zip`` (files named
``original_<writer>_<n>.png`` and ``forgeries_<writer>_<n>.png``) under the
folder that ``SKSIAMESE_DATA`` names (default ``~/sksiamese_data``).

The protocol is the standard writer-independent one. The network trains on
writers 1-30, writers 31-40 calibrate it and choose the threshold, and
writers 41-55 are the test. Each writer of 31-55 enrols K of their genuine
signatures as references; their other genuine signatures and all 24
forgeries are the questioned ones, each claiming that writer.

The recipe is ``benchmarks/signature_references.py``'s: a
:class:`~sksiamese.SiameseEmbedder` trained with each writer's genuine
signatures as one class and their forgeries as another, frozen inside a
:class:`~sksiamese.SiameseVerifier` that scores claims, a
:class:`~sksiamese.ReferenceSet` that enrols the references without any
training, and a threshold at a 1% false-accept rate through scikit-learn's
:class:`~sklearn.model_selection.FixedThresholdClassifier`. To keep this
example to about a minute on a CPU, the images are 32x64 and the embedder
trains for 10 epochs (the benchmark: 48x96, 30 epochs).

One preprocessing step matters more than any parameter: CEDAR's genuine
signatures and its forgeries were scanned on paper of different shades, and
that shade alone tells them apart. ``background='remove'`` makes the paper
white, so that the network has only the ink to learn from.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import FixedThresholdClassifier

from sksiamese import ReferenceSet, SiameseEmbedder, SiameseVerifier
from sksiamese.datasets import get_data_home, load_images
from sksiamese.metrics import equal_error_rate, false_accept_threshold

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
# Train on writers 1-30
# ---------------------
# Each training writer's genuine signatures are one class and their forgeries
# another, so that the network learns to tell a forgery from its model.

train = writer <= 30
# One view per image at inference: test-time views hurt on the signatures of
# the development writers (docs/benchmarks.md), at eight times the cost.
embedder = SiameseEmbedder(max_epochs=10, inference_views=1, random_state=0)
embedder.fit(X[train], np.where(genuine, writer, -writer)[train])

# %%
# Enrol references, build claims
# -------------------------------
# Each writer of a part enrols K genuine signatures, drawn at random. A claim
# is a questioned signature followed by the K references of the writer it
# claims: genuine (1) when the writer signed it, a forgery (0) otherwise.


def claims_of(writers, k, rng):
    """Enrol K references of each writer; every other signature of theirs claims them."""
    references, questioned = ReferenceSet(), []
    for who in writers:
        real = rng.permutation(np.flatnonzero((writer == who) & genuine))
        references.enrol(X[real[:k]], [who] * k)
        questioned.append(np.r_[real[k:], np.flatnonzero((writer == who) & ~genuine)])
    questioned = np.concatenate(questioned)
    claims = references.claims(X[questioned], writer[questioned])
    return claims, genuine[questioned].astype(int), writer[questioned]


def pixel_scores(claims):
    """Minus the mean distance of the questioned image to its references, pixel by pixel."""
    flat = claims.reshape(*claims.shape[:2], -1)
    return -np.linalg.norm(flat[:, :1] - flat[:, 1:], axis=2).mean(1)


# %%
# Calibrate on writers 31-40, threshold at 1% false accepts
# ---------------------------------------------------------
# The verifier wraps the frozen embedder: fitting it on claims of writers
# 31-40 only calibrates its probabilities. The K distances become one score
# as the distance to the references' mean embedding (``'prototype'``), not
# divided by the spread of the writer's references: the rule that
# ``benchmarks/signature_references.py`` chose for five references on
# writers 31-40, where that division hurt. The threshold that accepts 1% of
# those writers' forgeries then goes into ``FixedThresholdClassifier``.
# Neither step trains the network.

rng = np.random.default_rng(0)
results, models = [], {}
for k in (1, 5):
    tune_claims, tune_genuine, _ = claims_of(range(31, 41), k, rng)
    test_claims, test_genuine, test_writer = claims_of(range(41, 56), k, rng)
    verifier = SiameseVerifier(
        embedder=FrozenEstimator(embedder), aggregation="prototype", normalization=None
    ).fit(tune_claims, tune_genuine)
    threshold = false_accept_threshold(
        tune_genuine, verifier.decision_function(tune_claims), false_accept_rate=0.01
    )
    # Frozen, so that FixedThresholdClassifier uses this verifier, not a refitted clone.
    at_one_percent = FixedThresholdClassifier(
        FrozenEstimator(verifier), threshold=threshold, response_method="decision_function"
    ).fit(tune_claims, tune_genuine)
    accepted = at_one_percent.predict(test_claims) == 1
    for name, scores in [
        ("sksiamese", verifier.decision_function(test_claims)),
        ("pixel distance", pixel_scores(test_claims)),
    ]:
        row = [k, name, roc_auc_score(test_genuine, scores), equal_error_rate(test_genuine, scores)]
        if name == "sksiamese":
            row += [accepted[test_genuine == 0].mean(), 1 - accepted[test_genuine == 1].mean()]
        results.append(row)
    models[k] = verifier, threshold, test_claims, test_genuine, test_writer

print("Writers 41-55, never seen: claims against K references of the claimed writer")
print(
    f"{'K':>2} | {'method':>15} | {'ROC AUC':>7} | {'EER':>6} | {'FAR @ 1%':>8} | {'FRR @ 1%':>8}"
)
for k, name, auc, eer, *at_threshold in results:
    cells = " | ".join(f"{value:>8.1%}" for value in at_threshold) or f"{'':>8} | {'':>8}"
    print(f"{k:>2} | {name:>15} | {auc:>8.3f} | {eer:>8.1%} | {cells}")

# %%
# ``FAR @ 1%`` and ``FRR @ 1%`` are the forgeries accepted and the genuine
# signatures refused on writers 41-55 at the threshold that accepted 1% of the
# forgeries of writers 31-40: a threshold carries over to new writers only
# approximately.
#
# Scores writer by writer
# -----------------------
# With five references, each test writer's genuine signatures and forgeries,
# and the threshold chosen on writers 31-40. One threshold serves every
# writer, though writers differ in how much their own signatures vary; the
# writers whose forgeries cross the line are those the forgers imitated best.

verifier, threshold, test_claims, test_genuine, test_writer = models[5]
scores = verifier.decision_function(test_claims)
fig, ax = plt.subplots(figsize=(8, 3.5))
for offset, kind, colour in [(-0.17, 1, "tab:blue"), (0.17, 0, "tab:red")]:
    for i, who in enumerate(range(41, 56)):
        values = scores[(test_writer == who) & (test_genuine == kind)]
        ax.scatter(np.full(len(values), i + offset), values, s=6, color=colour, alpha=0.6)
    ax.scatter([], [], color=colour, label="genuine" if kind else "forgery")
ax.axhline(threshold, color="black", linestyle="--", label="1% FAR on 31-40")
ax.set_xticks(range(15), [str(who) for who in range(41, 56)])
ax.set_xlabel("test writer")
ax.set_ylabel("claim score")
ax.legend(fontsize=8, loc="lower left")
plt.show()

"""Calibration: from similarities to probabilities.

One-shot class scores become probabilities through a softmax whose temperature
is fitted on held-out scores (:func:`fit_temperature`); pair scores through
Platt's sigmoid (:func:`platt_scaling`). The held-out scores come from classes
the model never trained on, or, for a support set enrolled around a trained
embedder, from each support example left out of its own class
(:func:`leave_one_out_scores`).
"""

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_random_state

from ._enrolment import class_prototypes
from ._held_out import OneShotEpisodes
from ._search import ClassMax, search_exact
from ._views import embed_views
from .similarity import similarity_of

# Support examples a support set's temperature is fitted on, at most.
CALIBRATION_ROWS = 2048
# Training classes, and samples of each, embedded after training for the
# collapse check and, without held-out classes, the temperature
# (:func:`training_sample`). Chosen on new Omniglot alphabets (development
# data) with benchmarks/embedder_calibration.py: two samples a class made
# every episode pair the same support with the same query and calibrated
# worse (docs/benchmarks.md gives the figures).
SAMPLE_CLASSES, SAMPLE_PER_CLASS = 64, 4


def leave_one_out_scores(similarity, embeddings, codes, n_classes, aggregation, rows):
    """Class scores of ``embeddings[rows]`` with each query left out of its class.

    Only rows whose class has at least two examples make sense here; the
    caller picks them.
    """
    queries = embeddings[rows].double()  # the search casts the support block by block
    if aggregation == "nearest":
        (scores,) = search_exact(
            similarity, queries, embeddings, ClassMax(codes, n_classes), query_index=rows
        )
        return scores
    prototypes = class_prototypes(embeddings.double(), codes, n_classes)
    (scores,) = search_exact(
        similarity, queries, prototypes, ClassMax(torch.arange(n_classes), n_classes)
    )
    counts = torch.bincount(codes, minlength=n_classes).to(prototypes.dtype)
    own_codes = codes[rows]
    n_own = counts[own_codes][:, None]
    own_prototype = (prototypes[own_codes] * n_own - queries) / (n_own - 1)
    scores[torch.arange(len(rows)), own_codes] = similarity.paired(queries, own_prototype)
    return scores


def support_temperature(similarity, embeddings, codes, n_classes, aggregation, random_state):
    """Temperature fitted on the leave-one-out scores of a support set, or ``None``.

    ``None`` when no class has two examples. At most ``CALIBRATION_ROWS``
    examples, drawn by ``random_state``, are scored against every class.
    """
    eligible = np.flatnonzero(np.bincount(codes)[codes] >= 2)
    if len(eligible) == 0:
        return None
    rng = check_random_state(random_state)
    rows = rng.choice(eligible, min(len(eligible), CALIBRATION_ROWS), replace=False)
    scores = leave_one_out_scores(
        similarity,
        embeddings,
        torch.as_tensor(codes),
        n_classes,
        aggregation,
        torch.as_tensor(rows),
    )
    return fit_temperature(scores.numpy(), codes[rows])


def training_sample(codes, rng):
    """Rows of up to ``SAMPLE_PER_CLASS`` samples of up to ``SAMPLE_CLASSES`` training classes.

    Embedded once after training, they serve the collapse check and, when no
    class was held out, the temperature's episodes: enough one-shot queries
    for one scalar, at a cost that does not grow with the training data.
    """
    counts = np.bincount(codes)
    eligible = np.flatnonzero(counts >= 2)
    classes = np.sort(rng.choice(eligible, min(len(eligible), SAMPLE_CLASSES), replace=False))
    rows = [
        rng.choice(np.flatnonzero(codes == c), min(counts[c], SAMPLE_PER_CLASS), replace=False)
        for c in classes
    ]
    return np.concatenate(rows)


def embedder_temperature(trained, sample_embeddings, sample_codes, distortions, random_state):
    """An embedder's temperature, from one-shot episodes, on held-out classes where there are.

    ``trained`` is the :class:`~sksiamese._selection.TrainedNet` of the fit:
    its ``check`` episodes on the held-out classes are scored by the net
    trained without them, embedding with ``distortions``. Without held-out
    classes, the episodes are drawn from ``sample_embeddings``, the final
    net's embeddings of a :func:`training_sample` whose classes are
    ``sample_codes`` (over-confident: the net trained on them).
    """
    if trained.check is not None:
        net = trained.selected_net
        scores, truth = trained.check.class_scores(
            lambda samples: embed_views(net, samples, distortions), net.criterion_.similarity
        )
    else:
        episodes = OneShotEpisodes(sample_embeddings, sample_codes, random_state)
        scores, truth = episodes.class_scores(torch.as_tensor, trained.net.criterion_.similarity)
    return fit_temperature(scores, truth)


def classifier_temperature(
    embedder, embeddings, codes, n_classes, aggregation, *, trained_here, random_state
):
    """A classifier's temperature: its embedder's own, or fitted on its support set.

    An embedder ``trained_here`` on the support set brings a temperature
    fitted on held-out classes; the support set itself is new only to one
    trained elsewhere, and the only data left for an embedder without one.
    With neither (one example per class, no temperature of its own), 1.0.
    """
    own = getattr(embedder, "temperature_", None)
    if own is not None and trained_here:
        return float(own)
    fitted = support_temperature(
        similarity_of(embedder), embeddings, codes, n_classes, aggregation, random_state
    )
    if fitted is not None:
        return fitted
    return 1.0 if own is None else float(own)


def fit_temperature(scores, codes):
    """Temperature ``T`` for which ``softmax(scores / T)`` is calibrated.

    It minimises the cross-entropy against Platt's smoothed targets: the true
    class gets ``(n + 1) / (n + 2)`` rather than 1, which keeps ``T`` finite
    when the scores separate the classes perfectly (Platt, 1999).

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_classes)
        Class scores of held-out queries: leave-one-out scores of a support
        set, or the scores of one-shot episodes; all finite.
    codes : ndarray of shape (n_samples,)
        True class of each row.

    Returns
    -------
    temperature : float
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, n_classes = scores.shape
    if not np.isfinite(scores).all():
        raise ValueError("Calibration needs finite scores: every row's class must be scored.")
    hit = (n + 1) / (n + 2)
    targets = np.full(scores.shape, (1 - hit) / max(1, n_classes - 1))
    targets[np.arange(n), codes] = hit

    def cross_entropy(log_t):
        return -(targets * log_softmax(scores / np.exp(log_t), axis=1)).sum(1).mean()

    result = minimize_scalar(cross_entropy, bounds=(np.log(1e-4), np.log(1e4)), method="bounded")
    return float(np.exp(result.x))


def platt_scaling(scores, same):
    """Platt's sigmoid from scores to the probability of "same", as a fitted ``LogisticRegression``.

    Platt (1999) fits the sigmoid to smoothed targets, ``(n1 + 1) / (n1 + 2)``
    for the ``n1`` positives and ``1 / (n0 + 2)`` for the ``n0`` negatives,
    without a penalty: the smoothing keeps the slope finite when the scores
    separate the classes. Each score enters twice, once per label, weighted by
    its target, which is that objective.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same).astype(bool)
    n_same, n_different = same.sum(), (~same).sum()
    target = np.where(same, (n_same + 1) / (n_same + 2), 1 / (n_different + 2))
    labels = np.r_[np.ones(len(scores)), np.zeros(len(scores))].astype(int)
    weights = np.r_[target, 1 - target]
    calibrator = LogisticRegression(C=np.inf)
    return calibrator.fit(np.r_[scores, scores][:, None], labels, sample_weight=weights)

"""Claims: a questioned sample and K references of the identity it claims, scored as one.

A claim is one sample of shape ``(1 + K, *sample_shape)``: the questioned
sample first, then K references of the claimed identity (K = 1 is a pair).
Its score aggregates the questioned sample's similarity to the references
and, with two or more references, divides the distance by how far the
references lie from each other: an identity whose own samples vary much (a
hasty signer) is allowed a larger distance than one whose samples barely
vary.
"""

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from ._search import CHUNK_ELEMENTS

AGGREGATIONS = ("mean", "best", "prototype")
NORMALIZATIONS = ("references",)


def encode_claim_labels(y):
    """``(classes, same)``: the two labels, sorted, and 1 where a claim is ``classes[1]``."""
    if y is None:
        raise ValueError(
            "SiameseVerifier requires y to be passed, but the target y is None: "
            "label each claim as same or different."
        )
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    classes, same = np.unique(y, return_inverse=True)
    if len(classes) != 2:
        raise ValueError(
            "Only binary classification is supported: y must hold exactly two "
            "classes, one label for impostor claims (different pairs) and one for "
            "genuine claims (same pairs); got "
            f"{len(classes)} class(es): {classes.tolist()[:10]}."
        )
    return classes, same.reshape(-1).astype(np.int64)


def validate_claims(claims, sample_shape=None, n_references=None):
    """``claims`` as float32 ``(n_claims, 1 + K, *sample_shape)``, with clear errors.

    ``sample_shape`` and ``n_references``, when given, are what the verifier
    was fitted on: its calibration holds for that number of references.
    """
    claims = check_array(claims, allow_nd=True, dtype=np.float32, ensure_2d=False)
    if claims.ndim < 3 or claims.shape[1] < 2:
        raise ValueError(
            "X must have shape (n_claims, 1 + n_references) + sample_shape: the "
            "questioned sample, then at least one reference (a pair is one "
            f"reference); got {claims.shape}."
        )
    if sample_shape is not None and claims.shape[2:] != sample_shape:
        raise ValueError(
            f"X holds samples of shape {claims.shape[2:]}, but the verifier was "
            f"fitted on samples of shape {sample_shape}."
        )
    if n_references is not None and claims.shape[1] - 1 != n_references:
        raise ValueError(
            f"X holds claims with {claims.shape[1] - 1} reference(s) each, but the "
            f"verifier was fitted on claims with {n_references}: its calibration "
            "and thresholds hold for that number. Fit it on claims with as many "
            "references as it will verify."
        )
    return claims


@dataclass(frozen=True)
class ClaimRule:
    """How a claim's similarities to its references become one score.

    Parameters
    ----------
    aggregation : {'mean', 'best', 'prototype'}
        The mean of the K similarities, the best of them, or the similarity
        to the references' mean embedding.
    normalization : {'references', None}
        ``'references'`` divides the aggregated distance by the mean distance
        between the claim's references; with one reference there is no
        spread to measure and the score is left as it is.
    spread_floor : float
        The least spread divided by: near-identical references would
        otherwise turn any distance into an extreme score.
    """

    aggregation: str
    normalization: str | None
    spread_floor: float = 0.0

    @classmethod
    def fitted(cls, aggregation, normalization, similarity, members):
        """The rule, its spread floor a tenth of the median spread of these claims."""
        if normalization is None or members.shape[1] <= 2:
            return cls(aggregation, normalization)
        spreads = _in_blocks(lambda block: reference_spread(similarity, block[:, 1:]), members)
        return cls(aggregation, normalization, 0.1 * float(np.median(spreads)))

    def scores(self, similarity, members):
        """Score of each claim, higher for more likely genuine, as float64 on the CPU.

        ``members`` holds, for each claim, the embedding of the questioned
        sample, then those of its K references: ``(n_claims, 1 + K, n_dims)``.
        """
        return _in_blocks(lambda block: self._block_scores(similarity, block), members)

    def _block_scores(self, similarity, members):
        questioned, references = members[:, :1], members[:, 1:]
        if self.aggregation == "prototype":
            scores = similarity.paired(questioned[:, 0], references.mean(1))
        else:
            each = similarity.paired(questioned, references)  # broadcast: (n_claims, K)
            scores = each.mean(1) if self.aggregation == "mean" else each.max(1).values
        if self.normalization is None or references.shape[1] == 1:
            return scores
        spread = reference_spread(similarity, references).clamp_min(max(self.spread_floor, 1e-12))
        return -similarity.distance(scores) / spread


def _in_blocks(function, members):
    """``function`` of blocks of claims, in float64, concatenated as a NumPy array.

    A block's reference-by-reference differences stay within the search's
    memory bound, whatever the embedding size.
    """
    n_claims, n_members, n_dims = members.shape
    step = max(1, CHUNK_ELEMENTS // (n_members * n_members * n_dims))
    blocks = [function(members[i : i + step].double()) for i in range(0, n_claims, step)]
    return torch.cat(blocks).numpy()


def reference_spread(similarity, references):
    """Mean distance between the distinct references of each claim, ``(n_claims,)``."""
    n_references = references.shape[1]
    distances = similarity.distance(similarity.paired(references[:, :, None], references[:, None]))
    off_diagonal = ~torch.eye(n_references, dtype=torch.bool)
    return distances[:, off_diagonal].mean(1)


def expand_to_pairs(claims, labels):
    """Each claim as K pairs (questioned, reference k), each with the claim's label.

    Pair ``i * K + k`` is claim ``i``'s questioned sample and reference ``k``.
    """
    n_claims, n_members = claims.shape[:2]
    pairs = np.empty((n_claims, n_members - 1, 2, *claims.shape[2:]), dtype=claims.dtype)
    pairs[:, :, 0] = claims[:, :1]
    pairs[:, :, 1] = claims[:, 1:]
    n_pairs = n_claims * (n_members - 1)
    return pairs.reshape(n_pairs, 2, *claims.shape[2:]), np.repeat(labels, n_members - 1)


def held_out_claims(held_out_pairs, n_references, same):
    """The claims whose pairs (from :func:`expand_to_pairs`, held out whole) were held out.

    ``None`` when no pairs were held out, or the claims held out do not hold
    both labels (Platt scaling needs both).
    """
    if held_out_pairs is None:
        return None
    held = np.unique(held_out_pairs // n_references)
    return held if len(np.unique(same[held])) == 2 else None

"""Losses computed from the pairs and triplets inside one batch.

Every loss follows one contract, as in pytorch-metric-learning:
``forward(embeddings, labels)`` returns a scalar. The batch is embedded once;
pairs and triplets are formed from the ``(B, B)`` distance matrix of that batch,
so a batch of ``B`` samples yields ``B * (B - 1) / 2`` pairs for the price of
``B`` forward passes. Each loss compares embeddings through its ``similarity``
(:mod:`sksiamese.similarity`), which the trained model then scores with.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .similarity import EuclideanSimilarity, KochHead, pairwise_distances

__all__ = [
    "ContrastiveLoss",
    "TripletLoss",
    "BCEPairLoss",
    "PairLoss",
    "EmbeddingLoss",
    "pairwise_distances",
]


def _pair_masks(labels):
    """Boolean masks of the positive and negative pairs, self-pairs excluded."""
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & not_self, ~same


def _masked_mean(values, mask):
    """Mean of ``values[mask]``; a zero that keeps the graph when it is empty."""
    if not mask.any():
        return values.sum() * 0.0
    return values[mask].mean()


def _hardest(distances, positive, negative):
    """Each anchor's farthest positive, closest negative, and whether it has both."""
    farthest = distances.masked_fill(~positive, float("-inf")).amax(1)
    closest = distances.masked_fill(~negative, float("inf")).amin(1)
    return farthest, closest, positive.any(1) & negative.any(1)


class _MinedDistanceLoss(nn.Module):
    """One distance matrix per batch, then the loss of the chosen ``mining``.

    Subclasses implement ``_<mining>(distances, positive, negative)``.
    """

    similarity_class = EuclideanSimilarity

    def __init__(self, margin, mining):
        super().__init__()
        self.margin = margin
        self.mining = mining
        self.similarity = EuclideanSimilarity()

    def forward(self, embeddings, labels):
        mined_loss = getattr(self, f"_{self.mining}", None)
        if mined_loss is None:
            raise ValueError(f"Unknown mining {self.mining!r} for {type(self).__name__}.")
        distances = -self.similarity.batch_matrix(embeddings)
        return mined_loss(distances, *_pair_masks(labels))


class ContrastiveLoss(_MinedDistanceLoss):
    """Contrastive loss of Hadsell, Chopra and LeCun (2006) on in-batch pairs.

    Positive pairs are pulled together by ``d**2``; negative pairs closer than
    ``margin`` are pushed apart by ``(margin - d)**2``.

    Parameters
    ----------
    margin : float, default=0.5
        Distance beyond which a negative pair costs nothing. The default is
        the estimators' ``margin``.
    mining : {'batch_hard', 'all'}, default='batch_hard'
        ``'all'``: the mean over positive pairs plus the mean over the negative
        pairs within the margin (averaged apart, so the many negatives of a
        batch do not drown the few positives). ``'batch_hard'``: for each
        anchor, its farthest positive and its closest negative only, the
        default: the mean over all pairs is dominated by pairs already in
        place (``docs/benchmarks.md`` compares the two).
    """

    def __init__(self, margin=0.5, mining="batch_hard"):
        super().__init__(margin, mining)

    def _all(self, distances, positive, negative):
        pull = _masked_mean(distances.pow(2), positive)
        push = F.relu(self.margin - distances).pow(2)
        return pull + _masked_mean(push, negative & (push > 0))

    def _batch_hard(self, distances, positive, negative):
        farthest, closest, valid = _hardest(distances, positive, negative)
        return _masked_mean(farthest.pow(2) + F.relu(self.margin - closest).pow(2), valid)


class TripletLoss(_MinedDistanceLoss):
    """Triplet margin loss with online mining inside the batch.

    For an anchor ``a``, a positive ``p`` and a negative ``n`` the loss is
    ``max(0, d(a, p) - d(a, n) + margin)``.

    Parameters
    ----------
    margin : float, default=0.5
        Required gap between the positive and the negative distance. The
        default is the estimators' ``margin``.
    mining : {'batch_hard', 'semi_hard', 'all'}, default='batch_hard'
        ``'batch_hard'`` (Hermans et al. 2017): for each anchor, its farthest
        positive and closest negative. ``'semi_hard'`` (Schroff et al. 2015):
        for each positive pair, the closest negative that is still farther
        than the positive, or the farthest negative when none is. ``'all'``:
        every valid triplet, averaged over those with a non-zero loss.
    """

    def __init__(self, margin=0.5, mining="batch_hard"):
        super().__init__(margin, mining)

    def _batch_hard(self, distances, positive, negative):
        farthest, closest, valid = _hardest(distances, positive, negative)
        return _masked_mean(F.relu(farthest - closest + self.margin), valid)

    def _semi_hard(self, distances, positive, negative):
        # One row per positive pair (anchor, positive), one column per sample.
        anchor, _ = positive.nonzero(as_tuple=True)
        d_ap = distances[positive][:, None]
        d_an = distances[anchor]
        is_negative = negative[anchor]
        farther = is_negative & (d_an > d_ap)
        closest_farther = d_an.masked_fill(~farther, float("inf")).amin(1)
        farthest = d_an.masked_fill(~is_negative, float("-inf")).amax(1)
        chosen = torch.where(farther.any(1), closest_farther, farthest)
        valid = is_negative.any(1)
        return _masked_mean(F.relu(d_ap[:, 0] - chosen + self.margin), valid)

    def _all(self, distances, positive, negative):
        losses = F.relu(distances[:, :, None] - distances[:, None, :] + self.margin)
        valid = positive[:, :, None] & negative[:, None, :]
        return _masked_mean(losses, valid & (losses > 0))


class BCEPairLoss(nn.Module):
    """Binary cross-entropy of Koch et al. (2015) on balanced in-batch pairs.

    Each pair's logit comes from :class:`~sksiamese.similarity.KochHead`, a learned
    weighting of the absolute difference of the two embeddings. Positive and
    negative pairs are averaged separately and the two averages summed with
    equal weight, so the few positives of a batch count as much as the many
    negatives.

    Parameters
    ----------
    embedding_dim : int
        Size of the embeddings the head compares.
    mining : {'batch_hard', 'all'}, default='batch_hard'
        Which negative pairs enter the loss. ``'all'``: every negative pair of
        the batch, as Koch et al. sample them. ``'batch_hard'``: for each
        anchor, the negative the head finds most similar. Averaged over all
        negatives, the loss is dominated by pairs that are already easy, so
        the head settles for a threshold that those satisfy and the embedding
        learns little about the confusable classes (``docs/benchmarks.md``
        compares the two).
    """

    similarity_class = KochHead

    def __init__(self, embedding_dim, mining="batch_hard"):
        super().__init__()
        self.similarity = KochHead(embedding_dim)
        self.mining = mining

    def forward(self, embeddings, labels):
        logits = self.similarity.batch_matrix(embeddings)
        positive, negative = _pair_masks(labels)
        targets = positive.to(logits.dtype)
        losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        if self.mining == "all":
            negative_loss = _masked_mean(losses, negative)
        elif self.mining == "batch_hard":
            hardest = logits.masked_fill(~negative, float("-inf")).argmax(1, keepdim=True)
            negative_loss = _masked_mean(losses.gather(1, hardest)[:, 0], negative.any(1))
        else:
            raise ValueError(f"Unknown mining {self.mining!r} for the bce loss.")
        return 0.5 * (_masked_mean(losses, positive) + negative_loss)


class EmbeddingLoss(nn.Module):
    """Any loss of a batch's embeddings and labels, with an optional miner.

    The contract of pytorch-metric-learning: ``miner(embeddings, labels)``
    returns the pairs or triplets to learn from, and ``loss(embeddings,
    labels, indices_tuple)`` their loss; without a miner the loss is called
    as ``loss(embeddings, labels)``. Both are submodules, so the parameters
    of a loss that has some (ArcFace's class centres, ProxyAnchor's proxies)
    train with the network.

    Parameters
    ----------
    loss : torch.nn.Module
        Called as ``loss(embeddings, labels)`` (or with the miner's
        ``indices_tuple`` as a third argument); returns a scalar.
    miner : torch.nn.Module or None, default=None
        Called as ``miner(embeddings, labels)``.
    """

    similarity_class = EuclideanSimilarity

    def __init__(self, loss, miner=None):
        super().__init__()
        self.loss = loss
        self.miner = miner
        # pytorch-metric-learning's losses compare by distance by default.
        self.similarity = EuclideanSimilarity()

    def forward(self, embeddings, labels):
        if self.miner is None:
            return self.loss(embeddings, labels)
        return self.loss(embeddings, labels, self.miner(embeddings, labels))


class PairLoss(nn.Module):
    """Loss of labelled pairs: contrastive, or Koch's head with cross-entropy.

    Same (1) and different (0) pairs are averaged apart and the two means
    added, so an unbalanced pair set does not tilt the model; a batch with
    pairs of one kind only learns from that kind.

    Parameters
    ----------
    loss : {'contrastive', 'bce'}, default='contrastive'
        Contrastive loss on the distance of each pair, or Koch's head with
        binary cross-entropy.
    margin : float, default=0.5
        Margin of the contrastive loss.
    embedding_dim : int, default=64
        Size of the embeddings the Koch head compares.
    """

    def __init__(self, loss="contrastive", margin=0.5, embedding_dim=64):
        super().__init__()
        if loss not in ("contrastive", "bce"):
            raise ValueError(f"loss must be 'contrastive' or 'bce'; got {loss!r}.")
        self.loss = loss
        self.margin = margin
        self.similarity = KochHead(embedding_dim) if loss == "bce" else EuclideanSimilarity()

    def forward(self, embeddings, same):
        same = same.bool()
        scores = self.similarity(embeddings[:, 0], embeddings[:, 1])
        if self.loss == "bce":
            losses = F.binary_cross_entropy_with_logits(
                scores, same.to(scores.dtype), reduction="none"
            )
        else:
            distance = -scores
            losses = torch.where(same, distance.pow(2), F.relu(self.margin - distance).pow(2))
        return _masked_mean(losses, same) + _masked_mean(losses, ~same)

"""How alike two embeddings are: the one similarity of a trained model.

As pytorch-metric-learning keeps its ``distances`` apart from its losses,
miners and reducers, a similarity here is one object used everywhere a model
compares embeddings: its loss trains through it, and scoring, search,
retrieval, the verifier and the weight files all read it back from the
trained net. Higher always means more alike.

Two kinds exist: :class:`EuclideanSimilarity`, minus the Euclidean distance
(the contrastive, triplet and module losses), and :class:`KochHead`, the
learned weighted-L1 head of Koch et al. (2015) (``loss='bce'``), whose
weights train with the network.
"""

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EuclideanSimilarity", "KochHead", "Similarity", "pairwise_distances"]


def pairwise_distances(embeddings):
    """Euclidean distance matrix of a batch of embeddings.

    The squared distances are clamped before the square root so that the
    gradient stays finite for coincident points (``sqrt`` has an infinite
    slope at zero).

    Parameters
    ----------
    embeddings : torch.Tensor of shape (n_samples, n_dims)
        A batch of embeddings.

    Returns
    -------
    distances : torch.Tensor of shape (n_samples, n_samples)
        Euclidean distance of every pair of rows.
    """
    squared_norms = embeddings.pow(2).sum(1)
    gram = embeddings @ embeddings.T
    squared = squared_norms[:, None] + squared_norms[None, :] - 2 * gram
    return squared.clamp_min(1e-12).sqrt()


def similarity_of(embedder):
    """The similarity a fitted embedder's embeddings are compared by.

    A :class:`~sksiamese.SiameseEmbedder` (bare or in a ``FrozenEstimator``)
    brings its own (``similarity_``); any other transformer is compared by
    minus the Euclidean distance.
    """
    return getattr(embedder, "similarity_", None) or EuclideanSimilarity()


class Similarity(nn.Module):
    """Base class: a score of two embeddings, higher for more alike.

    Subclasses implement :meth:`forward`, which broadcasts over leading
    dimensions and is differentiable (losses train through it); the other
    methods derive from it and may be overridden where a faster or exact
    form exists.

    Attributes
    ----------
    by_distance : bool
        Whether the score is minus the Euclidean distance of the embeddings,
        so that an index built for Euclidean search (faiss) ranks as it does.
    """

    by_distance = False

    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        """Score of ``a`` against ``b``, broadcast over their leading dimensions.

        Parameters
        ----------
        a, b : torch.Tensor of shape (..., n_dims)
            Embeddings; the leading dimensions broadcast.

        Returns
        -------
        scores : torch.Tensor of shape (...)
            Higher means more alike.
        """
        raise NotImplementedError

    def _device(self, tensor):
        """Where to compute: on the parameters' device, else where the input is."""
        return next(self.parameters(), tensor).device

    def batch_matrix(self, embeddings):
        """Differentiable ``(B, B)`` scores of a training batch against itself.

        Parameters
        ----------
        embeddings : torch.Tensor of shape (B, n_dims)
            A batch of embeddings.

        Returns
        -------
        scores : torch.Tensor of shape (B, B)
            ``scores[i, j]`` is the score of row ``i`` against row ``j``; the
            losses train through it.
        """
        return self(embeddings[:, None, :], embeddings[None, :, :])

    def matrix(self, A, B):
        """Scores of every row of ``A`` against every row of ``B``, for inference.

        Computed without gradients on the similarity's device, in the
        inputs' dtype (float64 scores do not depend on the shape of the block
        they are computed in), and returned on the CPU.

        Parameters
        ----------
        A : torch.Tensor of shape (n_a, n_dims)
            Embeddings.
        B : torch.Tensor of shape (n_b, n_dims)
            Embeddings.

        Returns
        -------
        scores : torch.Tensor of shape (n_a, n_b)
            Higher means more alike.
        """
        device = self._device(A)
        with torch.no_grad():
            return self(A[:, None, :].to(device), B[None, :, :].to(device)).cpu()

    def paired(self, a, b):
        """Score of each row of ``a`` against the same row of ``b``, for inference.

        Parameters
        ----------
        a, b : torch.Tensor of shape (n_pairs, n_dims)
            The two members of each pair, embedded.

        Returns
        -------
        scores : torch.Tensor of shape (n_pairs,)
            On the CPU.
        """
        device = self._device(a)
        with torch.no_grad():
            return self(a.to(device), b.to(device)).cpu()

    def distance(self, scores):
        """The non-negative distance that ``scores`` decrease with.

        Verification divides it by the spread of a claim's references
        (:class:`~sksiamese.SiameseVerifier`'s ``normalization``), which
        needs a distance that is zero, or about zero (the Euclidean forms
        floor it at 1e-6), for identical embeddings.

        Parameters
        ----------
        scores : torch.Tensor
            Scores from this similarity.

        Returns
        -------
        distances : torch.Tensor
            The same shape; minus the scores unless a subclass says otherwise.
        """
        return -scores

    def to_pair_score(self, scores):
        """What ``pair_score`` reports for these scores (the scores themselves).

        Parameters
        ----------
        scores : torch.Tensor
            Scores from :meth:`paired`.

        Returns
        -------
        pair_scores : torch.Tensor
            The same shape; higher means more alike.
        """
        return scores


class EuclideanSimilarity(Similarity):
    """Minus the Euclidean distance of two embeddings.

    The similarity of the contrastive and triplet losses, and of any module
    loss (such as a pytorch-metric-learning loss). For training batches the
    distance matrix comes from one matrix product (:func:`pairwise_distances`);
    for inference from :func:`torch.cdist`, in the inputs' dtype (the search
    passes float64). Every form floors the distance at 1e-6, where
    :meth:`forward` clamps the squared distance for a finite gradient, so
    that identical embeddings score the same whichever form computed them.
    """

    by_distance = True

    def forward(self, a, b):
        # The squared distance is clamped before the root: a finite gradient
        # for coincident points.
        return -(a - b).pow(2).sum(-1).clamp_min(1e-12).sqrt()

    def batch_matrix(self, embeddings):
        return -pairwise_distances(embeddings)

    def matrix(self, A, B):
        device = self._device(A)
        with torch.no_grad():
            return -torch.cdist(A.to(device), B.to(device)).clamp_min(1e-6).cpu()


class KochHead(Similarity):
    """Learned similarity of Koch et al. (2015): a weighted L1 distance.

    ``logit(a, b) = bias - w . |a - b|``; the probability that ``a`` and ``b``
    belong to the same class is its sigmoid. Koch et al. leave the weights
    free; here they are kept non-negative (``w = softplus(raw)``), so the head
    is a weighted L1 metric and similarity never grows with a difference.
    Free weights let the head reward differences along features that happen
    to separate the training classes, which turns into anti-similarity on
    new classes.

    Inputs broadcast, so ``head(A[:, None], B[None])`` scores every pair of two
    sets at once.

    Parameters
    ----------
    embedding_dim : int
        Size of the embeddings compared.
    """

    def __init__(self, embedding_dim):
        super().__init__()
        # softplus(0.5413) == 1: every feature starts with unit weight.
        self.raw_weight = nn.Parameter(torch.full((embedding_dim,), 0.5413))
        self.bias = nn.Parameter(torch.zeros(()))

    @property
    def weight(self):
        """The non-negative weight of each feature's absolute difference."""
        return F.softplus(self.raw_weight)

    def forward(self, a, b):
        """The logit ``bias - weight . |a - b|`` that ``a`` and ``b`` share a class.

        As :meth:`Similarity.forward`: the leading dimensions broadcast, and
        the logit comes in the inputs' dtype.
        """
        # Computed in the inputs' dtype: float64 inference scores stay exact.
        return self.bias.to(a.dtype) - (a - b).abs() @ self.weight.to(a.dtype)

    def distance(self, scores):
        """The weighted L1 distance ``bias - scores``; the bias scores identical embeddings.

        Parameters
        ----------
        scores : torch.Tensor
            Logits of this head.

        Returns
        -------
        distances : torch.Tensor
            ``weight . |a - b|``, the same shape.
        """
        return self.bias.detach().to(scores) - scores

    def to_pair_score(self, scores):
        # The head's probability that the two samples share a class.
        return torch.sigmoid(scores)

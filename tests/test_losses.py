"""Loss values and gradients against hand-worked examples.

The batch is four points on a line, ``x = [0, 1, 0.4, 3]`` with labels
``[0, 0, 1, 1]``; its distances are d01 = 1, d02 = 0.4, d12 = 0.6, d03 = 3,
d13 = 2, d23 = 2.6 (no ties, so the mined triplets are unambiguous). Each
expected value below is worked from those numbers with margin 1.
"""

import math

import pytest
import torch

from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier
from sksiamese.losses import (
    BCEPairLoss,
    ContrastiveLoss,
    PairLoss,
    TripletLoss,
    pairwise_distances,
)

LABELS = torch.tensor([0, 0, 1, 1])


def points(dtype=torch.float64):
    return torch.tensor([[0.0], [1.0], [0.4], [3.0]], dtype=dtype, requires_grad=True)


def softplus(x):
    return math.log1p(math.exp(x))


EXPECTED = {
    # Positive pairs pull by d**2: (1 + 6.76) / 2. Negatives within the margin
    # push by (1 - d)**2: only (0, 2) and (1, 2), 0.36 and 0.16.
    "contrastive_all": (1 + 6.76) / 2 + (0.36 + 0.16) / 2,
    # Each anchor's farthest positive squared plus (1 - closest negative)**2:
    # (1 + 0.36) + (1 + 0.16) + (6.76 + 0.36) + (6.76 + 0), over 4.
    "contrastive_batch_hard": (1.36 + 1.16 + 7.12 + 6.76) / 4,
    # Each anchor: farthest positive minus closest negative plus margin:
    # (1 - 0.4 + 1) + (1 - 0.6 + 1) + (2.6 - 0.4 + 1) + (2.6 - 2 + 1), over 4.
    "batch_hard": (1.6 + 1.4 + 3.2 + 1.6) / 4,
    # Pairs (0,1), (1,0) find farther negatives at 3 and 2: losses 0 and 0.
    # (2,3) has none farther than 2.6 and takes the farthest, 0.6: loss 3.
    # (3,2) takes 3, the closest beyond 2.6: loss 0.6.
    "semi_hard": (0 + 0 + 3.0 + 0.6) / 4,
    # The six triplets with a positive loss: 1.6, 1.4, 3.2, 3.0, 0.6, 1.6.
    "all": 11.4 / 6,
    # Head logit 0.5 - |a - b|: positives (0,1), (2,3) at -0.5 and -2.1;
    # negatives (0,2), (1,2), (0,3), (1,3) at 0.1, -0.1, -2.5, -1.5.
    "bce": 0.5
    * (
        (softplus(0.5) + softplus(2.1)) / 2
        + (softplus(0.1) + softplus(-0.1) + softplus(-2.5) + softplus(-1.5)) / 4
    ),
    # The same positives; each anchor's most similar negative instead: 0.1
    # for anchors 0 and 2, -0.1 for anchor 1, -1.5 for anchor 3.
    "bce_batch_hard": 0.5
    * (
        (softplus(0.5) + softplus(2.1)) / 2
        + (2 * softplus(0.1) + softplus(-0.1) + softplus(-1.5)) / 4
    ),
}


def make_loss(name, dtype=torch.float64):
    if name.startswith("contrastive"):
        return ContrastiveLoss(margin=1.0, mining=name.split("_", 1)[1])
    if name.startswith("bce"):
        loss = BCEPairLoss(embedding_dim=1, mining=name[4:] or "all").to(dtype)
        with torch.no_grad():
            loss.similarity.raw_weight.fill_(math.log(math.e - 1))  # softplus -> weight 1
            loss.similarity.bias.fill_(0.5)
        return loss
    return TripletLoss(margin=1.0, mining=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_matches_hand_worked_value(name, dtype):
    loss = make_loss(name, dtype)
    value = loss(points(dtype), LABELS)
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    assert value.item() == pytest.approx(EXPECTED[name], rel=tolerance)


def test_contrastive_gradient_matches_hand_worked_value():
    # d/dx of 0.25 * [2 (x1-x0)^2 + 2 (x3-x2)^2] + 0.25 * [2 (1-x2+x0)^2 + 2 (1-x1+x2)^2]
    x = points()
    ContrastiveLoss(margin=1.0, mining="all")(x, LABELS).backward()
    expected = torch.tensor([[-0.4], [0.6], [-2.8], [2.6]], dtype=torch.float64)
    torch.testing.assert_close(x.grad, expected)


def test_batch_hard_gradient_matches_hand_worked_value():
    # Anchor terms x1 - x2, x2 - x0, x3 - 2 x2 + x0 and x1 - x2, each over 4.
    x = points()
    TripletLoss(margin=1.0, mining="batch_hard")(x, LABELS).backward()
    expected = torch.tensor([[0.0], [0.5], [-0.75], [0.25]], dtype=torch.float64)
    torch.testing.assert_close(x.grad, expected)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gradients_agree_with_finite_differences(name):
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(8, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    if name.startswith("bce"):
        loss = BCEPairLoss(3, mining=name[4:] or "all").to(torch.float64)
    else:
        loss = make_loss(name)
    assert torch.autograd.gradcheck(lambda e: loss(e, labels), (embeddings,))


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "all"])
def test_triplet_batch_without_positive_pair_gives_zero_with_a_graph(mining):
    # Contrastive ('all') and bce still learn from the negatives of such a batch.
    x = points()
    value = TripletLoss(margin=1.0, mining=mining)(x, torch.tensor([0, 1, 2, 3]))
    assert value.item() == 0.0
    value.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_pairwise_distances_have_finite_gradient_for_coincident_points():
    x = torch.zeros(3, 2, requires_grad=True)
    pairwise_distances(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_distance_matrix_is_euclidean():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    torch.testing.assert_close(pairwise_distances(x)[0, 1], torch.tensor(5.0))


@pytest.mark.parametrize("loss", [ContrastiveLoss, TripletLoss, PairLoss])
@pytest.mark.parametrize("estimator", [SiameseEmbedder, OneShotClassifier, SiameseVerifier])
def test_default_margin_is_the_estimators(loss, estimator):
    # A loss built by hand trains as the estimators' default does.
    assert loss().margin == estimator().margin

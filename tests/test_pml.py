"""Losses and miners from pytorch-metric-learning (or any module) as ``loss=`` and ``miner=``."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier
from sksiamese.losses import TripletLoss
from sksiamese.metrics import make_one_shot_scorer

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
from pytorch_metric_learning.distances import LpDistance  # noqa: E402
from pytorch_metric_learning.reducers import MeanReducer  # noqa: E402

FAST = dict(max_epochs=2, embedding_dim=16, early_stopping=False, random_state=0)


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(24, 8, generator=generator, dtype=torch.float64)
    labels = torch.arange(6).repeat_interleave(4)
    return embeddings, labels


def euclidean():
    return LpDistance(normalize_embeddings=False)


def test_pml_triplet_loss_on_all_triplets_is_ours_with_mining_all(batch):
    embeddings, labels = batch
    theirs = pml_losses.TripletMarginLoss(margin=0.5, distance=euclidean())
    ours = TripletLoss(margin=0.5, mining="all")
    torch.testing.assert_close(theirs(embeddings, labels), ours(embeddings, labels))


def test_pml_triplet_loss_with_the_batch_hard_miner_is_ours_with_batch_hard(batch):
    embeddings, labels = batch
    theirs = pml_losses.TripletMarginLoss(margin=0.5, distance=euclidean(), reducer=MeanReducer())
    mined = pml_miners.BatchHardMiner(distance=euclidean())(embeddings, labels)
    ours = TripletLoss(margin=0.5, mining="batch_hard")
    torch.testing.assert_close(theirs(embeddings, labels, mined), ours(embeddings, labels))


class CountingMiner(torch.nn.Module):
    """PML's multi-similarity miner, counting its calls."""

    def __init__(self):
        super().__init__()
        self.miner, self.calls = pml_miners.MultiSimilarityMiner(), 0

    def forward(self, embeddings, labels):
        self.calls += 1
        return self.miner(embeddings, labels)


def test_a_pml_loss_and_miner_train_the_embedder_and_leave_the_parameters_alone(small):
    X, y = small
    loss = pml_losses.MultiSimilarityLoss()
    miner = CountingMiner()
    embedder = SiameseEmbedder(loss=loss, miner=miner, **FAST).fit(X, y)
    assert embedder.net_.criterion_.miner.calls > 0 and miner.calls == 0  # the copy mined
    # Compared by distance, the embeddings are normalised as the loss saw them.
    np.testing.assert_allclose(np.linalg.norm(embedder.transform(X), axis=1), 1.0, rtol=1e-5)
    criterion = embedder.net_.criterion_
    assert criterion.loss is not loss and criterion.miner is not miner  # copies trained
    assert embedder.loss is loss and embedder.miner is miner
    assert np.isfinite(embedder.loss_curve_).all()
    assert embedder.loss_curve_[-1] < embedder.loss_curve_[0]
    assert embedder.score(X, y) > 0.8


@pytest.mark.parametrize(
    "make_loss, weights",
    [
        (lambda: pml_losses.ArcFaceLoss(num_classes=5, embedding_size=16), "W"),
        # PML's ProxyAnchor learns one proxy per class, usually at a larger rate.
        (lambda: pml_losses.ProxyAnchorLoss(num_classes=5, embedding_size=16), "proxies"),
    ],
    ids=["ArcFace", "ProxyAnchor"],
)
def test_a_loss_with_parameters_trains_them_at_their_own_learning_rate(small, make_loss, weights):
    X, y = small
    loss = make_loss()
    before = getattr(loss, weights).detach().clone()
    embedder = SiameseEmbedder(
        loss=loss, optimizer__param_groups=[("loss.*", {"lr": 0.05})], **FAST
    ).fit(X, y)
    trained = getattr(embedder.net_.criterion_.loss, weights)
    assert not torch.equal(trained.detach().cpu(), before)
    # The user's instance is untouched.
    torch.testing.assert_close(getattr(loss, weights).detach(), before)
    # The one-cycle schedule peaks each group at its own rate.
    peaks = {g["max_lr"] for g in embedder.net_.optimizer_.param_groups}
    loss_group = next(
        g for g in embedder.net_.optimizer_.param_groups if any(p is trained for p in g["params"])
    )
    assert loss_group["max_lr"] == 0.05 and peaks == {0.05, embedder.lr}


def test_a_loss_with_parameters_is_pickled_and_saved_in_safe_weight_files(small, tmp_path):
    X, y = small
    embedder = SiameseEmbedder(loss=pml_losses.ArcFaceLoss(5, 16), **FAST).fit(X, y)
    assert clone(embedder).loss is not embedder.loss
    restored = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_array_equal(restored.transform(X), embedder.transform(X))
    embedder.save_weights(tmp_path / "w.pt")
    torch.load(tmp_path / "w.pt", weights_only=True)  # tensors and plain values only
    # A new instance of the class, with other initial centres, takes the trained ones.
    loaded = SiameseEmbedder(**{**FAST, "loss": pml_losses.ArcFaceLoss(5, 16)})
    loaded.load_weights(tmp_path / "w.pt")
    np.testing.assert_array_equal(loaded.transform(X), embedder.transform(X))
    torch.testing.assert_close(
        loaded.net_.criterion_.loss.W, embedder.net_.criterion_.loss.W.detach()
    )
    with pytest.raises(ValueError, match="ArcFaceLoss.*'contrastive'"):
        SiameseEmbedder(**FAST).load_weights(tmp_path / "w.pt")


def test_a_loss_with_too_few_classes_or_one_of_ours_is_refused_before_training(small):
    X, y = small
    with pytest.raises(ValueError, match="num_classes=4, and fit got 5 classes"):
        SiameseEmbedder(loss=pml_losses.ArcFaceLoss(4, 16), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="pass its name"):
        SiameseEmbedder(loss=TripletLoss(), **FAST).fit(X, y)


def test_grid_search_chooses_among_pml_losses(small):
    X, y = small
    search = GridSearchCV(
        OneShotClassifier(**FAST),
        {"loss": [pml_losses.MultiSimilarityLoss(), pml_losses.NTXentLoss(), "triplet"]},
        scoring=make_one_shot_scorer(n_way=2, n_episodes=10),
        cv=GroupKFold(n_splits=2),
    ).fit(X, y, groups=y)
    assert len(search.cv_results_["mean_test_score"]) == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    criterion = best.embedder_.net_.criterion_
    expected = best.loss if isinstance(best.loss, str) else type(best.loss)
    assert expected == "triplet" or isinstance(criterion.loss, expected)


def test_a_miner_needs_a_module_loss_and_the_verifier_takes_no_module_loss(small, pair_pairs):
    X, y = small
    with pytest.raises(ValueError, match="miner applies to a module loss"):
        SiameseEmbedder(miner=pml_miners.MultiSimilarityMiner(), **FAST).fit(X, y)
    pairs, same = pair_pairs
    # scikit-learn's parameter check, not PairLoss's own.
    with pytest.raises(ValueError, match="The 'loss' parameter of SiameseVerifier must be"):
        SiameseVerifier(loss=pml_losses.ContrastiveLoss()).fit(pairs, same)


@pytest.fixture
def pair_pairs(small):
    from sksiamese.pairs import make_pairs

    X, y = small
    return make_pairs(X, y, 100, random_state=0)

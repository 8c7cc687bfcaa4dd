"""Starting from a network trained elsewhere: a fitted embedder's branch, or a user's backbone."""

import numpy as np
import pytest
import torch

from sksiamese import SiameseEmbedder, SiameseVerifier
from sksiamese.modules import IMAGENET_MEAN, IMAGENET_STD, BackboneBranch
from sksiamese.pairs import make_pairs


class Recorder(torch.nn.Module):
    """A backbone that keeps the last input it saw, and returns a feature map."""

    def __init__(self, channels=3):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, 4, 3, padding=1)

    def forward(self, X):
        self.seen = X.detach().clone()
        return self.conv(X)


def small_backbone():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU()
    )


def test_fine_tuning_starts_from_the_given_network(digits):
    # Bug caught: the given branch re-initialised (or a fresh one built) before training.
    X, y, X_new, y_new = digits
    prior = SiameseEmbedder(max_epochs=3, early_stopping=False, random_state=0).fit(X, y)
    start = dict(max_epochs=1, lr=1e-9, early_stopping=False, random_state=1)
    tuned = SiameseEmbedder(module=prior.net_.module_, **start).fit(X_new, y_new)
    fresh = SiameseEmbedder(**start).fit(X_new, y_new)
    np.testing.assert_allclose(tuned.transform(X_new), prior.transform(X_new), atol=1e-5)
    assert np.abs(fresh.transform(X_new) - prior.transform(X_new)).max() > 0.1


def test_fine_tuning_trains_a_copy_and_moves_away_from_the_start(digits):
    X, y, X_new, y_new = digits
    prior = SiameseEmbedder(max_epochs=2, early_stopping=False, random_state=0).fit(X, y)
    before = prior.transform(X_new)
    tuned = SiameseEmbedder(
        module=prior.net_.module_, max_epochs=2, early_stopping=False, random_state=0
    ).fit(X_new, y_new)
    np.testing.assert_array_equal(prior.transform(X_new), before)
    assert np.abs(tuned.transform(X_new) - before).max() > 1e-3


def test_verifier_fine_tunes_an_embedders_branch(digits):
    X, y, X_new, y_new = digits
    prior = SiameseEmbedder(max_epochs=2, early_stopping=False, random_state=0).fit(X, y)
    pairs, same = make_pairs(X_new, y_new, n_pairs=200, random_state=0)
    verifier = SiameseVerifier(
        module=prior.net_.module_, max_epochs=1, lr=1e-9, early_stopping=False, random_state=0
    ).fit(pairs, same)
    np.testing.assert_allclose(
        verifier.net_.module_.branch(torch.from_numpy(X_new)).detach().numpy(),
        prior.transform(X_new),
        atol=1e-5,
    )


@pytest.mark.parametrize("shape", [(6, 7), (1, 6, 7)])
def test_grey_images_reach_the_backbone_as_standardised_colour(shape):
    # Bugs caught: a grey image given to a colour network, or the statistics not applied.
    branch = BackboneBranch(Recorder(), input_shape=shape)
    images = torch.rand(5, *shape)
    branch(images)
    grey = images.reshape(5, 1, 6, 7)
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    torch.testing.assert_close(branch.backbone.seen, (grey.expand(-1, 3, -1, -1) - mean) / std)


def test_colour_images_are_standardised_channel_by_channel():
    branch = BackboneBranch(Recorder(), input_shape=(3, 6, 7), mean=(0.1, 0.5, 0.9), std=(1, 2, 4))
    images = torch.rand(2, 3, 6, 7)
    branch(images)
    expected = torch.stack(
        [(images[:, 0] - 0.1), (images[:, 1] - 0.5) / 2, (images[:, 2] - 0.9) / 4], 1
    )
    torch.testing.assert_close(branch.backbone.seen, expected)


def test_without_statistics_the_images_pass_as_they_are():
    branch = BackboneBranch(
        Recorder(channels=1), input_shape=(6, 7), in_channels=1, mean=None, std=None
    )
    images = torch.rand(2, 6, 7)
    branch(images)
    torch.testing.assert_close(branch.backbone.seen, images[:, None])


def test_feature_maps_are_pooled_projected_and_normalised():
    branch = BackboneBranch(Recorder(), input_shape=(6, 7), embedding_dim=5)
    embeddings = branch(torch.rand(3, 6, 7))
    assert embeddings.shape == (3, 5)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))
    features = BackboneBranch(Recorder(), input_shape=(6, 7), normalize=False)(torch.rand(3, 6, 7))
    assert features.shape == (3, 4)  # the backbone's channels, averaged over space


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mean": (0.5,)}, "one value per channel"),
        ({"mean": (0.5, 0.5, 0.5), "std": None}, "both mean and std"),
        ({"std": (0.2, 0.0, 0.2)}, "std must be positive"),
        ({"input_shape": None, "embedding_dim": 4}, "embedding_dim needs input_shape"),
    ],
)
def test_statistics_that_do_not_fit_the_backbone_are_refused(kwargs, message):
    kwargs = {"input_shape": (6, 7), **kwargs}
    with pytest.raises(ValueError, match=message):
        BackboneBranch(Recorder(), **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_backbone_on_the_gpu_is_probed_there():
    # Bug caught: the statistics were made on the CPU, the probe on the backbone's device.
    branch = BackboneBranch(Recorder().cuda(), input_shape=(6, 7), embedding_dim=5)
    assert branch.mean.is_cuda
    assert branch.cuda()(torch.rand(3, 6, 7, device="cuda")).shape == (3, 5)


def test_images_with_other_channels_are_refused():
    branch = BackboneBranch(Recorder(), input_shape=(3, 6, 7))
    with pytest.raises(ValueError, match="reads 3 channel.*have 2"):
        branch(torch.rand(2, 2, 6, 7))
    with pytest.raises(ValueError, match="images"):
        branch(torch.rand(2, 42))


def frozen_backbone_fit(estimator, X, y, pattern):
    """Fit ``estimator`` around a fresh BackboneBranch whose ``pattern`` parameters get lr 0."""
    branch = BackboneBranch(small_backbone(), input_shape=(8, 8), embedding_dim=16)
    estimator.set_params(
        module=branch,
        optimizer__param_groups=[(pattern, {"lr": 0.0})],
        max_epochs=1,
        early_stopping=False,
        random_state=0,
    )
    return branch, estimator.fit(X, y)


def test_a_frozen_backbone_stays_while_the_projection_trains(digits):
    # The documented recipe: the backbone's own learning rate through param groups.
    X, y, _, _ = digits
    images = X.reshape(-1, 8, 8)
    branch, embedder = frozen_backbone_fit(SiameseEmbedder(), images, y, "backbone.*")
    trained = embedder.net_.module_
    torch.testing.assert_close(trained.backbone[0].weight, branch.backbone[0].weight)
    assert not torch.equal(trained.projection.weight, branch.projection.weight)
    assert embedder.transform(images).shape == (len(images), 16)


def test_the_verifier_names_the_backbone_under_its_branch(digits):
    # The user guide's recipe for the verifier: its module holds the branch as ``branch``.
    X, y, _, _ = digits
    pairs, same = make_pairs(X.reshape(-1, 8, 8), y, n_pairs=200, random_state=0)
    branch, verifier = frozen_backbone_fit(SiameseVerifier(), pairs, same, "branch.backbone.*")
    trained = verifier.net_.module_.branch
    torch.testing.assert_close(trained.backbone[0].weight, branch.backbone[0].weight)
    assert not torch.equal(trained.projection.weight, branch.projection.weight)

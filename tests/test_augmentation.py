import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sksiamese import SiameseEmbedder, augmentation
from sksiamese._held_out import OneShotEpisodes
from sksiamese.augmentation import RandomAffine, RandomStrokes, change_stroke_width, distort


def test_zero_ranges_leave_images_unchanged():
    images = torch.rand(6, 1, 12, 12)
    identity = RandomAffine(rotation=0, shear=0, scale=(1, 1), translation=0)
    torch.testing.assert_close(identity(images), images)


def test_same_seed_same_distortions_and_new_ones_each_call():
    images = torch.rand(4, 10, 10)
    first, second = RandomAffine(seed=3), RandomAffine(seed=3)
    a = first(images)
    torch.testing.assert_close(a, second(images))
    assert a.shape == images.shape
    assert not torch.equal(first(images), a)


def test_translation_moves_the_ink():
    image = torch.zeros(1, 1, 21, 21)
    image[0, 0, 10, 10] = 1.0
    shift = RandomAffine(rotation=0, shear=0, scale=(1, 1), translation=0.2, seed=0)
    theta = shift.matrices(1)
    moved = RandomAffine(rotation=0, shear=0, scale=(1, 1), translation=0.2, seed=0)(image)
    # affine_grid samples the input at theta @ output, so ink at the centre
    # moves by minus the shift, in pixels (21 pixels span 2 units).
    rows, cols = torch.nonzero(moved[0, 0] > 0.2, as_tuple=True)
    expected_col = 10 - theta[0, 0, 2].item() * 21 / 2
    expected_row = 10 - theta[0, 1, 2].item() * 21 / 2
    assert abs(cols.float().mean().item() - expected_col) < 1.0
    assert abs(rows.float().mean().item() - expected_row) < 1.0


def test_augment_needs_images(small):
    X, y = small
    with pytest.raises(ValueError, match="augment needs images"):
        SiameseEmbedder(augment=True, max_epochs=1).fit(X, y)


def test_augmented_training_is_reproducible(small):
    X, y = small
    images = X.reshape(-1, 8, 8)
    runs = [
        SiameseEmbedder(augment=True, max_epochs=2, random_state=seed).fit(images, y)
        for seed in (0, 0, 1)
    ]
    first, second, other = (run.transform(images) for run in runs)
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


def test_auto_augments_images_and_leaves_vectors_alone(small):
    X, y = small
    vectors = SiameseEmbedder(max_epochs=1, random_state=0).fit(X, y)
    images = SiameseEmbedder(max_epochs=1, inference_views=8, random_state=0)
    images.fit(X.reshape(-1, 8, 8), y)
    assert vectors.net_.augmentation is None
    assert vectors.inference_distortions_.shape == (0, 2, 3)
    assert isinstance(images.net_.augmentation, RandomAffine)
    assert images.inference_distortions_.shape == (7, 2, 3)


def test_distort_applies_one_map_to_every_image():
    images = torch.rand(5, 1, 9, 9)
    theta = RandomAffine(seed=1).matrices(1)
    together = distort(images, theta[0])
    one_by_one = torch.cat([distort(image[None], theta) for image in images])
    torch.testing.assert_close(together, one_by_one)


def test_inference_views_average_the_fixed_distortions(small):
    X, y = small
    images = X.reshape(-1, 8, 8)
    embedder = SiameseEmbedder(max_epochs=2, inference_views=3, random_state=0).fit(images, y)
    net = embedder.net_
    views = [torch.as_tensor(images)] + [
        distort(torch.as_tensor(images), theta) for theta in embedder.inference_distortions_
    ]
    stacked = torch.stack([net.forward(view) for view in views])
    expected = F.normalize(stacked.mean(0), dim=1)  # the module's outputs are unit vectors
    np.testing.assert_allclose(embedder.transform(images), expected.numpy(), atol=1e-5)
    # Deterministic, and the same for a sample alone or in a batch.
    alone, in_batch = embedder.transform(images[:1]), embedder.transform(images)[:1]
    np.testing.assert_allclose(alone, in_batch, atol=1e-6)
    plain = SiameseEmbedder(max_epochs=2, inference_views=1, random_state=0).fit(images, y)
    np.testing.assert_allclose(plain.transform(images), net.forward(images).numpy(), atol=1e-6)


def test_a_random_affine_sets_the_ranges_and_random_state_the_seed(small):
    X, y = small
    images = X.reshape(-1, 8, 8)
    template = RandomAffine(rotation=0, shear=0, scale=(1, 1), translation=0.2, seed=123)
    embedder = SiameseEmbedder(augment=template, max_epochs=1, inference_views=8, random_state=0)
    embedder.fit(images, y)
    used = embedder.net_.augmentation
    assert (used.rotation, used.shear, used.scale, used.translation) == (0, 0, (1, 1), 0.2)
    assert used.seed != template.seed
    # Shifts only: the fixed inference maps are translations within the range.
    maps = embedder.inference_distortions_
    torch.testing.assert_close(maps[:, :, :2], torch.eye(2).expand(len(maps), 2, 2))
    assert maps[:, :, 2].abs().max() <= 0.4
    assert "translation=0.2" in repr(embedder)


@pytest.mark.parametrize(("views_score", "kept"), [(1.0, 8), (0.0, 1)])
def test_auto_views_are_kept_only_when_they_beat_the_image_alone(
    small, monkeypatch, views_score, kept
):
    X, y = small
    # The views decision scores the selected net's ``forward`` and, once, its
    # views, both through ``score``: the views' score is replaced.
    score = OneShotEpisodes.score

    def scripted(self, embed, similarity):
        if getattr(embed, "__self__", None) is not None:  # net.forward: the image alone
            return score(self, embed, similarity)
        return views_score

    monkeypatch.setattr(OneShotEpisodes, "score", scripted)
    embedder = SiameseEmbedder(max_epochs=1, random_state=0).fit(X.reshape(-1, 8, 8), y)
    alone = embedder.validation_scores_[embedder.best_epoch_]
    assert 0 < alone < 1
    assert embedder.inference_views_ == kept == 1 + len(embedder.inference_distortions_)


def test_stroke_width_thickens_and_thins_the_ink():
    images = torch.zeros(3, 1, 9, 9)
    images[:, 0, 3:6, 3:6] = 1.0  # a 3x3 blot of ink
    changed = change_stroke_width(images, torch.tensor([1, 0, -1]))
    assert changed[0].sum() == 25  # grown by one pixel on each side: 5x5
    torch.testing.assert_close(changed[1], images[1])
    assert changed[2].sum() == 1  # shrunk to its centre
    assert changed[2, 0, 4, 4] == 1


def test_random_strokes_change_widths_then_distort():
    images = torch.zeros(64, 12, 12)
    images[:, 4:8, 4:8] = 1.0
    no_map = dict(rotation=0, shear=0, scale=(1, 1), translation=0)
    ink = RandomStrokes(stroke_width=1, seed=0, **no_map)(images).sum((1, 2))
    # Thinned, kept, thickened (the identity map resamples to float precision).
    assert set(ink.round().tolist()) == {4.0, 16.0, 36.0}
    unchanged = RandomStrokes(stroke_width=0, seed=0, **no_map)(images)
    torch.testing.assert_close(unchanged, images)
    with pytest.raises(ValueError, match="stroke_width must be a non-negative int"):
        RandomStrokes(stroke_width=-1)


def test_random_strokes_train_with_the_fit_seed_and_keep_their_width(small, monkeypatch):
    X, y = small
    widths = []

    def recording(images, drawn):
        widths.append(drawn)
        return change_stroke_width(images, drawn)

    monkeypatch.setattr(augmentation, "change_stroke_width", recording)
    template = RandomStrokes(stroke_width=2, seed=123)
    embedder = SiameseEmbedder(
        augment=template, max_epochs=1, inference_views=1, early_stopping=False, random_state=0
    )
    embedder.fit(X.reshape(-1, 8, 8), y)
    used = embedder.net_.augmentation
    assert isinstance(used, RandomStrokes) and used.stroke_width == 2
    assert used.seed != template.seed
    assert "stroke_width=2" in repr(embedder)
    # Every training batch had its strokes changed, by up to two pixels either way.
    drawn = torch.cat(widths)
    assert len(widths) == len(embedder.net_.history[-1, "batches"])
    assert drawn.abs().max() == 2 and (drawn != 0).any()

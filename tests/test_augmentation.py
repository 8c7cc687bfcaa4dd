import numpy as np
import pytest
import torch

from sksiamese import SiameseEmbedder
from sksiamese.augmentation import RandomAffine


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
    with pytest.raises(ValueError, match="augment=True needs images"):
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

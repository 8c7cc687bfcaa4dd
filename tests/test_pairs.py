import numpy as np
import pytest

from sksiamese.pairs import make_pairs


def test_pairs_are_balanced_and_labelled_right():
    y = np.repeat(np.arange(7), [1, 2, 3, 5, 8, 13, 21])
    X = np.column_stack([np.arange(len(y)), y])  # sample index and class
    pairs, y_same = make_pairs(X, y, 501, random_state=0)
    assert pairs.shape == (501, 2, 2) and y_same.sum() == 251
    first, second = pairs[:, 0], pairs[:, 1]
    np.testing.assert_array_equal(y_same, (first[:, 1] == second[:, 1]).astype(int))
    assert np.all(first[:, 0] != second[:, 0])  # never a sample with itself
    again, _ = make_pairs(X, y, 501, random_state=0)
    np.testing.assert_array_equal(pairs, again)


def test_every_class_appears_in_different_pairs():
    y = np.repeat(np.arange(5), 4)
    pairs, y_same = make_pairs(np.arange(20)[:, None], y, 2000, random_state=1)
    partners = pairs[y_same == 0, 1, 0]
    assert set(y[partners]) == set(range(5))


def test_images_keep_their_shape():
    X = np.zeros((6, 3, 4))
    pairs, _ = make_pairs(X, [0, 0, 1, 1, 2, 2], 4, random_state=0)
    assert pairs.shape == (4, 2, 3, 4)


@pytest.mark.parametrize(
    ("y", "n_pairs", "match"),
    [
        ([0, 1, 2], 4, "one class with two"),
        ([0, 0, 0], 4, "two classes"),
        ([0, 0, 1], 1, "n_pairs"),
    ],
)
def test_bad_input(y, n_pairs, match):
    with pytest.raises(ValueError, match=match):
        make_pairs(np.zeros((3, 2)), y, n_pairs)

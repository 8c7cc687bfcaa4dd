import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    """Digits 0-4 for training, 5-9 as new classes; pixels scaled to [0, 1]."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    seen = y < 5
    return X[seen], y[seen], X[~seen], y[~seen]


@pytest.fixture(scope="session")
def small(digits):
    """A small training set: 30 samples of each of the five seen digits."""
    X, y, _, _ = digits
    index = np.concatenate([np.flatnonzero(y == c)[:30] for c in range(5)])
    return X[index], y[index]

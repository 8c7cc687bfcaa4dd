"""Thread use on the CPU: the library never changes torch's thread count.

How joblib's workers share the cores is joblib's business, not tested here.
"""

import pytest
import torch

from sksiamese import OneShotClassifier


@pytest.fixture
def other_thread_count():
    """One thread more than torch's default, so that a reset to the default shows."""
    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    yield before + 1
    torch.set_num_threads(before)


def test_fit_and_predict_keep_the_users_thread_setting(small, other_thread_count):
    X, y = small
    OneShotClassifier(max_epochs=1, random_state=0).fit(X, y).predict_proba(X)
    assert torch.get_num_threads() == other_thread_count

"""Thread use on the CPU: the user's torch setting holds, and parallel searches
do not oversubscribe the cores."""

import os

import pytest
import torch
from sklearn.model_selection import GridSearchCV

from sksiamese import OneShotClassifier, SiameseEmbedder


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_fit_and_predict_keep_the_users_thread_setting(small, one_thread):
    X, y = small
    embedder = SiameseEmbedder(max_epochs=1, random_state=0).fit(X, y)
    embedder.transform(X)
    assert torch.get_num_threads() == 1


def threads_in_worker(estimator, X, y):
    return torch.get_num_threads()


def test_grid_search_workers_share_the_cores(small):
    X, y = small
    grid = GridSearchCV(
        OneShotClassifier(max_epochs=1, random_state=0),
        {"margin": [0.3, 0.6]},
        cv=2,
        n_jobs=2,
        scoring=threads_in_worker,
    ).fit(X, y)
    # joblib's loky workers get cpu_count // n_jobs threads each, and torch
    # starts with that many, so 2 workers never run more threads than cores.
    expected = max(1, os.cpu_count() // 2)
    assert set(grid.cv_results_["mean_test_score"]) == {expected}

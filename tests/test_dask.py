"""A grid search over loss and margin on a Dask cluster, through joblib."""

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sksiamese import OneShotClassifier

distributed = pytest.importorskip("distributed")


def search():
    return GridSearchCV(
        OneShotClassifier(max_epochs=2, random_state=0),
        {"loss": ["contrastive", "triplet", "bce"], "margin": [0.5, 1.0]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        n_jobs=-1,
    )


@pytest.mark.slow
def test_search_on_a_local_cluster_equals_the_serial_search(small):
    X, y = small
    serial = search().set_params(n_jobs=1).fit(X, y)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with parallel_backend("dask"):
            on_dask = search().fit(X, y)
        assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    assert on_dask.best_params_ == serial.best_params_

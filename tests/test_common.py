"""scikit-learn's own estimator checks, and one parameter surface for each estimator."""

import inspect

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier

# Cheap but real: a few epochs of the default network on the checks' tiny data.
ESTIMATORS = [
    SiameseEmbedder(max_epochs=3, random_state=0),
    OneShotClassifier(max_epochs=3, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("Estimator", [SiameseEmbedder, OneShotClassifier, SiameseVerifier])
def test_every_parameter_is_documented_and_validated(Estimator):
    from numpydoc.docscrape import ClassDoc

    signature = set(inspect.signature(Estimator.__init__).parameters) - {"self", "kwargs"}
    documented = {
        name.strip()
        for entry in ClassDoc(Estimator)["Parameters"]
        for name in entry.name.replace("\\", "").split(",")
        if name.strip() and not name.strip().startswith("**")
    }
    assert signature == documented
    assert signature == set(Estimator._parameter_constraints)

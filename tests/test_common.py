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


def public_api():
    """Dotted names of every public class, function and method of sksiamese."""
    import sksiamese
    from sksiamese import augmentation, datasets, losses, metrics, modules, pairs, parallel

    names = []
    for module in (augmentation, datasets, losses, metrics, modules, pairs, parallel):
        names += [f"{module.__name__}.{name}" for name in module.__all__]
    for name in ("OneShotClassifier", "SiameseEmbedder", "SiameseVerifier"):
        cls = getattr(sksiamese, name)
        names.append(f"sksiamese.{name}")
        names += [
            f"sksiamese.{name}.{method}"
            for method, value in vars(cls).items()
            if not method.startswith("_") and callable(value)
        ]
    return names


# Structure and descriptions: every parameter and return value documented,
# nothing documented that does not exist, a one-line summary. (Not the order:
# the verifier documents the parameters it shares with the embedder together.)
NUMPYDOC_CHECKS = {"GL08", "SS01", "PR01", "PR02", "PR07", "RT03"}


@pytest.mark.parametrize("name", public_api())
def test_public_docstrings_pass_numpydoc_validation(name):
    from numpydoc.validate import validate

    errors = [f"{code}: {message}" for code, message in validate(name)["errors"]]
    assert [error for error in errors if error[:4] in NUMPYDOC_CHECKS] == []

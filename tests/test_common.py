"""scikit-learn's own estimator checks, and one parameter surface for each estimator."""

import inspect

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sksiamese import OneShotClassifier, SiameseEmbedder, SiameseVerifier

# Cheap but real: a few epochs of the default network on the checks' tiny data.
ESTIMATORS = [
    SiameseEmbedder(max_epochs=3, random_state=0),
    OneShotClassifier(max_epochs=3, random_state=0),
    SiameseVerifier(max_epochs=3, random_state=0),
]

# scikit-learn's checks feed 2-D X, (n_samples, n_features); the verifier's X
# is claims, (n_claims, 1 + n_references) + sample_shape (pairs for one
# reference), and refuses 2-D input with a clear
# error. These checks cannot reach anything past that refusal.
_TWO_D_INPUT = "feeds 2-D X; the verifier takes claims (n_claims, 1 + K) + sample_shape"
_VERIFIER_EXPECTED_FAILURES = {
    name: _TWO_D_INPUT
    for name in (
        "check_fit_score_takes_y",
        "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self",
        "check_readonly_memmap_input",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_estimators_dtypes",
        "check_dtype_object",
        "check_pipeline_consistency",
        "check_estimators_nan_inf",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_classifier_data_not_an_array",
        "check_classifiers_classes",
        "check_classifiers_train",
        "check_supervised_y_2d",
        "check_decision_proba_consistency",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit_idempotent",
        "check_fit_check_is_fitted",
        "check_n_features_in",
        "check_fit2d_predict1d",
    )
}


def expected_failed_checks(estimator):
    """The checks that cannot apply to an estimator, each with its reason."""
    return _VERIFIER_EXPECTED_FAILURES if isinstance(estimator, SiameseVerifier) else {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_the_verifier_passes_the_checks_it_is_not_excused_from():
    # The list of excused checks must stay honest: each one still fails on
    # pair-shaped grounds, and every other check passes.
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(
        SiameseVerifier(max_epochs=2, random_state=0),
        on_fail=None,
        expected_failed_checks=_VERIFIER_EXPECTED_FAILURES,
    )
    unexpected = [r["check_name"] for r in results if r["status"] == "failed"]
    excused_but_passing = {
        r["check_name"] for r in results if r["status"] == "passed" and r["expected_to_fail"]
    }
    failed_elsewhere = {
        r["check_name"]
        for r in results
        if r["status"] == "xfail"
        and "X must have shape (n_claims" not in f"{r['exception']} {r['exception'].__cause__}"
    }
    assert unexpected == []
    assert excused_but_passing == set()
    assert failed_elsewhere == set()


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
    from sksiamese import (
        augmentation,
        datasets,
        losses,
        metrics,
        modules,
        pairs,
        parallel,
        similarity,
    )

    names = []
    modules_ = (augmentation, datasets, losses, metrics, modules, pairs, parallel, similarity)
    for module in modules_:
        names += [f"{module.__name__}.{name}" for name in module.__all__]
    for name in ("OneShotClassifier", "ReferenceSet", "SiameseEmbedder", "SiameseVerifier"):
        cls = getattr(sksiamese, name)
        names.append(f"sksiamese.{name}")
        # Methods of our own mixins too (kneighbors, save_weights, load_weights).
        own = [klass for klass in cls.__mro__ if klass.__module__.startswith("sksiamese")]
        names += sorted(
            {
                f"sksiamese.{name}.{method}"
                for klass in own
                for method, value in vars(klass).items()
                if not method.startswith("_") and callable(value)
            }
        )
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


def test_training_parameters_are_one_list_with_one_default():
    # Fails if a training parameter is added to the table but not to the typed
    # TrainingParams (or the reverse), or if the classifier's signature drifts
    # from the embedder's default for a parameter it forwards.
    import dataclasses
    import inspect

    from sksiamese._params import TRAINING_PARAMETERS, TrainingParams

    fields = [field.name for field in dataclasses.fields(TrainingParams)]
    # Then what fit adds: routed parameters, and warm_start's fitted network.
    assert fields == [*TRAINING_PARAMETERS, "routed", "start_from"]
    embedder = inspect.signature(SiameseEmbedder).parameters
    classifier = inspect.signature(OneShotClassifier).parameters
    for name in TRAINING_PARAMETERS:
        assert classifier[name].default == embedder[name].default, name

"""The one place sksiamese reaches into scikit-learn's private API.

``_fit_context`` (parameter validation at ``fit``) and ``validate_data`` come
from `sklearn-compat <https://github.com/sklearn-compat/sklearn-compat>`_, which
keeps them working across scikit-learn releases. The parameter-constraint
classes, ``validate_parameter_constraints``, the ``validate_params`` decorator
of public functions (exported as ``validate_function_params``, apart from this
module's ``validate_params`` of an estimator) and ``_safe_indexing`` (rows of
arrays, lists and DataFrames alike) have no public home in scikit-learn nor
in sklearn-compat; they are imported here only, so that a scikit-learn
upgrade that moves them breaks this module, not the package.
"""

from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils._param_validation import validate_params as validate_function_params
from sklearn_compat.base import _fit_context
from sklearn_compat.utils.validation import validate_data

__all__ = [
    "HasMethods",
    "Interval",
    "StrOptions",
    "_fit_context",
    "_safe_indexing",
    "validate_data",
    "validate_function_params",
    "validate_params",
]


def validate_params(estimator):
    """Check ``estimator``'s parameters against its constraints, as ``fit`` does."""
    validate_parameter_constraints(
        estimator._parameter_constraints,
        estimator.get_params(deep=False),
        caller_name=type(estimator).__name__,
    )

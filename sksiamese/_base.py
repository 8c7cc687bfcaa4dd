"""What the estimators share: parameter storage, input validation, labels, the device.

:class:`SiameseEmbedder` owns the training; :class:`OneShotClassifier` exposes
the same flat parameters (so ``GridSearchCV`` reaches ``loss`` and ``margin``
directly) and hands them to the embedder it trains; :mod:`sksiamese._params`
holds their table.
"""

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from ._compat import validate_data
from ._image_paths import as_image_files
from ._params import ROUTED_PREFIXES, TRAINING_PARAMETERS, TrainingParams, constraints


class RoutedParamsMixin:
    """``get_params`` / ``set_params`` that also carry skorch-style ``**kwargs``.

    scikit-learn reads parameters from the ``__init__`` signature and ignores
    ``**kwargs``; this keeps ``module__*`` and the like through ``clone``,
    ``GridSearchCV`` and ``set_params``.
    """

    def _store_parameters(self, arguments):
        """Store ``__init__``'s ``locals()`` untouched, as scikit-learn asks.

        Named parameters become attributes of the same name, and the routed
        ``**kwargs`` too; ``fit`` validates them all (`_check_routed`).
        """
        named = {k: v for k, v in arguments.items() if k not in ("self", "kwargs", "__class__")}
        for key, value in {**named, **arguments.get("kwargs", {})}.items():
            setattr(self, key, value)

    def _extra_params(self):
        """The keyword arguments stored beyond the named parameters."""
        named = super().get_params(deep=False)
        return {
            key: value
            for key, value in vars(self).items()
            if key not in named and not key.startswith("_") and not key.endswith("_")
        }

    def _check_routed(self):
        unknown = [key for key in self._extra_params() if not key.startswith(ROUTED_PREFIXES)]
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword arguments {unknown}; "
                f"routed arguments start with one of {ROUTED_PREFIXES}."
            )

    def _routed_params(self, prefix=""):
        return {
            k: v for k, v in self._extra_params().items() if k.startswith(prefix or ROUTED_PREFIXES)
        }

    def get_params(self, deep=True):
        """Get the parameters of this estimator, routed ``module__*`` arguments included.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        # Every stored keyword argument, unknown ones included: ``clone`` then
        # carries a misspelt name to the fit that refuses it, instead of
        # dropping it and training with the default.
        return {**super().get_params(deep=deep), **self._extra_params()}

    def set_params(self, **params):
        """Set the parameters of this estimator, routed ``module__*`` arguments included.

        Parameters
        ----------
        **params : dict
            Parameter names mapped to their new values.

        Returns
        -------
        self : estimator instance
            This estimator.
        """
        # Routed names are stored; any other name goes to scikit-learn, which
        # refuses the unknown ones as it does for every estimator. ``kwargs``
        # is stored as __init__ stores it (scikit-learn's checks set every name
        # of the signature); `_check_routed` refuses it in fit.
        routed = {
            k: params.pop(k) for k in list(params) if k.startswith(ROUTED_PREFIXES) or k == "kwargs"
        }
        for key, value in routed.items():
            setattr(self, key, value)
        return super().set_params(**params)


def validate_samples(estimator, X, y="no_validation", *, reset):
    """Validate 2-D features, image arrays or image files; sparse stays sparse (CSR).

    Image files (:class:`~sksiamese.datasets.ImageFiles`, or a 1-D sequence
    of paths, decoded with ``load_images``' defaults) stay on disk.

    On ``reset`` the sample shape is recorded in ``sample_shape_`` and the
    number of features of one sample, flattened, in ``n_features_in_`` (what
    every estimator of the package records); otherwise ``X`` must match
    them. ``y`` is validated with ``X`` unless left out.
    """
    if not reset:
        check_is_fitted(estimator)
    files = as_image_files(X)
    if files is not None:
        return _validate_files(estimator, files, y, reset=reset)
    images = _as_images(X)
    if images is not None:
        if not reset:
            _check_sample_shape(estimator, images)
        # Images are checked flat, so that scikit-learn counts every feature.
        X = images.reshape(len(images), int(np.prod(images.shape[1:])))
    options = dict(accept_sparse="csr", dtype=np.float32, reset=reset)
    if isinstance(y, str) and y == "no_validation":
        X = validate_data(estimator, X, **options)
    else:
        X, y = validate_data(estimator, X, y, **options)
    if images is not None:
        X = X.reshape(images.shape)
    if reset:
        estimator.sample_shape_ = tuple(X.shape[1:])
    else:
        _check_sample_shape(estimator, X)
    return X if isinstance(y, str) and y == "no_validation" else (X, y)


def _validate_files(estimator, files, y, *, reset):
    """:func:`validate_samples` for images on disk: their decoded shape, nothing read."""
    if reset:
        estimator.sample_shape_ = files.sample_shape
        estimator.n_features_in_ = int(np.prod(files.sample_shape))
    else:
        _check_sample_shape(estimator, files)
    if isinstance(y, str) and y == "no_validation":
        return files
    y = column_or_1d(y, warn=True)
    check_consistent_length(files, y)
    return files, y


def _as_images(X):
    """``X`` as an array when it holds images (more than two dimensions), else ``None``."""
    if hasattr(X, "iloc") or hasattr(X, "tocsr"):  # DataFrames and sparse matrices
        return None
    try:
        array = np.asarray(X)
    except ValueError:  # ragged lists: validation says what is wrong with them
        return None
    if array.ndim > 4:
        raise ValueError(
            f"X must be (n_samples, n_features), (n_samples, H, W) or "
            f"(n_samples, C, H, W); got {array.ndim} dimensions."
        )
    return array if array.ndim > 2 else None


def _check_sample_shape(estimator, X):
    if tuple(X.shape[1:]) != estimator.sample_shape_:
        raise ValueError(
            f"X has samples of shape {tuple(X.shape[1:])}, but "
            f"{type(estimator).__name__} was fitted on samples of shape "
            f"{estimator.sample_shape_}."
        )


def encode_labels(y):
    """``(classes, codes)`` of classification labels, with a clear error for mixed kinds."""
    try:
        with warnings.catch_warnings():
            # A one-shot support set has one sample per class by design, which
            # scikit-learn takes for a sign of regression targets.
            warnings.filterwarnings("ignore", "The number of unique classes is greater than 50%")
            check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
    except TypeError as error:  # labels of kinds that do not sort together
        kinds = sorted({type(label).__name__ for label in np.asarray(y, dtype=object)})
        raise ValueError(
            f"The class labels must be of one kind that sorts (numbers or strings); got {kinds}."
        ) from error
    return classes, codes.reshape(-1)


def validate_pairs(pairs, sample_shape=None):
    """``pairs`` as float32 ``(n_pairs, 2, *sample_shape)``, with clear errors."""
    pairs = check_array(pairs, allow_nd=True, dtype=np.float32, ensure_2d=False)
    if pairs.ndim < 3 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must have shape (n_pairs, 2) + sample_shape; got {pairs.shape}.")
    if sample_shape is not None and pairs.shape[2:] != sample_shape:
        raise ValueError(
            f"pairs hold samples of shape {pairs.shape[2:]}, but the estimator was "
            f"fitted on samples of shape {sample_shape}."
        )
    return pairs


def unique_samples(samples):
    """Index of the first copy of each distinct sample, and each sample's copy.

    Returns ``(first, inverse)`` such that ``samples[first][inverse]`` equals
    ``samples``; samples are compared by their bytes.
    """
    flat = np.ascontiguousarray(samples.reshape(len(samples), -1))
    rows = flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1])))[:, 0]
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def resolve_device(device):
    """``'auto'`` becomes CUDA when available, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


class SiameseBase(RoutedParamsMixin, BaseEstimator):
    """Stores the training parameters; subclasses add theirs."""

    _parameter_constraints = constraints(TRAINING_PARAMETERS)

    def _training_params(self):
        """The training parameters as a :class:`~sksiamese._params.TrainingParams`."""
        return TrainingParams.of(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.three_d_array = True  # images, (n, H, W) or (n, C, H, W)
        tags.target_tags.required = True
        return tags

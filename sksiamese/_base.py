"""Parameters and training shared by the estimators.

:class:`SiameseEmbedder` owns the training; :class:`OneShotClassifier` exposes
the same flat parameters (so ``GridSearchCV`` reaches ``loss`` and ``margin``
directly) and hands them to the embedder it trains.
"""

import inspect
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted

from ._compat import HasMethods, Interval, StrOptions, validate_data
from .augmentation import RandomAffine

# skorch-style routed parameters (``module__hidden_sizes=(256,)``) that
# ``**kwargs`` accepts; everything else must be a named parameter.
ROUTED_PREFIXES = ("module__", "optimizer__", "callbacks__")

SHARED_PARAMETERS_DOC = """\
loss : {'contrastive', 'triplet', 'bce'} or torch.nn.Module, default='contrastive'
    Training objective, computed on the pairs and triplets inside each
    batch. ``'contrastive'``: Hadsell et al. (2006). ``'triplet'``: triplet
    margin loss with online mining (see ``mining``). ``'bce'``: Koch et
    al. (2015), a learned weighted-L1 head and a sigmoid, cross-entropy on
    balanced positive and negative pairs. Contrastive is the default: it
    led on Omniglot validation alphabets with every setting tried. A module
    called as ``loss(embeddings, labels)``: a pytorch-metric-learning loss
    (``pip install sksiamese[pml]``) or your own, copied for each fit and
    trained with the network, its own parameters included (give them their
    own learning rate with ``optimizer__param_groups=[("loss.*", {"lr":
    ...})]``). ``margin`` and ``mining`` do not apply to it; samples are
    compared by the Euclidean distance of L2-normalised embeddings (the
    default branches normalise; normalise a custom module's output too, as
    pytorch-metric-learning's losses do inside). Create the loss on the CPU:
    it is copied at each clone and fit, and ``random_state`` does not seed
    its own initial parameters.
margin : float, default=0.5
    Margin of the contrastive and triplet losses, in units of distance
    between L2-normalised embeddings (which lie in ``[0, 2]``). The default
    MLP trained on fewer than 50 classes is not normalised: its distances
    start as those of the input divided by the median norm of the samples.
    Ignored by ``loss='bce'``, which has no margin.
mining : {'batch_hard', 'semi_hard', 'all'}, default='batch_hard'
    Which pairs or triplets of a batch the loss learns from. Triplet:
    each anchor's hardest triplet, semi-hard triplets, or all triplets
    with a positive loss. Contrastive: each anchor's farthest positive and
    closest negative, or all pairs. bce: each anchor's hardest negative,
    or all negatives. ``'semi_hard'`` applies to the triplet loss only.
miner : torch.nn.Module or None, default=None
    With a module ``loss``: called as ``miner(embeddings, labels)`` on each
    batch, its tuple of pairs or triplets passed to the loss as a third
    argument (a pytorch-metric-learning miner). ``None`` calls the loss on
    the whole batch.
module : torch.nn.Module class or instance, default=None
    The twin branch, mapping a batch of samples to a batch of embeddings.
    ``None`` picks :class:`~sksiamese.modules.MLPBranch` for ``(n, d)``
    input (its ``input_scale`` set to the median norm of the training
    samples, and ``residual=True``, a start from the input's geometry, when
    fewer than 50 classes train it) and
    :class:`~sksiamese.modules.ConvBranch` for images ``(n, H, W)`` or
    ``(n, C, H, W)``. ``module__<name>`` keyword arguments
    are passed to it, as in skorch. An instance is copied, never trained in
    place.
embedding_dim : int, default=64
    Size of the embeddings of the default modules; a custom ``module``
    sets its own.
max_epochs : int, default=30
    Number of epochs. An epoch draws as many class-balanced batches as it
    takes to show about as many samples as the training set holds.
lr : float, default=3e-3
    Learning rate; with ``lr_schedule='onecycle'`` its peak.
lr_schedule : {'onecycle', 'constant'}, default='onecycle'
    ``'onecycle'`` (Smith and Topin 2019) warms the learning rate up to
    ``lr`` over the first 30% of the batches, then anneals it to almost
    zero by the last batch of ``max_epochs``: fast, stable training with
    little tuning. Parameter groups given their own rate through
    ``optimizer__param_groups`` peak at that rate. Only the learning rate
    cycles: the optimizer's momentum (Adam's ``beta1``, SGD's ``momentum``)
    stays as set.
    ``'constant'`` keeps ``lr`` throughout.
classes_per_batch : int or 'auto', default='auto'
    Classes in each training batch (P); at most the number of classes with
    two or more samples. ``'auto'``: 64 for the contrastive loss, 32 for
    triplet, bce and module losses. On Omniglot validation alphabets 64 classes lifted
    contrastive from 80.9% to 82.5%, left bce where it was, and made
    batch-hard triplet training collapse (harder negatives).
samples_per_class : int, default=4
    Samples of each class in a training batch (K).
batch_size : int, default=256
    Batch size of inference (``transform``, ``predict``).
optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
    ``optimizer__<name>`` keyword arguments are passed to it.
device : str or torch.device, default='auto'
    Where the network runs; ``'auto'`` takes CUDA when available.
accelerator : accelerate.Accelerator or None, default=None
    Train through Hugging Face accelerate (skorch's ``AccelerateMixin``):
    several GPUs under ``accelerate launch``, or mixed precision. ``None``
    trains on ``device``. Needs ``pip install sksiamese[accelerate]``.
callbacks : list of skorch callbacks, default=None
    Extra skorch callbacks (instances or ``(name, callback)`` pairs), run
    after the library's own, in every training of a fit (with few classes,
    ``early_stopping`` trains twice). Each training uses deep copies (your
    instances are left as given), and the fitted net's callbacks are
    re-initialised after training, so record results in the net's history,
    as skorch's own callbacks do.
early_stopping : 'auto' or bool, default='auto'
    Keep what transfers to new classes: hold out some of the *classes*
    (one-shot learning generalises to classes never seen in training),
    measure 1-shot accuracy on them in 200 fixed episodes (up to 20-way)
    before training and after every epoch, and keep the best network, the
    untrained one included (then warn). ``max(5, validation_fraction * C)``
    of the ``C`` classes with two or more samples are held out, at most half
    of them. With fewer than 50 classes the network is then trained again on
    every class, with the same schedule, up to the best epoch (at most twice
    the cost of one training); with more, the selected network is kept. The
    curve is in ``validation_scores_``. ``'auto'`` does this when ``4 <= C <
    50``, where a metric learned from few classes can transfer worse than the
    raw input, and otherwise trains every epoch on every class: with many
    classes, holding 10% of them out cost 0.8 to 2.4 points on the Omniglot
    validation alphabets. ``True`` does it whenever ``C >= 4`` and also stops
    after ``n_iter_no_change`` epochs without improvement; ``False`` never.
validation_fraction : float, default=0.1
    Share of the classes held out by ``early_stopping`` (see there for the
    minimum of 5 classes).
n_iter_no_change : int, default=5
    Patience of ``early_stopping=True``, in epochs.
augment : bool, 'auto' or RandomAffine, default='auto'
    Distort every training image by a random affine map (rotation, shear,
    scale, translation; :class:`~sksiamese.augmentation.RandomAffine`, as
    in Koch et al.), drawn anew at each batch. ``'auto'`` augments images
    ``(n, H, W)`` or ``(n, C, H, W)`` and leaves feature vectors alone;
    ``True`` requires images. A ``RandomAffine`` sets other ranges (its
    seed is replaced by one drawn from ``random_state``).
inference_views : int or 'auto', default='auto'
    With augmentation on, each image is embedded at inference as the mean
    of the embeddings of ``inference_views`` views of it: itself and fixed
    affine distortions drawn once at ``fit`` from the training ranges
    (test-time augmentation), rescaled to the views' mean norm. The same
    image always gets the same embedding. ``1`` embeds the image alone.
    ``'auto'`` tries 8 views and keeps them only if they beat the image
    alone on the classes held out by ``early_stopping`` (8 when no classes
    were held out): on development data they added 2 to 5 points on
    Omniglot and cost 2.4 on signatures, at 8 times the inference time.
verbose : int, default=0
    ``0`` prints nothing; ``1`` prints skorch's table of epochs (losses,
    duration) and a progress bar over the batches of each epoch.
random_state : int, RandomState instance or None, default=None
    Seeds weight initialisation, batch sampling and the validation split.
    The same integer and data give identical embeddings on the CPU.
    Torch's global random state is left as it was found.
**kwargs
    ``module__*``, ``optimizer__*`` and ``callbacks__*`` parameters routed
    as in skorch."""

SHARED_CONSTRAINTS = {
    "loss": [StrOptions({"contrastive", "triplet", "bce"}), torch.nn.Module],
    "miner": [None, torch.nn.Module],
    "margin": [Interval(Real, 0, None, closed="neither")],
    "mining": [StrOptions({"batch_hard", "semi_hard", "all"})],
    "module": [None, torch.nn.Module, callable],
    "embedding_dim": [Interval(Integral, 1, None, closed="left")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "lr_schedule": [StrOptions({"onecycle", "constant"})],
    "classes_per_batch": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
    "samples_per_class": [Interval(Integral, 2, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "optimizer": [callable],
    "device": [str, torch.device],
    "accelerator": [None, HasMethods(["prepare", "backward"])],
    "callbacks": [list, None],
    "early_stopping": ["boolean", StrOptions({"auto"})],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "augment": ["boolean", StrOptions({"auto"}), RandomAffine],
    "inference_views": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
}

EMBEDDER_CONSTRAINT = [None, HasMethods(["fit", "transform"])]


def with_shared_parameters_doc(cls):
    """Class decorator: put the shared parameters' text at ``{shared}``."""
    cls.__doc__ = inspect.cleandoc(cls.__doc__).format(shared=SHARED_PARAMETERS_DOC)
    return cls


class RoutedParamsMixin:
    """``get_params`` / ``set_params`` that also carry skorch-style ``**kwargs``.

    scikit-learn reads parameters from the ``__init__`` signature and ignores
    ``**kwargs``; this keeps ``module__*`` and the like through ``clone``,
    ``GridSearchCV`` and ``set_params``.
    """

    def _store_routed(self, kwargs):
        # Stored untouched, like every parameter; `_check_routed` validates in fit.
        for key, value in kwargs.items():
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
        # Every stored keyword argument, unknown ones included: ``clone`` then
        # carries a misspelt name to the fit that refuses it, instead of
        # dropping it and training with the default.
        return {**super().get_params(deep=deep), **self._extra_params()}

    def set_params(self, **params):
        # Routed names are stored; any other name goes to scikit-learn, which
        # refuses the unknown ones as it does for every estimator. ``kwargs``
        # is stored as __init__ stores it (scikit-learn's checks set every name
        # of the signature); `_check_routed` refuses it in fit.
        routed = {
            k: params.pop(k) for k in list(params) if k.startswith(ROUTED_PREFIXES) or k == "kwargs"
        }
        self._store_routed(routed)
        return super().set_params(**params)


def validate_samples(estimator, X, y="no_validation", *, reset):
    """Validate 2-D features or image arrays; sparse stays sparse (CSR).

    On ``reset`` the sample shape is recorded in ``sample_shape_``; otherwise
    ``X`` must match it. ``y`` is validated with ``X`` unless left out.
    """
    if not reset:
        check_is_fitted(estimator)
    options = dict(accept_sparse="csr", allow_nd=True, dtype=np.float32, reset=reset)
    if isinstance(y, str) and y == "no_validation":
        X = validate_data(estimator, X, **options)
    else:
        X, y = validate_data(estimator, X, y, **options)
    if X.ndim > 4:
        raise ValueError(
            f"X must be (n_samples, n_features), (n_samples, H, W) or "
            f"(n_samples, C, H, W); got {X.ndim} dimensions."
        )
    if reset:
        estimator.sample_shape_ = tuple(X.shape[1:])
    elif tuple(X.shape[1:]) != estimator.sample_shape_:
        raise ValueError(
            f"X has samples of shape {tuple(X.shape[1:])}, but "
            f"{type(estimator).__name__} was fitted on samples of shape "
            f"{estimator.sample_shape_}."
        )
    return X if isinstance(y, str) and y == "no_validation" else (X, y)


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
            f"pairs hold samples of shape {pairs.shape[2:]}, but the verifier was "
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
    """Stores the shared parameters; subclasses add theirs."""

    _parameter_constraints = SHARED_CONSTRAINTS

    def _shared_params(self):
        self._check_routed()
        names = [*SHARED_CONSTRAINTS]
        return {
            **{name: getattr(self, name) for name in names},
            **self._routed_params(),
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.required = True
        return tags

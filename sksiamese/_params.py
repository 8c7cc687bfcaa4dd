"""The training parameters: one table for their constraints and docs, one typed object.

The three estimators keep explicit ``__init__`` signatures (scikit-learn reads
parameters, and their defaults, from them); everything else about a training
parameter comes from :data:`TRAINING_PARAMETERS`: the constraint ``fit``
validates, the text of each docstring (the default read from the estimator's
own signature), and what :class:`~sksiamese.OneShotClassifier` forwards to the
embedder it trains. Training itself receives a :class:`TrainingParams`.
"""

import dataclasses
import inspect
import os
from numbers import Integral, Real
from typing import Any, NamedTuple

import torch

from ._compat import HasMethods, Interval, StrOptions
from ._warnings import warn
from .augmentation import RandomAffine

# skorch-style routed parameters (``module__hidden_sizes=(256,)``) that
# ``**kwargs`` accepts; everything else must be a named parameter.
ROUTED_PREFIXES = ("module__", "optimizer__", "callbacks__")


class Parameter(NamedTuple):
    """One training parameter: its type as documented, its constraint, its description."""

    type: str
    constraint: list
    description: str
    default_doc: str | None = None  # for a default whose repr does not read well


TRAINING_PARAMETERS = {
    "loss": Parameter(
        "{'contrastive', 'triplet', 'bce'} or torch.nn.Module",
        [StrOptions({"contrastive", "triplet", "bce"}), torch.nn.Module],
        """\
Training objective, computed on the pairs and triplets inside each
batch. ``'contrastive'``: Hadsell et al. (2006). ``'triplet'``: triplet
margin loss with online mining (see ``mining``). ``'bce'``: Koch et
al. (2015), a learned weighted-L1 head and a sigmoid, cross-entropy on
balanced positive and negative pairs. Contrastive is the default: it
led on the Omniglot validation alphabets (``docs/benchmarks.md``). A module
called as ``loss(embeddings, labels)``: a pytorch-metric-learning loss
(``pip install sksiamese[pml]``) or your own, copied for each fit and
trained with the network, its own parameters included (give them their
own learning rate with ``optimizer__param_groups=[("loss.*", {"lr":
...})]``). ``margin`` and ``mining`` do not apply to it; samples are
compared by the Euclidean distance of L2-normalised embeddings (the
default branches normalise; normalise a custom module's output too, as
pytorch-metric-learning's losses do inside). Create the loss on the CPU:
it is copied at each clone and fit, and ``random_state`` does not seed
its own initial parameters.""",
    ),
    "margin": Parameter(
        "float",
        [Interval(Real, 0, None, closed="neither")],
        """\
Margin of the contrastive and triplet losses, in units of distance
between L2-normalised embeddings (which lie in ``[0, 2]``). The default
MLP trained on fewer than 50 classes is not normalised: its distances
start as those of the input divided by the median norm of the samples.
Ignored by ``loss='bce'``, which has no margin.""",
    ),
    "mining": Parameter(
        "{'batch_hard', 'semi_hard', 'all'}",
        [StrOptions({"batch_hard", "semi_hard", "all"})],
        """\
Which pairs or triplets of a batch the loss learns from. Triplet:
each anchor's hardest triplet, semi-hard triplets, or all triplets
with a positive loss. Contrastive: each anchor's farthest positive and
closest negative, or all pairs. bce: each anchor's hardest negative,
or all negatives. ``'semi_hard'`` applies to the triplet loss only.""",
    ),
    "miner": Parameter(
        "torch.nn.Module or None",
        [None, torch.nn.Module],
        """\
With a module ``loss``: called as ``miner(embeddings, labels)`` on each
batch, its tuple of pairs or triplets passed to the loss as a third
argument (a pytorch-metric-learning miner). ``None`` calls the loss on
the whole batch.""",
    ),
    "module": Parameter(
        "torch.nn.Module class or instance, or None",
        [None, torch.nn.Module, callable],
        """\
The twin branch, mapping a batch of samples to a batch of embeddings.
``None`` picks :class:`~sksiamese.modules.MLPBranch` for ``(n, d)``
input (its ``input_scale`` set to the median norm of the training
samples, and ``residual=True``, a start from the input's geometry, when
fewer than 50 classes train it) and
:class:`~sksiamese.modules.ConvBranch` for images ``(n, H, W)`` or
``(n, C, H, W)``. ``module__<name>`` keyword arguments
are passed to it, as in skorch. An instance is copied, never trained in
place.""",
    ),
    "embedding_dim": Parameter(
        "int",
        [Interval(Integral, 1, None, closed="left")],
        """\
Size of the embeddings of the default modules; a custom ``module``
sets its own.""",
    ),
    "max_epochs": Parameter(
        "int",
        [Interval(Integral, 1, None, closed="left")],
        """\
Number of epochs. An epoch draws as many class-balanced batches as it
takes to show about as many samples as the training set holds.""",
    ),
    "lr": Parameter(
        "float",
        [Interval(Real, 0, None, closed="neither")],
        """\
Learning rate; with ``lr_schedule='onecycle'`` its peak.""",
    ),
    "lr_schedule": Parameter(
        "{'onecycle', 'constant'}",
        [StrOptions({"onecycle", "constant"})],
        """\
``'onecycle'`` (Smith and Topin 2019) warms the learning rate up to
``lr`` over the first 30% of the batches, then anneals it to almost
zero by the last batch of ``max_epochs``: fast, stable training with
little tuning. Parameter groups given their own rate through
``optimizer__param_groups`` peak at that rate. Only the learning rate
cycles: the optimizer's momentum (Adam's ``beta1``, SGD's ``momentum``)
stays as set.
``'constant'`` keeps ``lr`` throughout.""",
    ),
    "classes_per_batch": Parameter(
        "int or 'auto'",
        [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        """\
Classes in each training batch (P); at most the number of classes with
two or more samples. ``'auto'``: 64 for the contrastive loss, 32 for
triplet, bce and module losses: larger batches hold harder negatives, which
helped contrastive and collapsed batch-hard triplet training on the
Omniglot validation alphabets (``docs/benchmarks.md``).""",
    ),
    "samples_per_class": Parameter(
        "int",
        [Interval(Integral, 2, None, closed="left")],
        """\
Samples of each class in a training batch (K).""",
    ),
    "batch_size": Parameter(
        "int",
        [Interval(Integral, 1, None, closed="left")],
        """\
Batch size of inference (``transform``, ``predict``).""",
    ),
    "optimizer": Parameter(
        "torch.optim.Optimizer class",
        [callable],
        """\
``optimizer__<name>`` keyword arguments are passed to it.""",
        default_doc="torch.optim.Adam",
    ),
    "device": Parameter(
        "str or torch.device",
        [str, torch.device],
        """\
Where the network runs; ``'auto'`` takes CUDA when available.""",
    ),
    "accelerator": Parameter(
        "accelerate.Accelerator or None",
        [None, HasMethods(["prepare", "backward"])],
        """\
Train through Hugging Face accelerate (skorch's ``AccelerateMixin``):
several GPUs under ``accelerate launch``, or mixed precision. ``None``
trains on ``device``. Needs ``pip install sksiamese[accelerate]``.""",
    ),
    "callbacks": Parameter(
        "list of skorch callbacks or None",
        [list, None],
        """\
Extra skorch callbacks (instances or ``(name, callback)`` pairs), run
after the library's own, in every training of a fit (with few classes,
``early_stopping`` trains twice). Each training uses deep copies (your
instances are left as given), and the fitted net's callbacks are
re-initialised after training, so record results in the net's history,
as skorch's own callbacks do.""",
    ),
    "early_stopping": Parameter(
        "'auto' or bool",
        ["boolean", StrOptions({"auto"})],
        """\
Keep what transfers to new classes: hold out some of the *classes*
(one-shot learning generalises to classes never seen in training),
measure 1-shot accuracy on them in 200 fixed episodes (up to 20-way)
before training and after every epoch, and keep the best network; the
untrained one is kept (with a warning) unless the best epoch beats it
clearly, by more than the 95% interval of the episodes' noise.
``max(5, validation_fraction * C)`` of the ``C`` classes with two or more
samples are held out, at most half of them. With fewer than 50 classes the
network is then trained again on every class for as many epochs as the
latest epoch that still beats the untrained one clearly (trained on more
classes, a network over-fits later), the learning-rate schedule spanning
them (at most twice the cost of one training); with more, the selected
network is kept. The
curve is in ``validation_scores_``. ``'auto'`` does this when ``4 <= C <
50``, where a metric learned from few classes can transfer worse than the
raw input, and otherwise trains every epoch on every class: with many
classes, the classes held out cost more than the selection saved on the
Omniglot validation alphabets (``docs/benchmarks.md``). ``True`` does it
whenever ``C >= 4`` and also stops after ``n_iter_no_change`` epochs
without a new best (an epoch that clearly beats the untrained network
and scores above the best so far); ``False`` never.""",
    ),
    "validation_fraction": Parameter(
        "float",
        [Interval(Real, 0, 1, closed="neither")],
        """\
Share of the classes held out by ``early_stopping`` (see there for the
minimum of 5 classes).""",
    ),
    "n_iter_no_change": Parameter(
        "int",
        [Interval(Integral, 1, None, closed="left")],
        """\
Patience of ``early_stopping=True``, in epochs without a new best
network by the held-out rule of ``early_stopping``.""",
    ),
    "augment": Parameter(
        "bool, 'auto' or RandomAffine",
        ["boolean", StrOptions({"auto"}), RandomAffine],
        """\
Distort every training image by a random affine map (rotation, shear,
scale, translation; :class:`~sksiamese.augmentation.RandomAffine`, as
in Koch et al.), drawn anew at each batch. ``'auto'`` augments images
``(n, H, W)`` or ``(n, C, H, W)`` and leaves feature vectors alone;
``True`` requires images. A ``RandomAffine`` sets other ranges (its
seed is replaced by one drawn from ``random_state``);
:class:`~sksiamese.augmentation.RandomStrokes`, one for handwriting, also
thickens and thins the strokes.""",
    ),
    "inference_views": Parameter(
        "int or 'auto'",
        [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        """\
With augmentation on, each image is embedded at inference as the mean
of the embeddings of ``inference_views`` views of it: itself and fixed
affine distortions drawn once at ``fit`` from the training ranges
(test-time augmentation), rescaled to the views' mean norm. The same
image always gets the same embedding. ``1`` embeds the image alone.
``'auto'`` tries 8 views and keeps them only if they beat the image
alone on the classes held out by ``early_stopping`` (8 when no classes
were held out): on development data they helped on Omniglot and hurt
on signatures (``docs/benchmarks.md``), at 8 times the inference time.""",
    ),
    "verbose": Parameter(
        "int",
        ["verbose"],
        """\
``0`` prints nothing; ``1`` prints skorch's table of epochs (losses,
duration) and a progress bar over the batches of each epoch.""",
    ),
    "random_state": Parameter(
        "int, RandomState instance or None",
        ["random_state"],
        """\
Seeds weight initialisation, batch sampling and the validation split.
The same integer and data give identical embeddings on the CPU.
Torch's global random state is left as it was found.""",
    ),
    "checkpoint_dir": Parameter(
        "str, path-like or None",
        [str, os.PathLike, None],
        """\
Folder where ``fit`` writes a checkpoint after every epoch (weights,
optimizer, learning-rate schedule, held-out scores, random generators,
history), and from which a fit with the same settings and data resumes
where a killed one stopped, ending with the weights the uninterrupted fit
would have (bitwise on the CPU). Needs an int ``random_state``. A folder
holding checkpoints of other settings or another ``random_state`` is
refused: use one folder per configuration (not with ``GridSearchCV``); a
fit with another ``max_epochs`` or other data writes files of its own (data
is told apart by its labels, shape, first and last 64 rows, or file paths).
A damaged checkpoint is refused, never read; files are pickles, so use a
folder you trust. Checkpoints stay after ``fit``: fitting again resumes
from them, with nothing left to train (an early-stopped fit trains its
stopping epoch again). The state of your own ``callbacks`` is not saved.""",
    ),
    "warm_start": Parameter(
        "bool",
        ["boolean"],
        """\
When fitted already, ``fit`` starts from the fitted network (and the
loss's own parameters) instead of new weights, and trains it for
``max_epochs`` more epochs on the data given, with a new optimizer and
learning-rate schedule; ``loss_curve_`` and ``n_iter_`` describe these
epochs. The samples must have the shape seen before, and the settings must
build the same network. ``early_stopping`` then compares the epochs with
the starting network on held-out classes of the data given; with the same
data and ``random_state`` these are the classes held out before, which the
starting network may have been retrained on (with fewer than 50 classes):
the selection is then optimistic; ``early_stopping=False`` trains on
without it.""",
    ),
}

KWARGS_DOC = """\
**kwargs
    ``module__*``, ``optimizer__*`` and ``callbacks__*`` parameters routed
    as in skorch."""


def constraints(names, **overrides):
    """The ``_parameter_constraints`` entries of ``names``, some replaced by ``overrides``."""
    return {name: overrides.get(name, TRAINING_PARAMETERS[name].constraint) for name in names}


def parameters_doc(cls, names, **descriptions):
    """The numpydoc entries of ``names``, defaults read from ``cls.__init__``.

    ``descriptions`` replaces the table's text for parameters whose meaning
    differs in ``cls``: a description, or a ``(type, description)`` pair.
    """
    signature = inspect.signature(cls.__init__).parameters
    entries = []
    for name in names:
        parameter = TRAINING_PARAMETERS[name]
        default = parameter.default_doc or repr(signature[name].default)
        description = descriptions.get(name, parameter.description)
        kind = parameter.type
        if isinstance(description, tuple):
            kind, description = description
        body = "\n".join("    " + line if line else "" for line in description.splitlines())
        entries.append(f"{name} : {kind}, default={default}\n{body}")
    return "\n".join([*entries, KWARGS_DOC])


def document_parameters(*names, **descriptions):
    """Class decorator: put the training parameters' entries at ``{parameters}``."""

    def decorate(cls):
        text = parameters_doc(cls, names, **descriptions)
        cls.__doc__ = inspect.cleandoc(cls.__doc__).format(parameters=text)
        return cls

    return decorate


@dataclasses.dataclass(frozen=True)
class TrainingParams:
    """The parameters one training reads, validated, as attributes.

    ``routed`` holds the ``module__*``, ``optimizer__*`` and ``callbacks__*``
    keyword arguments.
    """

    loss: Any
    margin: float
    mining: str
    miner: Any
    module: Any
    embedding_dim: int
    max_epochs: int
    lr: float
    lr_schedule: str
    classes_per_batch: Any
    samples_per_class: int
    batch_size: int
    optimizer: Any
    device: Any
    accelerator: Any
    callbacks: Any
    early_stopping: Any
    validation_fraction: float
    n_iter_no_change: int
    augment: Any
    inference_views: Any
    verbose: int
    random_state: Any
    checkpoint_dir: Any
    warm_start: bool
    routed: dict
    # warm_start: (fitted net, its default module's arguments) to start from.
    start_from: Any = None

    @classmethod
    def of(cls, estimator, **not_applicable):
        """The parameters of ``estimator``; ``not_applicable`` fills those it lacks."""
        values = {
            name: getattr(estimator, name) if hasattr(estimator, name) else not_applicable[name]
            for name in TRAINING_PARAMETERS
        }
        return cls(**values, routed=estimator._routed_params())

    def routed_with(self, prefix):
        """The routed arguments that start with ``prefix``, prefix removed."""
        return {
            key.removeprefix(prefix): value
            for key, value in self.routed.items()
            if key.startswith(prefix)
        }


def warn_unused_training_parameters(estimator, why, *, still_used=()):
    """Warn about training parameters set away from their defaults that cannot apply.

    As scikit-learn warns about a parameter another one makes irrelevant:
    the value would otherwise be ignored silently. ``still_used`` names those
    the estimator reads even so (the classifier's ``random_state`` seeds its
    calibration).
    """
    signature = inspect.signature(type(estimator).__init__).parameters
    changed = [
        name
        for name in TRAINING_PARAMETERS
        if name in signature
        and name not in still_used
        and not _same(getattr(estimator, name), signature[name].default)
    ]
    changed += sorted(estimator._routed_params())
    if changed:
        warn(
            f"{type(estimator).__name__}: {why}, so these training parameters have "
            f"no effect: {', '.join(changed)}. Leave them at their defaults.",
            UserWarning,
        )


def _same(value, default):
    """Whether a parameter value is its default: strings and numbers by value, else identity."""
    if value is default:
        return True
    if isinstance(value, str) and isinstance(default, str):
        return value == default
    numbers = isinstance(value, Real) and isinstance(default, Real)
    return numbers and isinstance(value, bool) == isinstance(default, bool) and value == default

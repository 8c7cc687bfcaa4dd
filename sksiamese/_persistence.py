"""Saving and loading trained estimators without pickle.

``pickle``/``joblib`` round trips are exact but unpickling runs code from the
file. These files hold only tensors, arrays of numbers and plain values, so
they load with ``torch.load(weights_only=True)``, which refuses anything else.
"""

import torch
from sklearn.utils.validation import check_is_fitted

from ._base import resolve_device
from ._compat import validate_params
from ._training import build_net, forked_rng

# Written into every file; files of another format are refused with a clear error.
FORMAT = "sksiamese-weights-5"
CLASSIFIER_FORMAT = "sksiamese-classifier-2"
_WRITERS = {FORMAT: "SiameseEmbedder", CLASSIFIER_FORMAT: "OneShotClassifier"}
# The fitted values of an embedder beside its network, under the names
# ``SiameseEmbedder._set_fitted`` takes.
FITTED_FIELDS = (
    "sample_shape",
    "n_features_in",
    "temperature",
    "inference_distortions",
    "loss_curve",
    "validation_scores",
    "best_epoch",
    "default_module_args",
)
# What a classifier's enrolment was made with: its file must be loaded with the same.
ENROLMENT_PARAMETERS = ("aggregation", "index", "index_params")


class EmbedderWeightsMixin:
    """``save_weights`` and ``load_weights`` of :class:`~sksiamese.SiameseEmbedder`."""

    def save_weights(self, path):
        """Save the trained weights to a file that loads without unpickling.

        The file holds tensors and plain numbers only, so
        :meth:`load_weights` reads it with ``torch.load(weights_only=True)``,
        which cannot run code from the file (``pickle`` can). Use it to share
        a model with people who should not have to trust you.

        Parameters
        ----------
        path : str or path-like
            The weight file.
        """
        check_is_fitted(self)
        torch.save(embedder_state(self), path)

    def load_weights(self, path):
        """Restore a trained embedder from :meth:`save_weights`'s file.

        Create the embedder with the parameters it was trained with (the
        architecture comes from them); no ``fit`` is needed. Weights saved on
        a GPU load on a CPU-only machine.

        Parameters
        ----------
        path : str or path-like
            The weight file.

        Returns
        -------
        self : SiameseEmbedder
            The embedder, ready to ``transform``.
        """
        return self._restore(read_state(path, FORMAT), path)

    def _restore(self, state, path):
        """Set the fitted attributes from an :func:`embedder_state` dict read from ``path``."""
        validate_params(self)
        self._check_routed()
        device = resolve_device(self.device)
        net = restore_net(state, path, self._training_params(), device)
        # The file holds no column names: those of an earlier fit would be stale.
        vars(self).pop("feature_names_in_", None)
        return self._set_fitted(net, **{name: state[name] for name in FITTED_FIELDS})


def embedder_state(embedder):
    """The twin branch, the loss's weights (its similarity's included) and the fitted values."""
    return {
        "format": FORMAT,
        "loss": loss_name(embedder.loss),
        "module": embedder.net_.module_.state_dict(),
        "criterion": embedder.net_.criterion_.state_dict(),
        "sample_shape": list(embedder.sample_shape_),
        "n_features_in": int(embedder.n_features_in_),
        "temperature": float(embedder.temperature_),
        "inference_distortions": embedder.inference_distortions_,
        "loss_curve": [float(v) for v in embedder.loss_curve_],
        "validation_scores": embedder.validation_scores_,
        "best_epoch": int(embedder.best_epoch_),
        "default_module_args": embedder._default_module_args,
    }


def loss_name(loss):
    """A built-in loss's name, or a module loss's class name: what a weight file records.

    Only the class is checked at loading, and the shapes of its parameters;
    its hyper-parameters (ArcFace's margin, say) are the user's to match.
    """
    return loss if isinstance(loss, str) else type(loss).__qualname__


def read_state(path, expected):
    """The dict saved in ``path`` (tensors on the CPU), checked to be of the ``expected`` format."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    written = state.get("format") if isinstance(state, dict) else None
    if written == expected:
        return state
    if written in _WRITERS:
        raise ValueError(
            f"{path} was written by {_WRITERS[written]}.save_weights; load it with "
            f"{_WRITERS[written]}.load_weights."
        )
    if isinstance(written, str) and written.startswith("sksiamese-"):
        raise ValueError(
            f"{path} was written by another version of sksiamese (format "
            f"{written!r}; this version reads {expected!r}): save it again with that version."
        )
    raise ValueError(f"{path} is not a file written by {_WRITERS[expected]}.save_weights.")


def restore_net(state, path, params, device):
    """Rebuild the net from ``params`` and fill it with the weights of ``state``."""
    if state["loss"] != loss_name(params.loss):
        raise ValueError(
            f"{path} holds weights trained with loss={state['loss']!r}; this "
            f"estimator has loss={loss_name(params.loss)!r}. Create it with the loss "
            "it was trained with."
        )
    sample_shape = tuple(state["sample_shape"])
    seeds = dict.fromkeys(("init", "train", "valid", "split", "augment"), 0)
    # The weights are overwritten: initialising them must not move torch's global RNG.
    with forked_rng(device):
        net = build_net(
            params, sample_shape, device, seeds, 1, state["default_module_args"], pairs=False
        )
        net.initialize()
    try:
        net.module_.load_state_dict(state["module"])
        net.criterion_.load_state_dict(state["criterion"])
    except RuntimeError as error:
        raise ValueError(
            f"The weights in {path} do not fit this estimator's network; create "
            f"it with the parameters it was trained with. ({error})"
        ) from error
    return net


def classifier_state(classifier, embedder):
    """A fitted classifier's enrolment, classes and temperature, with ``embedder``'s state."""
    state = {
        "format": CLASSIFIER_FORMAT,
        "embedder": embedder_state(embedder),
        **classifier._enrolment,
        "classes": classifier.classes_.tolist(),
        "classes_dtype": classifier.classes_.dtype.str,
        "support_embeddings": torch.from_numpy(classifier.support_embeddings_),
        "support_classes": torch.from_numpy(classifier.support_classes_),
        "temperature": float(classifier.temperature_),
    }
    if hasattr(classifier, "feature_names_in_"):
        state["feature_names_in"] = classifier.feature_names_in_.tolist()
    return state


def read_classifier_state(path, classifier):
    """The state :func:`classifier_state` saved in ``path``, checked against ``classifier``."""
    state = read_state(path, CLASSIFIER_FORMAT)
    if state["embedder"].get("format") != FORMAT:
        raise ValueError(
            f"{path} holds an embedder of format {state['embedder'].get('format')!r}, "
            f"and this version reads {FORMAT!r}: save it again with the version "
            "that wrote it."
        )
    for name in ENROLMENT_PARAMETERS:
        if state[name] != getattr(classifier, name):
            raise ValueError(
                f"{path} holds a classifier fitted with {name}={state[name]!r}; this "
                f"one has {name}={getattr(classifier, name)!r}. Create it with the "
                "parameters it was fitted with."
            )
    return state

"""Saving and loading trained estimators without pickle.

``pickle``/``joblib`` round trips are exact but unpickling runs code from the
file. These files hold only tensors, arrays of numbers and plain values, so
they load with ``torch.load(weights_only=True)``, which refuses anything else.
"""

import torch

from ._training import build_net

# Written into every file; files of another format are refused with a clear error.
FORMAT = "sksiamese-weights-4"
CLASSIFIER_FORMAT = "sksiamese-classifier-1"
_WRITERS = {FORMAT: "SiameseEmbedder", CLASSIFIER_FORMAT: "OneShotClassifier"}


def embedder_state(embedder):
    """The twin branch, the loss's weights and the fitted plain values, as a dict."""
    state = {
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
    head = getattr(embedder.net_.criterion_, "head", None)
    if head is not None:
        state["head_dim"] = int(head.raw_weight.shape[0])
    return state


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
    if state["loss"] != loss_name(params["loss"]):
        raise ValueError(
            f"{path} holds weights trained with loss={state['loss']!r}; this "
            f"estimator has loss={loss_name(params['loss'])!r}. Create it with the loss "
            "it was trained with."
        )
    sample_shape = tuple(state["sample_shape"])
    seeds = dict.fromkeys(("init", "train", "valid", "split", "augment"), 0)
    net = build_net(
        params,
        sample_shape,
        device,
        seeds,
        steps_per_epoch=1,
        data_args=state["default_module_args"],
    )
    if params["loss"] == "bce":
        net.set_params(criterion__embedding_dim=state["head_dim"])
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

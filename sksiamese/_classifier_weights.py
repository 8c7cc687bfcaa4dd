"""Saving a fitted OneShotClassifier: safe weight files, and pickling its faiss index."""

import numpy as np
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from ._compat import validate_params
from ._embedder import SiameseEmbedder
from ._enrolment import check_enrolment
from ._index import index_from_bytes, index_to_bytes
from ._persistence import ENROLMENT_PARAMETERS, classifier_state, read_classifier_state


def inner_embedder(embedder):
    """The estimator inside a ``FrozenEstimator``, or ``embedder`` itself."""
    return embedder.estimator if isinstance(embedder, FrozenEstimator) else embedder


class ClassifierWeightsMixin:
    """``save_weights`` and ``load_weights`` of :class:`~sksiamese.OneShotClassifier`.

    Also its pickling, which writes a faiss index as faiss's own bytes.
    """

    def save_weights(self, path):
        """Save the trained classifier to a file that loads without unpickling.

        The file holds the embedder's weights, the enrolled support set, the
        classes and the temperature, tensors and plain values only, safe to
        load as :meth:`SiameseEmbedder.save_weights`'s files are. A faiss
        index is not stored: faiss's own reader is not built for files from
        strangers, so :meth:`load_weights` builds the index again from the
        support set (the build times of ``docs/benchmarks.md``).

        Parameters
        ----------
        path : str or path-like
            The weight file.
        """
        check_is_fitted(self)
        embedder = inner_embedder(self.embedder_)
        _check_savable(embedder)
        torch.save(classifier_state(self, embedder), path)

    def load_weights(self, path):
        """Restore a trained classifier from :meth:`save_weights`'s file.

        Create the classifier with the parameters it was fitted with: the
        embedder's architecture comes from them (from ``embedder``, or this
        classifier's own training parameters when ``embedder=None``), and
        ``aggregation``, ``index`` and ``index_params`` must match the file.
        A faiss index is built again from the saved support set (an
        approximate one may answer a few queries differently from the one
        saved); without faiss installed, the search is exact, with a warning.

        Parameters
        ----------
        path : str or path-like
            A file written by a classifier's :meth:`save_weights`.

        Returns
        -------
        self : OneShotClassifier
            The classifier, ready to ``predict``.
        """
        validate_params(self)
        self._check_routed()
        state = read_classifier_state(path, self)
        if self.embedder is None:
            embedder = SiameseEmbedder(**self._embedder_params())
        else:
            embedder = clone(inner_embedder(self.embedder))
        _check_savable(embedder)
        embedder._restore(state["embedder"], path)
        classes = np.asarray(state["classes"], dtype=np.dtype(state["classes_dtype"]))
        support = state["support_embeddings"].numpy()
        support_classes = state["support_classes"].numpy()
        check_enrolment(support, support_classes, len(classes), embedder._n_features_out, path)
        inputs = {"n_features_in_": embedder.n_features_in_}
        if self.embedder is None:
            inputs["sample_shape_"] = embedder.sample_shape_
        if "feature_names_in" in state:
            inputs["feature_names_in_"] = np.asarray(state["feature_names_in"], dtype=object)
        frozen = isinstance(self.embedder, FrozenEstimator)
        return self._set_fitted(
            FrozenEstimator(embedder) if frozen else embedder,
            inputs=inputs,
            classes=classes,
            support_embeddings=support,
            support_classes=support_classes,
            temperature=state["temperature"],
            enrolment={name: state[name] for name in ENROLMENT_PARAMETERS},
        )

    def __getstate__(self):
        # pickle cannot write a faiss index: it travels as faiss's serialised bytes.
        state = dict(super().__getstate__())
        if state.get("index_") is not None:
            state["index_"] = index_to_bytes(state["index_"])
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if getattr(self, "index_", None) is not None:
            self.index_ = index_from_bytes(self.index_, self._enrolment["index"])


def _check_savable(embedder):
    if not isinstance(embedder, SiameseEmbedder):
        raise TypeError(
            "Safe weight files hold a SiameseEmbedder's network; this classifier's "
            f"embedder is a {type(embedder).__name__}. Save it with pickle or joblib "
            "instead (files you trust only)."
        )

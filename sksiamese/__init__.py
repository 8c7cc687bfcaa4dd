"""Siamese networks for one-shot and few-shot learning, as scikit-learn estimators."""

from ._classifier import OneShotClassifier
from ._embedder import SiameseEmbedder
from ._references import ReferenceSet
from ._verifier import SiameseVerifier

__version__ = "0.1.0"

__all__ = [
    "OneShotClassifier",
    "ReferenceSet",
    "SiameseEmbedder",
    "SiameseVerifier",
    "__version__",
]

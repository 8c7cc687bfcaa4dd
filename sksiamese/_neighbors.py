"""scikit-learn's neighbours API over the rows a OneShotClassifier enrolled."""

from numbers import Integral

import torch
from sklearn.utils.validation import check_is_fitted

from ._enrolment import nearest_rows
from ._index import warn_if_many_missed
from .similarity import similarity_of


class NeighborsMixin:
    """``kneighbors`` of :class:`~sksiamese.OneShotClassifier`, as scikit-learn's neighbours."""

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The enrolled rows most similar to each query, as scikit-learn's neighbours.

        The rows are those of ``support_embeddings_``: every support example
        with ``aggregation='nearest'``, one prototype per class with
        ``'prototype'``; ``support_classes_[indices]`` gives their classes.
        With a faiss ``index``, they are the index's (approximate)
        neighbours, their distances computed in float32, ties in the index's
        order; a query for which it finds fewer than ``n_neighbors`` rows is
        searched exactly (with a warning when that is more than a tenth of
        the queries).

        Parameters
        ----------
        X : {array-like, sparse matrix} of the shape seen in ``fit``, default=None
            The queries. ``None`` queries the enrolled rows themselves, each
            left out of its own neighbours, as scikit-learn does.
        n_neighbors : int or None, default=None
            Neighbours of each query; at most the number of enrolled rows
            (one fewer with ``X=None``). ``None``: 5, scikit-learn's default,
            or all the rows there are when fewer.
        return_distance : bool, default=True
            Whether to return the distances too.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors), float64
            Minus the similarity: the Euclidean distance of the embeddings,
            or minus the Koch head's logit for ``loss='bce'``; ascending.
            Only with ``return_distance=True``.
        indices : ndarray of shape (n_queries, n_neighbors), int64
            Rows of ``support_embeddings_``, nearest first (ties in row order
            with the exact search).
        """
        check_is_fitted(self)
        if X is None:
            queries = torch.from_numpy(self.support_embeddings_)
            own = torch.arange(len(queries))
        else:
            queries, own = self._queries(X), None
        available = len(self.support_embeddings_) - (own is not None)
        if n_neighbors is None:
            n_neighbors = min(5, available)
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, Integral):
            raise TypeError(f"n_neighbors must be an int; got {n_neighbors!r}.")
        if not 1 <= n_neighbors <= available:
            raise ValueError(
                f"n_neighbors must be an int from 1 to {available} (the enrolled rows"
                f"{' other than the query' if own is not None else ''}); got {n_neighbors!r}."
            )
        distances, indices, n_missed = nearest_rows(
            similarity_of(self.embedder_),
            queries,
            self.support_embeddings_,
            n_neighbors,
            self.index_,
            own=own,
        )
        warn_if_many_missed(n_missed, len(queries), self._enrolment["index"])
        return (distances, indices) if return_distance else indices

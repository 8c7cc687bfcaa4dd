"""ReferenceSet: each identity's enrolled references, and the claims built from them."""

import numpy as np
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

_EXISTING = ("raise", "replace", "extend")


class ReferenceSet:
    """The references of each enrolled identity, from which claims are built.

    A verification system keeps a few genuine samples of each identity (the
    specimen signatures of an account, the enrolment photos of an employee)
    and checks a questioned sample against the references of the identity it
    claims. This is that store: :meth:`enrol` adds identities, without
    training anything, and :meth:`claims` turns questioned samples and the
    identities they claim into the claims a :class:`~sksiamese.SiameseVerifier`
    scores, shape ``(n_claims, 1 + K, *sample_shape)``.

    Every claimed identity must hold the same number K of references, the K
    the verifier was fitted with: its scores and their calibration depend on
    K.

    Attributes
    ----------
    identities : ndarray
        The enrolled identities, in the order they were first enrolled.
    sample_shape : tuple of int or None
        Shape of one reference; ``None`` until the first :meth:`enrol`.

    See Also
    --------
    SiameseVerifier : Scores the claims.

    Examples
    --------
    >>> import numpy as np
    >>> from sksiamese import ReferenceSet
    >>> references = ReferenceSet().enrol(np.zeros((4, 8, 8)), ["ann", "ann", "bob", "bob"])
    >>> references.claims(np.ones((3, 8, 8)), ["bob", "ann", "bob"]).shape
    (3, 3, 8, 8)
    """

    def __init__(self):
        self._references = {}
        self.sample_shape = None

    @property
    def identities(self):
        """The enrolled identities, in the order they were first enrolled."""
        return np.asarray(list(self._references))

    def __len__(self):
        return len(self._references)

    def __contains__(self, identity):
        return identity in self._references

    def n_references(self, identity):
        """Count the references enrolled for ``identity``.

        Parameters
        ----------
        identity : int, str or other hashable
            An enrolled identity.

        Returns
        -------
        n_references : int
            How many references it holds.
        """
        return len(self._references[self._known([identity])[0]])

    def enrol(self, X, identities, *, existing="raise"):
        """Enrol references: ``X[i]`` is a reference of ``identities[i]``.

        Parameters
        ----------
        X : array-like of shape (n_references,) + sample_shape
            The references, of one shape with those enrolled before.
        identities : array-like of shape (n_references,)
            The identity of each reference.
        existing : {'raise', 'replace', 'extend'}, default='raise'
            What to do for an identity enrolled before: refuse, replace its
            references with these, or add these to them. Nothing is changed
            when an error is raised.

        Returns
        -------
        self : ReferenceSet
            The store, with the identities enrolled.
        """
        if existing not in _EXISTING:
            raise ValueError(f"existing must be one of {_EXISTING}; got {existing!r}.")
        X = self._samples(X, "references")
        identities = column_or_1d(identities, warn=True)
        check_consistent_length(X, identities)
        enrolled_before = _listed([name for name in dict.fromkeys(identities) if name in self])
        if enrolled_before and existing == "raise":
            raise ValueError(
                f"Identities already enrolled: {enrolled_before}. Pass "
                "existing='replace' to replace their references or 'extend' to add to them."
            )
        if self.sample_shape is None:
            self.sample_shape = X.shape[1:]
        for identity in dict.fromkeys(identities):
            new = X[identities == identity]
            if identity in self and existing == "extend":
                new = np.concatenate([self._references[identity], new])
            self._references[identity] = new
        return self

    def claims(self, X, claimed):
        """Build the claims of ``X[i]`` to be ``claimed[i]``: the sample, then the references.

        Each claim holds a copy of its identity's references: 1,000 claims of
        12 references of 48x96 images take 0.2 GB. Score a large batch in
        parts.

        Parameters
        ----------
        X : array-like of shape (n_claims,) + sample_shape
            The questioned samples.
        claimed : array-like of shape (n_claims,)
            The identity each questioned sample claims; each enrolled, and
            all with the same number of references.

        Returns
        -------
        claims : ndarray of shape (n_claims, 1 + K) + sample_shape
            What :class:`~sksiamese.SiameseVerifier` takes as ``X``.
        """
        X = self._samples(X, "questioned samples")
        claimed = self._known(column_or_1d(claimed, warn=True))
        check_consistent_length(X, claimed)
        counts = {identity: len(self._references[identity]) for identity in dict.fromkeys(claimed)}
        if len(set(counts.values())) > 1:
            raise ValueError(
                "Every claimed identity must hold the same number of references, "
                "the number the verifier was fitted with; got "
                f"{dict(zip(_listed(counts), _listed(counts.values()), strict=False))}. "
                "Enrol as many for each, or "
                "replace them (existing='replace')."
            )
        references = np.stack([self._references[identity] for identity in claimed])
        return np.concatenate([X[:, None], references], axis=1)

    def _samples(self, X, what):
        """``X`` as float32 samples, of the enrolled shape once there is one."""
        X = check_array(X, allow_nd=True, dtype=np.float32, ensure_2d=False)
        if X.ndim < 2:
            raise ValueError(
                f"The {what} must be samples, shape (n,) + sample_shape; got {X.shape}."
            )
        if self.sample_shape is not None and X.shape[1:] != self.sample_shape:
            raise ValueError(
                f"The {what} have shape {X.shape[1:]}, but the references enrolled "
                f"have shape {self.sample_shape}."
            )
        return X

    def _known(self, identities):
        """``identities``, each enrolled, or an error naming those that are not."""
        unknown = [name for name in dict.fromkeys(identities) if name not in self]
        if unknown:
            raise ValueError(
                f"Identities not enrolled: {_listed(unknown)}. Enrol their "
                "references first (ReferenceSet.enrol)."
            )
        return identities


def _listed(values, most=5):
    """Up to ``most`` values as plain Python objects, and how many more, for an error message."""
    values = list(values)
    shown = np.asarray(values[:most]).tolist()
    return shown if len(values) <= most else [*shown, f"... {len(values) - most} more"]

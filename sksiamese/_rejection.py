"""Open-set rejection: queries no enrolled class is similar enough to."""

import numpy as np


def reject(predicted, best, reject_below, unknown_label, classes):
    """``predicted``, with ``unknown_label`` where the ``best`` score is below ``reject_below``.

    The labels keep the classes' dtype where ``unknown_label`` is of the same
    kind (numbers, or strings); a label of another kind (a string among
    integers) turns them into objects.
    """
    if unknown_label in classes.tolist():
        raise ValueError(
            f"unknown_label={unknown_label!r} is one of the classes; choose "
            "a label for rejected queries that no class uses."
        )
    rejected = best < reject_below
    unknown = np.asarray(unknown_label)
    numeric = (unknown.dtype.kind in "iu", predicted.dtype.kind in "iuf")
    dtype = np.result_type(predicted, unknown) if numeric[0] == numeric[1] else object
    out = predicted.astype(dtype)
    out[rejected] = unknown_label
    return out

"""The normal 95% interval of a mean, for episode and paired-gain scores."""

import numpy as np


def ci95_half_width(values):
    """Half-width of the normal 95% interval of the mean of ``values``; NaN for fewer than two."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return np.nan
    return 1.96 * values.std(ddof=1) / np.sqrt(len(values))

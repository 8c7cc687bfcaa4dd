"""Warnings that point at the user's line, however deep in the library they are raised."""

import os
import sys
import warnings
from pathlib import Path

import sklearn

# Frames in these folders are the library's (and scikit-learn's wrappers around
# it: the fit context, validate_params, cross-validation), not the user's.
_LIBRARY_FOLDERS = tuple(
    f"{Path(module.__file__).parent}{os.sep}" for module in (sys.modules[__package__], sklearn)
)


def warn(message, category=UserWarning):
    """``warnings.warn`` at the first frame outside sksiamese and scikit-learn.

    A fixed ``stacklevel`` is right for one call path only (the same warning
    is raised from ``fit``, ``load_weights`` and unpickling, at different
    depths); this walks the stack instead, as pandas' ``find_stack_level`` does.
    """
    frame, level = sys._getframe(1), 2  # level 1 would be this function
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_FOLDERS):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)

"""Sphinx configuration: API from numpydoc docstrings, gallery from examples/plot_*.py."""

import os
from pathlib import Path

from sksiamese import __version__

project = "sksiamese"
author = "the sksiamese developers"
release = version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
autosummary_generate = True
templates_path = ["_templates"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
html_theme = "alabaster"

# CEDAR cannot be downloaded (research use, obtained from CEDAR): without it
# the signature example is left out of the gallery instead of failing the build.
_cedar = Path(os.environ.get("SKSIAMESE_DATA", Path.home() / "sksiamese_data"))
_ignored = ["quickstart"]
if not (_cedar / "cedar" / "cedar_signatures.zip").exists():
    _ignored.append("plot_signature_verification")

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "ignore_pattern": "|".join(_ignored),
    "download_all_examples": False,
    "remove_config_comments": True,
}

"""Sphinx configuration of ftcloud's documentation (``sphinx-build -W docs docs/_build``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import ftcloud

# The notebooks live in notebooks/ (where users open them); the site renders copies of them, with the outputs
# they were committed with (myst-nb, never executed here: tests/e2e/test_notebooks.py executes them).
_HERE = Path(__file__).resolve().parent
(_HERE / "notebooks").mkdir(exist_ok=True)
for _nb in sorted((_HERE.parent / "notebooks").glob("*.ipynb")):
    shutil.copyfile(_nb, _HERE / "notebooks" / _nb.name)

project = "ftcloud"
author = "the ftcloud developers"
copyright = "2026, the ftcloud developers"  # noqa: A001 - Sphinx's name
release = ftcloud.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",  # MyST Markdown pages and the notebooks (it loads myst_parser itself)
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
nb_execution_mode = "off"
myst_heading_anchors = 3
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"  # the numpydoc sections say the types
exclude_patterns = ["_build", "img"]
html_theme = "alabaster"
html_theme_options = {"page_width": "1280px", "sidebar_width": "240px"}  # code and xarray reprs of the notebooks fit

"""Sphinx configuration of ftcloud's documentation (``sphinx-build -W docs docs/_build``)."""

from __future__ import annotations

import ftcloud

project = "ftcloud"
author = "the ftcloud developers"
copyright = "2026, the ftcloud developers"  # noqa: A001 - Sphinx's name
release = ftcloud.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_heading_anchors = 3
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "none"  # the numpydoc sections say the types
exclude_patterns = ["_build", "img"]
html_theme = "alabaster"

"""Running the project's notebooks in a real Jupyter kernel, and keeping their outputs honest.

``notebooks/refresh.py`` executes every notebook in place (outputs kept, so GitHub and the docs site
show the figures); ``tests/e2e/test_notebooks.py`` executes them the same way in CI and checks that the
committed outputs were made by the committed code (:func:`code_digest`).

Outputs never keep paths of the machine that ran them: the work folder, the Python prefix and the
repository are written as ``<workdir>``, ``<python>`` and ``<repo>`` (:func:`scrub`).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

#: where the notebook records which code made its outputs
DIGEST_KEY = "ftcloud"


def code_digest(nb) -> str:
    """SHA-256 of the notebook's code cells, in order: the key of the outputs it holds."""
    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            h.update(src.encode() + b"\0")
    return h.hexdigest()


def _replace_in(obj, pairs):
    if isinstance(obj, str):
        for old, new in pairs:
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, list):
        return [_replace_in(x, pairs) for x in obj]
    if isinstance(obj, dict):
        return {k: _replace_in(v, pairs) for k, v in obj.items()}
    return obj


def scrub(nb, workdir: str, repo: str | None = None):
    """``nb`` with this machine's paths in its outputs replaced by placeholders (longest path first)."""
    import nbformat

    pairs = [(str(workdir), "<workdir>"), (os.path.realpath(workdir), "<workdir>"), (sys.prefix, "<python>")]
    if repo:
        pairs.append((str(repo), "<repo>"))
    pairs.append((str(Path.home()), "~"))
    pairs = sorted({p for p in pairs if p[0] and len(p[0]) > 1}, key=lambda p: -len(p[0]))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [nbformat.from_dict(_replace_in(o, pairs)) for o in cell.get("outputs", [])]
    return nb


def execute_notebook(path, workdir, *, timeout: int = 900, repo: str | None = None):
    """Execute the notebook at ``path`` top to bottom in a fresh ``python3`` kernel of this interpreter, with
    ``NOTEBOOK_WORKDIR=workdir`` and ``workdir`` as its current folder; returns the executed notebook (outputs
    scrubbed, :data:`DIGEST_KEY` metadata set). A cell that raises raises ``nbclient``'s CellExecutionError."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    os.makedirs(workdir, exist_ok=True)
    # as a user's JupyterLab starts it: the kernel's own inline backend (a test run's MPLBACKEND=Agg would hide
    # every figure)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"NOTEBOOK_WORKDIR": str(workdir)}
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=env)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
    nb.metadata[DIGEST_KEY] = {"code_sha256": code_digest(nb)}
    return scrub(nb, str(workdir), repo)

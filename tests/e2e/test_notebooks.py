"""The notebooks, as a user meets them: executed top to bottom in a real Jupyter kernel (figures inline), and
committed with the outputs of the code they hold.

* 01 quick start on the twin;
* 02 reads a zarr store anonymously via fsspec (its demo store served over HTTP on 127.0.0.1)
  and runs the trend analysis;
* 03 scales out on dask-gateway with GPU workers, against a real dask-gateway-server (local
  backend) that the notebook itself starts on 127.0.0.1.

``python notebooks/refresh.py`` re-executes them in place after a change (ftcloud.testing.notebooks).
"""

import json
import re
from pathlib import Path

import pytest

from ftcloud.testing.notebooks import DIGEST_KEY, code_digest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: what each notebook must leave in its working folder
PRODUCES = {
    "01_quickstart_twin.ipynb": ["quickstart.png"],
    "02_public_zarr_trends.ipynb": ["public_trends.png", "trends/table2.md", "trends/figures/slope_map.png"],
    "03_gateway_gpu_workers.ipynb": ["gateway_frozen_fraction.png", "ft_gateway.zarr/.zattrs"],
}


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _inline_images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in _code_cells(nb) for o in c.get("outputs", []))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_a_jupyter_kernel_and_plots_inline(path, tmp_path, monkeypatch):
    from ftcloud.testing.notebooks import execute_notebook

    if path.name.startswith("03"):
        pytest.importorskip("dask_gateway_server")
        pytest.importorskip("torch")
        monkeypatch.delenv("DASK_GATEWAY__ADDRESS", raising=False)
    monkeypatch.delenv("NOTEBOOK_PUBLIC_URL", raising=False)
    work = tmp_path / "work"
    nb = execute_notebook(path, work, repo=str(ROOT))  # a cell that raises fails here, naming the cell
    assert all(c.get("execution_count") for c in _code_cells(nb))
    assert _inline_images(nb) >= 1, "no figure was shown inline (a forced backend?)"
    for rel in PRODUCES[path.name]:
        assert (work / rel).exists(), rel
    pngs = [work / r for r in PRODUCES[path.name] if r.endswith(".png")]
    assert all(p.stat().st_size > 10_000 for p in pngs)
    text = json.dumps([c.get("outputs", []) for c in _code_cells(nb)])
    assert str(work) not in text and str(tmp_path) not in text  # scrubbed to <workdir>


def test_every_notebook_is_listed():
    assert {p.name for p in NOTEBOOKS} == set(PRODUCES), "add the new notebook's outputs to PRODUCES"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_plot_inline(path):
    """No notebook forces a backend (matplotlib.use("Agg") kept JupyterLab from showing any figure)."""
    src = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert "matplotlib.use(" not in src and "plt.close(" not in src


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebooks_hold_the_outputs_of_their_own_code(path):
    """What GitHub and the docs site show was made by the code beside it: every code cell executed, figures
    inline, the digest of the code cells recorded at execution equal to the committed code's, no path of the
    machine that ran it. After editing a notebook: ``python notebooks/refresh.py``."""
    nb = json.loads(path.read_text())
    recorded = nb.get("metadata", {}).get(DIGEST_KEY, {}).get("code_sha256")
    assert recorded == code_digest(nb), f"{path.name}: outputs are stale or missing; run python notebooks/refresh.py"
    assert all(c.get("execution_count") for c in _code_cells(nb)), f"{path.name}: a code cell was never run"
    assert _inline_images(nb) >= 1
    text = json.dumps([c.get("outputs", []) for c in _code_cells(nb)])
    assert not re.search(r"/(tmp|work|root|home)/", text), f"{path.name}: outputs hold a local path"
    assert not any(o.get("output_type") == "error" for c in _code_cells(nb) for o in c.get("outputs", []))


def test_the_digest_sees_an_edited_cell():
    nb = {"cells": [{"cell_type": "code", "source": ["a = 1\n"]}, {"cell_type": "markdown", "source": "x"}]}
    before = code_digest(nb)
    nb["cells"][1]["source"] = "changed prose"
    assert code_digest(nb) == before  # prose does not stale the outputs
    nb["cells"][0]["source"] = ["a = 2\n"]
    assert code_digest(nb) != before

"""Execute every notebook in place in a Jupyter kernel and keep its outputs (what GitHub and the docs site show).

Usage, from the repository root, with the [notebook] (or [test]) extra installed::

    python notebooks/refresh.py            # all
    python notebooks/refresh.py 02         # those whose names start with 02

Each runs in a fresh temporary folder; outputs keep no path of this machine (ftcloud.testing.notebooks.scrub).
tests/e2e/test_notebooks.py checks that the committed outputs were made by the committed code.
"""

import sys
import tempfile
import time
from pathlib import Path

import nbformat

from ftcloud.testing.notebooks import execute_notebook

HERE = Path(__file__).resolve().parent


def main(prefixes: list[str]) -> int:
    for path in sorted(HERE.glob("*.ipynb")):
        if prefixes and not any(path.name.startswith(p) for p in prefixes):
            continue
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="ftcloud-nb-") as work:
            nb = execute_notebook(path, work, repo=str(HERE.parent))
        nbformat.write(nb, str(path))
        print(f"{path.name}: executed in {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

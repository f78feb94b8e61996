"""Import order is irrelevant: ecCodes (via cfgrib's xarray backend) before or after ftcloud.

The eccodes wheels preload eckitlib's own libproj/libsqlite3 with RTLD_GLOBAL; a pyproj loaded
after that bound its symbols to that libproj and the interpreter aborted ("no database context",
then "double free or corruption"). Every order runs in a fresh interpreter (``sys.executable``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("cfgrib") is None or importlib.util.find_spec("eccodes") is None,
    reason="cfgrib/eccodes not installed",
)

LON, LAT = 101.5, 34.0

# pieces of the child scripts
OPEN_ZARR = """
import numpy as np
import xarray as xr
xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr("t.zarr", mode="w")
with xr.open_zarr("t.zarr") as ds:  # the first open loads every backend: cfgrib, so ecCodes
    assert float(ds["a"].sum()) == 3.0
import cfgrib, eccodes
"""
IMPORT_FTCLOUD = "import ftcloud\n"
TRANSFORM = f"""
import json
from ftcloud.core.grid import lonlat_to_xy, region_window, xy_to_lonlat
x, y = lonlat_to_xy({LON}, {LAT})
lon, lat = xy_to_lonlat(x, y)
w = region_window("tiny")
print("RESULT", json.dumps([float(x), float(y), float(lon), float(lat), [w.row0, w.row1, w.col0, w.col1]]))
"""


def ease2_xy(lon: float, lat: float) -> tuple[float, float]:
    """EPSG:6933 by hand: Lambert cylindrical equal area on WGS84, true scale at 30 degrees."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    e = math.sqrt(e2)
    s0 = math.sin(math.radians(30.0))
    k0 = math.cos(math.radians(30.0)) / math.sqrt(1 - e2 * s0 * s0)
    s = math.sin(math.radians(lat))
    q = (1 - e2) * (s / (1 - e2 * s * s) - math.log((1 - e * s) / (1 + e * s)) / (2 * e))
    return a * k0 * math.radians(lon), a * q / (2 * k0)


def run_child(tmp_path: Path, *parts: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("PROJ_DATA", None)
    env.pop("PROJ_LIB", None)
    script = tmp_path / "child.py"
    script.write_text("".join(textwrap.dedent(p) for p in parts))
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


def check_result(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stderr[-3000:]}"
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stdout
    x, y, lon, lat, window = json.loads(line[0][len("RESULT ") :])
    ex, ey = ease2_xy(LON, LAT)
    assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01, (x, y, ex, ey)
    assert abs(lon - LON) < 1e-7 and abs(lat - LAT) < 1e-7
    # the tiny window (test_grid checks the same rows/cols)
    assert window == [354, 364, 3010, 3023]


def test_hand_formula_is_right():
    # x is linear in longitude: 180 degrees is half the grid width (3856 cells of 9008.055210146 m)
    assert abs(ease2_xy(180.0, 0.0)[0] - 3856 * 9008.055210146 / 2) < 1.0
    assert ease2_xy(0.0, 0.0) == (0.0, 0.0)


def test_xarray_cfgrib_zarr_first_then_ftcloud(tmp_path):
    check_result(run_child(tmp_path, OPEN_ZARR, IMPORT_FTCLOUD, TRANSFORM))


def test_eccodes_alone_first_then_ftcloud(tmp_path):
    check_result(run_child(tmp_path, "import eccodes\n", IMPORT_FTCLOUD, TRANSFORM))


def test_ftcloud_first_then_xarray_cfgrib_zarr(tmp_path):
    check_result(run_child(tmp_path, IMPORT_FTCLOUD, OPEN_ZARR, TRANSFORM))


def test_pyproj_bound_to_eccodes_libproj_is_one_clear_line(tmp_path):
    """A pyproj imported by the user after ecCodes cannot be repaired in-process: ftcloud says so."""
    proc = run_child(
        tmp_path,
        """
        import eccodes, pyproj
        try:
            import ftcloud
        except ImportError as e:
            print("ERROR", type(e).__name__, str(e))
        else:
            print("IMPORTED")
        """,
    )
    out = [ln for ln in proc.stdout.splitlines() if ln.startswith(("ERROR", "IMPORTED"))]
    if out == ["IMPORTED"]:
        pytest.skip("this pyproj and ecCodes share a compatible libproj")
    assert len(out) == 1 and out[0].startswith("ERROR ProjLoadOrderError "), proc.stdout + proc.stderr
    assert "import ftcloud (or pyproj) before cfgrib" in out[0]

"""The slim core: ``import ftcloud``, the science and ``ftcloud trends`` work without the extras.

``pip install ftcloud`` brings numpy, xarray, dask, zarr, fsspec, scipy, pyproj, matplotlib and a few
light helpers; Beam, pangeo-forge, kerchunk, cfgrib/ecCodes, h5py/netCDF4 come with ``[ingest]``,
PyTorch with ``[torch]``, the dask-gateway client with ``[gateway]``. Each child interpreter here
(``sys.executable``) starts with the extras' modules made unimportable (``sys.modules[name] = None``:
``import`` raises ModuleNotFoundError and ``importlib.util.find_spec`` answers None, as when they were
never installed), then checks what a user of the core can do, and that a command needing an extra
says which one in one line (exit status 2), not with a traceback.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

#: the distributions that must stay out of the core, by extra
HEAVY = {
    "ingest": {"apache-beam", "pangeo-forge-recipes", "kerchunk", "cfgrib", "eccodes", "h5py", "h5netcdf", "netcdf4"},
    "torch": {"torch"},
    "gateway": {"dask-gateway"},
}
#: their top-level modules (eccodes also installs gribapi and its bundled eccodeslib/eckitlib)
ABSENT = (
    "apache_beam",
    "pangeo_forge_recipes",
    "kerchunk",
    "cfgrib",
    "eccodes",
    "gribapi",
    "eccodeslib",
    "eckitlib",
    "h5py",
    "h5netcdf",
    "netCDF4",
    "torch",
    "dask_gateway",
)

PRELUDE = f"""
import sys
ABSENT = {ABSENT!r}
for _name in ABSENT:
    sys.modules[_name] = None  # as if never installed
"""

#: what the child reports at the end: none of the extras was imported behind our back
EPILOGUE = """
leaked = sorted(n for n in ABSENT if sys.modules.get(n) is not None)
assert not leaked, f"imported despite their absence: {leaked}"
"""


def _name(req: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1)).lower()


def _child(code: str, *args: str, timeout: int = 120, tail: str = "") -> subprocess.CompletedProcess:
    script = PRELUDE + textwrap.dedent(code) + EPILOGUE + tail
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )


# -- pyproject -----------------------------------------------------------------------------------------


def test_core_dependencies_hold_none_of_the_heavy_packages():
    core = {_name(r) for r in PYPROJECT["dependencies"]}
    heavy = set().union(*HEAVY.values())
    assert not core & heavy, f"heavy packages in the core dependencies: {sorted(core & heavy)}"
    for must in ("numpy", "xarray", "dask", "zarr", "fsspec", "scipy", "pyproj", "matplotlib", "distributed"):
        assert must in core, must


def test_each_extra_brings_its_heavy_packages():
    extras = {k: {_name(r) for r in v} for k, v in PYPROJECT["optional-dependencies"].items()}
    for extra, names in HEAVY.items():
        assert names <= extras[extra], f"[{extra}] lacks {sorted(names - extras[extra])}"
    assert {"pytest", "ruff"} <= extras["test"]


def test_the_extras_ftcloud_names_are_pyprojects():
    """ftcloud.errors.EXTRAS (what `require` looks up) lists the modules of pyproject's extras."""
    from ftcloud.errors import EXTRAS

    assert set(EXTRAS) == set(HEAVY)
    for extra, modules in EXTRAS.items():
        assert {_name(m) for m in modules} == HEAVY[extra], extra


def test_every_third_party_import_is_a_declared_dependency():
    """No module of ftcloud imports a package that neither the core nor an extra declares."""
    import ast

    declared = {_name(r) for r in PYPROJECT["dependencies"]}
    for reqs in PYPROJECT["optional-dependencies"].values():
        declared |= {_name(r) for r in reqs if not r.startswith("ftcloud")}
    dists = importlib.metadata.packages_distributions()
    bad = []
    for path in sorted((ROOT / "ftcloud").rglob("*.py")):
        for n in ast.walk(ast.parse(path.read_text())):
            mods = (
                [a.name for a in n.names]
                if isinstance(n, ast.Import)
                else [n.module]
                if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module
                else []
            )
            for m in mods:
                top = m.split(".")[0]
                if top in sys.stdlib_module_names or top == "ftcloud":
                    continue
                names = {_name(d) for d in dists.get(top, [top])}
                if not names & declared:
                    bad.append(f"{path.relative_to(ROOT)}:{n.lineno}: {m} ({', '.join(sorted(names))})")
    assert not bad, "imports of undeclared packages:\n" + "\n".join(bad)


# -- without the extras ----------------------------------------------------------------------------------


def test_import_and_the_science_without_the_extras():
    out = _child("""
        import importlib, json, pkgutil, warnings
        import numpy as np, pandas as pd, xarray as xr
        import ftcloud
        from ftcloud import core, io, report, science

        mods = ["ftcloud.study", "ftcloud.layout", "ftcloud.config", "ftcloud.cluster", "ftcloud.cli",
                "ftcloud.workflows.trends", "ftcloud.workflows.inputs", "ftcloud.workflows.validate",
                "ftcloud.model", "ftcloud.inference"]
        for pkg in (core, io, report, science):
            mods += [m.name for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + ".")]
        for m in mods:
            importlib.import_module(m)

        from ftcloud.science.ctc import triple_collocation
        from ftcloud.science.trends import frozen_days, mann_kendall

        rng = np.random.default_rng(0)
        time = pd.date_range("2001-01-01", "2012-12-31", freq="D")
        years = time.year.values - 2001
        # frozen on a share of the days that grows by 1 % a year
        p = 0.3 + 0.01 * years[:, None, None]
        codes = (rng.random((time.size, 3, 4)) < p).astype("u1")
        ft = xr.DataArray(codes, dims=("time", "y", "x"), coords={"time": time}).chunk({"time": -1, "y": 2, "x": 2})
        fd = frozen_days(ft)
        assert fd.chunks is not None  # lazy on dask
        mk = mann_kendall(fd, dim="year").compute()
        slope = float(mk["slope"].mean())

        truth = rng.random((400, 2, 2)) < 0.5
        def noisy(flip):
            return xr.DataArray(np.where(rng.random(truth.shape) < flip, ~truth, truth).astype("u1"),
                                dims=("time", "y", "x")).chunk({"time": 100})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tc = triple_collocation(noisy(0.05), noisy(0.1), noisy(0.15)).compute()
        pi = tc["pi"].mean(("y", "x")).values.tolist()
        print("RESULT", json.dumps({"n_modules": len(mods), "years": fd.sizes["year"], "slope": slope, "pi": pi}))
    """)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.split("RESULT", 1)[1])
    assert res["years"] == 12 and res["n_modules"] > 20
    assert 2.0 < res["slope"] < 5.5  # about 3.65 days a year planted
    # balanced accuracy falls with the noise of each product
    assert res["pi"][0] > res["pi"][1] > res["pi"][2] > 0.7


def _cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return _child(
        """
        import sys
        from ftcloud.cli import main
        code = main(sys.argv[1:])
    """,
        *args,
        timeout=timeout,
        tail="sys.exit(code)\n",
    )


def test_cli_help_without_the_extras():
    for sub in ([], ["trends"], ["ingest"], ["train"]):
        out = _child(
            """
            import sys
            from ftcloud.cli import main
            try:
                main(sys.argv[1:])
            except SystemExit as e:
                assert e.code == 0, e.code
        """,
            *sub,
            "--help",
        )
        assert out.returncode == 0, out.stderr
        assert "usage: ftcloud" in out.stdout


def _one_line_error(out: subprocess.CompletedProcess, command: str, extra: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith(f"ftcloud {command}: error:")]
    assert len(lines) == 1, out.stderr
    assert f"[{extra}] extra" in lines[0] and f'pip install -c constraints.txt "ftcloud[{extra}]"' in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command, extra", [("ingest", "ingest"), ("synth", "ingest"), ("run", "ingest")])
def test_a_command_that_needs_an_extra_names_it(tmp_path, command, extra):
    args = {
        "ingest": ["--source", str(tmp_path / "src"), "--store", str(tmp_path / "store")],
        "synth": ["--region", "tiny", "--start", "2019-01-01", "--end", "2019-01-31", "--out", str(tmp_path / "twin")],
        "run": ["--out", str(tmp_path / "run")],
    }[command]
    line = _one_line_error(_cli(command, *args), command, extra)
    assert "is not installed" in line
    assert not (tmp_path / "store").exists() and not (tmp_path / "twin").exists() and not (tmp_path / "run").exists()


def test_model_and_predict_name_the_torch_extra(tmp_path):
    """`ftcloud train`/`predict` check their --store first (the CLI's own tests); the library says [torch] at once."""
    out = _child(
        """
        import sys
        from ftcloud.errors import MissingExtraError
        from ftcloud.inference import predict
        from ftcloud.model import train

        for call in (lambda: train(sys.argv[1], "AM", sys.argv[1] + "/model"),
                     lambda: predict(sys.argv[1], sys.argv[1] + "/model", sys.argv[1] + "/ft.zarr")):
            try:
                call()
                raise AssertionError("ran without torch")
            except MissingExtraError as e:
                assert isinstance(e, ImportError) and e.name == "torch", e
                print("MESSAGE", e)
    """,
        str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("MESSAGE")]
    assert len(lines) == 2
    assert all(
        "[torch] extra" in ln and 'pip install -c constraints.txt "ftcloud[torch]"' in ln and "torch==2.13.0" in ln
        for ln in lines
    ), lines
    assert not any(tmp_path.iterdir())


def test_gateway_cluster_names_its_extra():
    out = _child("""
        from ftcloud.cluster import connect
        from ftcloud.errors import MissingExtraError
        try:
            with connect("gateway", gateway_address="http://127.0.0.1:1"):
                raise AssertionError("connected without dask_gateway")
        except MissingExtraError as e:
            assert isinstance(e, ImportError) and e.name == "dask_gateway", e
            print("MESSAGE", e)
    """)
    assert out.returncode == 0, out.stderr
    assert "[gateway] extra" in out.stdout and 'pip install -c constraints.txt "ftcloud[gateway]"' in out.stdout


def test_trends_cli_on_own_data_without_the_extras(tmp_path):
    """A user's own product and statics (plain zarr written here) through `ftcloud trends`, core only."""
    out = _child(
        """
        import sys
        import numpy as np, pandas as pd, xarray as xr
        from ftcloud.cli import main
        from ftcloud.io.stores import mark_complete

        tmp = sys.argv[1]
        rng = np.random.default_rng(1)
        time = pd.date_range("2001-01-01", "2012-12-31", freq="D")
        y, x = np.arange(3) * -9000.0, np.arange(4) * 9000.0
        p = 0.3 + 0.01 * (time.year.values - 2001)[None, :, None, None]
        codes = (rng.random((2, time.size, y.size, x.size)) < p).astype("u1")
        ft = xr.DataArray(codes, dims=("pass", "time", "y", "x"),
                          coords={"pass": ["AM", "PM"], "time": time, "y": y, "x": x},
                          attrs={"flag_values": [0, 1], "flag_meanings": "thawed frozen", "missing_value": 255})
        xr.Dataset({"ft": ft}).chunk({"time": 1461}).to_zarr(f"{tmp}/product.zarr", mode="w", consolidated=True)
        mark_complete(f"{tmp}/product.zarr")
        region = xr.DataArray(np.ones((y.size, x.size), "i1"), dims=("y", "x"), coords={"y": y, "x": x},
                              attrs={"flag_values": [1], "flag_meanings": "my_region"})
        xr.Dataset({"region": region}).to_zarr(f"{tmp}/store/statics", mode="w", consolidated=True)
        mark_complete(f"{tmp}/store/statics")
        code = main(["-q", "trends", "--product", f"{tmp}/product.zarr", "--store", f"{tmp}/store",
                     "--out", f"{tmp}/trends"])
        assert code == 0, code
    """,
        str(tmp_path),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    table = (tmp_path / "trends" / "table2.csv").read_text()
    assert "my_region" in table
    assert (tmp_path / "trends" / "figures" / "slope_map.png").stat().st_size > 1000
    assert (tmp_path / "trends" / "trends.zarr").is_dir()

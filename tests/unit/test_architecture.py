"""The package's shape: imports flow one way, each concept has one home, each package says what it holds."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "ftcloud"

#: the layers, lowest first: a module may import only from lower layers (and from its own package).
#: ``report`` renders result objects and needs nothing of the model, so the model can write its card's report.
LAYERS = [
    {"ftcloud.errors", "ftcloud.study"},
    {"ftcloud.core"},
    {"ftcloud.io"},
    {"ftcloud.config", "ftcloud.layout"},
    {"ftcloud.science", "ftcloud.sources", "ftcloud.synth"},
    {"ftcloud.accessor"},
    {"ftcloud.report"},
    {"ftcloud.model"},
    {"ftcloud.retrieve"},
    {"ftcloud.inference", "ftcloud.cluster"},
    {"ftcloud.workflows"},
    {"ftcloud.cli"},
    {"ftcloud.testing"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules():
    for p in sorted(PKG.rglob("*.py")):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        yield name, p


def _unit(name: str) -> str:
    """The layer unit of a module: ftcloud.<first part> (ftcloud itself for the root package)."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else name


def _imports(path: Path):
    """Every ftcloud module ``path`` imports, at module level or inside functions, with the line."""
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] == "ftcloud" and n.level == 0:
            if n.module == "ftcloud":
                for a in n.names:
                    yield ("ftcloud" if a.name.startswith("__") else f"ftcloud.{a.name}"), n.lineno
            else:
                yield n.module, n.lineno
        elif isinstance(n, ast.Import):
            for a in n.names:
                if a.name.split(".")[0] == "ftcloud":
                    yield a.name, n.lineno


def test_every_module_is_in_a_layer():
    units = {_unit(name) for name, _ in _modules()} - {"ftcloud"}
    assert units <= set(RANK), f"modules outside every layer: {sorted(units - set(RANK))}"


def test_imports_flow_one_way():
    bad = []
    for name, path in _modules():
        src = _unit(name)
        for target, line in _imports(path):
            dst = _unit(target)
            if dst == "ftcloud" or dst == src:
                continue  # the root package (__version__) and imports within a package
            if src == "ftcloud":
                # `import ftcloud` stays light; the accessor registers itself and loads the science on first use
                ok = RANK[dst] <= RANK["ftcloud.layout"] or dst == "ftcloud.accessor"
            else:
                ok = RANK[dst] < RANK[src]
            if not ok:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {src} imports {target}")
    assert not bad, (
        "imports against the layers (lowest first: "
        + " < ".join("/".join(sorted(n.split(".")[-1] for n in layer)) for layer in LAYERS)
        + "):\n"
        + "\n".join(bad)
    )


def test_import_ftcloud_registers_the_accessor_without_loading_the_science():
    import subprocess
    import sys

    code = "import sys, ftcloud; print(sorted(m for m in sys.modules if m.startswith('ftcloud.science')))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stdout + p.stderr


def test_the_layer_check_sees_a_violation(tmp_path):
    """The check above can fail: a science module importing a workflow is reported."""
    p = tmp_path / "x.py"
    p.write_text("def f():\n    from ftcloud.workflows.trends import trends\n")
    targets = [t for t, _ in _imports(p)]
    assert targets == ["ftcloud.workflows.trends"]
    assert RANK[_unit(targets[0])] > RANK["ftcloud.science"]


# -- one definition per constant ---------------------------------------------------------------------

HOMES = {PKG / "study.py", PKG / "layout.py"}
LITERALS = {
    "a store group path": re.compile(r"""["'](?:predictors|targets|insitu)/[a-z0-9_]+["']"""),
    "a season tuple": re.compile(r"""\(\s*["']all["']\s*,\s*["']frozen["']\s*,\s*["']transition["']"""),
    "a season's months": re.compile(
        r"\(\s*12\s*,\s*1\s*\)|\(\s*2\s*,\s*3\s*,\s*4\s*,\s*10\s*,\s*11\s*\)|\(\s*5\s*,\s*6\s*,\s*7\s*,\s*8\s*,\s*9\s*\)"
    ),
    "an overpass hour table": re.compile(r"""\{\s*["']AM["']\s*:\s*6(?:\.0)?\s*,"""),
    "a step-hour table": re.compile(r"""\{\s*["']AM["']\s*:\s*\(\s*3\s*,\s*4\s*,\s*5\s*\)"""),
    "the paper's gains": re.compile(r"2\.44|7\.03"),
    "the test period": re.compile(r"""=\s*\(\s*["']2018-04-01["']\s*,\s*["']2020-12-31["']"""),
}


def _code_lines(path: Path):
    """(line number, text) of the lines outside docstrings and comments."""
    src = path.read_text()
    doc_lines = set()
    for n in ast.walk(ast.parse(src)):
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body:
            first = n.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                doc_lines.update(range(first.lineno, first.end_lineno + 1))
    for i, line in enumerate(src.splitlines(), 1):
        if i not in doc_lines and not line.lstrip().startswith("#"):
            yield i, line.split("  #")[0]


def test_study_constants_and_group_paths_are_typed_once():
    found = []
    for _, path in _modules():
        if path in HOMES:
            continue
        for i, line in _code_lines(path):
            for what, rx in LITERALS.items():
                if rx.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{i}: {what}: {line.strip()}")
    assert not found, "use ftcloud.study / ftcloud.layout instead of typing these again:\n" + "\n".join(found)


def test_the_literal_check_sees_a_duplicate():
    line = 'SEASONS = ("all", "frozen", "transition", "thawed"); g = open_group(s, "predictors/era5land")'
    assert LITERALS["a season tuple"].search(line) and LITERALS["a store group path"].search(line)


@pytest.mark.parametrize(
    "name",
    [
        "SEASONS",
        "SEASON_MONTHS",
        "SPLITS",
        "OVERPASS_HOURS",
        "LOCAL_STEP_HOURS",
        "PASSES",
        "PAPER",
        "TEST_PERIOD",
        "CTC_PERIOD",
        "CTC_SEASONS",
        "TCI_BINS",
        "TCI_LABELS",
        "CTC_NAMES",
        "BASELINE_PRODUCTS",
        "GROUPS",
    ],
)
def test_a_study_name_is_assigned_in_one_module(name):
    homes = []
    for _, path in _modules():
        for n in ast.parse(path.read_text()).body:
            targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, ast.AnnAssign) else []
            value = getattr(n, "value", None)
            is_alias = isinstance(value, (ast.Name, ast.Attribute))  # NAME = other.NAME re-exports, not a definition
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and not is_alias:
                homes.append(str(path.relative_to(ROOT)))
    assert len(homes) == 1, f"{name} is defined in {homes}"


def test_packaged_defaults_agree_with_the_code():
    """ftcloud.yaml repeats the defaults for users to read; they must be the code's."""
    from ftcloud import study
    from ftcloud.inference import InferencePlan

    cfg = yaml.safe_load((PKG / "ftcloud.yaml").read_text())
    assert cfg["targets_start"] == study.TARGETS_START
    assert cfg["train"]["epochs"] == study.TRAINING["epochs"]
    assert cfg["train"]["patience"] == study.TRAINING["patience"]
    assert cfg["predict"]["batch_days"] == InferencePlan().batch_days == study.TRAINING["predict_batch_days"]


# -- every package says what it holds ------------------------------------------------------------------

PACKAGES = sorted(p.parent for p in PKG.rglob("__init__.py"))


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_each_package_has_a_docstring_and_an_explicit_all(pkg):
    tree = ast.parse((pkg / "__init__.py").read_text())
    doc = ast.get_docstring(tree)
    assert doc and len(doc) > 40, f"{pkg.name}/__init__.py needs a docstring saying what lives there"
    names = [
        n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)
    ]
    assert names, f"{pkg.name}/__init__.py needs an explicit __all__"
    mod = importlib.import_module(".".join(pkg.relative_to(ROOT).parts))
    for n in mod.__all__:
        assert hasattr(mod, n) or importlib.util.find_spec(f"{mod.__name__}.{n}"), f"{mod.__name__}.__all__ names {n!r}"


# -- the twin's models do no I/O --------------------------------------------------------------------
TWIN_MODELS = sorted(
    [PKG / "synth" / "domain.py", PKG / "synth" / "truth.py", *(PKG / "synth" / "observers").glob("*.py")]
)
IO_MODULES = {"ftcloud.synth.writers", "h5py", "netCDF4", "os", "shutil", "pathlib", "io", "tempfile", "fsspec", "zarr"}
IO_CALLS = {"open", "write_text", "write_bytes", "mkdir", "unlink", "rename", "replace", "to_netcdf", "to_zarr"}


def _io_uses(path: Path):
    """(line, what) for each import of a file-system module and each call of a file-writing function."""
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.Import):
            for a in n.names:
                if a.name in IO_MODULES or a.name.split(".")[0] in IO_MODULES:
                    yield n.lineno, f"import {a.name}"
        elif isinstance(n, ast.ImportFrom) and n.module:
            names = {n.module} | {f"{n.module}.{a.name}" for a in n.names}
            for m in names:
                if m in IO_MODULES or m.split(".")[0] in IO_MODULES:
                    yield n.lineno, f"from {n.module} import ..."
                    break
        elif isinstance(n, ast.Call):
            f = n.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in IO_CALLS:
                yield n.lineno, f"{name}()"


def test_the_twins_truth_and_observers_do_no_io():
    """domain, truth and observers/ hold state and error models; files are written by generate + writers."""
    assert len(TWIN_MODELS) >= 8
    bad = [f"{p.relative_to(ROOT)}:{line}: {what}" for p in TWIN_MODELS for line, what in _io_uses(p)]
    assert not bad, "I/O in the twin's models:\n" + "\n".join(bad)


def test_the_io_check_sees_a_write(tmp_path):
    p = tmp_path / "obs.py"
    p.write_text("from ftcloud.synth import writers as W\nimport netCDF4\n\ndef f(path):\n    path.write_text('x')\n")
    assert [w for _, w in _io_uses(p)] == ["from ftcloud.synth import ...", "import netCDF4", "write_text()"]


# --------------------------------------------------------------------------------------
# locations: one options keyword; a location with other options is its own Store


def _option_variants(root: Path) -> list[str]:
    """Every function parameter named ``<something>_storage_options`` under ``root``."""
    found = []
    for p in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(), filename=str(p))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                    if arg.arg.endswith("_storage_options"):
                        found.append(f"{p.relative_to(root)}:{node.lineno} {node.name}({arg.arg})")
    return found


def test_no_function_takes_a_second_storage_options_keyword():
    assert _option_variants(PKG) == []


def test_the_options_check_sees_a_variant(tmp_path):
    (tmp_path / "m.py").write_text("def f(url, *, product_storage_options=None):\n    pass\n")
    assert _option_variants(tmp_path) == ["m.py:1 f(product_storage_options)"]


def test_a_store_keeps_its_own_options_and_does_not_show_them():
    from ftcloud.layout import Store, as_store

    s = Store("s3://bucket/product.zarr", {"endpoint_url": "http://127.0.0.1:9", "token": "not-to-be-seen"})
    assert as_store(s, {"anon": True}) is s  # a Store is never re-paired with the caller's options
    assert as_store("s3://b/store", {"anon": True}).storage_options == {"anon": True}
    assert as_store("local/folder").storage_options == {}
    assert "not-to-be-seen" not in repr(s) and "not-to-be-seen" not in str(s)


def _backend_switches(root: Path) -> list[str]:
    """Places that would change a user's matplotlib backend or pyplot state (matplotlib.use, pyplot imports)."""
    import ast

    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "use":
                if getattr(node.func.value, "id", None) == "matplotlib":
                    out.append(f"{path.name}:{node.lineno} matplotlib.use")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n == "matplotlib.pyplot" or n.endswith(".pyplot") for n in names) or (
                    getattr(node, "module", None) == "matplotlib" and "pyplot" in [a.name for a in node.names]
                ):
                    out.append(f"{path.name}:{node.lineno} pyplot")
    return out


def test_the_package_never_switches_a_users_matplotlib_backend():
    """Figures are drawn on Agg Figures without pyplot: a notebook that trains a model (whose card draws a chart)
    keeps plotting inline."""
    assert _backend_switches(PKG) == []


def test_the_backend_check_sees_a_switch(tmp_path):
    (tmp_path / "m.py").write_text("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n")
    assert sorted(_backend_switches(tmp_path)) == ["m.py:2 matplotlib.use", "m.py:3 pyplot"]

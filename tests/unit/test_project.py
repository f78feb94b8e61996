"""The project's promises about itself: two commands, CI runs the test one, pins, CLI help, config."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ftcloud.config import env_overrides, load_config, set_options, get_options
from ftcloud.errors import ValidationError

ROOT = Path(__file__).resolve().parents[2]


def _quick_start():
    """The same rule as ../shared/tools/newcomer-check: the first fenced block under a heading
    that says "quick start" (any case); blank lines and comments do not count."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^#+ .*quick ?start", line, re.I))
    fence = [i for i in range(start, len(lines)) if lines[i].startswith("```")][:2]
    block = lines[fence[0] + 1 : fence[1]]
    return [line for line in block if line.strip() and not line.startswith("#")]


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    cmds = _quick_start()
    assert len(cmds) == 2
    assert "pytest" in cmds[1] and "ftcloud run" in cmds[0]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert cmds[1] in ci, ".ci/run must run the README's test command verbatim"
    assert all("-c constraints.txt" in c for c in cmds)


def test_the_readme_opens_with_a_five_minute_first_run_before_the_full_demo():
    """The first command block of the README is the `tiny` run (measured at under five minutes); the quick
    start's demo comes after it, and the first run's install line is the quick start's."""
    text = (ROOT / "README.md").read_text()
    first = text.index("## A first run in five minutes")
    quick = re.search(r"^#+ .*quick ?start", text, re.I | re.M).start()
    assert first < quick
    block = text[first:quick].split("```")[1].strip().splitlines()
    assert len(block) == 1 and "ftcloud run --region tiny" in block[0]
    assert block[0].split(" && .venv/bin/ftcloud")[0] == _quick_start()[0].split(" && .venv/bin/ftcloud")[0]


def test_constraints_pin_what_the_brief_requires():
    text = (ROOT / "constraints.txt").read_text()
    for pin in ("torch==2.13.0", "pangeo-forge-recipes==0.10.8", "zarr==2.18.*", "kerchunk==0.2.7", "xarray==2025.6.1"):
        assert re.search(rf"^{re.escape(pin)}$", text, re.M), pin


@pytest.mark.parametrize(
    "sub", ["", "synth", "ingest", "info", "train", "predict", "validate", "trends", "run", "report"]
)
def test_every_command_has_help(sub):
    args = [sys.executable, "-m", "ftcloud.cli"] + ([sub] if sub else []) + ["--help"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage: ftcloud" in out.stdout


def test_import_does_not_pull_torch_or_beam():
    code = (
        "import sys, ftcloud, ftcloud.sources.pipelines, ftcloud.workflows.ingest; "
        "print('torch' in sys.modules, 'apache_beam' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_config_layers(tmp_path):
    assert load_config()["region"] == "demo"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("region: tiny\nchunks:\n  predictors: {time: 64}\n")
    merged = load_config(cfg, environ={"FTCLOUD_START": "2001-01-01", "FTCLOUD_CHUNKS__PREDICTORS__X": "64"})
    assert merged["region"] == "tiny" and merged["start"] == "2001-01-01"
    assert merged["chunks"]["predictors"] == {"time": 64, "pass": 1, "y": 128, "x": 64}
    with set_options(region="qtp"):
        assert get_options()["region"] == "qtp"
    assert get_options()["region"] == "demo"


def test_config_rejects_typos_and_credentials(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("regoin: tiny\n")
    with pytest.raises(ValidationError, match="unknown option 'regoin'.*region"):
        load_config(bad)
    secret = tmp_path / "secret.yaml"
    secret.write_text("storage:\n  secret_access_key: abc\n")
    with pytest.raises(ValidationError, match="looks like a credential"):
        load_config(secret)
    with pytest.raises(ValidationError, match="credential"):
        env_overrides({"FTCLOUD_STORAGE__TOKEN": "abc"})


def test_cli_refuses_credentials_on_the_command_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ftcloud.cli", "info", "--store", str(tmp_path), "--storage-option", "secret=abc"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "credentials are never passed" in out.stderr


def test_license_citation_and_the_papers_doi():
    """The licence pyproject names is the LICENSE file's; CITATION.cff cites this version and the paper's DOI."""
    import tomllib

    import yaml

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"]["text"] == "BSD-3-Clause"
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == meta["license"]["text"]
    assert str(cff["version"]) == meta["version"]
    (paper,) = cff["references"]
    assert (
        paper["doi"] == "10.3390/rs16060950" and paper["year"] == 2024 and paper["authors"][0]["family-names"] == "Cui"
    )
    assert "https://doi.org/10.3390/rs16060950" in (ROOT / "README.md").read_text()


def test_version_and_verbosity_flags_anywhere(monkeypatch, capsys):
    """--version; -v/-q/--progress before or after the subcommand; progress bars only on a terminal
    (or with --progress), never with -q; -v raises ftcloud's loggers, not the other libraries'."""
    import io
    import logging

    from ftcloud import __version__, cli
    from ftcloud.cli import main
    from ftcloud.report.results import TrendsResults
    from ftcloud.workflows import trends as wf_trends

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"ftcloud {__version__}"

    seen = []
    monkeypatch.setattr(cli, "_check_store", lambda *a, **k: {})
    monkeypatch.setattr(cli, "_check_product", lambda *a, **k: None)
    monkeypatch.setattr(wf_trends, "trends", lambda p, s, o, **kw: seen.append(kw["progress"]) or TrendsResults(o))
    base = ["trends", "--product", "p.zarr", "--store", "s", "--out", "o"]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for argv, tty, want in (
        (base, True, True),  # a terminal: bars
        (base, False, False),  # a batch log: none
        (base + ["--progress"], False, True),
        (["-q", *base], True, False),
        ([*base, "-q"], True, False),  # after the subcommand too
        ([*base, "--progress", "-q"], True, False),  # -q wins
    ):
        monkeypatch.setattr(sys, "stderr", Terminal() if tty else io.StringIO())
        assert main(argv) == 0
        assert seen[-1] is want, (argv, tty)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    # as in a fresh interpreter: no root handler yet (pytest's own are put back afterwards), so that
    # the CLI's logging set-up takes effect here and its root level can be checked
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.WARNING)
    assert main([*base, "-v"]) == 0
    assert logging.getLogger("ftcloud").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("distributed").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("fsspec").getEffectiveLevel() >= logging.WARNING


def test_run_checks_the_period_against_every_stage_before_anything_runs(tmp_path):
    from ftcloud.workflows.run import check_period

    assert check_period(load_config(None)) == []  # the demo's 41 years and the paper's splits
    seven = load_config(None) | {"start": "2014-01-01", "end": "2020-12-31"}
    assert check_period(seven) == [
        "trends: 7 years < 10: frozen days are computed, the per-pixel trend test is not (n/a in the report)"
    ]
    # own splits in the run config (YAML dates become ISO strings) are what training will use
    (tmp_path / "c.yaml").write_text(
        'region: tiny\nstart: "2017-01-01"\nend: "2017-03-31"\ntargets_start: "2017-01-01"\n'
        "train:\n  splits:\n    train: [[2017-01-01, 2017-01-31]]\n    val: [[2017-02-01, 2017-02-28]]\n"
        "    test: [[2017-03-01, 2017-03-31]]\n"
    )
    cfg = load_config(str(tmp_path / "c.yaml"))
    assert cfg["train"]["splits"]["val"] == [["2017-02-01", "2017-02-28"]]
    assert check_period(cfg) == [
        "trends: 1 year < 10: frozen days are computed, the per-pixel trend test is not (n/a in the report)"
    ]
    # a split outside the target period (targets_start..end) is refused, naming it
    late = cfg | {"targets_start": "2017-02-15"}
    with pytest.raises(
        ValidationError,
        match=r"the train split \(2017-01-01..2017-01-31\) has no day in the run's "
        r"target period 2017-02-15..2017-03-31",
    ):
        check_period(late)
    # malformed splits are refused when the config is read
    for bad in (
        "{train: [[2017-01-01]], val: [], test: []}",
        "{train: [[2017-02-01, 2017-01-01]], val: [[2017-02-01, 2017-02-02]], test: [[2017-03-01, 2017-03-02]]}",
        "[1, 2]",
    ):
        (tmp_path / "b.yaml").write_text(f"train: {{splits: {bad}}}\n")
        with pytest.raises(ValidationError, match="train.splits must be null"):
            load_config(str(tmp_path / "b.yaml"))


def test_run_takes_region_and_period_from_the_command_line(monkeypatch):
    """`ftcloud run --region/--start/--end/--targets-start` override the config (seen by run() and --dry-run)."""
    from ftcloud import cli
    from ftcloud.workflows import run as wf_run

    seen = {}

    def fake_run(config=None, out=None, progress=True, store=None, cluster=None, overrides=None):
        seen.update(overrides or {})
        raise SystemExit(0)

    monkeypatch.setattr(wf_run, "run", fake_run)
    argv = ["run", "--region", "tiny", "--start", "2016-01-01", "--end", "2017-12-31", "--targets-start", "2016-01-01"]
    with pytest.raises(SystemExit):
        cli.main([*argv, "--out", "o"])
    assert seen == {"region": "tiny", "start": "2016-01-01", "end": "2017-12-31", "targets_start": "2016-01-01"}


def test_run_dry_run_plans_the_command_lines_region_and_period(capsys):
    from ftcloud import cli

    rc = cli.main(["run", "--dry-run", "--region", "tiny", "--start", "2017-01-01", "--end", "2017-03-31"])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("ingest plan: tiny (10 x 13 cells), 2017-01-01 .. 2017-03-31"), out


def test_the_dry_run_sizes_the_tb_groups_only_when_the_run_makes_them(capsys, monkeypatch):
    """The twin makes TB when ``synth: tb`` is on (the default): the plan then lists tb_smap and tb_multifreq
    from the targets' start; with TB off, or no family asked for, it does not."""
    from ftcloud import cli

    argv = ["run", "--dry-run", "--region", "tiny", "--start", "2017-01-01", "--end", "2017-03-31"]
    argv += ["--targets-start", "2017-02-01"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.strip().startswith("tb_") and len(line.split()) == 7
    }
    # 59 days from February: two 32-day chunks of the one-tile window, each group
    assert {k: (int(v[2]), int(v[3])) for k, v in rows.items()} == {"tb_smap": (2, 32), "tb_multifreq": (2, 32)}
    assert "as if the source holds them" not in out  # the twin: it will
    monkeypatch.setenv("FTCLOUD_SYNTH__TB", "false")
    assert cli.main(argv) == 0
    assert "tb_" not in capsys.readouterr().out


def test_a_box_west_of_greenwich_needs_no_equals_sign(capsys):
    from ftcloud import cli

    rc = cli.main(
        ["run", "--dry-run", "--bbox", "-106.0,-105.5,40.0,40.4", "--start", "2017-01-01", "--end", "2017-01-31"]
    )
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("ingest plan: -106,-105.5,40,40.4 (4 x 5 cells)"), out


def test_the_docstring_examples_run():
    """Every docstring example of the package that is not marked +SKIP runs and prints what it shows."""
    import doctest
    import importlib
    import pkgutil

    import ftcloud

    attempted, failures = 0, []
    for m in pkgutil.walk_packages(ftcloud.__path__, "ftcloud."):
        mod = importlib.import_module(m.name)
        r = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False)
        attempted += r.attempted
        if r.failed:
            failures.append(f"{m.name}: {r.failed} of {r.attempted}")
    assert not failures, failures
    assert attempted >= 20, attempted  # the check ran on real examples


def test_the_docs_site_builds_without_a_warning(tmp_path):
    """docs/ (the science and twin pages and the API reference from the numpydoc docstrings) builds
    with Sphinx, warnings as errors; a broken page fails the same build (so the check can fail)."""
    import shutil

    sphinx_build = pytest.importorskip("sphinx.cmd.build")
    pytest.importorskip("myst_nb")
    out = tmp_path / "html"
    assert sphinx_build.build_main(["-W", "-q", "-b", "html", str(ROOT / "docs"), str(out)]) == 0
    for page in ("index.html", "science.html", "twin.html", "api/science.html", "api/accessor.html"):
        assert (out / page).exists(), page
    api = (out / "api" / "science.html").read_text()
    assert "triple_collocation" in api and "mann_kendall" in api and "frozen_days" in api
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):  # each notebook a page, with its committed figures
        page = (out / "notebooks" / (nb.stem + ".html")).read_text()
        assert "<img" in page and "_images/" in page, nb.name
    broken = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", broken, ignore=shutil.ignore_patterns("_build", "notebooks"))
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    assert sphinx_build.build_main(["-W", "-q", "-b", "html", str(broken), str(tmp_path / "ok")]) == 0
    (broken / "api" / "science.rst").write_text(
        (broken / "api" / "science.rst").read_text() + "\n.. automodule:: ftcloud.no_such_module\n"
    )
    assert sphinx_build.build_main(["-W", "-q", "-b", "html", str(broken), str(tmp_path / "b")]) != 0

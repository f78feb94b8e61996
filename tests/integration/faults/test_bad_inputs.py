"""Bad input gets one line: the option or file, the value, the expectation; exit code 2; nothing that looks complete.

Each case runs ``python -m ftcloud.cli`` in a subprocess (as a user would) and fails before any heavy work, so the
whole file runs in about a minute. The fast lane runs the tables of cases in-process instead (``ftcloud.cli.main``
with the same arguments, environment and folder: the same one line, exit code and outputs, about 10x quicker);
the subprocess runs, which also see what the interpreter's start and logging print, are ``slow`` (CI runs both).
The library-level checks behind them (``timeutil.check_period``, the config
schema, ``run.tree_fingerprint``) have small direct tests at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ftcloud.errors import SourceFileError, ValidationError

#: files that tell a reader "this output is finished"
COMPLETE_MARKERS = (
    "_SUCCESS",
    ".zmetadata",
    "run-summary.json",
    "ftcloud-stages.json",
    "validate-summary.json",
    "trends-summary.json",
    "report.html",
    "parameters.json",
)

TINY_RUN = (
    'region: tiny\nstart: "2017-01-01"\nend: "2017-01-31"\ntargets_start: "2017-01-01"\n'
    "train: {splits: {train: [[2017-01-01, 2017-01-15]], val: [[2017-01-16, 2017-01-22]], "
    "test: [[2017-01-23, 2017-01-31]]}}\n"
)
#: the same month with the paper's splits, which it cannot hold
TINY_RUN_PAPER_SPLITS = 'region: tiny\nstart: "2017-01-01"\nend: "2017-01-31"\ntargets_start: "2017-01-01"\n'


def pytest_generate_tests(metafunc):
    if "how" in metafunc.fixturenames:
        metafunc.parametrize("how", ["in-process", pytest.param("subprocess", marks=pytest.mark.slow)])


#: the loggers whose levels ftcloud.cli.main sets
_CLI_LOGGERS = ("ftcloud", "botocore", "aiobotocore", "boto3", "urllib3", "aiohttp", "s3transfer", "distributed")


def _in_process(args, env: dict, cwd: Path | None) -> subprocess.CompletedProcess:
    """``ftcloud.cli.main(args)`` here, with the environment and working folder of a fresh run."""
    import contextlib
    import io

    from ftcloud.cli import main

    import logging

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    # logging as in a fresh interpreter: no root handler, so that the CLI's own set-up writes its log
    # lines to this call's stderr (they count as lines of the output); everything is put back after
    root = logging.getLogger()
    saved_handlers, saved_root_level = root.handlers[:], root.level
    saved_levels = {n: logging.getLogger(n).level for n in _CLI_LOGGERS}
    out, err = io.StringIO(), io.StringIO()
    try:
        for k in [k for k in os.environ if k.startswith("FTCLOUD_")]:
            del os.environ[k]
        os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        root.handlers = []
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(list(args))
            except SystemExit as e:  # argparse's errors
                rc = e.code if isinstance(e.code, int) else 1
    finally:
        for h in root.handlers:
            h.close()
        root.handlers, root.level = saved_handlers, saved_root_level
        for n, level in saved_levels.items():
            logging.getLogger(n).setLevel(level)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def ftcloud(
    *args: str, env: dict | None = None, cwd: Path | None = None, how: str = "subprocess"
) -> subprocess.CompletedProcess:
    """``ftcloud ARGS`` in a fresh interpreter (or, ``how="in-process"``, through ``ftcloud.cli.main``),
    with no FTCLOUD_* variable but those in ``env``."""
    if how == "in-process":
        return _in_process(args, env or {}, cwd)
    e = {k: v for k, v in os.environ.items() if not k.startswith("FTCLOUD_")}
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ftcloud.cli", *args], capture_output=True, text=True, timeout=180, env=e, cwd=cwd
    )


def assert_one_line(p: subprocess.CompletedProcess, *needles: str) -> str:
    text = (p.stdout + p.stderr).strip()
    assert p.returncode == 2, f"rc {p.returncode}:\n{text}"
    assert "Traceback" not in text, text
    # `ftcloud run` announces each stage it starts ("[ingest] running ...") and what its period allows
    # ("[check] trends: 1 year < 10 ..."): progress, not part of the error
    lines = [ln for ln in text.splitlines() if not re.match(r"\[\w+\] running \.\.\.$|\[check\] ", ln)]
    assert len(lines) == 1, f"{len(lines)} lines:\n{text}"
    assert lines[0].startswith("ftcloud"), lines[0]
    for n in needles:
        assert n in lines[0], f"{n!r} not in: {lines[0]}"
    return lines[0]


def assert_nothing_complete(*paths: Path) -> None:
    for p in paths:
        if not p.exists():
            continue
        found = [q for q in p.rglob("*") if q.name in COMPLETE_MARKERS]
        assert not found, f"{p} holds files that claim completion: {found}"


def fake_twin(folder: Path, start="2017-01-01", end="2017-02-28", region="tiny") -> Path:
    """A folder that looks like a twin to ``ftcloud ingest`` (only its recorded parameters)."""
    (folder / "truth").mkdir(parents=True)
    (folder / "truth" / "parameters.json").write_text(
        json.dumps({"region": {"name": region}, "period": {"start": start, "end": end, "targets_start": start}})
    )
    return folder


# (id, argv with {tmp}, environment, words the line must hold, folders that must hold nothing complete)
CASES = [
    # 1. end before start, bad dates
    (
        "synth-end-before-start",
        ["synth", "--region", "tiny", "--start", "2017-02-01", "--end", "2017-01-01", "--out", "{tmp}/twin"],
        {},
        ["--end 2017-01-01", "--start 2017-02-01"],
        ["twin"],
    ),
    (
        "synth-bad-date",
        ["synth", "--region", "tiny", "--start", "2017-13-01", "--end", "2017-01-01", "--out", "{tmp}/twin"],
        {},
        ["--start", "'2017-13-01'", "YYYY-MM-DD"],
        ["twin"],
    ),
    (
        "synth-compact-date",
        ["synth", "--region", "tiny", "--start", "20170101", "--end", "2017-02-01", "--out", "{tmp}/twin"],
        {},
        ["--start", "'20170101'", "YYYY-MM-DD"],
        ["twin"],
    ),
    (
        "synth-before-1951",
        ["synth", "--region", "tiny", "--start", "1940-01-01", "--end", "1940-02-01", "--out", "{tmp}/twin"],
        {},
        ["--start", "1940-01-01", "1951"],
        ["twin"],
    ),
    (
        "synth-imerg-bad-date",
        [
            "synth",
            "--region",
            "tiny",
            "--start",
            "2017-01-01",
            "--end",
            "2017-02-01",
            "--imerg-start",
            "soon",
            "--out",
            "{tmp}/twin",
        ],
        {},
        ["--imerg-start", "'soon'"],
        ["twin"],
    ),
    (
        "ingest-end-before-start",
        ["ingest", "--source", "{tmp}/src", "--store", "{tmp}/store", "--start", "2017-02-01", "--end", "2017-01-01"],
        {},
        ["--end 2017-01-01", "--start 2017-02-01"],
        ["store"],
    ),
    (
        "ingest-end-before-twin-start",
        ["ingest", "--source", "{twin}", "--store", "{tmp}/store", "--end", "2016-12-01"],
        {},
        ["--end 2016-12-01", "2017-01-01"],
        ["store"],
    ),
    (
        "predict-end-before-start",
        [
            "predict",
            "--store",
            "{tmp}/store",
            "--model",
            "{tmp}/m",
            "--out",
            "{tmp}/p.zarr",
            "--start",
            "2017-02-01",
            "--end",
            "2017-01-01",
        ],
        {},
        ["--end 2017-01-01", "--start 2017-02-01"],
        ["p.zarr"],
    ),
    (
        "validate-test-end-before-start",
        [
            "validate",
            "--store",
            "{tmp}/store",
            "--product",
            "{tmp}/p.zarr",
            "--out",
            "{tmp}/val",
            "--test-start",
            "2019-01-01",
            "--test-end",
            "2018-12-31",
        ],
        {},
        ["--test-end 2018-12-31", "--test-start"],
        ["val"],
    ),
    (
        "run-config-end-before-start",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN.replace('end: "2017-01-31"', 'end: "2016-12-31"')},
        ["cfg.yaml", "end 2016-12-31", "start 2017-01-01"],
        ["out"],
    ),
    (
        "run-period-too-short-for-the-splits",  # was found only after synth and ingest had run
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN_PAPER_SPLITS},
        ["the val split", "2016-04-01..2016-10-31", "2017-01-01..2017-01-31", "train.splits"],
        ["out"],
    ),
    (
        "run-config-splits-malformed",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN_PAPER_SPLITS + "train: {splits: {train: [[2017-01-01]], val: [], test: []}}\n"},
        ["cfg.yaml", "train.splits must be", "[first, last]"],
        ["out"],
    ),
    (
        "run-cli-end-before-start",
        ["run", "--start", "2017-02-01", "--end", "2017-01-01", "--out", "{tmp}/out"],
        {},
        ["--end 2017-01-01", "--start 2017-02-01"],
        ["out"],
    ),
    (
        "run-cli-start-after-the-configs-end",
        ["run", "--config", "{tmp}/cfg.yaml", "--start", "2017-03-01", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN},
        ["the run's period", "--start", "end 2017-01-31 is before start 2017-03-01"],
        ["out"],
    ),
    (
        "run-cli-unknown-region",
        ["run", "--region", "atlantis", "--out", "{tmp}/out"],
        {},
        ["--region", "'atlantis'", "known regions"],
        ["out"],
    ),
    (
        "run-cli-bbox-not-four-numbers",
        ["run", "--bbox", "101,102.2,33.5", "--out", "{tmp}/out"],
        {},
        ["--bbox", "'101,102.2,33.5'", "LON0,LON1,LAT0,LAT1"],
        ["out"],
    ),
    (
        "run-cli-bbox-west-after-east",
        ["run", "--bbox", "102.2,101,33.5,34.3", "--out", "{tmp}/out"],
        {},
        ["--bbox", "longitudes 102.2, 101", "LON0 < LON1"],
        ["out"],
    ),
    (
        "run-cli-bbox-without-a-cell",
        ["run", "--bbox", "101,101.05,33.5,34.3", "--out", "{tmp}/out"],
        {},
        ["--bbox", "10 x 0 cell centres", "at least 3 x 3"],
        ["out"],
    ),
    (
        "run-cli-bbox-and-region",
        ["run", "--bbox", "101,102.2,33.5,34.3", "--region", "tiny", "--out", "{tmp}/out"],
        {},
        ["--region tiny and --bbox 101,102.2,33.5,34.3", "one of them"],
        ["out"],
    ),
    (
        "retrieve-unknown-method",
        ["retrieve", "--method", "svm", "--store", "{tmp}/store", "--out", "{tmp}/p.zarr"],
        {},
        ["--method", "invalid choice: 'svm'", "npr"],
        ["p.zarr"],
    ),
    (
        "retrieve-store-missing",
        ["retrieve", "--method", "npr", "--store", "{tmp}/store", "--out", "{tmp}/p.zarr"],
        {},
        ["--store", "does not exist", "ftcloud ingest"],
        ["p.zarr"],
    ),
    (
        "retrieve-fit-start-without-end",
        ["retrieve", "--method", "dfa", "--store", "{tmp}/store", "--out", "{tmp}/p.zarr", "--fit-start", "2016-01-01"],
        {},
        ["--fit-start and --fit-end go together"],
        ["p.zarr"],
    ),
    (
        "retrieve-fit-end-before-start",
        [
            "retrieve",
            "--method",
            "dfa",
            "--store",
            "{tmp}/s",
            "--out",
            "{tmp}/p.zarr",
            "--fit-start",
            "2017-01-01",
            "--fit-end",
            "2016-01-01",
        ],
        {},
        ["--fit-end", "2016-01-01", "before"],
        ["p.zarr"],
    ),
    (
        "run-env-end-before-start",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN, "FTCLOUD_END": "2016-01-01"},
        ["FTCLOUD_END", "2016-01-01"],
        ["out"],
    ),
    # 2. unknown region
    (
        "synth-unknown-region",
        ["synth", "--region", "atlantis", "--start", "2017-01-01", "--end", "2017-01-31", "--out", "{tmp}/twin"],
        {},
        ["--region", "'atlantis'", "demo", "tiny"],
        ["twin"],
    ),
    (
        "ingest-unknown-region",
        ["ingest", "--source", "{tmp}/src", "--store", "{tmp}/store", "--region", "atlantis"],
        {},
        ["--region", "'atlantis'", "demo", "tiny"],
        ["store"],
    ),
    (
        "run-config-unknown-region",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN.replace("tiny", "atlantis")},
        ["cfg.yaml", "'atlantis'", "demo", "tiny"],
        ["out"],
    ),
    (
        "run-env-unknown-region",
        ["run", "--out", "{tmp}/out"],
        {"FTCLOUD_REGION": "atlantis"},
        ["FTCLOUD_REGION", "atlantis", "tiny"],
        ["out"],
    ),
    # 3. chunk sizes through the environment (and a run config)
    *[
        (
            f"run-env-chunk-{v}",
            ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
            {"cfg.yaml": TINY_RUN, "FTCLOUD_CHUNKS__PREDICTORS__TIME": v},
            ["FTCLOUD_CHUNKS__PREDICTORS__TIME", v, "a positive integer"],
            ["out"],
        )
        for v in ("0", "-5", "abc")
    ],
    (
        "ingest-env-chunk-0",
        ["ingest", "--source", "{twin}", "--store", "{tmp}/store"],
        {"FTCLOUD_CHUNKS__TARGETS__Y": "0"},
        ["FTCLOUD_CHUNKS__TARGETS__Y", "0", "a positive integer"],
        ["store"],
    ),
    (
        "run-dry-run-env-chunk-1.5",
        ["run", "--config", "{tmp}/cfg.yaml", "--dry-run"],
        {"cfg.yaml": TINY_RUN, "FTCLOUD_CHUNKS__PREDICTORS__X": "1.5"},
        ["FTCLOUD_CHUNKS__PREDICTORS__X", "1.5", "a positive integer"],
        [],
    ),
    (
        "run-config-chunk-0",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN + "chunks: {predictors: {time: 0}}\n"},
        ["cfg.yaml", "chunks.predictors.time", "0", "a positive integer"],
        ["out"],
    ),
    (
        "run-env-batch-days-0",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN, "FTCLOUD_PREDICT__BATCH_DAYS": "0"},
        ["FTCLOUD_PREDICT__BATCH_DAYS", "0", "a positive integer"],
        ["out"],
    ),
    (
        "run-env-bad-yaml",
        ["run", "--out", "{tmp}/out"],
        {"FTCLOUD_START": "[2017"},
        ["FTCLOUD_START", "[2017"],
        ["out"],
    ),
    # 4. numeric options that must be positive
    (
        "train-batch-days-unknown",
        ["train", "--store", "{tmp}/store", "--out", "{tmp}/m", "--batch-days", "0"],
        {},
        ["ftcloud train: error: unrecognized arguments: --batch-days 0"],
        ["m"],
    ),
    *[
        (
            f"predict-batch-days-{v}",
            ["predict", "--store", "{tmp}/store", "--model", "{tmp}/m", "--out", "{tmp}/p.zarr", "--batch-days", v],
            {},
            ["--batch-days", f"'{v}'", "a positive integer"],
            ["p.zarr"],
        )
        for v in ("0", "-4")
    ],
    (
        "predict-time-chunk-0",
        ["predict", "--store", "{tmp}/store", "--model", "{tmp}/m", "--out", "{tmp}/p.zarr", "--time-chunk", "0"],
        {},
        ["--time-chunk", "'0'", "a positive integer"],
        ["p.zarr"],
    ),
    (
        "predict-workers-0",
        ["predict", "--store", "{tmp}/store", "--model", "{tmp}/m", "--out", "{tmp}/p.zarr", "--workers", "0"],
        {},
        ["--workers", "'0'", "a positive integer"],
        ["p.zarr"],
    ),
    (
        "train-epochs-0",
        ["train", "--store", "{tmp}/store", "--out", "{tmp}/m", "--epochs", "0"],
        {},
        ["--epochs", "'0'", "a positive integer"],
        ["m"],
    ),
    (
        "train-patience-neg",
        ["train", "--store", "{tmp}/store", "--out", "{tmp}/m", "--patience", "-1"],
        {},
        ["--patience", "'-1'", "a positive integer"],
        ["m"],
    ),
    (
        "train-kernel-even",
        ["train", "--store", "{tmp}/store", "--out", "{tmp}/m", "--kernel", "4"],
        {},
        ["--kernel", "'4'", "odd"],
        ["m"],
    ),
    (
        "train-hidden-text",
        ["train", "--store", "{tmp}/store", "--out", "{tmp}/m", "--hidden", "12,x"],
        {},
        ["--hidden", "'12,x'", "positive integers"],
        ["m"],
    ),
    (
        "train-lr-0",
        ["train", "--store", "{tmp}/store", "--out", "{tmp}/m", "--lr", "0"],
        {},
        ["--lr", "'0'", "a positive number"],
        ["m"],
    ),
    (
        "train-seed-neg",
        ["train", "--store", "{tmp}/store", "--out", "{tmp}/m", "--seed", "-1"],
        {},
        ["--seed", "'-1'", "a non-negative integer"],
        ["m"],
    ),
    (
        "ingest-workers-0",
        ["ingest", "--source", "{tmp}/src", "--store", "{tmp}/store", "--workers", "0"],
        {},
        ["--workers", "'0'", "a positive integer"],
        ["store"],
    ),
    (
        "run-workers-neg",
        ["run", "--out", "{tmp}/out", "--workers", "-2"],
        {},
        ["--workers", "'-2'", "a positive integer"],
        ["out"],
    ),
    (
        "run-worker-memory-0",
        ["run", "--out", "{tmp}/out", "--worker-memory", "0"],
        {},
        ["--worker-memory", "'0'", "a positive number"],
        ["out"],
    ),
    (
        "validate-min-count-0",
        ["validate", "--store", "{tmp}/store", "--product", "{tmp}/p.zarr", "--out", "{tmp}/val", "--min-count", "0"],
        {},
        ["--min-count", "'0'", "a positive integer"],
        ["val"],
    ),
    (
        "trends-alpha-1.5",
        ["trends", "--product", "{tmp}/p.zarr", "--store", "{tmp}/store", "--out", "{tmp}/tr", "--alpha", "1.5"],
        {},
        ["--alpha", "'1.5'", "between 0 and 1"],
        ["tr"],
    ),
    (
        "synth-seed-neg",
        [
            "synth",
            "--region",
            "tiny",
            "--start",
            "2017-01-01",
            "--end",
            "2017-01-31",
            "--seed",
            "-3",
            "--out",
            "{tmp}/twin",
        ],
        {},
        ["--seed", "'-3'", "a non-negative integer"],
        ["twin"],
    ),
    (
        "info-storage-option-no-equals",
        ["info", "--store", "{tmp}/store", "--storage-option", "anon"],
        {},
        ["--storage-option", "'anon'", "KEY=VALUE"],
        ["store"],
    ),
    (
        "run-cluster-unknown",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out", "--cluster", "foo"],
        {"cfg.yaml": TINY_RUN},
        ["--cluster", "'foo'", "tcp://"],
        ["out"],
    ),
    (
        "run-env-cluster-unknown",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN, "FTCLOUD_CLUSTER__KIND": "foo"},
        ["FTCLOUD_CLUSTER__KIND", "'foo'", "tcp://"],
        ["out"],
    ),
    (
        "predict-cluster-unknown",
        ["predict", "--store", "{tmp}/store", "--model", "{tmp}/m", "--out", "{tmp}/p.zarr", "--cluster", "foo"],
        {},
        ["--cluster", "'foo'", "tcp://"],
        ["p.zarr"],
    ),
    # 5. typo keys under nested sections
    (
        "run-config-chunks-group-typo",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN + "chunks: {predictorz: {time: 8}}\n"},
        ["cfg.yaml", "'chunks.predictorz'", "insitu, predictors, targets"],
        ["out"],
    ),
    (
        "run-config-chunks-dim-typo",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN + "chunks: {predictors: {tme: 8}}\n"},
        ["cfg.yaml", "'chunks.predictors.tme'", "pass, time, x, y"],
        ["out"],
    ),
    (
        "run-env-chunks-group-typo",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN, "FTCLOUD_CHUNKS__PREDICTORZ__TIME": "1"},
        ["FTCLOUD_CHUNKS__PREDICTORZ__TIME", "'chunks.predictorz'", "predictors"],
        ["out"],
    ),
    (
        "run-env-train-typo",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN, "FTCLOUD_TRAIN__EPOCH": "1"},
        ["FTCLOUD_TRAIN__EPOCH", "'train.epoch'", "epochs"],
        ["out"],
    ),
    (
        "run-config-missing",
        ["run", "--config", "{tmp}/nope.yaml", "--out", "{tmp}/out"],
        {},
        ["nope.yaml", "not found"],
        ["out"],
    ),
    (
        "run-config-bad-yaml",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": "region: [tiny\n"},
        ["cfg.yaml", "YAML"],
        ["out"],
    ),
    (
        "synth-out-is-a-file",
        ["synth", "--region", "tiny", "--start", "2017-01-01", "--end", "2017-01-31", "--out", "{tmp}/afile"],
        {},
        ["afile", "not a folder"],
        [],
    ),
    (
        "run-out-is-a-file",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/afile"],
        {"cfg.yaml": TINY_RUN},
        ["--out", "afile", "not a folder"],
        [],
    ),
    # 6. source fingerprint: odd file names and a symlink loop are fingerprinted; the run then stops on the
    #    missing ERA5-Land files (one line), not on the fingerprint
    (
        "run-source-odd-names",
        ["run", "--config", "{tmp}/cfg.yaml", "--out", "{tmp}/out"],
        {"cfg.yaml": TINY_RUN + "source: {odd}\n"},
        ["era5land", "missing"],
        ["out"],
    ),
    # 7. stores: unknown schemes, a scheme whose package is missing, a credential as an option
    ("info-unknown-scheme", ["info", "--store", "foo://bucket/store"], {}, ["foo://bucket/store", "'foo'"], []),
    (
        "ingest-gs-without-gcsfs",
        ["ingest", "--source", "{twin}", "--store", "gs://bucket/store"],
        {},
        ["gs://bucket/store", "'gs'"],
        [],
    ),
    (
        "info-credential-option",
        ["info", "--store", "{tmp}/store", "--storage-option", "secret=s3cr3tvalue"],
        {},
        ["secret=...", "credentials"],
        [],
    ),
    (
        "ingest-credential-env",
        ["ingest", "--source", "{twin}", "--store", "{tmp}/store"],
        {"FTCLOUD_STORAGE__TOKEN": "s3cr3tvalue"},
        ["storage.token", "credential"],
        ["store"],
    ),
    # 8. the paths: a malformed date, an end before its start, an unknown region (some of them pinned above
    #    for other options), a missing or wrong store / product / output folder, a typo in --sources
    (
        "synth-malformed-date",
        ["synth", "--region", "tiny", "--start", "2020-13-45", "--end", "2020-12-31", "--out", "{tmp}/twin"],
        {},
        ["--start", "'2020-13-45'", "YYYY-MM-DD"],
        ["twin"],
    ),
    (
        "predict-malformed-date",
        ["predict", "--store", "{tmp}/store", "--model", "{tmp}/m", "--out", "{tmp}/p.zarr", "--start", "2020-13-45"],
        {},
        ["--start", "'2020-13-45'", "YYYY-MM-DD"],
        ["p.zarr"],
    ),
    (
        "validate-ctc-end-before-start",
        [
            "validate",
            "--store",
            "{tmp}/store",
            "--product",
            "{tmp}/p.zarr",
            "--out",
            "{tmp}/val",
            "--ctc-start",
            "2000-01-02",
            "--ctc-end",
            "2000-01-01",
        ],
        {},
        ["--ctc-end 2000-01-01", "--ctc-start"],
        ["val"],
    ),
    (
        "synth-unknown-region-nowhere",
        ["synth", "--region", "nowhere", "--out", "{tmp}/twin"],
        {},
        ["--region", "'nowhere'", "china, demo, qtp, tiny"],
        ["twin"],
    ),
    (
        "ingest-region-outside-the-twin",
        ["ingest", "--source", "{twin}", "--store", "{tmp}/store", "--region", "demo"],
        {},
        ["--region demo", "'tiny'", "--region tiny", "ftcloud synth --region demo"],
        ["store"],
    ),
    (
        "ingest-sources-typo",
        ["ingest", "--source", "{twin}", "--store", "{tmp}/store", "--sources", "era5land,smap"],
        {},
        ["--sources", "'smap'", "smap_e_ft"],
        ["store"],
    ),
    (
        "ingest-sources-empty",
        ["ingest", "--source", "{twin}", "--store", "{tmp}/store", "--sources", ","],
        {},
        ["--sources", "names no source"],
        ["store"],
    ),
    (
        "info-missing-store",
        ["info", "--store", "{tmp}/nowhere"],
        {},
        ["--store", "nowhere", "does not exist", "ftcloud ingest"],
        [],
    ),
    ("info-not-a-store", ["info", "--store", "{tmp}/src"], {}, ["--store", "src", "holds no ftcloud group"], []),
    ("info-store-is-a-file", ["info", "--store", "{tmp}/afile"], {}, ["--store", "afile", "is a file"], []),
    (
        "train-missing-store",
        ["train", "--store", "{tmp}/nowhere", "--out", "{tmp}/m"],
        {},
        ["--store", "nowhere", "does not exist", "ftcloud ingest"],
        ["m"],
    ),
    (
        "predict-missing-store",
        ["predict", "--store", "{tmp}/nowhere", "--model", "{tmp}/m", "--out", "{tmp}/p.zarr"],
        {},
        ["--store", "nowhere", "does not exist", "ftcloud ingest"],
        ["p.zarr"],
    ),
    (
        "validate-missing-store",
        ["validate", "--store", "{tmp}/nowhere", "--product", "{tmp}/p.zarr", "--out", "{tmp}/val"],
        {},
        ["--store", "nowhere", "does not exist", "ftcloud ingest"],
        ["val"],
    ),
    (
        "trends-missing-store",
        ["trends", "--product", "{tmp}/p.zarr", "--store", "{tmp}/nowhere", "--out", "{tmp}/tr"],
        {},
        ["--store", "nowhere", "does not exist", "ftcloud ingest"],
        ["tr"],
    ),
    (
        "report-missing-run-folder",
        ["report", "--out", "{tmp}/nowhere"],
        {},
        ["--out", "nowhere", "does not exist", "ftcloud run"],
        ["nowhere"],
    ),
    (
        "report-empty-run-folder",  # was: a report headed "demo, 1980-2020" over nothing
        ["report", "--out", "{tmp}/src"],
        {},
        ["--out", "src", "holds no result of an `ftcloud run`", "ftcloud run --out"],
        ["src"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line(case, tmp_path, how):
    _, argv, env, needles, outputs = case
    env = dict(env)
    (tmp_path / "src").mkdir()
    (tmp_path / "afile").write_text("not a folder\n")
    subs = {"tmp": str(tmp_path)}
    if any("{twin}" in a for a in argv):
        subs["twin"] = str(fake_twin(tmp_path / "twin-src"))
    if any("{odd}" in a for a in env.get("cfg.yaml", "").split()):
        subs["odd"] = str(odd_source(tmp_path / "odd"))
    for name in [k for k in env if k.endswith((".yaml", ".json"))]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(_sub(env.pop(name), subs))
    p = ftcloud(*[_sub(a, subs) for a in argv], env=env, cwd=tmp_path, how=how)
    assert_one_line(p, *needles)
    assert_nothing_complete(*[tmp_path / o for o in outputs])


def fake_store(root: Path, groups: dict) -> Path:
    """Group folders that ``store_status`` reads as ``groups[path]`` ("complete" or "incomplete"), holding no data:
    enough for the checks the CLI makes before it reads anything."""
    for group, status in groups.items():
        (root / group).mkdir(parents=True, exist_ok=True)
        (root / group / ".zgroup").write_text('{"zarr_format": 2}')
        (root / group / ".ftcloud-status.json").write_text(json.dumps({"status": status}))
    return root


def _store_cases():
    from ftcloud import layout

    full = {g: "complete" for g in layout.GROUPS.values()}
    product = {"p.zarr": "complete"}
    # (id, argv with {tmp}, groups under {tmp}/store, groups under {tmp} (the product), words, folders)
    return [
        (
            "validate-missing-product",
            ["validate", "--store", "{tmp}/store", "--product", "{tmp}/p.zarr", "--out", "{tmp}/val"],
            full,
            {},
            ["--product", "p.zarr", "does not exist", "ftcloud predict"],
            ["val"],
        ),
        (
            "trends-missing-product",
            ["trends", "--product", "{tmp}/p.zarr", "--store", "{tmp}/store", "--out", "{tmp}/tr"],
            full,
            {},
            ["--product", "p.zarr", "does not exist", "ftcloud predict"],
            ["tr"],
        ),
        (
            "trends-product-is-the-store",
            ["trends", "--product", "{tmp}/store", "--store", "{tmp}/store", "--out", "{tmp}/tr"],
            full,
            {},
            ["--product", "store", "is not a zarr group", "ftcloud predict"],
            ["tr"],
        ),
        (
            "trends-product-is-a-file",
            ["trends", "--product", "{tmp}/afile", "--store", "{tmp}/store", "--out", "{tmp}/tr"],
            full,
            {},
            ["--product", "afile", "is a file"],
            ["tr"],
        ),
        (
            "validate-incomplete-product",
            ["validate", "--store", "{tmp}/store", "--product", "{tmp}/p.zarr", "--out", "{tmp}/val"],
            full,
            {"p.zarr": "incomplete"},
            ["--product", "'incomplete'", "ftcloud predict", "resumes"],
            ["val"],
        ),
        (
            "validate-store-without-statics",
            ["validate", "--store", "{tmp}/store", "--product", "{tmp}/p.zarr", "--out", "{tmp}/val"],
            {layout.SMAP_E_FT: "complete"},
            product,
            ["--store", "statics", "--sources statics"],
            ["val"],
        ),
        (
            "train-store-without-targets",
            ["train", "--store", "{tmp}/store", "--out", "{tmp}/m"],
            {layout.ERA5LAND: "complete", layout.STATICS: "complete"},
            {},
            ["--store", layout.SMAP_E_FT, layout.ESDR_FT, "--sources smap_e_ft,esdr_ft"],
            ["m"],
        ),
        (
            "validate-truth-missing",
            [
                "validate",
                "--store",
                "{tmp}/store",
                "--product",
                "{tmp}/p.zarr",
                "--out",
                "{tmp}/val",
                "--truth",
                "{tmp}/nowhere",
            ],
            full,
            product,
            ["--truth", "nowhere", "no such folder"],
            ["val"],
        ),
        (
            "trends-truth-without-files",
            [
                "trends",
                "--product",
                "{tmp}/p.zarr",
                "--store",
                "{tmp}/store",
                "--out",
                "{tmp}/tr",
                "--truth",
                "{tmp}/src",
            ],
            full,
            product,
            ["--truth", "src", "truth_summary_9km.nc"],
            ["tr"],
        ),
        (
            "validate-out-is-a-file",
            ["validate", "--store", "{tmp}/store", "--product", "{tmp}/p.zarr", "--out", "{tmp}/afile"],
            full,
            product,
            ["--out", "afile", "not a folder"],
            [],
        ),
        (
            "trends-out-is-a-file",
            ["trends", "--product", "{tmp}/p.zarr", "--store", "{tmp}/store", "--out", "{tmp}/afile"],
            full,
            product,
            ["--out", "afile", "not a folder"],
            [],
        ),
        (
            "train-out-is-a-file",
            ["train", "--store", "{tmp}/store", "--out", "{tmp}/afile"],
            full,
            {},
            ["--out", "afile", "not a folder"],
            [],
        ),
        (
            "predict-out-is-a-file",
            ["predict", "--store", "{tmp}/store", "--model", "{tmp}/m", "--out", "{tmp}/afile"],
            full,
            {},
            ["--out", "afile", "is a file"],
            [],
        ),
    ]


STORE_CASES = _store_cases()


@pytest.mark.parametrize("case", STORE_CASES, ids=[c[0] for c in STORE_CASES])
def test_bad_store_or_product_gets_one_line(case, tmp_path, how):
    """Checked before any work starts: no progress bar, no traceback, the option and what to run."""
    _, argv, store_groups, other_groups, needles, outputs = case
    (tmp_path / "src").mkdir()
    (tmp_path / "afile").write_text("not a folder\n")
    fake_store(tmp_path / "store", store_groups)
    fake_store(tmp_path, other_groups)
    p = ftcloud(*[_sub(a, {"tmp": str(tmp_path)}) for a in argv], cwd=tmp_path, how=how)
    assert_one_line(p, *needles)
    assert_nothing_complete(*[tmp_path / o for o in outputs])


def test_info_lists_the_groups_of_a_store(tmp_path):
    """The other side of info-missing-store: a store with groups is listed, exit 0."""
    from ftcloud import layout

    fake_store(tmp_path / "store", {layout.STATICS: "incomplete"})
    p = ftcloud("info", "--store", str(tmp_path / "store"))
    assert p.returncode == 0, p.stderr
    assert re.match(r"^statics\s+incomplete$", p.stdout.strip()), p.stdout


@pytest.mark.slow  # builds and ingests a twin (~7 s)
def test_validate_product_on_another_window_gets_one_line(tmp_path):
    """A product that does not cover the store's cells (another store's, or a cut window) reaches
    ``science.compare``; its shape check is a GridMismatchError, one line (was a bare ValueError's traceback)."""
    import xarray as xr

    from ftcloud import layout
    from ftcloud.io.stores import mark_complete, open_group
    from ftcloud.synth import generate
    from ftcloud.workflows.ingest import ingest

    generate(
        "tiny", "2017-01-01", "2017-01-31", tmp_path / "twin", targets_start="2017-01-01", insitu=False, progress=False
    )
    ingest(
        str(tmp_path / "twin"),
        str(tmp_path / "store"),
        sources=["era5land", "smap_e_ft", "esdr_ft", "statics"],
        progress=False,
    )
    smap = open_group(str(tmp_path / "store"), layout.SMAP_E_FT)
    prod = smap[["smap_e_ft"]].rename({"smap_e_ft": "ft"}).isel(x=slice(0, -1))  # one column short
    for v in prod.variables.values():
        v.encoding = {}
    xr.Dataset(prod).to_zarr(tmp_path / "p.zarr", mode="w", consolidated=False)
    mark_complete(str(tmp_path / "p.zarr"))
    p = ftcloud(
        "-q",
        "validate",
        "--store",
        str(tmp_path / "store"),
        "--product",
        str(tmp_path / "p.zarr"),
        "--out",
        str(tmp_path / "val"),
        "--no-figures",
        "--test-start",
        "2017-01-01",
        "--test-end",
        "2017-01-31",
    )
    text = (p.stdout + p.stderr).strip()
    assert p.returncode == 2 and "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if " WARNING " not in ln]  # "direct validation skipped: no networks"
    assert len(lines) == 1 and lines[0].startswith("ftcloud validate: error: compare:"), text
    assert "same days and cells" in lines[0], lines[0]


def _sub(text: str, subs: dict) -> str:
    for k, v in subs.items():
        text = text.replace("{" + k + "}", v)
    return text


def odd_source(folder: Path) -> Path:
    """A source folder with a non-UTF-8 file name, a symlink loop, a dangling link and a link to its parent."""
    folder.mkdir()
    (folder / "README.txt").write_text("sources\n")
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.nc"), "wb") as f:  # latin-1 name: not UTF-8
        f.write(b"x")
    os.symlink("loop-b", folder / "loop-a")
    os.symlink("loop-a", folder / "loop-b")
    os.symlink("nowhere", folder / "dangling")
    (folder / "sub").mkdir()
    os.symlink("..", folder / "sub" / "up")  # a directory loop
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe")  # opening it would block forever
    return folder


# ---------------------------------------------------------------------------------------------------------------
# the checks behind them, called directly


def test_check_period():
    from ftcloud.core.timeutil import check_period

    assert check_period("2017-01-01", "2017-01-01", "x") == (np.datetime64("2017-01-01"), np.datetime64("2017-01-01"))
    assert check_period(None, "2017-01-31", "x") == (None, np.datetime64("2017-01-31"))
    assert check_period("2017-01-01 00:00:00", np.datetime64("2017-02-01T12"), "x")[1] == np.datetime64("2017-02-01")
    with pytest.raises(ValidationError, match=r"^synth: end 2017-01-01 is before start 2017-02-01"):
        check_period("2017-02-01", "2017-01-01", "synth")
    with pytest.raises(ValidationError, match=r"--b '2017-02-30' is not a date"):
        check_period("2017-02-01", "2017-02-30", names=("--a", "--b"))


def test_twin_generate_checks_its_period_before_touching_the_folder(tmp_path):
    from ftcloud.synth import generate

    with pytest.raises(ValidationError, match="end 2017-01-01 is before start 2017-02-01"):
        generate("tiny", "2017-02-01", "2017-01-01", tmp_path / "t", progress=False)
    assert not (tmp_path / "t").exists()
    with pytest.raises(ValidationError, match="unknown region 'atlantis'; known regions: china, demo, qtp, tiny"):
        generate("atlantis", "2017-01-01", "2017-01-31", tmp_path / "t", progress=False)


def test_library_errors_are_validation_errors():
    from ftcloud.core.grid import EASE2_9KM, GridWindow, region_window
    from ftcloud.core.timeutil import check_pass, step_offsets

    with pytest.raises(ValidationError, match="known regions"):
        region_window("atlantis")
    with pytest.raises(ValidationError, match="one of AM, PM.*'XM'"):
        check_pass("XM")
    with pytest.raises(ValidationError):
        step_offsets(100.0, "am")
    with pytest.raises(ValidationError, match="outside EASE2_G9km"):
        GridWindow(EASE2_9KM, 0, 0, 0, 5)


def test_converted_builtin_errors_are_ftcloud_errors():
    """The last bare ValueError/KeyError raises of the package: each is now an FTCloudError (so the CLI prints one
    line) and still the builtin a caller may catch."""
    import xarray as xr

    from ftcloud.errors import FTCloudError, GridMismatchError, MissingVariableError
    from ftcloud.layout import group_of
    from ftcloud.science.compare import compare, compare_counts
    from ftcloud.science.ctc import _moment_sums, triple_collocation
    from ftcloud.sources.era5land import _checked_era5

    a, b = np.zeros((4, 3), "u1"), np.zeros((4, 2), "u1")
    blocks = np.zeros(a.shape, int)
    with pytest.raises(GridMismatchError, match=r"product 'b' has shape \(4, 2\), the reference \(4, 3\)") as e:
        compare({"a": a, "b": b}, a, blocks, 1, target="a")
    assert isinstance(e.value, (FTCloudError, ValueError))
    with pytest.raises(MissingVariableError, match="target 'fused' is not among the products") as e:
        compare({"a": a}, a, blocks, 1)
    assert isinstance(e.value, KeyError) and "\n" not in str(e.value) and not str(e.value).startswith('"')
    with pytest.raises(MissingVariableError, match="target 'fused'"):
        compare_counts(np.zeros((1, 1, 4)), ["a"])
    x = xr.DataArray(np.zeros((5, 3), "u1"), dims=("time", "cell"))
    with pytest.raises(ValidationError, match="not on the same grid/time axis"):
        triple_collocation(x, x, x.isel(cell=slice(0, 2)), dim="time")
    with pytest.raises(GridMismatchError, match=r"shapes differ \(\(5, 3\), \(5, 3\), \(5, 2\)\)"):
        _moment_sums(x.values, x.values, x.values[:, :2])
    with pytest.raises(MissingVariableError, match="unknown source 'smap'; known sources: era5land") as e:
        group_of("smap")
    assert isinstance(e.value, KeyError)
    ds = xr.Dataset(
        {"zz": (("time", "latitude", "longitude"), np.ones((1, 1, 1)), {"units": "K"})},
        coords={"time": [np.datetime64("2017-01-01")], "latitude": [30.0], "longitude": [100.0]},
    )
    with pytest.raises(ValidationError, match="x.nc: no expected units known for ERA5-Land variable 'zz'"):
        _checked_era5(ds, "x.nc", ["zz"], None)


def test_config_schema_direct():
    from ftcloud.config import env_overrides, load_config, set_options

    # storage stays open for fsspec options; chunks accept their known groups and dims only
    assert load_config(environ={"FTCLOUD_STORAGE__REQUESTER_PAYS": "true"})["storage"]["requester_pays"] is True
    assert load_config(environ={"FTCLOUD_CHUNKS__INSITU__STATION": "4"})["chunks"]["insitu"] == {
        "time": 17520,
        "station": 4,
    }
    with pytest.raises(ValidationError, match=r"FTCLOUD_CHUNKS__TARGETS__STEP=2: unknown option 'chunks.targets.step'"):
        env_overrides({"FTCLOUD_CHUNKS__TARGETS__STEP": "2"})
    with pytest.raises(ValidationError, match=r"set_options: unknown option 'chunks.predictorz'"):
        set_options(chunks={"predictorz": {"time": 3}})
    with pytest.raises(ValidationError, match=r"chunks.predictors.time must be a positive integer, got True"):
        set_options(chunks={"predictors": {"time": True}})
    with pytest.raises(ValidationError, match=r"FTCLOUD_CLUSTER__WORKERS=0: cluster.workers must be a positive"):
        load_config(environ={"FTCLOUD_CLUSTER__WORKERS": "0"})
    assert load_config(environ={"FTCLOUD_CLUSTER__WORKERS": "3"})["cluster"]["workers"] == 3
    # a credential-looking name is refused before its value could be echoed
    with pytest.raises(ValidationError, match="credential") as e:
        env_overrides({"FTCLOUD_STORAGE__SECRET": "[hunter2"})
    assert "hunter2" not in str(e.value)


def test_tree_fingerprint_survives_odd_names_and_loops(tmp_path):
    from ftcloud.workflows.run import tree_fingerprint

    src = odd_source(tmp_path / "odd")
    fp = tree_fingerprint(str(src))
    assert fp == tree_fingerprint(str(src))
    with open(os.path.join(os.fsencode(src), b"caf\xe9.nc"), "ab") as f:
        f.write(b"y")
    assert tree_fingerprint(str(src)) != fp  # the odd name's content counts


def test_tree_fingerprint_reports_an_unreadable_source_in_one_line(tmp_path, monkeypatch):
    import ftcloud.workflows.run as run_mod

    src = tmp_path / "src"
    src.mkdir()
    (src / "era5.nc").write_bytes(b"x")

    def refuse(path, *a, **k):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(run_mod, "open", refuse, raising=False)
    with pytest.raises(SourceFileError, match=r"era5.nc: cannot read this source file \(Permission denied\)") as e:
        run_mod.tree_fingerprint(str(src))
    assert "\n" not in str(e.value)

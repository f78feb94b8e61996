"""``ftcloud run``: the whole job on the embedded default, stage by stage, resumable.

Stages: ``synth`` (the digital twin, when the config names no sources), ``ingest`` (all recipes
into the store, ``OUT/store`` or ``--store s3://...``), ``train`` (AM and PM models into
``OUT/models``), ``predict`` (1980-2020, both passes, into ``<store>/products/ft_convlstm.zarr`` for
object storage, else ``OUT/product/ft_convlstm.zarr``), ``validate`` (``OUT/validation``), ``trends``
(``OUT/trends``) and ``report`` (``OUT/report``: one self-contained HTML page plus Markdown and
CSV). A stage is skipped when a fingerprint of its settings and inputs (content hashes, not
timestamps) matches the one recorded when it last finished, and the outputs it made are still
marked complete. Prediction, validation and trends run on the dask cluster of the config's
``cluster`` section (started when the first of them runs, so a resumed run that skips them
starts none).
"""

from __future__ import annotations

from ftcloud import layout
from ftcloud.layout import RunLayout, Store

import contextlib
import hashlib
import json
import logging
import os
import time

from ftcloud.config import load_config
from ftcloud.errors import ValidationError, require

log = logging.getLogger(__name__)

STATE_FILE = os.path.basename(RunLayout(".").state)


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _shown(path: str) -> str:
    """A path for a message: bytes that are not UTF-8 (kept by os as surrogates) shown as \\xNN."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def tree_fingerprint(folder: str) -> str:
    """SHA-256 over relative paths and file contents of ``folder`` (twin sources are small).

    Names are hashed as the bytes the file system holds (they need not be UTF-8). Links to
    files and folders are followed, a folder reached a second time (a link loop such as
    ``sub/up -> ..``) is not walked again; links that lead nowhere (dangling, or a loop of
    links) and special files (FIFOs, sockets, devices) are never opened: their name and link
    target count instead. A file or folder that cannot be read raises
    :class:`~ftcloud.errors.SourceFileError` naming it.
    """
    import stat as st_

    from ftcloud.errors import SourceFileError

    h = hashlib.sha256()

    def rel(p: str) -> bytes:
        return os.fsencode(os.path.relpath(p, folder))

    def unreadable(e: OSError) -> SourceFileError:
        what = "folder" if os.path.isdir(e.filename or "") else "file"
        return SourceFileError(
            f"{_shown(str(e.filename))}: cannot read this source {what} ({e.strerror or e}); `ftcloud run` "
            "fingerprints everything under the source folder: make it readable or move it out of the folder"
        )

    def onerror(e: OSError):
        raise unreadable(e)

    top = os.stat(folder)
    seen = {(top.st_dev, top.st_ino)}
    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            try:
                s = os.stat(os.path.join(dirpath, d))
            except OSError:
                filenames.append(d)  # vanished or unreadable: reported with the files below
                continue
            if (s.st_dev, s.st_ino) in seen:  # a link back into the tree: hash where it points, do not walk
                h.update(b"\0loop:" + rel(os.path.join(dirpath, d)) + b"\0")
                continue
            seen.add((s.st_dev, s.st_ino))
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            try:
                s = os.stat(p)  # follows links
            except OSError:
                target = os.readlink(p) if os.path.islink(p) else ""
                h.update(b"\0dangling:" + rel(p) + b"\0" + os.fsencode(target) + b"\0")
                continue
            if not st_.S_ISREG(s.st_mode):  # a FIFO would block the read forever
                h.update(b"\0special:" + rel(p) + b"\0" + str(st_.S_IFMT(s.st_mode)).encode() + b"\0")
                continue
            h.update(rel(p))
            try:
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
            except OSError as e:
                if e.filename is None:
                    e.filename = p
                raise unreadable(e) from None
    return h.hexdigest()


def _load_state(out: str) -> dict:
    try:
        with open(os.path.join(out, STATE_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _save_state(out: str, state: dict) -> None:
    from ftcloud.io.secrets import redact_obj

    tmp = os.path.join(out, STATE_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(redact_obj(state), f, indent=2)
    os.replace(tmp, os.path.join(out, STATE_FILE))


def storage_options_of(cfg: dict) -> dict:
    """fsspec options from the config's ``storage`` section (nulls dropped; never credentials)."""
    so = {k: v for k, v in (cfg.get("storage") or {}).items() if v not in (None, False)}
    if "endpoint_url" in so:
        so["client_kwargs"] = {**so.get("client_kwargs", {}), "endpoint_url": so.pop("endpoint_url")}
    return so


class LazyCluster:
    """Starts the configured dask cluster the first time a stage asks for it; closed by :meth:`close`."""

    def __init__(self, spec: dict, printer=print):
        self.spec, self.printer = dict(spec or {}), printer
        self._stack = contextlib.ExitStack()
        self.client = None

    def __call__(self):
        if self.client is None:
            from ftcloud.cluster import connect

            spec = dict(self.spec)
            kind = spec.pop("kind", "local")
            self.client = self._stack.enter_context(connect(kind, printer=self.printer, **spec))
        return self.client

    def close(self):
        self._stack.close()
        self.client = None


def run(
    config: str | None = None,
    out: str = "ftcloud-out",
    progress: bool = True,
    *,
    store: str | None = None,
    cluster: str | None = None,
    overrides: dict | None = None,
) -> dict:
    """Run every stage; returns a summary with the time per stage and where outputs are.

    ``store`` and ``cluster`` override the config's ``store`` and ``cluster.kind``;
    ``overrides`` is merged into the loaded config like a second YAML file."""
    from ftcloud.config import _merge

    cfg = load_config(config)
    if overrides:
        cfg = _merge(cfg, overrides, "the command line")
    if store:
        cfg["store"] = store
    if cluster:
        _merge(cfg, {"cluster": {"kind": cluster}}, "--cluster")  # checks it
        cfg["cluster"]["kind"] = cluster
    so = storage_options_of(cfg)
    notes = check_period(cfg)  # every stage's needs of the period, before anything runs
    # the whole job ingests and trains: say so before the first stage, not after hours of it
    require("ingest", feature="ftcloud run", load=False)
    require("torch", feature="ftcloud run", load=False, note="torch==2.13.0, the CPU build")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValidationError(f"--out {out} is not a folder (a file of that name exists)")
    os.makedirs(out, exist_ok=True)
    for n in notes:
        print(f"[check] {n}", flush=True)
    _save_config(out, cfg)
    state = _load_state(out)
    summary: dict = {"out": os.path.abspath(out), "stages": {}, "cluster": cfg["cluster"]["kind"]}
    lazy = LazyCluster(cfg["cluster"])
    try:
        return _run(cfg, out, progress, so, state, summary, lazy)
    finally:
        lazy.close()


def _run(cfg, out, progress, so, state, summary, lazy) -> dict:
    from ftcloud.workflows.ingest import ingest
    from ftcloud.io.stores import join, store_status
    from ftcloud.layout import GROUPS

    def stage(name: str, fingerprint: str, fn, still_valid=lambda: True):
        t0 = time.perf_counter()
        if state.get(name, {}).get("fingerprint") == fingerprint and still_valid():
            print(f"[{name}] unchanged since last run, skipped", flush=True)
            summary["stages"][name] = {"seconds": 0.0, "skipped": True}
            return state[name].get("result")
        print(f"[{name}] running ...", flush=True)
        result = fn()
        dt = time.perf_counter() - t0
        state[name] = {"fingerprint": fingerprint, "result": result, "seconds": dt}
        _save_state(out, state)
        print(f"[{name}] done in {dt:.1f} s", flush=True)
        summary["stages"][name] = {"seconds": round(dt, 1), "skipped": False}
        return result

    source = cfg.get("source")
    if not source:
        from ftcloud.synth import generate

        source = RunLayout(out).sources
        tb = bool((cfg.get("synth") or {}).get("tb"))
        synth_settings = {k: cfg[k] for k in ("region", "start", "end", "targets_start", "seed")} | {
            "imerg": cfg["imerg"]
        }
        if tb:  # (only then: a run folder of an earlier ftcloud keeps its synth fingerprint)
            synth_settings["tb"] = True
        stage(
            "synth",
            _hash(synth_settings),
            lambda: _jsonable(
                generate(
                    cfg["region"],
                    cfg["start"],
                    cfg["end"],
                    source,
                    seed=cfg["seed"],
                    imerg_start=cfg["imerg"]["start"],
                    imerg_end=cfg["imerg"]["end"],
                    targets_start=cfg["targets_start"],
                    progress=progress,
                    tb=tb,
                )
            ),
            still_valid=lambda: os.path.exists(os.path.join(source, "_SUCCESS")),
        )
    store = cfg.get("store") or RunLayout(out).store
    ingest_settings = {k: cfg[k] for k in ("region", "start", "end", "targets_start", "chunks")}
    src_fp = tree_fingerprint(source) if os.path.isdir(source) else source

    def ingest_done():
        return (
            all(store_status(join(store, g), so) in (None, "complete") for g in GROUPS.values())
            and store_status(join(store, GROUPS["era5land"]), so) == "complete"
        )

    ingest_fp = _hash([ingest_settings, src_fp])
    # "cluster": the work items as dask tasks on the run's cluster (a gateway cluster on a hub);
    # else a Beam runner in this process (DirectRunner) or reached through its own options
    ingest_runner = str(cfg.get("ingest", {}).get("runner") or "DirectRunner")
    stage(
        "ingest",
        ingest_fp,
        lambda: {
            "groups": ingest(
                # the config's storage options are the store's and the product's; the sources are read
                # with none (public archives), as before locations carried their own options
                Store(source),
                store,
                region=cfg["region"],
                start=cfg["start"],
                end=cfg["end"],
                targets_start=cfg["targets_start"],
                chunks=cfg["chunks"],
                storage_options=so,
                runner="DirectRunner" if ingest_runner == "cluster" else ingest_runner,
                workers=int(cfg["ingest"].get("workers") or 1),
                client=lazy() if ingest_runner == "cluster" else None,
                progress=progress,
            ).groups
        },
        still_valid=ingest_done,
    )
    summary["store"] = store
    summary["sources"] = source

    # train AM and PM
    from ftcloud.model import read_reports, train
    from ftcloud.report.model import headline
    from ftcloud.model.training import TrainConfig

    models = RunLayout(out).models
    tcfg = TrainConfig(**{**cfg["train"], "hidden": tuple(cfg["train"]["hidden"])})
    train_fp = _hash([ingest_fp, tcfg.to_dict()])

    def do_train():
        heads = {}
        for p in ("AM", "PM"):
            print(f"[train] pass {p}", flush=True)
            heads[p] = headline(train(store, p, models, tcfg, storage_options=so, progress=progress))
        return heads

    heads = stage("train", train_fp, do_train, still_valid=lambda: len(read_reports(models)) == 2)
    summary["models"] = models
    summary["fused_vs_baselines_against_truth"] = heads

    # predict 1980-2020, both passes
    from ftcloud.inference import InferencePlan, predict

    # beside the inputs on object storage (where a cluster's workers and other users read it), else under OUT
    product = join(store, "products", layout.PRODUCT_NAME) if "://" in store else RunLayout(out).product
    plan = InferencePlan(**cfg["predict"], resources={"GPU": 1} if cfg["cluster"].get("gpu") else None)
    cards = read_reports(models)
    predict_fp = _hash([train_fp, {p: c["files"] for p, c in cards.items()}, plan.to_json()])
    stage(
        "predict",
        predict_fp,
        lambda: _jsonable(
            predict(
                store,
                models,
                product,
                plan=plan,
                storage_options=so,
                progress=progress,
                client=lazy(),
            )
        ),
        still_valid=lambda: store_status(product, so) == "complete",
    )
    summary["product"] = product

    # the retrieval families of the field, each its own product beside the ConvLSTM's
    from ftcloud.workflows.retrieve import METHODS, methods_for, retrieve

    wanted = (cfg.get("retrieve") or {}).get("methods", "auto")
    available = methods_for(store, so)
    methods = available if wanted == "auto" else [m for m in wanted if m in available]
    for m in [m for m in ([] if wanted == "auto" else wanted) if m not in available]:
        print(f"[retrieve] {m}: skipped, the store lacks its inputs (or scikit-learn for ert)", flush=True)
    if wanted == "auto":  # a family whose inputs are in the store but whose package is not installed: said
        for m in [m for m in methods_for(store, so, installed_only=False) if m not in available]:
            print(f"[retrieve] {m}: skipped, it needs {METHODS[m][2]}: pip install 'ftcloud[retrieve]'", flush=True)
    families = {}
    fit = _fit_period(cfg)  # the families learn where the ConvLSTM learns: its train and val splits
    for m in methods:
        path = os.path.join(os.path.dirname(product.rstrip("/")), f"ft_{m}.zarr")
        try:
            rec = stage(
                f"retrieve {m}",
                _hash([ingest_fp, m, cfg["seed"], fit]),
                lambda m=m, path=path: _jsonable(
                    retrieve(store, m, path, fit_period=fit, storage_options=so, seed=cfg["seed"], progress=progress)
                ),
                still_valid=lambda path=path: store_status(path, so) == "complete",
            )
        except ValidationError as e:  # a family this period cannot fit (no peak-winter day, say): said, not fatal
            print(f"[retrieve {m}] skipped: {e}", flush=True)
            continue
        families[rec["product"]] = path
    summary["families"] = families

    # science: direct validation + CTC, trends + Table 2
    from ftcloud.report.results import RunResults, TrendsResults, ValidationResults
    from ftcloud.workflows.trends import trends
    from ftcloud.workflows.validate import validate

    val_dir, trends_dir = RunLayout(out).validation, RunLayout(out).trends

    def with_cluster(fn):
        def go():
            if str(cfg["cluster"].get("kind") or "local") == "local":
                # The science reductions are graphs of many small tasks over data this machine
                # already holds; dask's threaded scheduler runs them 2-3.5x faster than an
                # in-process LocalCluster (demo: validate 15.7 vs 31.4 s, trends 5.8 vs 20.8 s).
                # Prediction, the heavy stage, runs on the LocalCluster and its dashboard.
                import dask

                with dask.config.set(scheduler="threads"):
                    return _jsonable(fn())
            lazy()
            return _jsonable(fn())

        return go

    truth = os.path.join(source, "truth") if not cfg.get("source") else None
    validate_fp = _hash(
        [predict_fp, "validate", _test_period(cfg), cfg["start"], cfg["end"]]
        + ([sorted(families.items()), ingest_fp] if families else [])
    )
    stage(
        "validate",
        validate_fp,
        with_cluster(
            lambda: validate(
                store,
                product,
                val_dir,
                truth=truth,
                storage_options=so,
                progress=progress,
                compare=families,
                test_period=_test_period(cfg),
                ctc_period=(cfg["start"], cfg["end"]),
            ).summary()
        ),
        still_valid=lambda: os.path.exists(os.path.join(val_dir, ValidationResults.SUMMARY)),
    )
    stage(
        "trends",
        _hash([predict_fp, "trends"]),
        with_cluster(
            lambda: trends(product, store, trends_dir, truth=truth, storage_options=so, progress=progress).summary()
        ),
        still_valid=lambda: os.path.exists(os.path.join(trends_dir, TrendsResults.SUMMARY)),
    )
    summary["validation"] = val_dir
    summary["trends"] = trends_dir

    # the report: always rewritten (cheap) so that it carries this run's stage times
    from ftcloud.report.html import write_report

    t0 = time.perf_counter()
    print("[report] writing the HTML report and tables ...", flush=True)
    rep = write_report(RunResults.load(out), config=cfg)
    summary["stages"]["report"] = {"seconds": round(time.perf_counter() - t0, 1), "skipped": False}
    summary["report"] = rep["files"]["report.html"]
    summary["findings"] = rep["headline"]
    summary["total_seconds"] = round(sum(s["seconds"] for s in summary["stages"].values()), 1)
    return summary


def _fit_period(cfg: dict) -> tuple[str, str]:
    """Where the retrieval families learn: from the first day of the train split to the last of the val split
    (the paper's 2015-04-01 .. 2018-03-31 unless the run config sets train.splits), never the test split."""
    from ftcloud.study import SPLITS

    splits = (cfg.get("train") or {}).get("splits") or SPLITS
    spans = [*splits["train"], *splits["val"]]
    return str(min(a for a, _ in spans)), str(max(b for _, b in spans))


def _test_period(cfg: dict) -> tuple[str, str]:
    """The run's test split as one span (first day of its first span .. last day of its last): what validate
    scores, the paper's 2018-04-01 .. 2020-12-31 unless the run config sets train.splits."""
    from ftcloud.study import SPLITS

    spans = ((cfg.get("train") or {}).get("splits") or SPLITS)["test"]
    return str(spans[0][0]), str(spans[-1][1])


def check_period(cfg: dict) -> list[str]:
    """What the stages need of the run's period, checked before the first stage runs.

    Training needs a day of each split (``train.splits``, default the paper's) in the target
    period ``max(start, targets_start) .. end``: a split without one is a
    :class:`~ftcloud.errors.ValidationError` (it failed only after synth and ingest ran). The
    trend test needs ``ftcloud.study.MIN_TREND_YEARS`` years: fewer is not an error (frozen days are still written)
    but is said now, and the report says n/a. Returns those notes.
    """
    from ftcloud.core.timeutil import split_mask
    import pandas as pd

    from ftcloud.core.timeutil import check_period as check_dates
    from ftcloud.study import MIN_TREND_YEARS, SPLITS

    check_dates(cfg["start"], cfg["end"], "the run's period (config, FTCLOUD_* variables and --start/--end)")

    start, end = pd.Timestamp(cfg["start"]), pd.Timestamp(cfg["end"])
    first = max(start, pd.Timestamp(cfg.get("targets_start") or start))
    days = pd.date_range(first, end, freq="D")
    splits = (cfg.get("train") or {}).get("splits")
    for name in ("train", "val", "test"):
        if not split_mask(days, name, splits).any():
            spans = ", ".join(f"{a}..{b}" for a, b in (splits or SPLITS)[name])
            raise ValidationError(
                f"run config: the {name} split ({spans}{'' if splits else ', the paper’s'}) has no day in the "
                f"run's target period {first:%Y-%m-%d}..{end:%Y-%m-%d} (targets_start..end); set train.splits "
                "to periods inside it, or widen start/end/targets_start"
            )
    notes = []
    years = end.year - start.year + 1
    if years < MIN_TREND_YEARS:
        notes.append(
            f"trends: {years} year{'s' if years != 1 else ''} < {MIN_TREND_YEARS}: frozen days are computed, the "
            "per-pixel trend test is not (n/a in the report)"
        )
    return notes


def _save_config(out: str, cfg: dict) -> None:
    """The resolved config beside the outputs (redacted; atomically), so that ``ftcloud report`` knows
    the region and period the folder holds without being told the config again."""
    from ftcloud.io.secrets import redact_obj

    path = RunLayout(out).config
    with open(path + ".tmp", "w") as f:
        json.dump(redact_obj(_jsonable(cfg)), f, indent=2)
    os.replace(path + ".tmp", path)


def _jsonable(d):
    return json.loads(json.dumps(d, default=str))

"""``ftcloud`` command line: a thin layer over the library functions.

Every subcommand has ``--help``. The library logs quietly; the CLI adds ``--verbose``,
progress bars and a one-line summary per stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time

from ftcloud import study
from ftcloud.errors import FTCloudError, IncompleteStoreError, MissingVariableError, ValidationError
from ftcloud.io.secrets import RedactingFilter, RedactingStream, is_credential_key, redact_text

log = logging.getLogger("ftcloud")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (the option, the value, the expectation) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number_arg(kind: type, ok, expected: str):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            v = None
        if v is None or (isinstance(v, float) and not math.isfinite(v)) or not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return v

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


_positive_int = _number_arg(int, lambda v: v > 0, "a positive integer")
_non_negative_int = _number_arg(int, lambda v: v >= 0, "a non-negative integer")
_positive_float = _number_arg(float, lambda v: v > 0, "a positive number")
_fraction = _number_arg(float, lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)")
_share = _number_arg(float, lambda v: 0 < v <= 1, "a share between 0 (exclusive) and 1")
_odd_int = _number_arg(int, lambda v: v > 0 and v % 2 == 1, "a positive odd integer (the ConvLSTM pads kernel // 2)")


def _int_list(text: str) -> tuple[int, ...]:
    """``--hidden``: comma-separated positive integers."""
    try:
        out = tuple(int(h) for h in text.split(","))
    except ValueError:
        out = ()
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 12 or 16,16, got {text!r}"
        )
    return out


def _region_arg(text: str) -> str:
    from ftcloud.core.grid import region_window

    try:
        return region_window(text).name
    except FTCloudError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _bbox_arg(text: str) -> str:
    from ftcloud.core.grid import parse_bbox, region_window

    try:
        return region_window(parse_bbox(text)).name
    except FTCloudError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _cluster_arg(text: str) -> str:
    if text not in ("local", "gateway") and "://" not in text:
        raise argparse.ArgumentTypeError(
            f"expected 'local', 'gateway' or a scheduler address like tcp://host:8786, got {text!r}"
        )
    return text


def _check_dates(args, *pairs) -> None:
    """Each (start option, end option) pair of ``args`` is a period of dates with start <= end (None: not given)."""
    from ftcloud.core.timeutil import check_period

    def value(option: str):
        return getattr(args, option.lstrip("-").replace("-", "_"))

    for a, b in pairs:
        check_period(value(a), value(b) if b else None, names=(a, b or "end"))


def _storage_options(args, prefix: str = "") -> dict:
    opts: dict = {}
    for item in getattr(args, f"{prefix}storage_option", None) or []:
        if "=" not in item:
            raise ValidationError(f"--{prefix.replace('_', '-')}storage-option expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        if is_credential_key(k):
            raise ValidationError(
                f"refusing --storage-option {k}=...: credentials are never passed on the command line "
                "(they would end up in shell history and logs); use AWS_* environment variables or ~/.aws"
            )
        opts[k] = {"true": True, "false": False}.get(v.lower(), v)
    if getattr(args, f"{prefix}anon", False):
        opts["anon"] = True
    return opts


def _location(args, option: str, prefix: str = ""):
    """The location given by ``--<option>`` with the storage options of its ``--<prefix>`` flags, as a Store."""
    from ftcloud.layout import Store

    return Store(getattr(args, option), _storage_options(args, prefix))


def _refuse_local_file(option: str, url: str, opts: dict, what: str) -> None:
    """A local ``url`` that is a file, not a folder: one line (zarr would fail with NotADirectoryError)."""
    from ftcloud.io.stores import filesystem, is_local

    fs, path = filesystem(url, opts)
    if is_local(fs) and os.path.isfile(path):
        raise ValidationError(f"{option} {url} is a file, not {what} (a folder)")


def _check_store(args, *needed: str) -> dict:
    """``--store`` is an ftcloud store holding the groups ``needed`` (layout paths), checked before any work
    starts or a progress bar is drawn: a missing or empty store is one line naming it. Returns group -> status
    (``complete``, ``incomplete`` or None) of every group."""
    from ftcloud.io.secrets import redact_url
    from ftcloud.io.stores import filesystem, join, store_status
    from ftcloud.layout import GROUPS

    url, opts = args.store, _storage_options(args)
    _refuse_local_file("--store", url, opts, "an ftcloud store")
    found = {g: store_status(join(url, g), opts) for g in GROUPS.values()}
    shown = redact_url(url)
    if not any(found.values()):
        fs, path = filesystem(url, opts)
        there = (
            "does not exist"
            if not fs.exists(path)
            else f"holds no ftcloud group (none of {', '.join(GROUPS.values())})"
        )
        raise ValidationError(
            f"--store {shown} {there}; write a store with `ftcloud ingest --source SOURCES --store {shown}`"
        )
    missing = [g for g in needed if found[g] is None]
    if missing:
        names = ",".join(k for k, g in GROUPS.items() if g in missing)
        raise MissingVariableError(
            f"--store {shown} has no {' or '.join(missing)} group, which "
            f"`ftcloud {args.command}` needs; ingest it with "
            f"`ftcloud ingest --source SOURCES --store {shown} --sources {names}`"
        )
    return found


def _check_product(args) -> None:
    """``--product`` is a complete FT product (a zarr group written by ``ftcloud predict``)."""
    from ftcloud.io.secrets import redact_url
    from ftcloud.io.stores import filesystem, store_status

    url, opts = args.product.rstrip("/") or args.product, _storage_options(args, "product_")
    shown = redact_url(url)
    _refuse_local_file("--product", url, opts, "an FT product")
    status = store_status(url, opts)
    if status is None:
        fs, path = filesystem(url, opts)
        there = "does not exist" if not fs.exists(path) else "is not a zarr group"
        raise ValidationError(
            f"--product {shown} {there}; write the FT product with "
            f"`ftcloud predict --store STORE --model MODELS --out {shown}`"
        )
    from ftcloud.io.stores import written_by_ftcloud

    if status != "complete" and written_by_ftcloud(url, opts):  # a foreign product has no status to check
        raise IncompleteStoreError(
            f"--product {shown} is marked {status!r}: the `ftcloud predict` that wrote it "
            "did not finish; run it again with the same --out (it resumes where it stopped)"
        )


def _check_truth(args) -> None:
    """``--truth``, when given, is a folder holding the twin's truth files (checked before any work starts)."""
    if args.truth:
        from ftcloud.workflows.inputs import find_truth

        find_truth(None, args.truth)


def _check_out_folder(option: str, path: str) -> None:
    """A local output folder: refused where a file of that name exists (os.makedirs would fail mid-run)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValidationError(f"{option} {path} is not a folder (a file of that name exists)")


def _add_storage_args(p: argparse.ArgumentParser, prefix: str = "", what: str = "the store") -> None:
    dash = prefix.replace("_", "-")
    p.add_argument(
        f"--{dash}storage-option",
        action="append",
        metavar="KEY=VALUE",
        help=(
            f"fsspec storage option for {what} (e.g. endpoint_url=http://127.0.0.1:9000); repeatable; never credentials"
        ),
    )
    p.add_argument(f"--{dash}anon", action="store_true", help=f"read {what} anonymously (public buckets)")


def cmd_synth(args) -> int:
    from ftcloud.synth import generate
    from ftcloud.synth import check_twin_period

    check_twin_period(args.start, args.end, "", names=("--start", "--end"))
    _check_out_folder("--out", args.out)
    _check_dates(args, ("--imerg-start", "--imerg-end"), ("--targets-start", None))
    t0 = time.perf_counter()
    summary = generate(
        args.region,
        args.start,
        args.end,
        args.out,
        seed=args.seed,
        imerg_start=args.imerg_start,
        imerg_end=args.imerg_end,
        targets_start=args.targets_start,
        insitu=not args.no_insitu,
        progress=not args.quiet,
        tb=args.tb,
    )
    nbytes = summary.get("bytes", 0)
    print(
        f"synth: wrote {summary.get('n_files', '?')} files, {nbytes / 1e6:.1f} MB to {args.out} in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return 0


def _ingest_period(args) -> None:
    """--start/--end, an omitted one taken where ingest() takes it (the twin's, else the config's)."""
    from ftcloud.config import get_options
    from ftcloud.core.timeutil import check_period

    opts = get_options()  # a bad FTCLOUD_* variable is reported before anything is read or written
    given, names = {"start": args.start, "end": args.end}, {"start": "--start", "end": "--end"}
    if None in given.values() or args.region:
        from ftcloud.workflows.ingest import twin_defaults, twin_parameters

        twin = twin_defaults(twin_parameters(args.source, _storage_options(args, "source_")))
        _check_twin_region(args.region, twin.get("region"), args.source)
        for key in [k for k, v in given.items() if v is None]:
            if twin.get(key):
                given[key], names[key] = twin[key], f"the twin's {key}"
            else:
                given[key], names[key] = opts[key], f"{key} (config)"
    check_period(given["start"], given["end"], names=(names["start"], names["end"]))
    _check_dates(args, ("--targets-start", None))


def _check_twin_region(region: str | None, twin_region: str | None, source: str) -> None:
    """``--region`` lies inside the region a twin's sources were written for (else regridding fails midway)."""
    from ftcloud.core.grid import REGIONS, region_window

    if not region or not twin_region or region == twin_region or twin_region not in REGIONS:
        return
    w, t = region_window(region), region_window(twin_region)
    if not (t.row0 <= w.row0 and w.row1 <= t.row1 and t.col0 <= w.col0 and w.col1 <= t.col1):
        raise ValidationError(
            f"--region {region} is not inside the region {twin_region!r} the twin in {source} "
            f"was written for; use --region {twin_region} (or a region inside it), or synthesise "
            f"a twin for {region} with `ftcloud synth --region {region}`"
        )


def _sources_arg(text: str | None) -> list[str] | None:
    """``--sources``: comma-separated source names, each one of layout.GROUPS."""
    from ftcloud.layout import GROUPS

    if text is None:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise ValidationError(f"--sources {text!r} names no source; choose from {','.join(GROUPS)}")
    unknown = [s for s in names if s not in GROUPS]
    if unknown:
        raise ValidationError(
            f"--sources: unknown source {', '.join(map(repr, unknown))}; "
            f"choose from {','.join(GROUPS)} (comma-separated)"
        )
    return names


def cmd_ingest(args) -> int:
    from ftcloud.workflows.ingest import ingest

    sources = _sources_arg(args.sources)
    _ingest_period(args)
    res = ingest(
        _location(args, "source", "source_"),
        _location(args, "store"),
        region=args.region,
        start=args.start,
        end=args.end,
        targets_start=args.targets_start,
        sources=sources,
        runner=args.runner,
        workers=args.workers,
        dask_address=args.dask_address,
        writer=args.writer,
        progress=not args.quiet,
    )
    print(res.summary())
    return 0


def cmd_info(args) -> int:
    from ftcloud.io.stores import open_group

    opts = _storage_options(args)
    for group, status in _check_store(args).items():  # a missing or empty store: one line, exit 2
        if status is None:
            continue
        line = f"{group:<22} {status}"
        if status == "complete":
            ds = open_group(args.store, group, opts)
            line += "  " + " ".join(f"{k}={v}" for k, v in ds.sizes.items()) + "  vars: " + ", ".join(ds.data_vars)
        print(line)
    return 0


def parse_splits(text: str | None) -> dict | None:
    """``train=A:B,C:D;val=E:F;test=G:H`` (inclusive dates) -> the splits dict; None = the paper's."""
    if not text:
        return None
    import pandas as pd

    out = {}
    for part in [p for p in text.split(";") if p.strip()]:
        name, _, ranges = part.strip().partition("=")
        name = name.strip()
        if name in out:
            raise ValidationError(f"--splits: {name} is given twice (list several ranges as {name}=A:B,C:D)")
        if name not in ("train", "val", "test") or not ranges:
            raise ValidationError(
                f"--splits: {part.strip()!r} is not NAME=START:END[,START:END...] with NAME train, val or test"
            )
        spans = []
        for r in ranges.split(","):
            a, sep, b = r.strip().partition(":")
            try:
                ta, tb = pd.Timestamp(a), pd.Timestamp(b)
            except ValueError:
                ta = tb = None
            if not sep or ta is None or tb is None or pd.isna(ta) or pd.isna(tb) or tb < ta:
                raise ValidationError(
                    f"--splits: {name} range {r.strip()!r} is not START:END with START <= END (YYYY-MM-DD)"
                )
            spans.append((f"{ta:%Y-%m-%d}", f"{tb:%Y-%m-%d}"))
        out[name] = tuple(spans)
    missing = {"train", "val", "test"} - set(out)
    if missing:
        raise ValidationError(f"--splits: no {', '.join(sorted(missing))} given (all three are needed)")
    return out


def cmd_train(args) -> int:
    from ftcloud import layout
    from ftcloud.model import train
    from ftcloud.report.model import headline, headline_text
    from ftcloud.model.training import TrainConfig

    _check_out_folder("--out", args.out)
    splits = parse_splits(args.splits)
    _check_store(args, layout.ERA5LAND, layout.STATICS, layout.SMAP_E_FT, layout.ESDR_FT)
    cfg = TrainConfig(
        hidden=args.hidden,
        kernel=args.kernel,
        epochs=args.epochs,
        patience=args.patience,
        seed=args.seed,
        lr=args.lr,
        splits=splits,
    )
    passes = ["AM", "PM"] if args.pass_ == "both" else [args.pass_]
    for p in passes:
        card = train(args.store, p, args.out, cfg, storage_options=_storage_options(args), progress=not args.quiet)
        h = headline(card)
        msg = f"train {p}: model and report in {args.out} (best epoch {card['training']['best_epoch']})"
        if h:
            msg += "\n  " + headline_text(p, h)
        print(msg)
    return 0


def cmd_predict(args) -> int:
    from ftcloud import layout
    from ftcloud.inference import InferencePlan, predict

    _check_dates(args, ("--start", "--end"))
    if args.time_chunk % args.batch_days:
        raise ValidationError(f"--time-chunk {args.time_chunk} must be a multiple of --batch-days {args.batch_days}")
    _check_store(args, layout.ERA5LAND, layout.STATICS)
    _refuse_local_file("--out", args.out, _storage_options(args), "a zarr product")
    passes = ["AM", "PM"] if args.pass_ == "both" else [args.pass_]
    plan = InferencePlan(
        tile=args.tile,
        batch_days=args.batch_days,
        time_chunk=args.time_chunk,
        fmt=args.format,
        precision=args.precision,
        resources={"GPU": 1} if args.gpu_workers else None,
        write_probability=args.probability,
    )
    import contextlib

    from ftcloud.cluster import connect

    cluster = (
        connect(args.cluster, workers=args.workers, gpu=args.gpu_workers, gateway_address=args.gateway_address)
        if args.cluster
        else contextlib.nullcontext()
    )
    with cluster as client:
        res = predict(
            _location(args, "store"),
            args.model,
            _location(args, "out"),
            start=args.start,
            end=args.end,
            passes=passes,
            plan=plan,
            progress=not args.quiet,
            client=client,
            transfer=args.transfer,
        )
    if res.get("skipped"):
        print(f"predict: {args.out} is complete for these days, inputs and models; nothing to do")
        return 0
    print(
        f"predict: {res.get('days', '?')} days x {len(passes)} pass(es) -> {args.out} ({res.get('regions', 0)} "
        "regions computed)"
    )
    return 0


def cmd_run(args) -> int:
    from ftcloud.workflows.run import run

    cluster = {
        k: v
        for k, v in {
            "workers": args.workers,
            "worker_memory_gib": args.worker_memory,
            "gateway_address": args.gateway_address,
        }.items()
        if v is not None
    }
    if args.gpu:
        cluster["gpu"] = True
    so = _storage_options(args)
    storage = {"anon": so.pop("anon", False)} if so.get("anon") else {}
    if "endpoint_url" in so:
        storage["endpoint_url"] = so.pop("endpoint_url")
    if so:
        raise ValidationError(
            f"--storage-option supports endpoint_url only (got {', '.join(so)}); "
            "put other fsspec options in the run config's storage section"
        )
    overrides = {k: v for k, v in {"cluster": cluster, "storage": storage}.items() if v}
    _check_dates(args, ("--start", "--end"), ("--targets-start", None))
    if args.bbox is not None and args.region is not None:
        raise ValidationError(f"--region {args.region} and --bbox {args.bbox}: give one of them")
    if args.bbox is not None:
        args.region = args.bbox
    for k in ("region", "start", "end", "targets_start"):
        if getattr(args, k) is not None:
            overrides[k] = getattr(args, k)
    if args.dry_run:
        from ftcloud.config import _merge, load_config
        from ftcloud.workflows.sizing import dry_run, format_plan

        cfg = _merge(load_config(args.config), overrides, "the command line")
        if args.cluster:
            cfg["cluster"]["kind"] = args.cluster
        plan = dry_run(cfg)
        print(format_plan(plan))
        return 0 if plan["fits"] else 2
    res = run(
        config=args.config,
        out=args.out,
        progress=not args.quiet,
        store=args.store,
        cluster=args.cluster,
        overrides=overrides,
    )
    print(
        "\nftcloud run finished: "
        + ", ".join(
            f"{k} {v['seconds']:.0f} s" + (" (skipped)" if v["skipped"] else "") for k, v in res["stages"].items()
        )
        + f"; total {res['total_seconds']:.0f} s"
    )
    print(
        f"  sources  {res['sources']}\n  store    {res['store']}\n  models   {res['models']}\n  product  "
        f"{res['product']}"
        f"\n  validation {res['validation']}\n  trends   {res['trends']}\n  report   {res['report']}"
    )
    from ftcloud.report.model import headline_text

    for p, h in (res.get("fused_vs_baselines_against_truth") or {}).items():
        if h:
            print("  " + headline_text(p, h) + " (points, 95 % interval)")
    import pandas as pd

    bpath = os.path.join(res.get("validation") or "", "baselines.csv")
    if os.path.exists(bpath) and os.path.getsize(bpath) > 1:
        b = pd.read_csv(bpath)
        b = b[(b["reference"] == "insitu") & (b["season"].isin(["all", "frozen"])) & (b["product"] == "SMAP_E_FT")]
        for _, r in b.iterrows():
            lo, hi = r["gain_lo"], r["gain_hi"]
            ci = (
                f"[{100 * lo:+.2f}, {100 * hi:+.2f}]"
                if pd.notna(lo) and pd.notna(hi)
                else "[no interval: too few blocks]"
            )
            print(
                f"  {r['pass']} against the in-situ networks, {r['season']}: fused - SMAP_E_FT {100 * r['gain']:+.2f} "
                f"points {ci} "
                f"over {int(r['n']):,} station-days (the paper: {study.PAPER['gain_overall_pct_points']:+.2f} overall, "
                f"{study.PAPER['gain_frozen_season_pct_points']:+.2f} frozen season)"
            )
    from ftcloud.io.secrets import redact_obj

    tmp = f"{args.out}/.run-summary.json.tmp"
    with open(tmp, "w") as f:  # written last and whole: its presence means the run finished
        json.dump(redact_obj(json.loads(json.dumps(res, default=str))), f, indent=2)
    os.replace(tmp, f"{args.out}/run-summary.json")
    return 0


def cmd_report(args) -> int:
    from ftcloud.config import load_config
    from ftcloud.report.html import write_report
    from ftcloud.report.results import RunResults

    if not os.path.isdir(args.out):
        what = "is not a folder" if os.path.exists(args.out) else "does not exist"
        raise ValidationError(
            f"--out {args.out} {what}; pass the output folder of an `ftcloud run` (its --out, default ./ftcloud-out)"
        )
    results = RunResults.load(args.out)
    if results.empty:
        raise ValidationError(
            f"--out {args.out} holds no result of an `ftcloud run` (no model card, validation, trends or stage "
            f"record); run `ftcloud run --out {args.out}` first"
        )
    res = write_report(results, config=load_config(args.config) if args.config else None)
    print(
        f"report: {res['files']['report.html']} ({res['figures']} figures) and {len(res['files']) - 1} more files in "
        f"{res['out']}"
    )
    return 0


def _compare_products(args) -> dict:
    """``--compare URL`` (repeatable) -> name -> Store; the name from the product's ``ftcloud_retrieval`` record
    (``NPR_FT``...), else its folder name."""
    import json as _json

    from ftcloud.io.stores import store_status

    from ftcloud.io.secrets import redact_url
    from ftcloud.io.stores import read_json

    out = {}
    for url in args.compare or []:
        opts = _storage_options(args, "product_")
        if store_status(url, opts) is None:
            raise MissingVariableError(
                f"--compare {redact_url(url)}: no zarr group here (an FT product is a zarr group)"
            )
        name = url.rstrip("/").rpartition("/")[2]
        try:  # the group's own attributes, raw: a foreign product has no ftcloud status record
            rec = _json.loads((read_json(url.rstrip("/") + "/.zattrs", opts) or {}).get("ftcloud_retrieval", "{}"))
        except (ValueError, TypeError):
            rec = {}
        label = rec.get("product") or name.removesuffix(".zarr")
        if label in out or label in ("ConvLSTM_FT", "ERA5_FT", "SMAP_E_FT", "ESDR_FT"):
            raise ValidationError(f"--compare {redact_url(url)}: a second product named {label!r}")
        out[label] = _location_of(url, opts)
    return out


def _location_of(url: str, opts: dict):
    from ftcloud.layout import Store

    return Store(url, opts)


def cmd_validate(args) -> int:
    from ftcloud import layout
    from ftcloud.workflows.validate import validate

    _check_dates(args, ("--test-start", "--test-end"), ("--ctc-start", "--ctc-end"), ("--map-start", None))
    _check_out_folder("--out", args.out)
    _check_store(args, layout.SMAP_E_FT, layout.STATICS)
    _check_product(args)
    _check_truth(args)
    res = validate(
        _location(args, "store"),
        _location(args, "product", "product_"),
        args.out,
        truth=args.truth,
        test_period=(args.test_start, args.test_end),
        ctc_period=(args.ctc_start, args.ctc_end),
        min_count=args.min_count,
        half_window_h=args.window_hours,
        map_start=args.map_start,
        figures=not args.no_figures,
        progress=not args.quiet,
        variable=args.variable,
        codes=args.codes,
        compare=_compare_products(args),
    )
    print(
        f"validate: wrote {len(res.files)} outputs to {args.out} in {res.seconds:.1f} s"
        + (f" (truth: {res.truth})" if res.truth else "")
        + "".join(f"; skipped {s}" for s in res.skipped)
    )
    d = res.direct_headline().get("insitu", {})
    for prod in ("ConvLSTM_FT", "SMAP_E_FT"):
        for net, v in sorted((d.get(prod) or {}).items()):
            if net == "all":
                continue
            ca = {p: (v.get("all", {}).get(p) or {}).get("CA_O") for p in ("AM", "PM")}
            print(
                f"  CA_O {prod:<12} {net:<10} "
                + "  ".join(f"{p} {100 * x:.2f} %" for p, x in ca.items() if x is not None)
            )
    for p, prods in (res.ctc_headline().get("all") or {}).items():
        for prod, v in prods.items():
            line = f"  CTC all {p} {prod:<15} sens {v.get('psi')} spec {v.get('eta')} bal {v.get('pi')}"
            if v.get("truth_pi") is not None:
                line += f"  | truth: sens {v['truth_psi']} spec {v['truth_eta']} bal {v['truth_pi']}"
            print(line)
    return 0


def cmd_retrieve(args) -> int:
    from ftcloud.workflows.retrieve import METHODS, retrieve

    if args.fit_start or args.fit_end:
        if not (args.fit_start and args.fit_end):
            raise ValidationError("--fit-start and --fit-end go together (the period the family learns on)")
        _check_dates(args, ("--fit-start", "--fit-end"))
    _check_out_folder("--out", args.out)
    _check_store(args, *METHODS[args.method][1])
    res = retrieve(
        _location(args, "store"),
        args.method,
        _location(args, "out", "out_"),
        fit_period=(args.fit_start, args.fit_end) if args.fit_start else None,
        seed=args.seed,
        progress=not args.quiet,
    )
    from ftcloud.io.secrets import redact_url

    print(
        f"retrieve {res['method']}: {res['product']} for {res['days']} days -> {redact_url(args.out)} in "
        f"{res['seconds']:.1f} s "
        f"(fitted on {res['fit_period'][0]} .. {res['fit_period'][1]})"
    )
    acc = (res.get("metrics") or {}).get("accuracy") or {}
    if acc:
        print(
            "  accuracy against the target, random 70/15/15 split: "
            + ", ".join(f"{k} {100 * v['accuracy']:.1f} % (n = {v['n']:,})" for k, v in acc.items())
        )
        imp = list((res["metrics"].get("feature_importances") or {}).items())[:5]
        print("  most important features: " + ", ".join(f"{k} {v:.3f}" for k, v in imp))
    return 0


def _lag_arg(text: str) -> int | None:
    """``--lag``: an integer >= 1 or ``all`` (None)."""
    if text.strip().lower() == "all":
        return None
    try:
        lag = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lag takes an integer >= 1 or 'all', got {text!r}") from None
    if lag < 1:
        raise argparse.ArgumentTypeError(f"--lag takes an integer >= 1 or 'all', got {lag}")
    return lag


def cmd_trends(args) -> int:
    from ftcloud import layout
    from ftcloud.workflows.trends import trends

    _check_out_folder("--out", args.out)
    if args.store:
        _check_store(args, layout.STATICS)
    _check_product(args)
    _check_truth(args)
    res = trends(
        _location(args, "product", "product_"),
        _location(args, "store") if args.store else None,
        args.out,
        truth=args.truth,
        variable=args.variable,
        codes=args.codes,
        variance=args.variance,
        lag=args.lag,
        alpha=args.alpha,
        q=args.fdr_q,
        min_valid=args.min_valid,
        figures=not args.no_figures,
        progress=not args.quiet,
    )
    print(
        f"trends: wrote {len(res.files)} outputs to {args.out} in {res.seconds:.1f} s"
        + (f" (truth: {res.truth})" if res.truth else "")
    )

    def f(v, spec):  # a statistic that is undefined (e.g. one year: no trend) prints as n/a
        return "n/a" if v is None or (isinstance(v, float) and v != v) else format(v, spec)

    rows = res.table2_rows("mean")
    for r in rows:
        line = (
            f"  {r['name']:<26} {r['n_pixels']:>6} px  {f(r['mean_frozen_days'], '7.1f')} d  "
            f"slope {f(r['sen_slope'], '+.3f')} d/yr [{f(r['slope_low'], '+.3f')}, {f(r['slope_high'], '+.3f')}] "
            f"p={f(r['p'], '.3f')}"
        )
        if r.get("planted_slope") is not None:
            line += f"  | truth {f(r.get('truth_sen_slope'), '+.3f')}  planted {f(r['planted_slope'], '+.3f')}"
        print(line)
    for p, v in res.fdr_significant_fraction.items():
        if p == "mean" or len(res.fdr_significant_fraction) <= 2:
            share = "n/a" if v is None or v != v else f"{100 * v:.1f} %"
            print(f"  pixels with a trend significant after FDR ({p}): {share}")
    for n in res.notes:
        print(f"  ({n})")
    if rows and all(r.get("sen_slope") is None for r in rows):
        print("  (no trends: the product covers too few years for a Sen slope; frozen days are in the outputs)")
    return 0


def _verbosity(p: argparse.ArgumentParser, default, top: bool = False) -> None:
    """-v/--verbose, -q/--quiet and --progress on ``p`` (the top parser, or each subcommand's)."""
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else default,
        help="more of ftcloud's log output; -vv: debug, and the other libraries' log too",
    )
    p.add_argument("-q", "--quiet", action="store_true", default=False if top else default, help="no progress bars")
    p.add_argument(
        "--progress",
        action="store_true",
        default=False if top else default,
        help="progress bars even when stderr is not a terminal (they are off in batch logs by default)",
    )


def _codes_arg(text: str) -> dict:
    """``--codes frozen=1,thawed=2`` (several values: ``frozen=1/3``) -> {"frozen": [1], "thawed": [2]}."""
    out: dict = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        k = k.strip().lower()
        try:
            vals = [int(x) for x in v.split("/") if x.strip()]
        except ValueError:
            vals = []
        if k not in ("frozen", "thawed") or not vals or k in out:
            raise argparse.ArgumentTypeError(f"--codes takes frozen=N,thawed=M (e.g. frozen=1,thawed=2), got {text!r}")
        out[k] = vals
    if set(out) != {"frozen", "thawed"}:
        raise argparse.ArgumentTypeError(f"--codes needs both frozen= and thawed=, got {text!r}")
    return out


def _add_product_reading(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--variable",
        default=None,
        help="the FT variable of a product not written by ftcloud (default: ft, or "
        "the one variable whose flag_meanings name frozen)",
    )
    p.add_argument(
        "--codes",
        type=_codes_arg,
        default=None,
        help="its codes, e.g. frozen=1,thawed=2 (TPDC); default: read from flag_values/flag_meanings",
    )


def build_parser() -> argparse.ArgumentParser:
    from ftcloud.layout import PRODUCT_NAME

    p = _Parser(
        prog="ftcloud",
        description="Cloud-native soil freeze/thaw engine (EASE2 9 km, ConvLSTM fusion, validation, trends).",
    )
    from ftcloud import __version__

    p.add_argument("--version", action="version", version=f"ftcloud {__version__}")
    _verbosity(p, argparse.SUPPRESS, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # -v/-q/--progress are also accepted after the subcommand (`ftcloud run -q`); given there, they win
    common = argparse.ArgumentParser(add_help=False)
    _verbosity(common, argparse.SUPPRESS)
    add = sub.add_parser

    def add_parser(name, **kw):
        kw["parents"] = [*kw.get("parents", []), common]
        return add(name, **kw)

    sub.add_parser = add_parser

    s = sub.add_parser(
        "synth",
        help="write the digital twin: native-format sources plus the hidden truth",
        description=(
            "Write ERA5-Land NetCDF, IMERG HDF5, SMAP/ESDR FT, auxiliary maps, in-situ CSV and the hidden truth "
            "for a region and period."
        ),
    )
    s.add_argument(
        "--region",
        type=_region_arg,
        default="demo",
        help="region name (demo, tiny, qtp, china) or a box LON0,LON1,LAT0,LAT1; default demo",
    )
    s.add_argument("--start", default="1980-01-01", help="first local date YYYY-MM-DD (default 1980-01-01)")
    s.add_argument("--end", default="2020-12-31", help="last local date YYYY-MM-DD (default 2020-12-31)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (same seed, same files)")
    s.add_argument(
        "--targets-start",
        default=study.TARGETS_START,
        help=f"first date of SMAP/ESDR targets (default {study.TARGETS_START})",
    )
    s.add_argument("--imerg-start", default=None, help="first date of IMERG granules (default: none written)")
    s.add_argument("--imerg-end", default=None, help="last date of IMERG granules")
    s.add_argument("--no-insitu", action="store_true", help="skip the station networks and CMA stations")
    s.add_argument(
        "--tb",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="brightness temperatures (default: on, as in ftcloud run): SMAP L-band TB H/V and NPR in the SMAP "
        "granules, and the multi-frequency (6.9-89 GHz) CETB-like record in tb_multifreq/ "
        "(docs/source-formats.md); --no-tb leaves them out (the retrieval families then have no inputs)",
    )
    s.set_defaults(func=cmd_synth)

    i = sub.add_parser(
        "ingest",
        help="run the pangeo-forge recipes: sources -> analysis-ready EASE2 zarr",
        description=(
            "Run every source recipe (ERA5-Land, IMERG, SMAP_E_FT, ESDR_FT, statics, in-situ) with Beam's local "
            "runner into groups under --store."
        ),
    )
    i.add_argument(
        "--source", required=True, help="folder or URL holding the source files (e.g. a `ftcloud synth` output)"
    )
    i.add_argument("--store", required=True, help="store root: a folder or s3://bucket/prefix")
    i.add_argument(
        "--region", type=_region_arg, default=None, help="region name (default: the twin's, else the config's)"
    )
    i.add_argument("--start", default=None, help="first local date (default: the twin's, else the config's)")
    i.add_argument("--end", default=None, help="last local date (default: the twin's, else the config's)")
    i.add_argument(
        "--targets-start",
        default=None,
        help=f"first date of FT targets (default: the twin's, else the config's, {study.TARGETS_START} as packaged)",
    )
    i.add_argument(
        "--sources",
        default=None,
        help="comma-separated subset of: era5land,imerg,smap_e_ft,esdr_ft,statics,networks,cma",
    )
    i.add_argument("--runner", default="DirectRunner", help="Beam runner (default DirectRunner)")
    i.add_argument("--workers", type=_positive_int, default=1, help="DirectRunner workers (default 1)")
    i.add_argument(
        "--writer",
        choices=["regions", "pangeo-forge"],
        default="regions",
        help="regions: skeleton + region writes in bounded memory (default); pangeo-forge: StoreToZarr (baseline)",
    )
    i.add_argument(
        "--dask-address",
        default=None,
        help="run the work items on Beam's DaskRunner against this dask scheduler (tcp://host:port)",
    )
    _add_storage_args(i)
    _add_storage_args(i, "source_", "the sources")
    i.set_defaults(func=cmd_ingest)

    n = sub.add_parser("info", help="list the groups of a store and whether each is complete")
    n.add_argument("--store", required=True, help="store root")
    _add_storage_args(n)
    n.set_defaults(func=cmd_info)

    t = sub.add_parser(
        "train",
        help="train the dual-head ConvLSTM for a pass, export it, report test accuracy",
        description=(
            "Train on both targets with the paper's splits, export TorchScript + torch.export + card, "
            "write report_<pass>.md."
        ),
    )
    t.add_argument("--store", required=True, help="store root written by `ftcloud ingest`")
    t.add_argument(
        "--pass",
        dest="pass_",
        choices=["AM", "PM", "both"],
        default="both",
        help="overpass (default both, trained separately)",
    )
    t.add_argument("--out", required=True, help="model folder")
    t.add_argument(
        "--hidden",
        type=_int_list,
        default=(12,),
        help="hidden channels per ConvLSTM layer, comma-separated (default 12)",
    )
    t.add_argument("--kernel", type=_odd_int, default=3, help="convolution kernel (default 3)")
    t.add_argument(
        "--epochs",
        type=_positive_int,
        default=study.TRAINING["epochs"],
        help=f"maximum epochs (default {study.TRAINING['epochs']})",
    )
    t.add_argument(
        "--patience",
        type=_positive_int,
        default=study.TRAINING["patience"],
        help=f"early-stopping patience in epochs (default {study.TRAINING['patience']})",
    )
    t.add_argument("--lr", type=_positive_float, default=3e-3, help="Adam learning rate (default 3e-3)")
    t.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    t.add_argument(
        "--splits",
        default=None,
        metavar="train=A:B[,C:D];val=E:F;test=G:H",
        help="own train/validation/test periods (inclusive dates); default the paper's "
        "(train 2015-04..2016-03 + 2016-11..2017-03, val 2016-04..10 + 2017-11..2018-03, test 2018-04..2020-12)",
    )
    _add_storage_args(t)
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser(
        "predict",
        help="apply the exported model chunk-wise with dask, write the FT product",
        description=(
            "Predict the fused FT state for every day and pass into a CF zarr product, region by region (resumable)."
        ),
    )
    pr.add_argument("--store", required=True, help="store root with predictors and statics")
    pr.add_argument("--model", required=True, help="model folder written by `ftcloud train`")
    pr.add_argument("--out", required=True, help="output zarr URL (folder or s3://...)")
    pr.add_argument("--start", default=None, help="first day (default: the store's first)")
    pr.add_argument("--end", default=None, help="last day (default: the store's last)")
    pr.add_argument("--pass", dest="pass_", choices=["AM", "PM", "both"], default="both")
    pr.add_argument(
        "--tile",
        type=_positive_int,
        default=None,
        help="model tile in cells (default: the 128-cell chunk, clipped to the window)",
    )
    pr.add_argument(
        "--batch-days",
        type=_positive_int,
        default=study.TRAINING["predict_batch_days"],
        help=f"days per model call (default {study.TRAINING['predict_batch_days']})",
    )
    pr.add_argument("--time-chunk", type=_positive_int, default=32, help="days per region/chunk (default 32)")
    pr.add_argument(
        "--format",
        choices=["torchscript", "export"],
        default="export",
        help="exported program to load (default export: the torch.export program measured faster than TorchScript)",
    )
    pr.add_argument(
        "--probability", action="store_true", help="also write the fused frozen probability p_frozen (float32)"
    )
    pr.add_argument(
        "--transfer",
        action="store_true",
        help="apply the model outside the window it was trained on (recorded in the product)",
    )
    pr.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="bf16 autocast (see benchmarks/inference.py for speed and agreement)",
    )
    pr.add_argument("--gpu-workers", action="store_true", help="ask the dask cluster for resources={'GPU': 1} per task")
    pr.add_argument(
        "--cluster",
        type=_cluster_arg,
        default=None,
        help="run on a LocalCluster (local), a dask-gateway cluster (gateway) or a scheduler address "
        "(default: dask's threaded scheduler in this process)",
    )
    pr.add_argument("--workers", type=_positive_int, default=None, help="workers to start with --cluster local/gateway")
    pr.add_argument(
        "--gateway-address", default=None, help="dask-gateway address (default: DASK_GATEWAY__ADDRESS / dask config)"
    )
    _add_storage_args(pr)
    pr.set_defaults(func=cmd_predict)

    v = sub.add_parser(
        "validate",
        help="direct validation against in-situ networks and CTC at the CMA stations, with figures",
        description="Direct validation (CA_F/CA_T/CA_O of ConvLSTM_FT and SMAP_E_FT per network, season and pass "
        "over the test period) and categorical triple collocation of ConvLSTM_FT / ERA5_FT / "
        "Meteorology_FT at the CMA station pixels; CSV, Markdown, zarr and PNG figures under --out. "
        "On the digital twin the products' actual accuracy against the hidden truth is reported beside.",
    )
    v.add_argument(
        "--store", required=True, help="store root written by `ftcloud ingest` (targets, predictors, statics, insitu)"
    )
    v.add_argument(
        "--product",
        required=True,
        help="the fused product zarr written by `ftcloud predict`, or any CF FT zarr on the store's grid "
        "(--variable, --codes)",
    )
    v.add_argument("--out", required=True, help="output folder (local)")
    v.add_argument(
        "--truth", default=None, help="twin truth folder (default: <ftcloud_source of the store>/truth when it exists)"
    )
    v.add_argument("--test-start", default="2018-04-01", help="first day of the direct validation (default 2018-04-01)")
    v.add_argument("--test-end", default="2020-12-31", help="last day of the direct validation (default 2020-12-31)")
    v.add_argument("--ctc-start", default="1980-01-01", help="first day of the CTC (default 1980-01-01)")
    v.add_argument("--ctc-end", default="2020-12-31", help="last day of the CTC (default 2020-12-31)")
    v.add_argument(
        "--min-count",
        type=_positive_int,
        default=30,
        help="CTC: minimum days with all three products valid (default 30)",
    )
    v.add_argument(
        "--window-hours",
        type=_positive_float,
        default=1.0,
        help="in-situ FT: half width of the window around 06:00/18:00 local solar time (default 1 h)",
    )
    v.add_argument(
        "--map-start", default="2018-04-01", help="first month of the 12 monthly FT maps (default 2018-04-01)"
    )
    v.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    _add_product_reading(v)
    v.add_argument(
        "--compare",
        action="append",
        metavar="PRODUCT",
        help="another FT product (e.g. from `ftcloud retrieve`) scored beside the fused one on the common mask, "
        "with a figure of accuracy by season and maps of where each product errs; repeatable",
    )
    _add_storage_args(v)
    _add_storage_args(v, "product_", "the product")
    v.set_defaults(func=cmd_validate)

    tr = sub.add_parser(
        "trends",
        help="frozen days per year, per-pixel Sen/Mann-Kendall with FDR, the regional Table 2",
        description="Frozen days per calendar year and pass (and their AM/PM mean) from the fused product, "
        "per-pixel Sen slope and Mann-Kendall p with Benjamini-Hochberg field significance, the "
        "paper's Table 2 by region and permafrost stability (statics), zarr + CSV + Markdown + PNG.",
    )
    tr.add_argument("--product", required=True, help="the fused product zarr written by `ftcloud predict`")
    tr.add_argument(
        "--store",
        default=None,
        help="store root holding statics (region, permafrost_stability) for Table 2 and the regional series; "
        "without it (your own product) only the per-pixel trends and frozen days are computed",
    )
    _add_product_reading(tr)
    tr.add_argument("--out", required=True, help="output folder (local)")
    tr.add_argument(
        "--truth", default=None, help="twin truth folder (default: <ftcloud_source of the store>/truth when it exists)"
    )
    tr.add_argument(
        "--variance",
        choices=["original", "hamed_rao", "yue_wang"],
        default="original",
        help="Mann-Kendall var(S): original or an autocorrelation correction (default original)",
    )
    tr.add_argument(
        "--lag",
        type=_lag_arg,
        default=1,
        help="highest autocorrelation lag (years) of hamed_rao / yue_wang, or 'all' (pymannkendall's default, "
        "far too liberal at 41 years: ftcloud.science.trends.mann_kendall); default 1",
    )
    tr.add_argument(
        "--alpha",
        type=_fraction,
        default=0.05,
        help="significance level of the tests and slope intervals (default 0.05)",
    )
    tr.add_argument(
        "--fdr-q", type=_fraction, default=0.05, help="false discovery rate for field significance (default 0.05)"
    )
    tr.add_argument(
        "--min-valid", type=_share, default=0.9, help="minimum fraction of valid days for a year to count (default 0.9)"
    )
    tr.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    _add_storage_args(tr)
    _add_storage_args(tr, "product_", "the product")
    tr.set_defaults(func=cmd_trends)

    from ftcloud.workflows.retrieve import METHODS

    rt = sub.add_parser(
        "retrieve",
        help="an FT product from brightness temperatures by one of the field's retrieval families",
        description="Fit one retrieval family (npr: SMAP NPR seasonal threshold; msta: 37 GHz V seasonal threshold "
        "(ESDR); dia: dual-index 37V + 19-37 GHz gradient; dfa: discriminant functions; ert: extremely randomized "
        "trees; autoencoder: thaw as a TB-window anomaly) on the store's TB (ingest a source with TB: "
        "`ftcloud synth --tb`) and write its FT product zarr (pass, time, y, x), which `ftcloud validate` and "
        "`ftcloud trends` read like the ConvLSTM's.",
    )
    rt.add_argument("--method", required=True, choices=list(METHODS), help="the retrieval family")
    rt.add_argument("--store", required=True, help="store root holding predictors/tb_smap or predictors/tb_multifreq")
    rt.add_argument(
        "--out", required=True, help="the product zarr to write (replaced only once the new one is complete)"
    )
    rt.add_argument("--fit-start", default=None, help="first day the family learns on (default: the store's first)")
    rt.add_argument("--fit-end", default=None, help="last day it learns on (default: the day before 2018-04-01)")
    rt.add_argument("--seed", type=int, default=0, help="seed of the DFA subsample and the ERT split and trees")
    _add_storage_args(rt)
    _add_storage_args(rt, "out_", "the product")
    rt.set_defaults(func=cmd_retrieve)

    r = sub.add_parser(
        "run",
        help="the whole job: twin (if no sources) -> ingest -> train -> predict -> validate -> trends -> report",
        description="Synthesise the twin if no sources are configured, ingest, train AM and PM, predict 1980-2020, "
        "validate (direct and CTC), compute trends and Table 2, and write OUT/report/report.html. "
        "Resumable: stages whose inputs and settings are unchanged (content hashes) are skipped.",
    )
    r.add_argument("--config", default=None, help="YAML run config (overrides packaged defaults)")
    r.add_argument(
        "--region", type=_region_arg, default=None, help="region name (demo, tiny, qtp, china); overrides the config"
    )
    r.add_argument(
        "--bbox",
        type=_bbox_arg,
        default=None,
        metavar="LON0,LON1,LAT0,LAT1",
        help="a lon/lat box (degrees east/north) instead of a named region, e.g. 101.0,102.2,33.5,34.3; "
        "overrides the config; a box west of 0 degrees works as --bbox -120,-110,40,50",
    )
    r.add_argument("--start", default=None, help="first local date YYYY-MM-DD; overrides the config")
    r.add_argument("--end", default=None, help="last local date YYYY-MM-DD; overrides the config")
    r.add_argument("--targets-start", default=None, help="first day of the FT targets YYYY-MM-DD; overrides the config")
    r.add_argument(
        "--out",
        default="ftcloud-out",
        help="output folder for models, tables, figures and the report (default ./ftcloud-out)",
    )
    r.add_argument(
        "--store",
        default=None,
        help="store root (folder or s3://bucket/prefix; default OUT/store); the product goes to "
        f"OUT/product/{PRODUCT_NAME}, or STORE/products/{PRODUCT_NAME} on object storage",
    )
    r.add_argument(
        "--cluster",
        type=_cluster_arg,
        default=None,
        help="where prediction, validation and trends run: local (default, a LocalCluster), gateway (dask-gateway) "
        "or a scheduler address tcp://host:8786",
    )
    r.add_argument(
        "--workers", type=_positive_int, default=None, help="number of workers (local: processes; gateway: default 2)"
    )
    r.add_argument(
        "--worker-memory",
        type=_positive_float,
        default=None,
        help="memory per worker in GiB (the gateway's worker_memory option)",
    )
    r.add_argument(
        "--gpu",
        action="store_true",
        help="GPU workers: the gateway's gpu option, prediction tasks ask for resources GPU=1",
    )
    r.add_argument(
        "--gateway-address", default=None, help="dask-gateway address (default: DASK_GATEWAY__ADDRESS / dask config)"
    )
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="print the ingest plan (work items, memory per item, store size) and whether it fits the "
        "cluster's workers; read no data, start nothing (exit 2 when it does not fit)",
    )
    _add_storage_args(r)
    r.set_defaults(func=cmd_run)

    rp = sub.add_parser(
        "report",
        help="(re)write OUT/report: self-contained HTML, Markdown and CSV from a run folder",
        description="Collect the model cards, validation and trend tables and figures of a run folder into "
        "OUT/report/report.html (figures embedded), report.md, findings.csv and provenance.json.",
    )
    rp.add_argument("--out", default="ftcloud-out", help="the run folder (default ./ftcloud-out)")
    rp.add_argument(
        "--config",
        default=None,
        help="the run config used (default: the one the run recorded in DIR/run-config.json)",
    )
    rp.set_defaults(func=cmd_report)
    return p


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


#: options whose value may start with a minus sign (a box west of 0 degrees or south of the equator)
_SIGNED_VALUE_OPTIONS = ("--bbox", "--region")


def _join_signed_values(argv: list[str]) -> list[str]:
    """``--bbox -120,-110,40,50`` -> ``--bbox=-120,-110,40,50``: argparse takes a value that starts with '-' and
    is not a plain number for an option, so a western box would need the '=' form.

    >>> _join_signed_values(["run", "--bbox", "-120,-110,40,50", "-q"])
    ['run', '--bbox=-120,-110,40,50', '-q']
    """
    import re

    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in _SIGNED_VALUE_OPTIONS and i + 1 < len(argv) and re.match(r"-\d", argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv=None) -> int:
    if not isinstance(sys.stdout, RedactingStream):  # prints, warnings, tracebacks: no URL userinfo
        sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    parser = build_parser()
    args, extra = parser.parse_known_args(_join_signed_values(list(sys.argv[1:] if argv is None else argv)))
    if extra:  # named by the subcommand, whose --help lists its options
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        subs.choices.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    # progress bars on a terminal (or with --progress), never with -q: a batch log gets no carriage returns
    args.quiet = bool(args.quiet or not (args.progress or _isatty(sys.stderr)))
    level = logging.WARNING - 10 * min(args.verbose, 2)
    # -v is ftcloud's: the root logger (every other library) stays at warnings; -vv opens the libraries' too
    logging.basicConfig(
        level=logging.WARNING if args.verbose < 2 else level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for h in logging.getLogger().handlers:  # URLs in every printed record lose userinfo and signatures
        h.addFilter(RedactingFilter())
    logging.getLogger("ftcloud").setLevel(level)
    # botocore/aiobotocore/urllib3/aiohttp dump request headers (key id, session token) at DEBUG:
    # never below INFO, even at -vv
    for name in ("botocore", "aiobotocore", "boto3", "urllib3", "aiohttp", "s3transfer"):
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    # distributed logs every client and worker at INFO; the dashboard shows that better
    logging.getLogger("distributed").setLevel(max(level, logging.WARNING) if args.verbose < 2 else level)
    try:
        return args.func(args)
    except FTCloudError as e:  # one line, whatever the message holds
        msg = " ".join(ln.strip() for ln in redact_text(str(e)).splitlines() if ln.strip()) or type(e).__name__
        print(f"ftcloud {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - storage failures become one line; anything else is a bug
        from ftcloud.io.stores import describe_storage_error

        msg = describe_storage_error(e)
        if msg is None and isinstance(e, PermissionError):
            where = getattr(args, "store", None) or getattr(args, "out", None)
            msg = (
                f"access denied{f' on {redact_text(str(where))}' if where else ''} "
                f"({redact_text(str(e)).splitlines()[0][:160] or type(e).__name__}); "
                "check the credentials in the environment (AWS_*), the bucket policy, or use --anon for public data"
            )
        if msg is None:
            raise
        print(f"ftcloud {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

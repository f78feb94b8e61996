"""The ERA5-Land recipe against analytic inputs with a known answer, plus its failure modes.

The planted fields are linear in lon/lat (so bilinear regridding is exact) and carry a
known time signature, so the expected value at every pixel, day, pass and step is
computed here by hand from the local-time rule, independently of the recipe.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import zarr

from ftcloud.errors import (
    GridMismatchError,
    IncompleteStoreError,
    MissingVariableError,
    SourceFileError,
    TimeAxisError,
    UnitsError,
)
from ftcloud.core.grid import latlon_source_box, region_window
from ftcloud.workflows.ingest import ingest
from ftcloud.io.stores import open_group, store_status
from ftcloud.sources.era5land import era5_url
from ftcloud.testing import write_era5land_file
from ftcloud.core.timeutil import LOCAL_STEP_HOURS, request_hours

WINDOW = region_window("tiny")
T0 = pd.Timestamp("2001-01-01")


def _stl1(times, lats, lons):
    h = ((pd.DatetimeIndex(times) - T0) / pd.Timedelta(hours=1)).to_numpy()
    return 250.0 + 0.5 * lons[None, None, :] + 0.3 * lats[None, :, None] + 0.01 * h[:, None, None]


def _hour_rate_m(hour_ending):
    """Planted precipitation (m) over the hour ending at UTC hour ``hour_ending`` (1..24)."""
    return 0.0001 * hour_ending


def _tp(times, shape):
    out = []
    for t in pd.DatetimeIndex(times):
        H = t.hour if t.hour > 0 else 24  # 00 UTC holds the previous day's total
        out.append(sum(_hour_rate_m(j) for j in range(1, H + 1)))
    return np.broadcast_to(np.array(out)[:, None, None], (len(out), *shape)).copy()


def write_month(
    root, month, *, drop=None, rename=None, units=None, times_override=None, lats=None, all_fill=False, values=None
):
    """One synthetic ERA5-Land month; ``values``: variable -> function applied to its array (damage)."""
    lats_, lons = latlon_source_box(WINDOW)
    lats = lats_ if lats is None else lats
    hours = request_hours(lons)
    days = pd.date_range(month - pd.Timedelta(days=1), month + pd.offsets.MonthEnd(0), freq="D")
    times = (
        pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days for h in hours])
        if times_override is None
        else times_override
    )
    shape = (lats.size, lons.size)
    fields = {
        "stl1": _stl1(times, lats, lons),
        "swvl1": np.full((len(times), *shape), 0.25),
        "sde": np.zeros((len(times), *shape)) + 0.05 * (lats[None, :, None] > 34),
        "tp": _tp(times, shape),
    }
    if all_fill:
        fields["stl1"][:] = np.nan
    for v, fn in (values or {}).items():
        fields[v] = fn(np.array(fields[v], dtype="f8"))
    for v in drop or []:
        fields.pop(v)
    for a, b in (rename or {}).items():
        fields[b] = fields.pop(a)
    path = era5_url(str(root), month)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_era5land_file(path, times, lats, lons, fields, units=units)
    return path


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    for m in (pd.Timestamp("2001-01-01"), pd.Timestamp("2001-02-01")):
        write_month(root, m)
    return root


def run_era5(src, store, start="2001-01-01", end="2001-02-28", **kw):
    return ingest(str(src), str(store), region=WINDOW, start=start, end=end, sources=["era5land"], progress=False, **kw)


def test_recipe_values_match_hand_computation(src, tmp_path):
    store = tmp_path / "store"
    run_era5(src, store)
    ds = open_group(str(store), "predictors/era5land")
    assert ds["stl1"].dims == ("time", "pass", "step", "y", "x")
    lon, lat = WINDOW.lonlat
    for day in (
        pd.Timestamp("2001-01-01"),
        pd.Timestamp("2001-01-31"),
        pd.Timestamp("2001-02-01"),
        pd.Timestamp("2001-02-28"),
    ):
        for p, pass_ in enumerate(("AM", "PM")):
            for k, local_h in enumerate(LOCAL_STEP_HOURS[pass_]):
                # hand rule: UTC = local - lon/15 h, nearest hour; tiny spans 101-102.2 E, one offset for all
                off = int(np.floor(local_h - lon.mean() / 15.0 + 0.5))
                t_utc = day + pd.Timedelta(hours=off)
                hrs = (t_utc - T0) / pd.Timedelta(hours=1)
                expect = 250.0 + 0.5 * lon + 0.3 * lat + 0.01 * hrs
                got = ds["stl1"].sel(time=day).values[p, k]
                np.testing.assert_allclose(got, expect, atol=0.02)
                H = t_utc.hour if t_utc.hour > 0 else 24
                np.testing.assert_allclose(ds["pr"].sel(time=day).values[p, k], 1000 * _hour_rate_m(H), atol=0.01)
    assert ds["stl1"].attrs["units"] == "K" and ds["pr"].attrs["units"] == "mm h-1"
    assert ds["stl1"].attrs["grid_mapping"] == "crs" and "grid_mapping_name" in ds["crs"].attrs
    assert ds["lat"].dims == ("y", "x") and ds["x"].attrs["units"] == "m"
    # consolidated metadata exists only once the group is complete
    assert ".zmetadata" in os.listdir(store / "predictors" / "era5land")


def test_time_round_trip(src, tmp_path):
    store = tmp_path / "store"
    run_era5(src, store)
    ds = open_group(str(store), "predictors/era5land")
    expected = pd.date_range("2001-01-01", "2001-02-28", freq="D")
    got = pd.DatetimeIndex(ds["time"].values)
    assert len(got) == len(expected) and (got == expected).all()  # every day once, no shift
    assert got.is_unique
    raw = zarr.open_group(str(store / "predictors" / "era5land"))["time"]
    assert raw.attrs["units"] == "days since 1970-01-01"
    assert raw[0] == (pd.Timestamp("2001-01-01") - pd.Timestamp("1970-01-01")).days


def _chunk_bytes(group_dir):
    out = {}
    for d, _, files in os.walk(group_dir):
        for f in files:
            if not f.startswith("."):
                p = os.path.join(d, f)
                out[os.path.relpath(p, group_dir)] = open(p, "rb").read()
    return out


@pytest.mark.slow  # > 4 s: CI runs it, the fast lane does not
def test_rerun_is_byte_identical_and_killed_run_resumes(src, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run_era5(src, a)
    first = _chunk_bytes(a / "predictors" / "era5land")
    run_era5(src, a)  # re-run in place
    assert _chunk_bytes(a / "predictors" / "era5land") == first
    # a run that dies half-way (February's file is broken) leaves an incomplete group ...
    feb = era5_url(str(src), pd.Timestamp("2001-02-01"))
    good = open(feb, "rb").read()
    with open(feb, "wb") as f:
        f.write(good[: len(good) // 3])
    with pytest.raises(SourceFileError, match="corrupt or truncated"):
        run_era5(src, b)
    assert store_status(str(b / "predictors" / "era5land")) in (None, "incomplete")
    with pytest.raises((IncompleteStoreError, MissingVariableError)):
        open_group(str(b), "predictors/era5land")
    # ... and started again (file restored) completes with the same chunks, no day twice or missing
    with open(feb, "wb") as f:
        f.write(good)
    run_era5(src, b)
    assert _chunk_bytes(b / "predictors" / "era5land") == first
    t = pd.DatetimeIndex(open_group(str(b), "predictors/era5land")["time"].values)
    assert t.is_unique and len(t) == 59


BAD_CASES = {
    "missing file": (
        lambda root: os.remove(era5_url(root, pd.Timestamp("2001-02-01"))),
        SourceFileError,
        r"era5land_200102\.nc is missing",
    ),
    "truncated file": (
        lambda root: open(era5_url(root, pd.Timestamp("2001-02-01")), "r+b").truncate(2000),
        SourceFileError,
        r"era5land_200102\.nc is corrupt or truncated",
    ),
    "wrong variable name": (
        lambda root: write_month(root, pd.Timestamp("2001-02-01"), rename={"stl1": "stl2"}),
        MissingVariableError,
        r"era5land_200102\.nc: variable\(s\) stl1 not found",
    ),
    "wrong units": (
        lambda root: write_month(root, pd.Timestamp("2001-02-01"), units={"stl1": "degC"}),
        UnitsError,
        r"era5land_200102\.nc: variable 'stl1' has units 'degC', expected 'K'",
    ),
    "duplicate timestamps": (
        lambda root: write_month(
            root,
            pd.Timestamp("2001-02-01"),
            times_override=pd.DatetimeIndex(["2001-01-31T20", "2001-01-31T20", "2001-01-31T21"]),
        ),
        TimeAxisError,
        r"era5land_200102\.nc: duplicate time stamps",
    ),
    "non-monotonic timestamps": (
        lambda root: write_month(
            root,
            pd.Timestamp("2001-02-01"),
            times_override=pd.DatetimeIndex(["2001-01-31T21", "2001-01-31T20", "2001-01-31T22"]),
        ),
        TimeAxisError,
        r"era5land_200102\.nc: time is not increasing",
    ),
    "hours missing": (
        lambda root: write_month(
            root, pd.Timestamp("2001-02-01"), times_override=pd.date_range("2001-02-01", periods=5, freq="h")
        ),
        TimeAxisError,
        r"era5land_200102\.nc: needs UTC",
    ),
    "grid mismatch": (
        lambda root: write_month(root, pd.Timestamp("2001-02-01"), lats=latlon_source_box(WINDOW)[0][:4]),
        GridMismatchError,
        r"era5land_200102\.nc: .*does not cover the target window",
    ),
    "all-fill file": (
        lambda root: write_month(root, pd.Timestamp("2001-02-01"), all_fill=True),
        SourceFileError,
        r"era5land_200102\.nc: variable 'stl1' holds only fill values",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_gives_clear_error_and_no_complete_store(case, src, tmp_path):
    damage, exc, pattern = BAD_CASES[case]
    damage(str(src))
    store = tmp_path / "store"
    with pytest.raises(exc, match=pattern):
        run_era5(src, store)
    assert store_status(str(store / "predictors" / "era5land")) != "complete"


def test_failed_rerun_leaves_the_complete_group_untouched(src, tmp_path):
    """Outputs are transactional: a re-ingest that fails is written beside the complete group and
    never touches it (before, the group was marked incomplete and so destroyed)."""
    store = tmp_path / "store"
    run_era5(src, store)
    group = store / "predictors" / "era5land"
    assert store_status(str(group)) == "complete"
    before = {p.relative_to(group): p.read_bytes() for p in sorted(group.rglob("*")) if p.is_file()}
    write_month(str(src), pd.Timestamp("2001-02-01"), units={"stl1": "degC"})
    with pytest.raises(UnitsError):
        run_era5(src, store)
    after = {p.relative_to(group): p.read_bytes() for p in sorted(group.rglob("*")) if p.is_file()}
    assert store_status(str(group)) == "complete" and after == before
    assert store_status(str(store / "predictors" / ".era5land.ftcloud-new")) != "complete"


@pytest.mark.slow  # > 4 s: CI runs it, the fast lane does not
@pytest.mark.s3
def test_s3_store_matches_local_and_reads_anonymously(src, tmp_path, s3):
    import s3fs

    import boto3

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3["endpoint_url"]})
    fs.mkdir("ftcloud-test")
    # a public bucket, as a data provider publishes one: bucket and objects readable by anyone
    boto3.client("s3", endpoint_url=s3["endpoint_url"]).put_bucket_acl(Bucket="ftcloud-test", ACL="public-read")
    publish = {"client_kwargs": {"endpoint_url": s3["endpoint_url"]}, "s3_additional_kwargs": {"ACL": "public-read"}}
    local = tmp_path / "local"
    run_era5(src, local)
    run_era5(src, "s3://ftcloud-test/store", storage_options=publish)
    a = open_group(str(local), "predictors/era5land").load()
    b = open_group(
        "s3://ftcloud-test/store", "predictors/era5land", {"client_kwargs": {"endpoint_url": s3["endpoint_url"]}}
    ).load()
    assert a.identical(b.assign_attrs(a.attrs)) or a.equals(b)
    np.testing.assert_array_equal(a["stl1"].values, b["stl1"].values)
    # public read: no credentials at all
    anon = open_group(
        "s3://ftcloud-test/store",
        "predictors/era5land",
        {"anon": True, "client_kwargs": {"endpoint_url": s3["endpoint_url"]}},
    )
    np.testing.assert_array_equal(anon["pr"].values, a["pr"].values)
    # without the public ACL an anonymous reader is refused with a clear error, not "missing"
    fs.mkdir("ftcloud-private")
    run_era5(src, "s3://ftcloud-private/store", storage_options={"client_kwargs": {"endpoint_url": s3["endpoint_url"]}})
    with pytest.raises(PermissionError, match="ftcloud-private/store"):
        open_group(
            "s3://ftcloud-private/store",
            "predictors/era5land",
            {"anon": True, "client_kwargs": {"endpoint_url": s3["endpoint_url"]}},
        )
    # credentials never land in the store's attributes
    attrs = str(dict(zarr.open_group(fs.get_mapper("ftcloud-test/store/predictors/era5land")).attrs))
    assert "testing" not in attrs and "secret" not in attrs.lower()
    shutil.rmtree(local)


@pytest.mark.slow  # two fresh interpreters importing Beam: about 4 s
def test_beam_is_imported_without_its_root_warning_or_a_root_handler():
    """`import apache_beam` warns on the root logger about Google Cloud libraries and, through basicConfig,
    leaves a root handler that prints every later warning; ftcloud's import_beam leaves neither (fresh
    interpreters: the plain import shows the noise, so the check can fail)."""
    import subprocess
    import sys

    probe = "import logging; {imp}; print(len(logging.getLogger().handlers))"
    plain = subprocess.run(
        [sys.executable, "-c", probe.format(imp="import apache_beam")], capture_output=True, text=True, check=True
    )
    ours = subprocess.run(
        [sys.executable, "-c", probe.format(imp="from ftcloud.sources.common import import_beam; import_beam()")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "apitools not found" in plain.stderr and plain.stdout.strip() == "1"
    assert "apitools not found" not in ours.stderr and ours.stdout.strip() == "0"


@pytest.mark.parametrize("fail", [False, True])
def test_a_beam_run_leaves_nothing_in_the_temporary_folder(tmp_path, monkeypatch, fail):
    """Beam's job server and dependency staging make scratch folders (``beam-temp*``, ``tmp*``) in the
    system's temporary folder and never remove them; ftcloud's runs leave that folder as they found it,
    after a failed pipeline too."""
    import tempfile

    from ftcloud.sources.common import import_beam, run_beam

    beam = import_beam()
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))

    def work(x):
        if fail and x == 2:
            raise ValueError("ftcloud test: item 2 fails")
        return x

    def build(p):
        _ = p | beam.Create([1, 2, 3]) | beam.Map(work)

    if fail:
        with pytest.raises(ValueError, match="item 2 fails"):
            run_beam(build)
    else:
        run_beam(build)
    assert sorted(os.listdir(system_tmp)) == []
    assert tempfile.tempdir == str(system_tmp)  # restored


def test_beam_runs_at_once_in_threads_share_one_scratch_folder_and_restore_the_setting(tmp_path, monkeypatch):
    """Two pipelines overlapping in threads (two ingests in a notebook): the temporary-folder setting comes
    back as it was, the system's folder stays empty, and temporary files work afterwards."""
    import tempfile
    import threading
    import time

    from ftcloud.sources.common import import_beam, run_beam

    beam = import_beam()
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    errors = []

    def one(n, seconds):
        try:
            run_beam(lambda p: p | f"make {n}" >> beam.Create([seconds]) | f"wait {n}" >> beam.Map(time.sleep))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    # A starts, B starts, A ends, B ends: the order in which a save-and-restore per run goes wrong
    a = threading.Thread(target=one, args=("a", 2.0))
    b = threading.Thread(target=one, args=("b", 4.0))
    a.start()
    time.sleep(1.0)
    b.start()
    a.join()
    b.join()
    assert not errors
    assert tempfile.tempdir == str(system_tmp) and sorted(os.listdir(system_tmp)) == []
    with tempfile.NamedTemporaryFile() as f:  # the setting points at a folder that exists
        assert os.path.dirname(f.name) == str(system_tmp)

"""Pieces every source recipe shares: opening with clear errors, time encoding, running Beam.

The recipes in the top-level ``feedstock/`` folder only wire these functions together with
pangeo-forge-recipes transforms (``StoreToZarr``, ``ConsolidateDimensionCoordinates``,
``ConsolidateMetadata``); everything that can go wrong with a source file is decided here,
in plain functions that the tests call directly.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence

import fsspec
import numpy as np
import pandas as pd
import xarray as xr

from ftcloud.errors import (
    FTCloudError,
    MissingVariableError,
    SourceFileError,
    TimeAxisError,
    UnitsError,
    ValidationError,
)

log = logging.getLogger(__name__)

# Explicit daily time encoding. Without it pangeo-forge-recipes 0.10.8 (StoreToZarr builds its
# template from dummy values) lets xarray pick units that do not fit the data and a daily axis
# comes back shifted or as hours labelled as days; see tests/unit/test_recipes.py::test_time_round_trip.
TIME_ENCODING = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
TIME_ENCODING_30MIN = {"units": "minutes since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}


def open_bytes(url: str, storage_options: dict | None = None, what: str = "source file", size: int = -1) -> bytes:
    """Read a whole source file (or its first ``size`` bytes); a missing, unreadable or empty
    file raises SourceFileError naming it."""
    try:
        with fsspec.open(url, "rb", **(storage_options or {})) as f:
            data = f.read(size)
    except FileNotFoundError:
        raise SourceFileError(f"{what} {url} is missing") from None
    except OSError as e:
        raise SourceFileError(f"{what} {url} could not be read: {e}") from e
    if not data:
        raise SourceFileError(f"{what} {url} is empty (0 bytes): truncated download?")
    return data


def sniff_format(head: bytes) -> str:
    if head[:4] == b"GRIB":
        return "grib"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if head[:3] == b"CDF":
        return "netcdf3"
    return "unknown"


def _open_lazy(url, storage_options, what, decode_times, mask_and_scale) -> xr.Dataset | None:
    """A lazily opened NetCDF/HDF5 file, or None for formats read whole (GRIB, unknown)."""
    kind = sniff_format(open_bytes(url, storage_options, what, size=8))
    if kind not in ("hdf5", "netcdf3"):
        return None
    local = "://" not in url or url.startswith("file://")
    try:
        if local:
            path = url.replace("file://", "")
            kw = {"phony_dims": "access"} if kind == "hdf5" else {}
            return xr.open_dataset(
                path,
                engine="h5netcdf" if kind == "hdf5" else "scipy",
                decode_times=decode_times,
                mask_and_scale=mask_and_scale,
                cache=False,
                **kw,
            )
        if kind == "netcdf3":
            return None  # scipy needs the bytes: read whole
        f = fsspec.open(url, "rb", **(storage_options or {})).open()
        ds = xr.open_dataset(
            f,
            engine="h5netcdf",
            decode_times=decode_times,
            mask_and_scale=mask_and_scale,
            cache=False,
            phony_dims="access",
        )
        inner = ds._close

        def close():
            if inner is not None:
                inner()
            f.close()

        ds.set_close(close)
        return ds
    except FTCloudError:
        raise
    except Exception as e:  # noqa: BLE001
        raise SourceFileError(f"{what} {url} is corrupt or truncated: {type(e).__name__}: {e}") from e


def open_xarray_file(
    url: str,
    *,
    storage_options: dict | None = None,
    group: str | None = None,
    what: str = "source file",
    decode_times: bool = True,
    mask_and_scale: bool = True,
    lazy: bool = False,
) -> xr.Dataset:
    """Open a NetCDF3/4, HDF5 or GRIB file fully into memory, with errors that name it.

    GRIB needs a local path for ecCodes, so remote GRIB files are copied to a temporary file.
    ``lazy=True`` (NetCDF/HDF5 only): open without reading the data, which is then read on
    indexing (local files from disk, remote ones by byte ranges through fsspec); the caller
    closes the dataset. A GRIB file is always read whole.
    """
    if lazy:
        ds = _open_lazy(url, storage_options, what, decode_times, mask_and_scale)
        if ds is not None:
            return ds
    data = open_bytes(url, storage_options, what)
    kind = sniff_format(data[:8])
    try:
        if kind == "grib":
            with tempfile.TemporaryDirectory() as tmp:
                p = os.path.join(tmp, "source.grib")
                with open(p, "wb") as f:
                    f.write(data)
                ds = xr.open_dataset(p, engine="cfgrib", backend_kwargs={"indexpath": ""}, decode_times=decode_times)
                return ds.load()
        if kind == "hdf5":
            ds = xr.open_dataset(
                io.BytesIO(data),
                engine="h5netcdf",
                group=group,
                decode_times=decode_times,
                mask_and_scale=mask_and_scale,
                phony_dims="access",
            )
            return ds.load()
        if kind == "netcdf3":
            ds = xr.open_dataset(
                io.BytesIO(data), engine="scipy", decode_times=decode_times, mask_and_scale=mask_and_scale
            )
            return ds.load()
    except FTCloudError:
        raise
    except Exception as e:  # noqa: BLE001 - every reader failure becomes one clear error
        raise SourceFileError(f"{what} {url} is corrupt or truncated: {type(e).__name__}: {e}") from e
    raise SourceFileError(
        f"{what} {url} is not a NetCDF, HDF5 or GRIB file (starts with {data[:8]!r}): truncated or wrong file?"
    )


def require_variables(ds: xr.Dataset, names: Iterable[str], url: str, what: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise MissingVariableError(
            f"{what} {url}: variable(s) {', '.join(missing)} not found; the file has: "
            f"{', '.join(sorted(map(str, ds.data_vars))) or 'no data variables'}"
        )


def require_units(da: xr.DataArray, accepted: Sequence[str], url: str, what: str) -> None:
    units = da.attrs.get("units", da.encoding.get("units"))
    if units is None or str(units).strip() not in accepted:
        raise UnitsError(
            f"{what} {url}: variable {da.name!r} has units {units!r}, expected {' or '.join(map(repr, accepted))}"
        )


def require_not_all_fill(da: xr.DataArray, url: str, what: str, block_bytes: int = 64 << 20) -> None:
    """Refuse a variable that holds no valid value, reading it in blocks along its first
    dimension and stopping at the first valid one (a good file: its first block only)."""
    if da.ndim == 0:
        blocks = [da]
    else:
        per = max(1, int(block_bytes // max(1, int(np.prod(da.shape[1:])) * 8)))
        blocks = (da[k : k + per] for k in range(0, da.shape[0], per))
    for b in blocks:
        if np.isfinite(np.asarray(b.values, dtype="f8")).any():
            return
    raise SourceFileError(f"{what} {url}: variable {da.name!r} holds only fill values")


def check_time_axis(times, url: str, what: str, expected: Sequence | None = None) -> pd.DatetimeIndex:
    """Unique, strictly increasing, and (optionally) exactly the expected stamps."""
    t = pd.DatetimeIndex(np.asarray(times))
    if t.has_duplicates:
        dup = t[t.duplicated()].unique()[:3]
        raise TimeAxisError(f"{what} {url}: duplicate time stamps {', '.join(map(str, dup))}")
    if not t.is_monotonic_increasing:
        bad = int(np.argmax(np.diff(t.asi8) < 0)) + 1
        raise TimeAxisError(f"{what} {url}: time is not increasing at position {bad} ({t[bad - 1]} then {t[bad]})")
    if expected is not None:
        exp = pd.DatetimeIndex(expected)
        missing = exp.difference(t)
        if len(missing):
            raise TimeAxisError(f"{what} {url}: {len(missing)} expected time stamp(s) missing, first {missing[0]}")
    return t


def daily_index(start, end) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")


def months_between(start, end) -> list[pd.Timestamp]:
    s = pd.Timestamp(start).to_period("M")
    e = pd.Timestamp(end).to_period("M")
    return [p.to_timestamp() for p in pd.period_range(s, e, freq="M")]


def set_time(ds: xr.Dataset, days: pd.DatetimeIndex) -> xr.Dataset:
    """Assign a daily ``time`` coordinate with CF attributes and the explicit encoding."""
    ds = ds.assign_coords(time=("time", days.values.astype("datetime64[ns]")))
    ds["time"].attrs = {"standard_name": "time", "long_name": "local solar date of the overpass", "axis": "T"}
    ds["time"].encoding = dict(TIME_ENCODING)
    return ds


# --------------------------------------------------------------------------------------
# Running a pipeline


def _unwrap(exc: BaseException) -> BaseException | None:
    """Find an ftcloud error in a Beam-wrapped exception chain."""
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, FTCloudError):
            return e
        stack.extend([e.__cause__, e.__context__])
    return None


def _dask_state() -> Callable:
    """Beam's DaskRunner makes its own distributed Client the process-wide default scheduler and
    leaves it there; return a function that closes the clients it opened and restores dask's
    scheduler setting, so later dask work in the same process is unaffected."""
    import dask
    from distributed.client import _global_clients

    sched = dask.config.get("scheduler", None)
    before = {id(c) for c in list(_global_clients.values())}

    def restore() -> None:
        for c in list(_global_clients.values()):
            if id(c) not in before:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - best effort on a client Beam abandoned
                    pass
        dask.config.set(scheduler=sched)

    return restore


class _DropBeamImportNoise:
    """Drops apache-beam's import-time root warning "apitools not found, and bigquery client libraries ..."
    (ftcloud uses no Google Cloud I/O)."""

    def filter(self, record) -> bool:
        return "apitools not found" not in record.getMessage()


def import_beam():
    """``apache_beam``, imported quietly. Beam's import calls ``logging.warning`` on the root logger, which both
    prints a line about Google Cloud libraries into every ingest (and notebook) and, through
    ``logging.basicConfig``, leaves a root handler behind that prints every later warning of every library."""
    import logging
    import sys

    if "apache_beam" not in sys.modules:
        root = logging.getLogger()
        guard = logging.NullHandler() if not root.handlers else None  # no handler: basicConfig would add one
        drop = _DropBeamImportNoise()
        if guard is not None:
            root.addHandler(guard)
        root.addFilter(drop)
        try:
            import apache_beam  # noqa: F401
        finally:
            root.removeFilter(drop)
            if guard is not None:
                root.removeHandler(guard)
    return sys.modules["apache_beam"]


_SCRATCH_LOCK = threading.Lock()
_scratch: dict = {"depth": 0, "dir": None, "saved": None}


@contextlib.contextmanager
def _beam_scratch():
    """Beam's scratch folders inside one private folder, removed after the pipeline.

    Each run of a Beam pipeline leaves about 15 empty folders in the system's temporary folder
    (``beam-temp*`` from its job server, ``tmp*`` from staging its SDK dependencies,
    ``beam-pipeline-temp*`` when a run is interrupted) and never removes them: thousands after a
    season of ingests on a shared hub. While pipelines run, :data:`tempfile.tempdir` points into a
    folder of ftcloud's own, which goes when the last of them ends, whatever happened (pipelines run
    at once in threads share it). The setting is process-wide: a temporary file another thread makes
    meanwhile and keeps past the pipelines would go with it; ftcloud's own threads make none.
    """
    with _SCRATCH_LOCK:
        if _scratch["depth"] == 0:
            _scratch["saved"] = tempfile.tempdir
            _scratch["dir"] = tempfile.mkdtemp(prefix="ftcloud-beam-")
            tempfile.tempdir = _scratch["dir"]
        _scratch["depth"] += 1
        scratch = _scratch["dir"]
    try:
        yield scratch
    finally:
        with _SCRATCH_LOCK:
            _scratch["depth"] -= 1
            if _scratch["depth"] == 0:
                tempfile.tempdir = _scratch["saved"]
                shutil.rmtree(_scratch["dir"], ignore_errors=True)
                _scratch["dir"] = _scratch["saved"] = None


def run_beam(build: Callable, *, runner: str = "DirectRunner", workers: int = 1, options: dict | None = None) -> None:
    """Run ``build(pipeline)`` on a Beam runner; surface ftcloud's own errors unwrapped.

    Beam re-raises worker exceptions wrapped in its own types with the traceback in the
    message; the user should see the ftcloud message (file, variable, expectation) instead.
    """
    beam = import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    if runner == "DaskRunner":  # ships with apache-beam, but is not registered under its short name
        runner = "apache_beam.runners.dask.dask_runner.DaskRunner"
    opts = {"runner": runner}
    if runner == "DirectRunner":
        opts.update(direct_num_workers=max(int(workers), 1), direct_running_mode="in_memory")
    # runner options as command-line flags (Beam maps "--dask_client_address" to its own dest name)
    flags = [f"--{k}={v}" for k, v in (options or {}).items()]
    options = PipelineOptions(flags=flags, **opts)
    # Beam logs every worker exception with its traceback at ERROR; ftcloud re-raises the error
    # itself with a clear message, so Beam's own log is kept for -vv (debug) only.
    beam_log = logging.getLogger("apache_beam")
    old_level = beam_log.level
    if not log.isEnabledFor(logging.DEBUG):
        beam_log.setLevel(logging.CRITICAL)
    restore = _dask_state() if "DaskRunner" in runner else None
    try:
        with _beam_scratch():  # closes after the DaskRunner's own cluster (in the scratch folder) is gone
            try:
                with beam.Pipeline(options=options) as p:
                    build(p)
            finally:
                if restore is not None:
                    restore()
    except Exception as e:  # noqa: BLE001
        inner = _unwrap(e)
        if inner is not None:
            raise type(inner)(*inner.args) from None
        msg = str(e)
        for line in msg.splitlines()[::-1]:
            if "Error" in line and "ftcloud" in line:
                raise ValidationError(line.strip()) from e
        raise
    finally:
        beam_log.setLevel(old_level)


def chunk_plan(sizes: dict[str, int], wanted: dict[str, int]) -> dict[str, int]:
    """Target chunks clipped to the dimension sizes (a chunk never exceeds its dimension)."""
    return {d: int(min(c, sizes[d])) for d, c in wanted.items() if d in sizes}

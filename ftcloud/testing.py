"""Fake-data factories and assertions, importable by users' own tests too.

``write_era5land_file`` writes a file in the CDS layout of docs/source-formats.md (with the
twin's own writer) from arrays the caller chooses, so a test can plant analytic fields (linear in lon/lat, known
hourly accumulations) and check the recipe's output against hand-computed values.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

def write_era5land_file(path, times, lats, lons, fields: dict, *, units: dict | None = None) -> None:
    """Write one ERA5-Land NetCDF4 file (the twin's writer: int16 packed, hours since 1900-01-01).

    ``fields`` maps variable name -> float array (time, lat, lon); NaN becomes the fill.
    ``units`` overrides the units attribute of a variable (to test the units check); names
    other than the four predictors are written as given (to test a wrong variable name).
    """
    from pathlib import Path

    from ftcloud.synth._writers import ERA5_VARS, write_era5_month

    variables = {n: ((units or {}).get(n, ERA5_VARS.get(n, ("1", n))[0]), ERA5_VARS.get(n, ("1", n))[1]) for n in fields}
    times = pd.DatetimeIndex(times).values.astype("datetime64[h]")
    write_era5_month(Path(path), np.asarray(lats), np.asarray(lons), times, dict(fields), "written by ftcloud.testing",
                     variables=variables)


def assert_lazy(obj) -> None:
    """Fail if any variable of a Dataset/DataArray is already in memory (not dask-backed)."""
    import xarray as xr

    variables = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    for v in variables:
        if v.chunks is None:
            raise AssertionError(f"{v.name!r} is computed (numpy-backed), expected a lazy dask array")


#: environment variables a local gateway's scheduler and workers inherit beyond the backend's
#: defaults: object-store settings only (test credentials for a moto server, never real ones)
GATEWAY_INHERITED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_SHARED_CREDENTIALS_FILE",
                         "AWS_CONFIG_FILE", "FSSPEC_CONFIG_DIR", "OMP_NUM_THREADS", "HOME")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_options_file():
    """deploy/helm/gateway_options.py of a source checkout, or None for an installed package."""
    from pathlib import Path

    p = Path(__file__).resolve().parent.parent / "deploy" / "helm" / "gateway_options.py"
    return p if p.exists() else None


@contextlib.contextmanager
def local_gateway(workdir, *, timeout_s: float = 60.0):
    """A real ``dask-gateway-server`` on 127.0.0.1 with its local backend, stopped on exit.

    Its cluster options are deploy/helm/gateway_options.py (the ones the Helm values deploy),
    its schedulers and workers are processes of this Python. Yields the gateway address."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    api, proxy = free_port(), free_port()
    py = sys.executable
    opts = gateway_options_file()
    inherited = ["PATH", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", *GATEWAY_INHERITED_ENV]
    cfg = [
        f"c.DaskGateway.address = '127.0.0.1:{api}'",
        f"c.Proxy.address = '127.0.0.1:{proxy}'",
        "c.DaskGateway.backend_class = 'dask_gateway_server.backends.local.UnsafeLocalBackend'",
        "c.DaskGateway.authenticator_class = 'dask_gateway_server.auth.SimpleAuthenticator'",
        "c.DaskGateway.log_level = 'WARN'",
        f"c.ClusterConfig.scheduler_cmd = [{py!r}, '-m', 'distributed.cli.dask_scheduler']",
        f"c.ClusterConfig.worker_cmd = [{py!r}, '-m', 'distributed.cli.dask_worker']",
        f"c.UnsafeLocalBackend.clusters_directory = {str(workdir / 'clusters')!r}",
        f"c.UnsafeLocalBackend.inherited_environment = {inherited!r}",
        "c.ClusterConfig.idle_timeout = 600",
        "FTCLOUD_GPU_WORKER = {}  # no Kubernetes here: a GPU worker is a worker with the GPU resource",
    ]
    if opts is not None:
        cfg.append(opts.read_text())
    conf = workdir / "gateway_config.py"
    conf.write_text("\n".join(cfg) + "\n")
    log = open(workdir / "gateway.log", "w")
    proc = subprocess.Popen([py, "-m", "dask_gateway_server", "-f", str(conf)], cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    address = f"http://127.0.0.1:{proxy}"
    try:
        from dask_gateway import Gateway

        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dask-gateway-server exited with {proc.returncode}; see {workdir / 'gateway.log'}")
            try:
                with Gateway(address, auth="basic") as gw:
                    gw.list_clusters()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() - t0 > timeout_s:
                    raise
                time.sleep(0.25)
        yield address
    finally:
        import signal

        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@contextlib.contextmanager
def serve_folder(folder):
    """Serve ``folder`` read-only over HTTP on 127.0.0.1 (a stand-in for a public bucket); yields the base URL.

    fsspec's HTTP filesystem reads zarr from it anonymously, as it would read any public
    object store over HTTPS. Stopped on exit."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no access log in notebooks and tests
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def publish_demo(folder, start: str = "2009-01-01", end: str = "2020-12-31", seed: int = 0) -> dict:
    """A small public-style dataset: the ``tiny`` twin's truth written as an ftcloud FT product
    (``ft_convlstm.zarr``) plus the store's ``statics`` group (regions, permafrost stability),
    both consolidated and marked complete. Returns their relative paths and the twin's planted slopes."""
    import json
    import os

    import xarray as xr

    from ftcloud.ingest import ingest
    from ftcloud.io.stores import mark_complete
    from ftcloud.synth import generate

    folder = str(folder)
    src = os.path.join(folder, "_sources")
    generate("tiny", start, end, src, seed=seed, insitu=False, targets_start=end[:4] + "-01-01", progress=False)
    ingest(src, os.path.join(folder, "store"), sources=["statics"], progress=False)
    with xr.open_dataset(os.path.join(src, "truth", "truth_ft_9km.nc")) as ds:
        ft = ds["ft"].load()
    ft = ft.drop_vars([c for c in ft.coords if c not in ft.dims])
    codes = xr.where(ft.isnull(), 255, ft).astype("u1").transpose("pass", "time", "y", "x")
    codes.attrs = {"long_name": "freeze/thaw state (twin truth standing in for ConvLSTM_FT)", "flag_values": [0, 1],
                   "flag_meanings": "thawed frozen", "missing_value": 255}
    url = os.path.join(folder, "ft_convlstm.zarr")
    xr.Dataset({"ft": codes}).to_zarr(url, mode="w", consolidated=True)
    mark_complete(url)
    with open(os.path.join(src, "truth", "parameters.json")) as f:
        params = json.load(f)
    return {"product": "ft_convlstm.zarr", "store": "store", "truth": os.path.join(src, "truth"), "parameters": params}

"""Local servers for tests and notebooks, bound to 127.0.0.1 and stopped on exit: a dask-gateway, an HTTP folder."""

from __future__ import annotations

import contextlib

#: environment variables a local gateway's scheduler and workers inherit beyond the backend's
#: defaults: object-store settings only (test credentials for a moto server, never real ones)
GATEWAY_INHERITED_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "FSSPEC_CONFIG_DIR",
    "OMP_NUM_THREADS",
    "HOME",
)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_options_file():
    """deploy/helm/gateway_options.py of a source checkout, or None for an installed package."""
    from pathlib import Path

    p = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "gateway_options.py"
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
    proc = subprocess.Popen(
        [py, "-m", "dask_gateway_server", "-f", str(conf)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{proxy}"
    try:
        from dask_gateway import Gateway

        from ftcloud.cluster import close_gateway

        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dask-gateway-server exited with {proc.returncode}; see {workdir / 'gateway.log'}")
            try:
                gw = Gateway(address, auth="basic")
                try:
                    gw.list_clusters()
                finally:
                    close_gateway(gw)
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

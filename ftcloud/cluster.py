"""Where the dask work runs: a LocalCluster (default), a dask-gateway cluster, or a scheduler address.

:func:`connect` is a context manager yielding a ``distributed.Client`` that is the default for
every ``dask.compute`` inside it (prediction, validation, trends)::

    with connect("local") as client:               # LocalCluster on this machine, on 127.0.0.1
        ...
    with connect("gateway", workers=4, gpu=True):  # dask-gateway (address from the config or
        ...                                        # DASK_GATEWAY__ADDRESS), shut down on exit
    with connect("tls://10.0.0.5:8786"):           # an existing scheduler
        ...

The gateway's *cluster options* are the ones the deployment exposes (``deploy/`` defines
``worker_cores``, ``worker_memory`` in GiB and ``gpu``); options a gateway does not expose are
reported and ignored rather than guessed. No credential ever passes through here: object-store
keys reach the workers from their own environment (IAM role, workload identity, the
gateway's ``environment``), never from ftcloud.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from ftcloud.errors import ValidationError, require

log = logging.getLogger(__name__)

KINDS = ("local", "gateway")


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def _quiet_distributed() -> None:
    """distributed logs every client and worker event at INFO; keep WARNING and above (the dashboard
    shows the rest). ``ftcloud -vv`` restores them."""
    if logging.getLogger("ftcloud").getEffectiveLevel() < logging.INFO:
        return
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            lg = logging.getLogger(name)
            if lg.level < logging.WARNING:
                lg.setLevel(logging.WARNING)


WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


def _local_dashboard_link(cluster, host: str) -> str | None:
    """The LocalCluster's dashboard link on the address it listens on.

    distributed forms the link from the scheduler address, which for a one-process cluster is
    ``inproc://<this machine's IP>/...``: a host the dashboard, bound to ``host``, does not listen on.
    The ``distributed.dashboard.link`` template (e.g. a JupyterHub proxy) is still honoured."""
    from distributed.utils import format_dashboard_link

    port = (cluster.scheduler_info.get("services") or {}).get("dashboard")
    if not port:
        return None
    if host in WILDCARD_HOSTS:  # every interface: distributed's own link (this machine's IP) is reachable
        return cluster.dashboard_link or None
    bare = host.strip("[]")
    return format_dashboard_link(f"[{bare}]" if ":" in bare else bare, port)


def _announce(client, what: str, printer, remote: bool = False, link: str | None = None) -> None:
    """Print what the cluster is and its dashboard link (a remote scheduler serves its own dashboard);
    ``link`` overrides the client's own."""
    _quiet_distributed()
    if not link:
        link = getattr(client, "dashboard_link", None) if remote or _has_bokeh() else None
    printer(f"[cluster] {what}" + (f"; dashboard: {link}" if link else "; dashboard: unavailable (pip install bokeh)"))


def close_gateway(gateway) -> None:
    """Close a dask-gateway ``Gateway`` client for good. dask-gateway's ``Gateway.__del__`` calls ``close()``
    again once its event loop has stopped and prints an ignored-exception traceback into the user's notebook;
    dropping the stopped loop runner after closing makes that second call a no-op (it checks for it)."""
    try:
        gateway.close()
    except AttributeError:  # its loop was stopped already (closed before)
        pass
    gateway.__dict__.pop("_loop_runner", None)


@contextlib.contextmanager
def connect(
    kind: str = "local",
    *,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    worker_memory_gib: float | None = None,
    gpu: bool = False,
    gateway_address: str | None = None,
    timeout_s: float = 300.0,
    host: str = "127.0.0.1",
    printer=print,
) -> Iterator:
    """Start or join the dask cluster named by ``kind`` and yield its client (closed on exit).

    ``host`` (local only) is the address everything of a LocalCluster listens on: the scheduler, the
    workers, their HTTP servers (/health, /metrics) and the dashboard. The default is loopback; pass
    ``"0.0.0.0"`` (or an interface's address) to expose them to other machines."""
    from distributed import Client

    _quiet_distributed()
    kind = str(kind or "local")
    if kind == "local":
        from distributed import LocalCluster

        if gpu:
            log.warning(
                "--gpu with a LocalCluster: torch uses the local GPU when it sees one; no resources are declared"
            )
        # one process, threads: torch and the zarr codecs release the GIL, and the per-process
        # model cache is then loaded once; workers > 1 gives that many processes instead
        n = workers or 1
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // n)
        host = str(host if host is not None else "127.0.0.1")
        if "://" in host:
            raise ValidationError(f"host {host!r}: expected a host name or an IP address, without a protocol")
        kw = {"memory_limit": f"{worker_memory_gib}GiB"} if worker_memory_gib else {}
        # Every HTTP server binds to (host, 0); a (host, port) pair rather than "host:0" so that IPv6
        # literals survive distributed's parsing. The scheduler's HTTP server (/health, /metrics, the
        # dashboard when bokeh is installed) always runs: without an address it listened on 0.0.0.0:8787.
        bare = host.strip("[]")
        http = [(bare, 0)]
        if n > 1:
            kw["host"] = f"[{bare}]" if ":" in bare else bare  # worker processes talk over TCP on host
        else:
            # one process talks inproc:// (no TCP listener; distributed refuses a host there), but the
            # worker's HTTP server still listens, on every interface unless it is given an address; that
            # address also turns the worker's own bokeh pages on (nothing more when bokeh is absent)
            kw["worker_dashboard_address"] = http
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=threads,
            processes=n > 1,
            dashboard_address=http,
            scheduler_kwargs={"dashboard": _has_bokeh()},
            **kw,
        )
        client = Client(cluster, set_as_default=True)
        try:
            _announce(
                client,
                f"LocalCluster: {n} worker(s) x {threads} thread(s)",
                printer,
                link=_local_dashboard_link(cluster, host) if _has_bokeh() else None,
            )
            yield client
        finally:
            client.close()
            cluster.close()
        return
    if kind == "gateway":
        require("gateway", "dask_gateway", feature="--cluster gateway (the dask-gateway client)")
        import dask
        from dask_gateway import Gateway

        address = gateway_address or dask.config.get("gateway.address", None)
        if not address:
            raise ValidationError(
                "--cluster gateway: no gateway address; set cluster.gateway_address in the run "
                "config or DASK_GATEWAY__ADDRESS (JupyterHub/daskhub sets it for you)"
            )
        gateway = Gateway(address)
        options = gateway.cluster_options()
        wanted = {"worker_cores": threads_per_worker, "worker_memory": worker_memory_gib, "gpu": gpu or None}
        for name, value in wanted.items():
            if value is None:
                continue
            if name in options:
                options[name] = value
            else:
                printer(
                    f"[cluster] the gateway at {address} exposes no {name!r} option; ignored "
                    f"(it offers: {', '.join(options) or 'none'})"
                )
        cluster = gateway.new_cluster(options)
        try:
            n = workers or 2
            cluster.scale(n)
            client = cluster.get_client(set_as_default=True)
            try:
                printer(f"[cluster] dask-gateway cluster {cluster.name} at {address}: waiting for {n} worker(s) ...")
                client.wait_for_workers(n, timeout=timeout_s)
                _announce(client, f"dask-gateway cluster {cluster.name}: {n} worker(s)", printer, remote=True)
                yield client
            finally:
                client.close()
        finally:
            cluster.shutdown()
            for gw in (getattr(cluster, "gateway", None), gateway):
                if gw is not None:
                    close_gateway(gw)
        return
    if "://" in kind:
        client = Client(kind, set_as_default=True, timeout=f"{int(timeout_s)}s")
        try:
            n_workers = len(client.scheduler_info().get("workers", {}))
            _announce(client, f"scheduler {kind}: {n_workers} worker(s)", printer, remote=True)
            yield client
        finally:
            client.close()
        return
    raise ValidationError(
        f"--cluster {kind!r}: expected 'local', 'gateway' or a scheduler address like tcp://host:8786"
    )

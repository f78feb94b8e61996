"""A fault-injecting HTTP reverse proxy for S3 tests: 127.0.0.1, a free port, in front of a (moto) S3 server.

    proxy = S3FaultProxy("http://127.0.0.1:5000", seed=7).start()
    proxy.set(p503=0.1, pdrop=0.05)        # 10 % "503 SlowDown", 5 % dropped connections
    fs = s3fs.S3FileSystem(endpoint_url=proxy.endpoint_url, ...)
    ...
    proxy.counts                           # {"requests": 212, "forwarded": 182, "503": 21, "drop": 5, ...}
    proxy.close()

What reaches the upstream is what the client sent: the request line (method, path, query) as sent, every
header in order with its case (Host included, so SigV4 signatures still verify), the body byte for byte. A
``Transfer-Encoding: chunked`` body is relayed with its chunk framing and trailers unchanged, so botocore's
streaming uploads (``Content-Encoding: aws-chunked``, ``x-amz-content-sha256: STREAMING-...``) arrive as
sent. ``Expect: 100-continue`` is answered by the proxy (as a server does) and still forwarded. Responses keep
their status, reason and headers; only the hop-by-hop ones (Connection, Keep-Alive, Transfer-Encoding) are the
proxy's own, and a chunked response body is passed on with a Content-Length.

Faults, decided per request by a seeded RNG:

* ``503``: answered ``503 SlowDown`` with S3's XML error body, never forwarded;
* ``drop``: the connection is closed without a response, never forwarded;
* ``truncate``: forwarded, then the response is cut off: the status, the headers and half of the body are
  sent and the connection closed (a response without a body loses all of it: done upstream, answer lost);
* stalls: ``stall`` seconds of silence before the request is handled (``math.inf``: never answered, until
  :meth:`S3FaultProxy.close` or the client gives up).

The draw for a request depends on the seed, the method, the target and how many times that same method and
target were seen before, not on the order in which concurrent requests arrive: a test run replays the same
faults whatever the thread scheduling, and a retry draws again.
"""

from __future__ import annotations

import http.client
import math
import random
import socket
import socketserver
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["S3FaultProxy", "SLOWDOWN_BODY"]

SLOWDOWN_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    "<RequestId>{request_id}</RequestId><HostId>ftcloud-s3-fault-proxy</HostId></Error>"
)

# headers that belong to one connection, not to the message; the proxy sets its own
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
FAULT_KINDS = ("503", "drop", "truncate", "stall")


class _Stopped(Exception):
    """The proxy is closing while a request stalls."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and Expect: 100-continue is answered
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _proxy(self):
        proxy = self.server.proxy
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        fault, stall = proxy._decide(self.command, self.path)
        try:
            if stall:
                proxy._stall(stall)
        except _Stopped:
            self.close_connection = True
            return
        if fault == "503":
            return self._slowdown(proxy._request_id())
        if fault == "drop":
            self.close_connection = True  # closed without a byte of response
            return
        try:
            status, reason, headers, data = self._forward(proxy, body)
        except (OSError, http.client.HTTPException) as e:
            proxy._count("upstream_error")
            msg = f"fault proxy: upstream {proxy.upstream} failed: {e!r}".encode()
            return self._respond(502, "Bad Gateway", [("Content-Type", "text/plain")], msg)
        if fault == "truncate":
            self.close_connection = True
            if self.command == "HEAD" or not data:
                return  # nothing to cut: the whole answer is lost (the upstream did the work)
            return self._respond(status, reason, headers, data, cut=len(data) // 2)
        self._respond(status, reason, headers, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _proxy

    def _read_body(self) -> bytes:
        """The request body as it came over the wire (chunk framing and trailers included)."""
        codings = [c.strip().lower() for c in ",".join(self.headers.get_all("Transfer-Encoding", [])).split(",")]
        if codings[-1] == "chunked":
            raw = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    raise ValueError("truncated chunk size line")
                raw += line
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:  # trailers, up to the empty line
                        line = self.rfile.readline(65537)
                        if not line.endswith(b"\n"):
                            raise ValueError("truncated trailer")
                        raw += line
                        if line in (b"\r\n", b"\n"):
                            return bytes(raw)
                chunk = self.rfile.read(size + 2)  # the data and its CRLF
                if len(chunk) != size + 2:
                    raise ValueError("truncated chunk")
                raw += chunk
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise ValueError("truncated body")
        return data

    def _forward(self, proxy, body: bytes):
        conn = http.client.HTTPConnection(proxy._up_host, proxy._up_port, timeout=proxy.upstream_timeout)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                conn.putheader(name, value)
            conn.endheaders(body or None)  # bytes as they are: no re-chunking, no added Content-Length
            resp = conn.getresponse()  # skips an upstream "100 Continue"
            data = resp.read()
            proxy._count("forwarded")
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            conn.close()

    def _slowdown(self, request_id: str):
        body = b"" if self.command == "HEAD" else SLOWDOWN_BODY.format(request_id=request_id).encode()
        headers = [
            ("Content-Type", "application/xml"),
            ("x-amz-request-id", request_id),
            ("Content-Length", str(len(body))),
        ]
        self._respond(503, "Slow Down", headers, body)

    def _respond(self, status, reason, headers, data: bytes, cut: int | None = None):
        self.send_response_only(status, reason)  # no Server/Date of the proxy's own
        names = set()
        for name, value in headers:
            if name.lower() in HOP_BY_HOP:
                continue
            names.add(name.lower())
            self.send_header(name, value)
        bodiless = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        if not bodiless and "content-length" not in names:
            self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not bodiless:
            self.wfile.write(data if cut is None else data[:cut])
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, proxy: S3FaultProxy):
        self.proxy = proxy
        self._active: dict[threading.Thread, socket.socket] = {}
        self._active_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # HTTPServer's would resolve the host name (getfqdn)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address):
        t = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            daemon=True,
            name=f"s3-fault-proxy-{client_address[1]}",
        )
        with self._active_lock:
            self._active[t] = request
        t.start()

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._active_lock:
                self._active.pop(threading.current_thread(), None)

    def handle_error(self, request, client_address):
        self.proxy._count("client_error")  # a client that hung up mid-request; no traceback on stderr

    def close_all(self, timeout: float) -> int:
        """Cut every open connection and wait for the handler threads; returns how many are still alive."""
        with self._active_lock:
            active = dict(self._active)
        for sock in active.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in active:
            t.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in active)


class S3FaultProxy:
    """The proxy; :meth:`start` it (or use it as a context manager), :meth:`set` the faults, :meth:`close` it."""

    def __init__(self, upstream: str, seed: int = 0, upstream_timeout: float = 60.0):
        u = urlsplit(upstream)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"upstream {upstream!r}: expected http://host:port (the proxy speaks plain HTTP)")
        self.upstream = upstream.rstrip("/")
        self._up_host, self._up_port = u.hostname, u.port or 80
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._counts: Counter = Counter()
        self._seen: Counter = Counter()
        self._rid = 0
        self.events: list[tuple[str, str, str | None]] = []  # (method, target, fault or None) per request
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.set(seed=seed)

    # -- the fault plan ---------------------------------------------------------------------------------------
    def set(
        self,
        p503: float = 0.0,
        pdrop: float = 0.0,
        stall: float | None = None,
        pstall: float = 1.0,
        ptruncate: float | None = None,
        seed: int | None = None,
    ) -> S3FaultProxy:
        """Replace the fault plan (no arguments: no faults).

        ``p503``: fraction of requests answered 503 SlowDown. ``pdrop``: fraction of requests whose connection
        is dropped: half of them closed before any response (``drop``), half after the upstream answered, with
        the body cut in half (``truncate``); ``ptruncate`` sets the truncated fraction separately (then
        ``pdrop`` is all ``drop``). ``stall``: seconds a request waits before it is handled, ``math.inf`` for
        never answered; applied to a fraction ``pstall`` of the requests (all by default). ``seed``: reseed
        (the per-request draw restarts)."""
        if ptruncate is None:
            pdrop, ptruncate = pdrop / 2, pdrop / 2
        for name, p in (("p503", p503), ("pdrop", pdrop), ("ptruncate", ptruncate), ("pstall", pstall)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}={p}: expected a probability in [0, 1]")
        if p503 + pdrop + ptruncate > 1.0:
            raise ValueError("p503 + pdrop (+ ptruncate) exceed 1")
        if stall is not None and not stall >= 0:
            raise ValueError(f"stall={stall}: expected seconds >= 0 (math.inf: never answer) or None")
        with self._lock:
            self.p503, self.pdrop, self.ptruncate = float(p503), float(pdrop), float(ptruncate)
            self.stall, self.pstall = stall, float(pstall)
            if seed is not None:
                self.seed = seed
                self._seen.clear()
        return self

    @property
    def counts(self) -> dict:
        """Requests seen, requests forwarded, faults injected by kind (503, drop, truncate, stall)."""
        with self._lock:
            out = {"requests": 0, "forwarded": 0, **{k: 0 for k in FAULT_KINDS}}
            out.update(self._counts)
            return out

    @property
    def faults(self) -> int:
        c = self.counts
        return sum(c[k] for k in FAULT_KINDS)

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> S3FaultProxy:
        if self._server is None:
            self._stop.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="s3-fault-proxy"
            )
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, release stalled requests, cut open connections, wait for the handler threads."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        stuck = server.close_all(timeout)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        if stuck:
            raise RuntimeError(f"fault proxy: {stuck} handler thread(s) still running after {timeout} s")

    def __enter__(self) -> S3FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- used by the handler ----------------------------------------------------------------------------------
    def _decide(self, method: str, target: str) -> tuple[str | None, float | None]:
        with self._lock:
            self._counts["requests"] += 1
            key = (method, target)
            self._seen[key] += 1
            r = random.Random(f"{self.seed}|{method}|{target}|{self._seen[key]}")
            x = r.random()
            fault = None
            if x < self.p503:
                fault = "503"
            elif x < self.p503 + self.pdrop:
                fault = "drop"
            elif x < self.p503 + self.pdrop + self.ptruncate:
                fault = "truncate"
            stall = self.stall if self.stall is not None and r.random() < self.pstall else None
            if fault:
                self._counts[fault] += 1
            if stall is not None:
                self._counts["stall"] += 1
            self.events.append((method, target, fault if stall is None else f"stall+{fault}" if fault else "stall"))
            return fault, stall

    def _stall(self, seconds: float) -> None:
        if self._stop.wait(None if math.isinf(seconds) else seconds):
            raise _Stopped

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _request_id(self) -> str:
        with self._lock:
            self._rid += 1
            return f"FAULT{self._rid:012d}"

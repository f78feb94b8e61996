"""The S3 fault proxy: faithful forwarding, the faults it injects, and plain s3fs against it (moto behind).

The forwarding tests run against a raw recording server (no moto); the s3fs tests use the session's moto
server through the ``s3_faults`` fixture.
"""

from __future__ import annotations

import http.client
import io
import math
import socket
import socketserver
import threading
import time

import pytest

from .s3proxy import S3FaultProxy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


# -- a raw upstream that records the bytes it receives ------------------------------------------------------------


class _Recorder(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self):
        self.raw: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _RecordHandler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RecordHandler(socketserver.StreamRequestHandler):
    """Reads one request (Content-Length or chunked body) as raw bytes; answers a chunked 200 with a body."""

    def handle(self):
        raw = bytearray()
        while True:
            line = self.rfile.readline()
            if not line:
                return
            raw += line
            if line == b"\r\n":
                break
        head = raw.decode("latin-1").lower()
        if "transfer-encoding: chunked" in head:
            while True:
                line = self.rfile.readline()
                raw += line
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while (line := self.rfile.readline()) != b"\r\n":
                        raw += line
                    raw += line
                    break
                raw += self.rfile.read(size + 2)
        else:
            for h in head.split("\r\n"):
                if h.startswith("content-length:"):
                    raw += self.rfile.read(int(h.split(":")[1]))
        self.server.raw.append(bytes(raw))
        body = b"recorded %d bytes" % len(raw)
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nX-Upstream: Yes\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))


@pytest.fixture
def recorder():
    srv = _Recorder()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _raw_request(url: str, request: bytes, timeout: float = 10.0) -> http.client.HTTPResponse:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.sendall(request)
    resp = http.client.HTTPResponse(sock, method=request.split(b" ", 1)[0].decode())
    resp.begin()  # skips "100 Continue"
    return resp


def _aws_chunked(data: bytes) -> bytes:
    """A body framed the way botocore frames a streaming upload (trailer checksum), small chunks."""
    from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

    return AwsChunkedWrapper(
        io.BytesIO(data), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32", chunk_size=1000
    ).read()


def _http_chunked(payload: bytes, size: int = 777, extras: bool = True) -> bytes:
    """HTTP chunked framing; ``extras``: with chunk extensions and a trailer (moto's werkzeug answers those 500,
    botocore's HTTP clients send neither)."""
    ext, trailer = (b";ext=1", b"X-Trailer: t\r\n") if extras else (b"", b"")
    out = b"".join(
        b"%x%s\r\n%s\r\n" % (len(payload[i : i + size]), ext, payload[i : i + size])
        for i in range(0, len(payload), size)
    )
    return out + b"0\r\n" + trailer + b"\r\n"


BINARY = bytes(range(256)) * 17 + b"\r\n\r\n0\r\n\r\n"  # every byte value, and things that look like framing


def test_forwards_request_byte_exact(recorder):
    body = BINARY
    req = (
        b"PUT /bkt/k%20ey?partNumber=1&uploadId=a%2Fb HTTP/1.1\r\n"
        b"Host: 127.0.0.1:9\r\n"  # the client's Host, not the upstream's: kept
        b"X-Amz-Date: 20240311T000000Z\r\n"
        b"x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"
        b"Authorization: AWS4-HMAC-SHA256 Credential=testing/20240311/us-east-1/s3/aws4_request, "
        b"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=00ff\r\n"
        b"X-Dup: 1\r\nX-Dup: 2\r\n"
        b"Expect: 100-continue\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    ) + body
    with S3FaultProxy(recorder.url) as proxy:
        resp = _raw_request(proxy.endpoint_url, req)
        assert resp.status == 200 and resp.getheader("X-Upstream") == "Yes"
        assert resp.read() == b"recorded %d bytes" % len(req)  # the chunked answer, de-chunked
        assert resp.getheader("Content-Length") == str(len(b"recorded %d bytes" % len(req)))
        assert proxy.counts["forwarded"] == 1
    assert recorder.raw == [req]


def test_forwards_streaming_upload_framing_exact(recorder):
    """aws-chunked framing inside HTTP chunked transfer, chunk extensions and trailers: relayed as they are."""
    wire = _http_chunked(_aws_chunked(BINARY))
    req = (
        b"PUT /bkt/streamed HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"
        b"x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\n"
        b"Content-Encoding: aws-chunked\r\nX-Amz-Trailer: x-amz-checksum-crc32\r\n"
        b"X-Amz-Decoded-Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(BINARY)
    ) + wire
    with S3FaultProxy(recorder.url) as proxy:
        resp = _raw_request(proxy.endpoint_url, req)
        assert resp.status == 200, resp.read()
        resp.read()
    assert recorder.raw == [req]


def test_faults_are_injected_and_seeded(recorder):
    """503 carries S3's XML SlowDown, drops close without a response, truncation cuts the body; a seed replays."""

    def run(seed):
        seen = []
        with S3FaultProxy(recorder.url, seed=seed) as proxy:
            proxy.set(p503=0.2, pdrop=0.2)
            for i in range(120):
                try:
                    resp = _raw_request(proxy.endpoint_url, b"GET /bkt/%d HTTP/1.1\r\nHost: h\r\n\r\n" % (i % 40))
                    body = resp.read()
                    if resp.status == 503:
                        assert b"<Code>SlowDown</Code>" in body and resp.getheader("x-amz-request-id")
                    seen.append(resp.status)
                except http.client.IncompleteRead:
                    seen.append("truncated")
                except (http.client.RemoteDisconnected, ConnectionError):
                    seen.append("dropped")
            counts = proxy.counts
        return seen, counts

    seen, counts = run(1)
    assert counts["requests"] == 120
    assert counts["503"] == seen.count(503) > 0
    assert counts["drop"] == seen.count("dropped") > 0
    assert counts["truncate"] == seen.count("truncated") > 0
    assert counts["forwarded"] == seen.count(200) + counts["truncate"]
    assert run(1) == (seen, counts)  # same seed, same faults
    assert run(2)[0] != seen


def test_stalled_request_is_released_on_close(recorder):
    proxy = S3FaultProxy(recorder.url).start()
    proxy.set(stall=math.inf)
    sock = socket.create_connection(proxy._server.server_address[:2], timeout=10)
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    deadline = time.monotonic() + 5
    while proxy.counts["stall"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.counts["stall"] == 1
    t0 = time.monotonic()
    proxy.close()
    assert time.monotonic() - t0 < 3
    assert sock.recv(100) == b""  # closed, never answered
    sock.close()
    assert recorder.raw == []


# -- plain s3fs through the proxy, moto behind ----------------------------------------------------------------------


def _fs(proxy, **config):
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=proxy.endpoint_url, skip_instance_cache=True, config_kwargs=config or None)


@pytest.mark.s3
def test_s3fs_absorbs_503_and_dropped_connections(s3_faults):
    import numpy as np

    fs = _fs(s3_faults)
    fs.mkdir("faults-rw")
    rng = np.random.default_rng(11)
    objects = {f"faults-rw/obj-{i:02d}": rng.bytes(int(rng.integers(1, 4096))) for i in range(50)}
    s3_faults.set(p503=0.10, pdrop=0.05)
    t0 = time.monotonic()
    for path, data in objects.items():  # one by one: 50 PUTs
        fs.pipe_file(path, data)
    back = fs.cat(list(objects))  # concurrently: 50 GETs
    listed = fs.ls("faults-rw", refresh=True)
    elapsed = time.monotonic() - t0
    counts = s3_faults.counts
    s3_faults.set()
    assert back == objects
    assert sorted(listed) == sorted(objects)
    assert counts["503"] > 0, counts
    assert counts["drop"] + counts["truncate"] > 0, counts
    assert counts["requests"] > 100 + counts["503"], counts
    assert elapsed < 120, (elapsed, counts)


@pytest.mark.s3
def test_s3fs_gives_up_on_a_stall_after_its_read_timeout(s3_faults):
    from botocore.exceptions import ReadTimeoutError

    fs = _fs(s3_faults, read_timeout=1, connect_timeout=1, retries={"max_attempts": 1})
    fs.mkdir("faults-stall")
    fs.pipe_file("faults-stall/a", b"abc")
    assert fs.cat_file("faults-stall/a") == b"abc"

    s3_faults.set(stall=0.3)  # shorter than the read timeout: only slow
    t0 = time.monotonic()
    assert fs.cat_file("faults-stall/a") == b"abc"
    assert time.monotonic() - t0 >= 0.3

    s3_faults.set(stall=math.inf)  # never answered
    before = s3_faults.counts["stall"]
    t0 = time.monotonic()
    with pytest.raises(OSError) as err:
        fs.cat_file("faults-stall/a")
    elapsed = time.monotonic() - t0
    attempts = s3_faults.counts["stall"] - before
    # botocore's legacy retry mode counts max_attempts as *retries*: 2 requests per call; s3fs retries a read
    # timeout fs.retries times (short sleeps) around that. Every request waits out the 1 s read timeout.
    assert isinstance(err.value, ReadTimeoutError), repr(err.value)
    assert 1 <= attempts <= 2 * fs.retries, (attempts, s3_faults.events[-attempts:])  # 10 with s3fs 2026.9
    assert attempts * 1.0 <= elapsed < attempts * 1.0 + 15, (elapsed, attempts)
    t0 = time.monotonic()
    s3_faults.close()  # the stalled handlers are released
    assert time.monotonic() - t0 < 3


@pytest.mark.s3
def test_streaming_upload_reaches_moto_through_the_proxy(s3_faults):
    """A botocore-style aws-chunked upload (HTTP chunked, trailer checksum) arrives whole; refused first (503)."""
    fs = _fs(s3_faults)
    fs.mkdir("faults-stream")
    host, port = s3_faults.endpoint_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)  # one keep-alive connection for both

    def put():
        conn.putrequest("PUT", "/faults-stream/blob", skip_accept_encoding=True)
        for name, value in (
            ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("Content-Encoding", "aws-chunked"),
            ("X-Amz-Trailer", "x-amz-checksum-crc32"),
            ("X-Amz-Decoded-Content-Length", str(len(BINARY))),
            ("Transfer-Encoding", "chunked"),
        ):
            conn.putheader(name, value)
        conn.endheaders()
        conn.send(_http_chunked(_aws_chunked(BINARY), extras=False))
        resp = conn.getresponse()
        return resp.status, resp.read()

    s3_faults.set(p503=1.0)
    status, body = put()
    assert status == 503 and b"SlowDown" in body
    s3_faults.set()
    assert put() == (200, b"")
    conn.close()
    assert s3_faults.counts["503"] == 1
    assert fs.cat_file("faults-stream/blob") == BINARY

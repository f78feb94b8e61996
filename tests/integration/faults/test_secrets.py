"""Secrets planted in the environment, the config and URLs never reach a written byte or a log line.

A twin is served over HTTP on 127.0.0.1 behind a URL with userinfo (``reader:PASSWORD@``), the
store goes to moto S3 with credentials (key id, secret, session token) planted in the
environment, and ingest and predict run at ``-vv``, where fsspec and botocore log every request.
Then every object in the bucket, every local file written and every line printed is searched.
Credentials offered through the config, ``FTCLOUD_*`` variables or ``--storage-option`` are
refused in one line that does not repeat them.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.s3, pytest.mark.timeout(900)]

PLANTED = {
    "AWS_ACCESS_KEY_ID": "PLANTEDKEYID7Q2",
    "AWS_SECRET_ACCESS_KEY": "PLANTEDSECRETx9Wv",
    "AWS_SESSION_TOKEN": "PLANTEDTOKENz3Lm",
}
URL_PASSWORD = "PLANTEDPASSk8Rt"
NEEDLES = [*PLANTED.values(), URL_PASSWORD, "reader:"]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a):  # the server's own access log is not ftcloud's output
        pass


@pytest.fixture
def http_root(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://reader:{URL_PASSWORD}@127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _hits(blobs: dict[str, bytes]) -> list[str]:
    return [f"{name}: {n}" for name, b in blobs.items() for n in NEEDLES if n.encode() in b]


def test_planted_secrets_reach_no_output_and_no_log(http_root, s3, tiny_model, tmp_path):
    import s3fs

    from ftcloud.synth import generate

    base, served = http_root
    generate("tiny", "2017-01-01", "2017-01-20", str(served / "src"), seed=5, insitu=False, progress=False)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3["endpoint_url"]})
    fs.mkdir("ftcloud-secrets")
    env = {**os.environ, **PLANTED}
    opt = ["--storage-option", f"endpoint_url={s3['endpoint_url']}"]
    work = tmp_path / "work"
    work.mkdir()
    logs = {}
    for name, cli in {
        "ingest": ["ingest", "--source", f"{base}/src", "--store", "s3://ftcloud-secrets/store", *opt],
        "predict": [
            "predict",
            "--store",
            "s3://ftcloud-secrets/store",
            "--model",
            tiny_model,
            "--out",
            "s3://ftcloud-secrets/store/products/p.zarr",
            *opt,
        ],
        "info": ["info", "--store", "s3://ftcloud-secrets/store", *opt],
    }.items():
        p = subprocess.run(
            [sys.executable, "-m", "ftcloud.cli", "-vv", *cli], capture_output=True, cwd=work, env=env, timeout=600
        )
        assert p.returncode == 0, p.stderr.decode()[-3000:]
        logs[f"{name} stdout"], logs[f"{name} stderr"] = p.stdout, p.stderr
    assert len(logs["ingest stderr"].splitlines()) > 50  # -vv did log the requests
    fs.invalidate_cache()
    objects = {k: fs.cat_file(k) for k in fs.find("ftcloud-secrets")}
    assert len(objects) > 50
    assert _hits(objects) == []
    assert _hits(_files(work)) == []
    assert _hits(logs) == []


@pytest.mark.parametrize("how", ["env", "config", "nested config", "cli"])
def test_credentials_offered_as_options_are_refused_without_repeating_them(how, tmp_path):
    secret = "PLANTEDVALUEq4Zs"
    env = {**os.environ}
    args = ["info", "--store", str(tmp_path / "store")]
    if how == "env":
        env["FTCLOUD_STORAGE__KEY"] = secret
        args = ["run", "--out", str(tmp_path / "out"), "--dry-run"]
    elif how in ("config", "nested config"):
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(
            f"storage: {{key: {secret}}}\n"
            if how == "config"
            else f"storage: {{s3_additional_kwargs: {{SSECustomerKey: {secret}}}}}\n"
        )
        args = ["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--dry-run"]
    else:
        args += ["--storage-option", f"aws_secret_access_key={secret}"]
    p = subprocess.run(
        [sys.executable, "-m", "ftcloud.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 2, out
    assert "credential" in out and secret not in out and "Traceback" not in out, out
    assert not (tmp_path / "out" / "report").exists()

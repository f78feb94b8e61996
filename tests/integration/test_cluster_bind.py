"""``connect("local")`` listens on loopback only: scheduler, workers, their HTTP servers and the dashboard.

The sockets are read from the operating system (psutil): every socket in LISTEN state that this process
or one of its children opened while the cluster started must be on 127.0.0.1 -- no 0.0.0.0, no ``::``.
The printed dashboard link must name 127.0.0.1 and answer there.
"""

from __future__ import annotations

import re
import urllib.request
from urllib.parse import urlsplit

import pytest

psutil = pytest.importorskip("psutil")

from ftcloud import cluster as cluster_mod  # noqa: E402
from ftcloud.cluster import connect  # noqa: E402

pytestmark = pytest.mark.timeout(180)


def _listening() -> set[tuple[int, str, int]]:
    """(pid, ip, port) of every LISTEN inet socket of this process and its (grand)children."""
    me = psutil.Process()
    found = set()
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        found |= {(proc.pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return found


def _start(workers: int, **kw):
    """Start connect("local"), return (new listening sockets, printed lines); the cluster is closed again."""
    before = _listening()
    lines: list[str] = []
    with connect("local", workers=workers, threads_per_worker=1, printer=lines.append, **kw) as client:
        assert client.submit(sum, [1, 2]).result() == 3
        opened = _listening() - before
        links = [m.group(1) for line in lines for m in [re.search(r"dashboard: (\S+://\S+)", line)] if m]
        answers = []
        for link in links:  # the link must answer while the cluster runs (checked after the sockets)
            try:
                with urllib.request.urlopen(link, timeout=10) as r:
                    answers.append(r.status)
            except OSError as e:
                answers.append(repr(e))
    return opened, lines, links, answers


def _assert_loopback(opened):
    assert opened, "the cluster opened no listening socket at all (dashboard, HTTP servers)"
    wild = sorted((pid, ip, port) for pid, ip, port in opened if ip != "127.0.0.1")
    assert not wild, f"listening beyond loopback (pid, ip, port): {wild}"


def _assert_link(lines, links, answers, opened):
    if not cluster_mod._has_bokeh():
        pytest.skip("bokeh is not installed: no dashboard link to check (the sockets were checked)")
    assert len(links) == 1, lines
    url = urlsplit(links[0])
    assert url.hostname == "127.0.0.1", links[0]
    assert url.port in {port for _, _, port in opened}, (links[0], opened)
    assert answers == [200], (links, answers)


def test_one_process_listens_on_loopback_only():
    opened, lines, links, answers = _start(1)
    _assert_loopback(opened)
    _assert_link(lines, links, answers, opened)


def test_two_processes_listen_on_loopback_only():
    opened, lines, links, answers = _start(2)
    _assert_loopback(opened)
    assert len({pid for pid, _, _ in opened}) >= 3, opened  # the scheduler's process and two workers
    _assert_link(lines, links, answers, opened)


def test_without_bokeh_the_http_server_stays_on_loopback(monkeypatch):
    """No bokeh: the scheduler still serves /health and /metrics, on loopback; no link is printed."""
    monkeypatch.setattr(cluster_mod, "_has_bokeh", lambda: False)
    opened, lines, links, _ = _start(1)
    _assert_loopback(opened)
    assert not links and "dashboard: unavailable" in lines[0], lines


def test_host_takes_no_protocol():
    from ftcloud.errors import ValidationError

    with pytest.raises(ValidationError, match="without a protocol"):
        with connect("local", host="tcp://127.0.0.1"):
            pass

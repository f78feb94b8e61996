"""A lease on an output: one writer at a time, on local disks and object stores alike.

The lease is one small JSON object beside the output (``OUT.ftcloud-lock``: owner, host, pid,
what, when acquired, until when it is valid). It is created exclusively (a hard link on a local
disk, ``If-None-Match: *`` on S3), renewed by a background thread while the work runs, and
deleted at the end. A second writer finds it and stops with one line naming the holder; a
lease whose holder died stops being renewed and expires after ``ttl`` seconds (at once where
the holder ran on this host and its process is gone), and the next writer reports that it
takes it over. A writer whose lease was taken over (it stalled beyond
``ttl``) notices at its next :meth:`Lease.check` and stops before marking anything complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid

from ftcloud.errors import LockedError
from ftcloud.io.secrets import redact_url
from ftcloud.io.stores import filesystem, put_whole, read_json

log = logging.getLogger(__name__)

TTL_S = 300.0  # seconds a lease lives without renewal (renewed every TTL_S / 5)

__all__ = ["Lease", "lease", "lock_url"]


def lock_url(out: str) -> str:
    """The lease object of output ``out``: a sibling, so that replacing ``out`` keeps it (inside
    a bucket's root where ``out`` is a bare bucket)."""
    out = str(out).rstrip("/")
    if "://" in out and not out.startswith("file://") and "/" not in out.split("://", 1)[1]:
        return out + "/.ftcloud-lock"
    return out + ".ftcloud-lock"


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


class Lease:
    def __init__(self, out: str, storage_options: dict | None = None, what: str = "ftcloud", ttl: float | None = None):
        self.out, self.so, self.what = str(out), storage_options, what
        self.url = lock_url(out)
        self.ttl = float(ttl or TTL_S)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.acquired = None
        self._stop = threading.Event()
        self._thread = None
        self.lost = False
        self.renewed_at = 0.0  # time of the last successful write of the lease

    def _doc(self) -> bytes:
        now = time.time()
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "what": self.what,
                "acquired": self.acquired or now,
                "renewed": now,
                "expires": now + self.ttl,
            },
            sort_keys=True,
        ).encode()

    def acquire(self) -> Lease:
        for _ in range(3):
            try:
                put_whole(self.url, self._doc(), self.so, exclusive=True)
                self.acquired = self.renewed_at = time.time()
                break
            except FileExistsError:
                doc = read_json(self.url, self.so)
                now = time.time()
                if doc is not None and float(doc.get("expires", 0)) > now and not _dead_here(doc):
                    raise LockedError(
                        f"{redact_url(self.out)} is being written by another ftcloud ({doc.get('what')}, host "
                        f"{doc.get('host')} pid {doc.get('pid')}, since {_when(float(doc.get('acquired', 0)))}); "
                        f"wait for it to finish, or, if that run is dead, its lease expires at "
                        f"{_when(float(doc['expires']))} (or delete {redact_url(self.url)})"
                    ) from None
                if doc is None:
                    # unreadable: half-written by a writer that died, or being created right now
                    fs, path = filesystem(self.url, self.so)
                    try:
                        age = now - _mtime(fs, path)
                    except FileNotFoundError:
                        continue
                    if age < 30:
                        raise LockedError(
                            f"{redact_url(self.out)}: another ftcloud is taking the lease "
                            f"{redact_url(self.url)} right now; try again in a minute"
                        ) from None
                    log.warning("%s: taking over an unreadable lease (%.0f s old)", redact_url(self.url), age)
                elif _dead_here(doc) and float(doc.get("expires", 0)) > now:
                    log.warning(
                        "%s: taking over the lease of %s pid %s (%s): that process is gone",
                        redact_url(self.out),
                        doc.get("host"),
                        doc.get("pid"),
                        doc.get("what"),
                    )
                else:
                    log.warning(
                        "%s: taking over the stale lease of %s pid %s (%s; expired %.0f s ago)",
                        redact_url(self.out),
                        doc.get("host"),
                        doc.get("pid"),
                        doc.get("what"),
                        now - float(doc.get("expires", 0)),
                    )
                self._remove_if(doc)
        else:
            raise LockedError(f"{redact_url(self.out)}: could not take the lease {redact_url(self.url)}")
        self._thread = threading.Thread(target=self._renew, name="ftcloud-lease", daemon=True)
        self._thread.start()
        return self

    def _remove_if(self, doc) -> None:
        """Delete the lease object if it still holds ``doc`` (best effort on object stores)."""
        fs, path = filesystem(self.url, self.so)
        if read_json(self.url, self.so) == doc:
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(path)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 5):
            try:
                doc = read_json(self.url, self.so)
                if doc is None or doc.get("owner") != self.owner:
                    self.lost = True
                    log.warning("%s: our lease was taken over by %s", redact_url(self.out), (doc or {}).get("owner"))
                    return
                put_whole(self.url, self._doc(), self.so)
                self.renewed_at = time.time()
            except Exception as e:  # noqa: BLE001 - renewal retries next round; check() reports the loss
                log.warning("%s: could not renew the lease (%s)", redact_url(self.out), str(e).splitlines()[0][:200])

    def still_held(self) -> None:
        """Cheap check before each write (no I/O): stop if the lease was lost, or if it was not
        renewed for longer than its life (this process stalled: another writer may own it now)."""
        if self.lost or time.time() - self.renewed_at > self.ttl * 0.8:
            raise LockedError(
                f"{redact_url(self.out)}: this run's lease lapsed (not renewed for "
                f"{time.time() - self.renewed_at:.0f} s, lease life {self.ttl:.0f} s); another writer "
                "may own the output now: stopping without writing more"
            )

    def check(self) -> None:
        """Raise if the lease was lost (taken over after we stalled past its expiry)."""
        self.still_held()
        doc = read_json(self.url, self.so)
        if self.lost or doc is None or doc.get("owner") != self.owner:
            raise LockedError(
                f"{redact_url(self.out)}: this run's lease was taken over by another writer "
                f"({(doc or {}).get('host')} pid {(doc or {}).get('pid')}); stopping without marking "
                "anything complete"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            doc = read_json(self.url, self.so)
            if doc is not None and doc.get("owner") == self.owner:
                fs, path = filesystem(self.url, self.so)
                with contextlib.suppress(FileNotFoundError):
                    fs.rm_file(path)
        except Exception as e:  # noqa: BLE001 - the work is done; a lease left behind expires on its own
            log.warning(
                "%s: could not delete the lease (%s); it expires at %s",
                redact_url(self.url),
                str(e).splitlines()[0][:160],
                _when(time.time() + self.ttl),
            )

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _dead_here(doc: dict) -> bool:
    """The holder ran on this host and its process is gone (killed): its lease is stale now."""
    if doc.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(doc.get("pid")), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, TypeError, ValueError, OSError):
        return False
    return False


def _mtime(fs, path) -> float:
    info = fs.info(path)
    m = info.get("mtime") or info.get("LastModified") or info.get("created")
    if hasattr(m, "timestamp"):
        return m.timestamp()
    return float(m) if m is not None else time.time()


def lease(out: str, storage_options: dict | None = None, what: str = "ftcloud", ttl: float | None = None) -> Lease:
    """``with lease(out, so, "predict"):`` — hold the output's lease for the block."""
    return Lease(out, storage_options, what, ttl)

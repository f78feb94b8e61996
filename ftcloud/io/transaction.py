"""Write beside, then swap: a complete output is never destroyed before its replacement is complete.

Every output that a later stage trusts (an ingested group, a product) is written into a
*staging* sibling (``.NAME.ftcloud-new`` in the same folder or prefix), resumed there, marked
complete there (:func:`ftcloud.io.stores.mark_complete`: status record last), and only then
*promoted* to its name:

* on a local disk: ``NAME`` -> ``.NAME.ftcloud-old`` (rename), staging -> ``NAME`` (rename),
  then the old copy is deleted. A kill between the two renames leaves ``NAME`` missing for a
  moment and both copies complete; :func:`recover` (run by the next writer, under the lease)
  finishes the swap, or puts the old copy back if the new one is not complete;
* on an object store (no rename): the old output is marked incomplete (one PUT), its objects
  are deleted, the staging objects are copied server-side to ``NAME`` with the status record
  copied last, then the staging copy is deleted. A kill during that leaves ``NAME`` incomplete
  (never complete-looking with mixed contents) and the complete staging copy, from which
  :func:`recover` redoes the copy.

Readers only ever open ``NAME``; a group is complete exactly when its status record says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil

from ftcloud.io.secrets import redact_url
from ftcloud.io.stores import STATUS_KEY, filesystem, is_local, mark_incomplete, store_status

log = logging.getLogger(__name__)

__all__ = ["staging_url", "promote", "recover", "discard", "check_replaceable"]


def _sibling(url: str, suffix: str) -> str:
    url = str(url).rstrip("/")
    if "://" not in url and "/" not in url:  # a bare relative name: in the current folder
        url = "./" + url
    head, sep, name = url.rpartition("/")
    if not sep or not name or head.endswith(":/"):
        from ftcloud.errors import StorageError

        raise StorageError(
            f"{redact_url(url)}: an output needs a name inside a folder or bucket "
            "(e.g. s3://bucket/product.zarr), not a bucket or filesystem root"
        )
    return f"{head}/.{name}{suffix}"


def staging_url(out: str) -> str:
    """Where the next version of ``out`` is written until it is complete."""
    return _sibling(out, ".ftcloud-new")


def _old_url(out: str) -> str:
    return _sibling(out, ".ftcloud-old")


def check_replaceable(out: str, storage_options: dict | None = None) -> None:
    """Refuse to write over something at ``out`` that ftcloud did not write: a non-empty folder
    or prefix without a zarr group and ftcloud's status record (or a legacy ftcloud group)."""
    from ftcloud.errors import StorageError
    from ftcloud.io.stores import status_record

    fs, path = filesystem(out, storage_options)
    try:
        if not fs.exists(path):
            return
        if fs.isfile(path):
            raise StorageError(f"{redact_url(out)} is a file; refusing to replace it with a zarr product")
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return
    if not names:
        return
    if store_status(out, storage_options) is not None and (
        status_record(out, storage_options) is not None or _legacy_ftcloud(out, storage_options)
    ):
        return
    raise StorageError(
        f"{redact_url(out)} exists and is not an ftcloud output ({len(names)} entries, no "
        f"{STATUS_KEY}); refusing to replace it: choose another --out, or remove it yourself"
    )


def _legacy_ftcloud(out: str, storage_options: dict | None) -> bool:
    import json

    fs, path = filesystem(out, storage_options)
    try:
        attrs = json.loads(fs.cat_file(path + "/.zattrs"))
    except (FileNotFoundError, ValueError):
        return False
    return any(str(k).startswith("ftcloud") or k in ("model_sha256", "inference_plan") for k in attrs)


def discard(url: str, storage_options: dict | None = None) -> None:
    fs, path = filesystem(url, storage_options)
    if is_local(fs):
        shutil.rmtree(path, ignore_errors=True)
    elif fs.exists(path):
        fs.rm(path, recursive=True)


def promote(stage: str, out: str, storage_options: dict | None = None) -> None:
    """Make the complete ``stage`` the output ``out`` (replacing a previous ``out``)."""
    if store_status(stage, storage_options) != "complete":
        raise RuntimeError(f"{redact_url(stage)} is not complete; refusing to promote it")  # a bug, not a user error
    fs, spath = filesystem(stage, storage_options)
    _, opath = filesystem(out, storage_options)
    if is_local(fs):
        old = filesystem(_old_url(out), storage_options)[1]
        shutil.rmtree(old, ignore_errors=True)
        if os.path.exists(opath):
            os.rename(opath, old)
        os.rename(spath, opath)
        shutil.rmtree(old, ignore_errors=True)
        return
    # the filesystem's own spelling of both paths (memory:// lists "/a/b" for "a/b"), so that the slices below hold
    spath, opath = fs._strip_protocol(spath), fs._strip_protocol(opath)
    if fs.exists(opath):
        if store_status(out, storage_options) is not None:
            mark_incomplete(out, storage_options)
        for p in sorted(fs.find(opath)):
            if not p.endswith("/" + STATUS_KEY):
                fs.rm_file(p)
    keys = sorted(fs.find(spath))
    for p in keys:  # server-side copies; the status record last
        if not p.endswith("/" + STATUS_KEY):
            fs.copy(p, opath + p[len(spath) :])
    fs.copy(spath + "/" + STATUS_KEY, opath + "/" + STATUS_KEY)
    fs.rm(spath, recursive=True)


def recover(out: str, storage_options: dict | None = None) -> str | None:
    """Finish or undo a promotion that a kill interrupted; returns what was done, or None."""
    stage = staging_url(out)
    fs, opath = filesystem(out, storage_options)
    s_status = store_status(stage, storage_options)
    if is_local(fs):
        old = filesystem(_old_url(out), storage_options)[1]
        if not os.path.exists(opath):
            if s_status == "complete":
                log.warning("%s: finishing an interrupted swap (the new version was complete)", redact_url(out))
                os.rename(filesystem(stage, storage_options)[1], opath)
                shutil.rmtree(old, ignore_errors=True)
                return "promoted"
            if os.path.exists(old):
                log.warning("%s: restoring the previous version after an interrupted swap", redact_url(out))
                os.rename(old, opath)
                return "restored"
        elif os.path.exists(old):
            with contextlib.suppress(OSError):
                shutil.rmtree(old)
        return None
    if s_status == "complete" and store_status(out, storage_options) != "complete":
        log.warning("%s: finishing an interrupted copy of the complete new version", redact_url(out))
        promote(stage, out, storage_options)
        return "promoted"
    return None

"""URL -> fsspec store, zarr group layout, and the atomic "complete" record.

A store root (a folder or ``s3://bucket/prefix``) holds zarr groups::

    ROOT/predictors/era5land   ROOT/predictors/imerg
    ROOT/targets/smap_e_ft     ROOT/targets/esdr_ft
    ROOT/statics               ROOT/insitu/networks   ROOT/insitu/cma

A group's state is one small object, ``GROUP/.ftcloud-status.json``, written whole (one PUT on
an object store, write-then-rename on a local disk) and **last**: ``"incomplete"`` is written
before anything else of a (re)write, ``"complete"`` after every chunk, attribute and the
consolidated metadata. A group without that record, or with an unreadable one, reads as
incomplete, so a run killed at any point never leaves a group that :func:`open_group` accepts.
On local disks every zarr key is also written to a temporary name and renamed into place, so a
kill never leaves a half-written ``.zattrs`` that breaks later runs.

Credentials never pass through here: any credential-like key in ``storage_options`` is refused
(:mod:`ftcloud.io.secrets`); s3fs finds keys in the environment or its own config files.
S3 clients get connect/read timeouts and a retry cap unless the options set their own, and
ftcloud never creates a bucket.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from typing import Any

import fsspec
import xarray as xr
import zarr

from ftcloud.errors import AccessDeniedError, IncompleteStoreError, MissingVariableError, StorageError
from ftcloud.io.secrets import check_no_credentials, redact_url

log = logging.getLogger(__name__)

STATUS_ATTR = "ftcloud_status"  # read only, from groups written before the status record existed
STATUS_KEY = ".ftcloud-status.json"

# S3 defaults (only where the options do not set their own): a dead endpoint ends in about
# connect_timeout/read_timeout x max_attempts x s3fs retries seconds, not in a silent hang
S3_DEFAULTS = {
    "config_kwargs": {"connect_timeout": 5, "read_timeout": 20, "retries": {"max_attempts": 2, "mode": "standard"}}
}
S3FS_RETRIES = 4  # s3fs's own retry loop around each call (503 SlowDown, dropped connections, timeouts)


def _split(url: str) -> tuple[str, str]:
    if "://" in url:
        proto, rest = url.split("://", 1)
        return proto, rest
    return "file", url


def _retry_server_errors(e: BaseException) -> bool:
    """s3fs's retry loop retries 503 only when the body says SlowDown; a HEAD's 503 has no body.
    Retry every 500/502/503/504 (throttling, a restarting server) as AWS's own SDKs do."""
    resp = getattr(e, "response", None)
    if not isinstance(resp, dict):
        return False
    status = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    code = str((resp.get("Error") or {}).get("Code", ""))
    return status in (500, 502, 503, 504) or code in (
        "500",
        "502",
        "503",
        "504",
        "ServiceUnavailable",
        "InternalError",
        "SlowDown",
        "RequestTimeout",
    )


def _install_s3_retry_handler() -> None:
    try:
        from s3fs import core
    except ImportError:  # pragma: no cover - s3fs is a dependency
        return
    if getattr(core.CUSTOM_ERROR_HANDLER, "__name__", "") == "<lambda>":  # s3fs's default: retry nothing more
        core.set_custom_error_handler(_retry_server_errors)


def _with_defaults(proto: str, storage_options: dict | None) -> dict:
    so = dict(storage_options or {})
    if proto in ("s3", "s3a"):
        import copy

        # deep copies: botocore's Config rewrites the retries dict it is given (max_attempts ->
        # total_max_attempts), which would change these defaults for every later client
        ck = copy.deepcopy(S3_DEFAULTS["config_kwargs"])
        ck.update(copy.deepcopy(so.get("config_kwargs") or {}))
        so["config_kwargs"] = ck
    return so


def filesystem(url: str, storage_options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and the protocol-less path for ``url``."""
    url = str(url)
    check_no_credentials(storage_options or {}, f"storage options of {redact_url(url)}")
    proto, path = _split(url)
    try:
        fs = fsspec.filesystem(proto, **_with_defaults(proto, storage_options))
    except (ValueError, ImportError) as e:
        known = "a local path, file://, s3://, memory://, http(s)://"
        raise StorageError(
            f"{redact_url(url)}: cannot open a {proto!r} store ({str(e).splitlines()[0]}); "
            f"ftcloud reads {known} and any fsspec protocol whose package is installed"
        ) from None
    if proto in ("s3", "s3a"):
        fs.retries = S3FS_RETRIES  # an instance attribute in s3fs, not an option
        _install_s3_retry_handler()
    if proto == "file":
        path = fs._strip_protocol(path)
    elif proto in ("http", "https"):  # fsspec's HTTP filesystem works on whole URLs
        path = url
    return fs, path.rstrip("/")


def join(url: str, *parts: str) -> str:
    url = str(url).rstrip("/")
    return "/".join([url, *[p.strip("/") for p in parts if p]])


def is_local(fs) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,))


def _atomic_local_write(path: str, data) -> None:
    """Write ``data`` to ``path`` through a temporary name in the same folder and a rename."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(memoryview(data).cast("B") if not isinstance(data, bytes) else data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class AtomicLocalStore(zarr.storage.FSStore):
    """zarr's FSStore on a local disk, writing every key through a temporary file and a rename:
    a kill leaves each key either old or new, never half-written."""

    def __setitem__(self, key, value):
        if self.mode == "r":
            raise zarr.errors.ReadOnlyError()
        key = self._normalize_key(key)
        value = zarr.util.ensure_contiguous_ndarray_or_bytes(value)
        path = self.dir_path(key)
        if self.fs.isdir(path):
            self.fs.rm(path, recursive=True)
        _atomic_local_write(path, value)
        self.fs.invalidate_cache(self.fs._parent(path))

    def setitems(self, values):
        for k, v in values.items():
            self[k] = v


def deterministic_codecs() -> None:
    """Blosc compresses a chunk's blocks on several threads and stores them in the order they
    finish, so equal values can give different bytes run to run; one thread per chunk makes every
    write byte-reproducible (dask parallelises over chunks anyway)."""
    from numcodecs import blosc

    blosc.use_threads = False


def get_mapper(url: str, storage_options: dict | None = None) -> zarr.storage.FSStore:
    """The zarr store of ``url`` (every write through it byte-reproducible: :func:`deterministic_codecs`)."""
    deterministic_codecs()
    fs, path = filesystem(url, storage_options)
    if is_local(fs):
        return AtomicLocalStore(path, fs=fs)
    return zarr.storage.FSStore(path, fs=fs)


def put_whole(url: str, data: bytes, storage_options: dict | None = None, *, exclusive: bool = False) -> None:
    """Write one small object whole: one PUT on an object store, write-then-rename locally.

    ``exclusive``: fail with ``FileExistsError`` if the object exists (a hard link locally,
    ``If-None-Match: *`` on S3)."""
    fs, path = filesystem(url, storage_options)
    if is_local(fs):
        if not exclusive:
            _atomic_local_write(path, data)
            return
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, path)  # atomic, and fails where the name exists
        finally:
            os.unlink(tmp)
        return
    if exclusive:
        if fs.protocol in ("s3", "s3a") or "s3" in tuple(fs.protocol):
            fs.pipe_file(path, data, mode="create")
            return
        if fs.exists(path):  # other object stores: check-then-write (documented as best effort)
            raise FileExistsError(path)
    fs.pipe_file(path, data)


def read_json(url: str, storage_options: dict | None = None) -> dict | None:
    """A small JSON object, or None where it is missing or unreadable (half-written, not JSON)."""
    fs, path = filesystem(url, storage_options)
    try:
        doc = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        log.warning("%s: unreadable record (not JSON); treated as absent", redact_url(url))
        return None
    return doc if isinstance(doc, dict) else None


def require_bucket(url: str, storage_options: dict | None = None) -> None:
    """Refuse to write where the bucket does not exist: ftcloud never creates buckets."""
    fs, path = filesystem(url, storage_options)
    if is_local(fs) or str(url).split("://", 1)[0] not in ("s3", "s3a", "gs", "gcs", "az", "abfs"):
        return
    bucket = path.split("/", 1)[0]
    try:
        ok = fs.exists(bucket)
    except PermissionError:
        return  # listing the bucket may be denied where writing is allowed; the write will tell
    if not ok:
        raise StorageError(
            f"{redact_url(url)}: bucket {bucket!r} does not exist (or is not visible with these "
            "credentials); ftcloud never creates buckets: create it, or check the name and endpoint"
        )


def ensure_parent_groups(root: str, group: str, storage_options: dict | None = None) -> None:
    """Write ``.zgroup`` at the root and every intermediate level of ``group``."""
    require_bucket(root, storage_options)
    fs, path = filesystem(root, storage_options)
    parts = [p for p in group.strip("/").split("/") if p][:-1]
    levels = [path] + [path + "/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
    for lvl in levels:
        key = lvl + "/.zgroup"
        if not fs.exists(key):
            if is_local(fs):
                os.makedirs(lvl, exist_ok=True)
                _atomic_local_write(key, json.dumps({"zarr_format": 2}).encode())
            else:  # object stores have no folders: never makedirs (s3fs would create a bucket)
                fs.pipe_file(key, json.dumps({"zarr_format": 2}).encode())


def status_record(url: str, storage_options: dict | None = None) -> dict | None:
    """The group's ``.ftcloud-status.json`` (``status``, ``written`` and what the writer recorded:
    ``content``, ``identity``), or None where it has none or it is unreadable."""
    return read_json(join(url, STATUS_KEY), storage_options)


def _set_status(
    url: str, status: str, storage_options: dict | None, extra: dict | None = None, record: dict | None = None
) -> None:
    doc = {"status": status, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(record or {})}
    if status != "complete":
        put_whole(join(url, STATUS_KEY), json.dumps(doc, sort_keys=True).encode(), storage_options)  # first
        mapper = get_mapper(url, storage_options)
        # a stale .zmetadata would let readers see the old, complete-looking layout
        try:
            del mapper[".zmetadata"]
        except KeyError:
            pass
        return
    g = zarr.open_group(get_mapper(url, storage_options), mode="r+")
    if extra or STATUS_ATTR in g.attrs:
        attrs = {k: v for k, v in g.attrs.asdict().items() if k != STATUS_ATTR}
        attrs.update(extra or {})
        g.attrs.put(attrs)  # one write of .zattrs
    zarr.consolidate_metadata(g.store)
    put_whole(join(url, STATUS_KEY), json.dumps(doc, sort_keys=True).encode(), storage_options)  # last


def mark_incomplete(url: str, storage_options: dict | None = None, record: dict | None = None) -> None:
    _set_status(url, "incomplete", storage_options, record=record)


def mark_complete(
    url: str, storage_options: dict | None = None, extra: dict | None = None, record: dict | None = None
) -> None:
    """Attributes ``extra`` and consolidated metadata, then the status record (``record``: what the
    writer wants resumes and readers to check, e.g. a content digest) as the last write."""
    _set_status(url, "complete", storage_options, extra, record)


def store_status(url: str, storage_options: dict | None = None) -> str | None:
    """``"complete"``, ``"incomplete"`` or None where no zarr group exists at ``url``."""
    fs, path = filesystem(url, storage_options)
    try:
        fs.cat_file(path + "/.zgroup")
    except FileNotFoundError:
        return None
    except PermissionError as e:
        anon = " anonymously" if (storage_options or {}).get("anon") else ""
        raise AccessDeniedError(
            f"{redact_url(url)}: access denied reading{anon} ({str(e).splitlines()[0][:120]}); "
            "is the bucket public, or are credentials set for this endpoint?"
        ) from None
    rec = status_record(url, storage_options)
    if rec is not None:
        return "complete" if rec.get("status") == "complete" else "incomplete"
    # a group written before the status record: complete only if its (last-written) consolidated
    # metadata exists and says complete
    try:
        meta = json.loads(fs.cat_file(path + "/.zmetadata"))
        attrs = meta.get("metadata", {}).get(".zattrs", {})
    except (FileNotFoundError, ValueError, UnicodeDecodeError, AttributeError):
        return "incomplete"
    return "complete" if attrs.get(STATUS_ATTR) == "complete" else "incomplete"


def content_id(url: str, storage_options: dict | None = None) -> str:
    """What a reader of the group ``url`` depends on, for resume checks: the content digest its
    writer recorded, else a digest of its objects' names, sizes and modification stamps."""
    import hashlib

    rec = status_record(url, storage_options) or {}
    if rec.get("content"):
        return str(rec["content"])
    fs, path = filesystem(url, storage_options)
    h = hashlib.sha256()
    for name, info in sorted(fs.find(path, detail=True).items()):
        stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
        h.update(f"{name[len(path) :]}\0{info.get('size')}\0{stamp}\n".encode())
    return "listing:" + h.hexdigest()


def written_by_ftcloud(url: str, storage_options: dict | None = None) -> bool:
    """Whether the zarr group at ``url`` was written by ftcloud (it carries ftcloud's status record or
    attributes); a foreign dataset (someone's own product) does not, and is opened without the check."""
    fs, path = filesystem(url, storage_options)
    if fs.exists(path + "/" + STATUS_KEY):
        return True
    for name in (".zattrs", ".zmetadata"):
        try:
            meta = json.loads(fs.cat_file(f"{path}/{name}"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            continue
        attrs = meta.get("metadata", {}).get(".zattrs", {}) if name == ".zmetadata" else meta
        if any(str(k).startswith("ftcloud_") for k in attrs):
            return True
    return False


def open_group(
    root: str,
    group: str,
    storage_options: dict | None = None,
    *,
    chunks: Any = {},  # noqa: B006 - {} = dask arrays with the store's own chunks (None would load eagerly on .data)
    require_complete: bool = True,
) -> xr.Dataset:
    """Open one ftcloud group lazily (dask arrays on the zarr chunks); refuse a group a previous run did not finish."""
    url = join(root, group)
    status = store_status(url, storage_options)
    if status is None:
        raise MissingVariableError(
            f"{redact_url(url)}: no zarr group {group!r} under {redact_url(root)} (run `ftcloud ingest` first)"
        )
    if require_complete and status != "complete":
        raise IncompleteStoreError(
            f"{redact_url(url)}: group {group!r} is marked {status!r}: the run that wrote it did not finish. "
            "Re-run `ftcloud ingest` (it overwrites the group) before using it."
        )
    return open_zarr_codes(get_mapper(url, storage_options), consolidated=status == "complete", chunks=chunks)


def open_zarr_codes(mapper, *, consolidated: bool | None = None, chunks: Any = {}) -> xr.Dataset:  # noqa: B006
    """``xr.open_zarr`` that keeps categorical codes as codes: an FT variable stays uint8 with 255 where its
    ``_FillValue`` says missing (xarray alone would give float32 NaN there), packed predictors are decoded
    (:func:`ftcloud.core.metadata.keep_codes`)."""
    import zarr

    from ftcloud.core.metadata import keep_codes

    try:
        grp = zarr.open_consolidated(mapper, mode="r") if consolidated else zarr.open_group(mapper, mode="r")
    except (KeyError, ValueError):  # no consolidated metadata after all
        grp = zarr.open_group(mapper, mode="r")
    per_var = keep_codes({name: (a.dtype, dict(a.attrs)) for name, a in grp.arrays()})
    return xr.open_zarr(mapper, consolidated=consolidated, chunks=chunks, mask_and_scale=per_var)


def describe_storage_error(exc: BaseException) -> str | None:
    """One line for a store that cannot be reached (timeouts, refused connections, access denied
    from botocore/aiohttp/s3fs), naming the endpoint without credentials; None for other errors."""
    seen = set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        name = type(e).__name__
        kw = getattr(e, "kwargs", None) or {}
        endpoint = kw.get("endpoint_url") or kw.get("url") or getattr(e, "url", None)
        if name in (
            "ReadTimeoutError",
            "ConnectTimeoutError",
            "ServerTimeoutError",
            "TimeoutError",
            "FSTimeoutError",
            "ConnectionClosedError",
        ):
            s3 = S3_DEFAULTS["config_kwargs"]
            where = f"storage endpoint {redact_url(endpoint)}" if endpoint else "the storage endpoint"
            attempts = (s3.get("retries") or {}).get("max_attempts", "?")
            return (
                f"{where} did not answer ({name}; connect timeout {s3.get('connect_timeout')} s, read timeout "
                f"{s3.get('read_timeout')} s, {attempts} attempts x {S3FS_RETRIES} retries); "
                "is the endpoint up and reachable from here?"
            )
        if name in ("EndpointConnectionError", "ClientConnectorError", "ClientOSError"):
            where = f"storage endpoint {redact_url(endpoint)}" if endpoint else "the storage endpoint"
            return f"{where} refused or dropped the connection ({name}); is the endpoint URL right and the service up?"
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            return (
                "no credentials found for the object store (ftcloud takes them only from the environment: "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an IAM role); use --anon for public data"
            )
        e = e.__cause__ or e.__context__
    return None

"""What ftcloud never writes: credentials and URL userinfo.

Object-store keys belong to the environment (``AWS_ACCESS_KEY_ID``, an IAM role, workload
identity, fsspec's own config files); ftcloud refuses them wherever options enter (run config,
``FTCLOUD_*`` variables, ``storage_options`` of any store) and removes userinfo
(``user:password@``) from every URL it records (group attributes, history, logs, reports).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ftcloud.errors import ValidationError

__all__ = ["is_credential_key", "check_no_credentials", "redact_url", "redact_text", "RedactingFilter"]

# exact names (case-insensitive) and name parts that hold secrets in fsspec/s3fs/gcsfs/adlfs/botocore
_EXACT = {
    "key",
    "secret",
    "token",
    "password",
    "passwd",
    "pwd",
    "auth",
    "credentials",
    "sas_token",
    "account_key",
    "connection_string",
    "cookie",
}
_PARTS = (
    "secret",
    "password",
    "passwd",
    "passphrase",
    "token",
    "credential",
    "access_key",
    "key_id",
    "private_key",
    "api_key",
    "apikey",
    "connection_string",
    "authorization",
    "bearer",
    "basic_auth",
    "set-cookie",
)
# values of ``token`` that name an authentication *mode*, not a secret (gcsfs)
_TOKEN_MODES = {"anon", "google_default", "cloud", "browser", "cache"}
# camel-case botocore parameters such as SSECustomerKey, SSEKMSKeyId, CopySourceSSECustomerKey
_CAMEL_KEY = re.compile(r"[a-z0-9]Key(Id|MD5)?$")


def is_credential_key(name) -> bool:
    """True where an option named ``name`` would carry a secret (``key``, ``secret``, ``token``,
    ``password``, ``aws_secret_access_key``, ``SSECustomerKey``, ...)."""
    s = str(name)
    low = s.lower()
    return (
        low in _EXACT or low.endswith(("_key", "-key")) or any(p in low for p in _PARTS) or bool(_CAMEL_KEY.search(s))
    )


def check_no_credentials(options, where: str, prefix: str = "") -> None:
    """Refuse any credential-like key at any depth of ``options`` (dicts and lists of dicts)."""
    if isinstance(options, Mapping):
        for k, v in options.items():
            name = f"{prefix}{k}"
            if str(k).lower() == "token" and isinstance(v, str) and v in _TOKEN_MODES:
                continue
            if is_credential_key(k):
                raise ValidationError(
                    f"{where}: option {name!r} looks like a credential; ftcloud never takes credentials in its "
                    "options (they would reach logs and outputs). Use the environment (AWS_ACCESS_KEY_ID, "
                    "AWS_SECRET_ACCESS_KEY, ...), an IAM role or fsspec's config files instead."
                )
            check_no_credentials(v, where, name + ".")
    elif isinstance(options, (list, tuple)):
        for i, v in enumerate(options):
            check_no_credentials(v, where, f"{prefix}{i}.")


# userinfo runs to the last "@" before the first "/" (a password may hold "@" or quotes)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s]+)@")
# query parameters that carry signatures or tokens (pre-signed URLs, SAS tokens)
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|sig|signature|token|"
    r"access_token|sas|key|password|api_key|apikey|access_key|client_secret|secret)=)[^&\s'\"]+"
)


def redact_url(url) -> str:
    """``url`` without userinfo and without signature/token query values (kept: scheme, host, path)."""
    return redact_text(str(url))


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted as by :func:`redact_url`."""
    text = _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)
    return _SECRET_QUERY.sub(lambda m: m.group(1) + "***", text)


class RedactingFilter:
    """A ``logging`` filter that redacts URLs in every record ftcloud's handler prints."""

    def filter(self, record) -> bool:
        import traceback

        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's to report
            return True
        red = redact_text(msg)
        if red != msg:
            record.msg, record.args = red, None
        if record.exc_info and not record.exc_text:  # tracebacks logged with exc_info=True
            record.exc_text = redact_text("".join(traceback.format_exception(*record.exc_info)).rstrip())
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def redact_obj(obj):
    """A copy of a JSON-like ``obj`` with URLs redacted in every string and the values of
    credential-like keys replaced by ``"***"`` (for run summaries, provenance, state files)."""
    if isinstance(obj, dict):
        return {
            k: (
                "***"
                if is_credential_key(k)
                and v not in (None, "", False)
                and not (str(k).lower() == "token" and v in _TOKEN_MODES)
                else redact_obj(v)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


class RedactingStream:
    """A text stream that redacts URLs in everything written through it (the CLI wraps its
    stdout and stderr in one, so prints, warnings and tracebacks carry no userinfo)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._stream.write(redact_text(text) if isinstance(text, str) else text)

    def __getattr__(self, name):
        return getattr(self._stream, name)

"""Layered configuration: packaged defaults < YAML run config < FTCLOUD_* environment.

``get_options()`` returns a read-only merged view; ``set_options(**kw)`` changes options for
the process or, used as a context manager, for a block. Keys are validated against the
packaged defaults, so a typo raises with the allowed keys in the message. Storage
credentials are refused in config files and environment overrides alike: they belong in
fsspec ``storage_options`` taken from the environment by fsspec/s3fs themselves.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

from ftcloud.errors import ValidationError

_ENV_PREFIX = "FTCLOUD_"
_SECRET_WORDS = ("secret", "password", "token", "credential", "access_key", "key_id")


def _packaged_defaults() -> dict:
    text = resources.files("ftcloud").joinpath("ftcloud.yaml").read_text()
    return yaml.safe_load(text)


_DEFAULTS = _packaged_defaults()
_overrides: dict = {}


def _check_no_secrets(d: Mapping, where: str, prefix: str = "") -> None:
    for k, v in d.items():
        name = f"{prefix}{k}"
        if any(w in str(k).lower() for w in _SECRET_WORDS):
            raise ValidationError(
                f"{where}: option {name!r} looks like a credential; ftcloud never stores credentials in "
                "its configuration. Use the environment (AWS_ACCESS_KEY_ID, ...) or fsspec's config instead."
            )
        if isinstance(v, Mapping):
            _check_no_secrets(v, where, name + ".")


def _merge(base: dict, new: Mapping, where: str, strict: bool = True, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in new.items():
        if strict and k not in base:
            raise ValidationError(f"{where}: unknown option {prefix + k!r}; allowed: {', '.join(sorted(base))}")
        if isinstance(v, Mapping) and isinstance(base.get(k), Mapping):
            # chunk dicts and storage options may hold new keys
            out[k] = _merge(base[k], v, where, strict=k not in ("chunks", "storage") and strict, prefix=prefix + k + ".")
        else:
            out[k] = v
    return out


def _normalise(v: Any) -> Any:
    """YAML turns 2001-01-01 into a date; ftcloud keeps dates as ISO strings."""
    import datetime as dt

    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()[:10]
    if isinstance(v, Mapping):
        return {k: _normalise(x) for k, x in v.items()}
    return v


def _parse_env_value(text: str) -> Any:
    return _normalise(yaml.safe_load(text))


def env_overrides(environ: Mapping[str, str] | None = None) -> dict:
    """Options from FTCLOUD_<SECTION>__<KEY>=value variables (values parsed as YAML scalars)."""
    environ = os.environ if environ is None else environ
    out: dict = {}
    for name, value in environ.items():
        if not name.startswith(_ENV_PREFIX):
            continue
        path = name[len(_ENV_PREFIX):].lower().split("__")
        d = out
        for p in path[:-1]:
            d = d.setdefault(p, {})
        d[path[-1]] = _parse_env_value(value)
    _check_no_secrets(out, "environment")
    return out


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """Merged options: packaged defaults, then the YAML file at ``path``, then the environment."""
    cfg = _merge(_DEFAULTS, _overrides, "set_options")
    if path is not None:
        with open(path) as f:
            user = yaml.safe_load(f) or {}
        if not isinstance(user, Mapping):
            raise ValidationError(f"{path}: a run config must be a YAML mapping, got {type(user).__name__}")
        _check_no_secrets(user, str(path))
        user = _normalise(user)
        cfg = _merge(cfg, user, str(path))
    cfg = _merge(cfg, env_overrides(environ), "environment")
    return cfg


def get_options() -> Mapping:
    """Read-only view of the current options (defaults + set_options + environment)."""
    return MappingProxyType(load_config())


class set_options:
    """Set options for the process, or for a ``with`` block.

    >>> with set_options(region="tiny"):
    ...     get_options()["region"]
    'tiny'
    """

    def __init__(self, **kwargs):
        global _overrides
        _check_no_secrets(kwargs, "set_options")
        self._old = copy.deepcopy(_overrides)
        _merge(_DEFAULTS, kwargs, "set_options")  # validates
        _overrides = _merge(_merge(_DEFAULTS, _overrides, "set_options"), kwargs, "set_options")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _overrides
        _overrides = self._old

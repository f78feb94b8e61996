"""Layered configuration: packaged defaults < YAML run config < FTCLOUD_* environment.

``get_options()`` returns a read-only merged view; ``set_options(**kw)`` changes options for
the process or, used as a context manager, for a block. Keys are validated against the
packaged defaults, so a typo raises with the allowed keys in the message, inside sections too
(``chunks`` accepts its groups and dims only; ``storage`` stays open for fsspec options), and
values are checked (chunk sizes, workers and epochs are positive integers, dates are
YYYY-MM-DD, the region is a known one, no period ends before it starts). Storage
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
from ftcloud.io.secrets import is_credential_key

_ENV_PREFIX = "FTCLOUD_"


def _packaged_defaults() -> dict:
    text = resources.files("ftcloud").joinpath("ftcloud.yaml").read_text()
    return yaml.safe_load(text)


_DEFAULTS = _packaged_defaults()
_overrides: dict = {}


def _check_no_secrets(d: Mapping, where: str, prefix: str = "") -> None:
    for k, v in d.items():
        name = f"{prefix}{k}"
        if is_credential_key(k):  # key, secret, token, password, *_key, SSECustomerKey, ...
            raise ValidationError(
                f"{where}: option {name!r} looks like a credential; ftcloud never stores credentials in "
                "its configuration. Use the environment (AWS_ACCESS_KEY_ID, ...) or fsspec's config instead."
            )
        if isinstance(v, Mapping):
            _check_no_secrets(v, where, name + ".")


#: sections whose keys are free: fsspec storage options (never credentials: see _check_no_secrets)
_OPEN_SECTIONS = ("storage",)
#: options whose value is a mapping, checked as one value (not as a section of known keys)
_MAPPING_VALUES = ("train.splits",)
#: keys a section accepts beside those of the packaged defaults
_EXTRA_KEYS = {"chunks.insitu": ("station",)}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _is_date(v) -> bool:
    from ftcloud.core.timeutil import parse_date

    try:
        parse_date(v)
    except ValidationError:
        return False
    return True


def _is_region(v) -> bool:
    from ftcloud.core.grid import region_window

    if not isinstance(v, str):
        return False
    try:
        region_window(v)
    except ValidationError:
        return False
    return True


def _is_cluster_kind(v) -> bool:
    return isinstance(v, str) and (v in ("local", "gateway") or "://" in v)


def _known_regions() -> str:
    from ftcloud.core.grid import REGIONS

    return ", ".join(sorted(REGIONS))


_POSITIVE_INT = ("a positive integer", lambda v: _is_int(v) and v > 0)
_NON_NEGATIVE_INT = ("a non-negative integer", lambda v: _is_int(v) and v >= 0)
_POSITIVE_NUMBER = ("a positive number", lambda v: _is_number(v) and v > 0)
_DATE = ("a date YYYY-MM-DD", _is_date)
#: (dotted key pattern, may be null, (expectation, check)) for the values of every layer
_RULES = (
    ("region", False, ("one of the known regions or a box LON0,LON1,LAT0,LAT1", _is_region)),
    ("start", False, _DATE),
    ("end", False, _DATE),
    ("targets_start", True, _DATE),
    ("imerg.start", True, _DATE),
    ("imerg.end", True, _DATE),
    ("seed", False, _NON_NEGATIVE_INT),
    ("chunks.*.*", False, _POSITIVE_INT),
    ("ingest.workers", True, _POSITIVE_INT),
    (
        "train.hidden",
        False,
        (
            "a list of positive integers such as [12] or [16, 16]",
            lambda v: isinstance(v, list) and len(v) > 0 and all(_is_int(h) and h > 0 for h in v),
        ),
    ),
    (
        "train.kernel",
        False,
        ("a positive odd integer (the ConvLSTM pads kernel // 2)", lambda v: _is_int(v) and v > 0 and v % 2 == 1),
    ),
    ("train.epochs", False, _POSITIVE_INT),
    ("train.patience", False, _POSITIVE_INT),
    ("train.seed", False, _NON_NEGATIVE_INT),
    (
        "train.splits",
        True,
        (
            "null (the paper's splits) or a mapping of train, val and test to lists of [first, last] dates, "
            "e.g. {train: [[2015-04-01, 2016-03-31]], val: [[2016-04-01, 2016-10-31]], test: [[2018-04-01, "
            "2020-12-31]]}",
            lambda v: _is_splits(v),
        ),
    ),
    ("predict.time_chunk", False, _POSITIVE_INT),
    ("predict.batch_days", False, _POSITIVE_INT),
    ("predict.region_chunks", False, _POSITIVE_INT),
    ("synth.tb", False, ("true or false", lambda v: isinstance(v, bool))),
    (
        "retrieve.methods",
        False,
        (
            "'auto' or a list of the retrieval families npr, msta, dia, dfa, ert, autoencoder",
            lambda v: (
                v == "auto"
                or (isinstance(v, list) and all(m in ("npr", "msta", "dia", "dfa", "ert", "autoencoder") for m in v))
            ),
        ),
    ),
    ("cluster.kind", False, ("'local', 'gateway' or a scheduler address like tcp://host:8786", _is_cluster_kind)),
    ("cluster.workers", True, _POSITIVE_INT),
    ("cluster.threads_per_worker", True, _POSITIVE_INT),
    ("cluster.worker_memory_gib", True, _POSITIVE_NUMBER),
    ("cluster.timeout_s", False, _POSITIVE_NUMBER),
)


def _is_splits(v: Any) -> bool:
    """train/val/test -> non-empty lists of [first, last] ISO dates, first <= last."""
    import pandas as pd

    if not isinstance(v, Mapping) or set(v) != {"train", "val", "test"}:
        return False
    for spans in v.values():
        if not isinstance(spans, (list, tuple)) or not spans:
            return False
        for span in spans:
            if not isinstance(span, (list, tuple)) or len(span) != 2 or not all(_is_date(d) for d in span):
                return False
            if pd.Timestamp(span[0]) > pd.Timestamp(span[1]):
                return False
    return True


def _check_value(dotted: str, v: Any, where: str) -> None:
    from fnmatch import fnmatchcase

    for pattern, nullable, (expected, ok) in _RULES:
        if fnmatchcase(dotted, pattern):
            if (v is None and nullable) or (v is not None and ok(v)):
                return
            extra = f" ({_known_regions()})" if dotted == "region" else ""
            raise ValidationError(f"{where}: {dotted} must be {expected}{extra}, got {v!r}")


def _check_options(new: Mapping, where: str, base: Mapping | None = None, prefix: str = "") -> None:
    """Refuse unknown keys (also inside sections but ``storage``), sections given as values and bad values."""
    base = _DEFAULTS if base is None else base
    section = prefix[:-1]
    allowed = set(base) | set(_EXTRA_KEYS.get(section, ()))
    for k, v in new.items():
        dotted = f"{prefix}{k}"
        if k not in allowed:
            raise ValidationError(f"{where}: unknown option {dotted!r}; allowed: {', '.join(sorted(allowed))}")
        b = base.get(k)
        if dotted in _MAPPING_VALUES:
            _check_value(dotted, v, where)
        elif isinstance(b, Mapping):
            if not isinstance(v, Mapping):
                raise ValidationError(
                    f"{where}: {dotted} is a section, not a value; set its keys "
                    f"({', '.join(sorted(b)) or 'any fsspec option'}) instead, got {v!r}"
                )
            if dotted not in _OPEN_SECTIONS:
                _check_options(v, where, b, dotted + ".")
        elif isinstance(v, Mapping):
            raise ValidationError(f"{where}: {dotted} takes a value, not a section")
        else:
            _check_value(dotted, v, where)


def _deep_merge(base: Mapping, new: Mapping) -> dict:
    out = copy.deepcopy(dict(base))
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), Mapping):
            out[k] = _deep_merge(base[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _merge(base: dict, new: Mapping, where: str, strict: bool = True) -> dict:
    """``new`` merged into ``base``; with ``strict`` its keys and values are checked first (see _check_options)."""
    if strict:
        _check_options(new, where)
    return _deep_merge(base, new)


def _normalise(v: Any) -> Any:
    """YAML turns 2001-01-01 into a date; ftcloud keeps dates as ISO strings."""
    import datetime as dt

    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()[:10]
    if isinstance(v, Mapping):
        return {k: _normalise(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_normalise(x) for x in v]
    return v


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    what = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{what} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else what


def _parse_env_value(text: str) -> Any:
    return _normalise(yaml.safe_load(text))


def _nested(path: list[str], value: Any) -> dict:
    d: dict = {}
    node = d
    for p in path[:-1]:
        node = node.setdefault(p, {})
    node[path[-1]] = value
    return d


def env_overrides(environ: Mapping[str, str] | None = None) -> dict:
    """Options from FTCLOUD_<SECTION>__<KEY>=value variables (values parsed as YAML scalars).

    Each variable is checked on its own, so an error names it: an unknown key (also inside a
    section: ``FTCLOUD_CHUNKS__PREDICTORZ__TIME``), a value of the wrong kind
    (``FTCLOUD_CHUNKS__PREDICTORS__TIME=0``: not a positive integer) or a credential.
    """
    environ = os.environ if environ is None else environ
    out: dict = {}
    for name in sorted(environ):
        if not name.startswith(_ENV_PREFIX):
            continue
        value = environ[name]
        path = name[len(_ENV_PREFIX) :].lower().split("__")
        _check_no_secrets(_nested(path, None), "environment")  # before the value could be echoed
        try:
            parsed = _parse_env_value(value)
        except yaml.YAMLError as e:
            raise ValidationError(
                f"environment variable {name}={value}: not a YAML value ({_yaml_problem(e)})"
            ) from None
        one = _nested(path, parsed)
        _check_options(one, f"environment variable {name}={value}")
        out = _deep_merge(out, one)
    return out


def _check_periods(cfg: Mapping, layers: list[tuple[str, Mapping]]) -> None:
    """start <= end (and imerg.start <= imerg.end) on the merged options, naming the layers that set them."""
    from ftcloud.core.timeutil import check_period

    for section, (a, b) in ((None, ("start", "end")), ("imerg", ("start", "end"))):
        node = cfg if section is None else (cfg.get(section) or {})
        names = (a, b) if section is None else (f"{section}.{a}", f"{section}.{b}")
        setters = []
        for where, layer in layers:
            lnode = layer if section is None else (layer.get(section) or {})
            if isinstance(lnode, Mapping) and (a in lnode or b in lnode):
                setters.append(where)
        check_period(node.get(a), node.get(b), " and ".join(dict.fromkeys(setters)) or "packaged defaults", names=names)


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """Merged options: packaged defaults, then the YAML file at ``path``, then the environment.

    Every layer is checked against the packaged defaults (unknown keys, wrong values) and the
    merged period must not end before it starts; bad input raises
    :class:`~ftcloud.errors.ValidationError` naming the file or variable.
    """
    layers: list[tuple[str, Mapping]] = [("set_options", _overrides)]
    cfg = _merge(_DEFAULTS, _overrides, "set_options")
    if path is not None:
        try:
            with open(path) as f:
                user = yaml.safe_load(f) or {}
        except FileNotFoundError:
            raise ValidationError(f"{path}: run config file not found") from None
        except OSError as e:
            raise ValidationError(f"{path}: cannot read the run config ({e.strerror or e})") from None
        except yaml.YAMLError as e:
            raise ValidationError(f"{path}: not a valid YAML run config ({_yaml_problem(e)})") from None
        if not isinstance(user, Mapping):
            raise ValidationError(f"{path}: a run config must be a YAML mapping, got {type(user).__name__}")
        _check_no_secrets(user, str(path))
        user = _normalise(user)
        cfg = _merge(cfg, user, str(path))
        layers.append((str(path), user))
    environ = os.environ if environ is None else environ
    env = env_overrides(environ)
    cfg = _merge(cfg, env, "environment", strict=False)  # env_overrides checked each variable
    for key in ("start", "end"):
        if f"{_ENV_PREFIX}{key.upper()}" in environ:
            layers.append((f"{_ENV_PREFIX}{key.upper()}", {key: None}))
        if f"{_ENV_PREFIX}IMERG__{key.upper()}" in environ:
            layers.append((f"{_ENV_PREFIX}IMERG__{key.upper()}", {"imerg": {key: None}}))
    _check_periods(cfg, layers)
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
        new = _merge(_overrides, kwargs, "set_options")  # validates kwargs
        _check_periods(_deep_merge(_DEFAULTS, new), [("set_options", new)])
        _overrides = new

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _overrides
        _overrides = self._old

"""Passes, predictor steps, and the local-solar-time -> UTC rule.

The FT overpasses are local solar times; ERA5-Land and IMERG are in UTC. For a pixel at
longitude ``lon`` the local hour ``L`` of local date ``D`` maps to the UTC instant
``D + L h - lon/15 h``, rounded to the nearest whole hour (halves round up). Over China
(73-135 E) that puts the AM steps (03-05 h local) on the previous UTC day and the PM steps
(15-17 h) on the same UTC day. See docs/source-formats.md.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ftcloud.errors import ValidationError

from ftcloud.study import LOCAL_STEP_HOURS, PASSES, SEASON_MONTHS, SPLITS


def utc_hour_offset(lon, local_hour: float) -> np.ndarray:
    """Whole hours to add to local date 00 UTC to reach local hour ``local_hour`` at ``lon``.

    The result may be negative (previous UTC day) or >= 24 (next UTC day).

    Examples
    --------
    >>> int(utc_hour_offset(100.0, 3))  # 03 h local at 100 E is 19:40 UTC the day before
    -4
    """
    lon = np.asarray(lon, dtype="f8")
    return np.floor(local_hour - lon / 15.0 + 0.5).astype("i8")


def step_offsets(lon, pass_: str) -> np.ndarray:
    """UTC hour offsets (relative to local date 00 UTC) of the three steps: shape lon.shape + (3,)."""
    check_pass(pass_)
    return np.stack([utc_hour_offset(lon, h) for h in LOCAL_STEP_HOURS[pass_]], axis=-1)


def request_hours(lons) -> list[int]:
    """UTC hours of day (0-23) a CDS request must hold for pixels at ``lons``.

    The union over both passes of the step hours plus the hour before each first step
    (needed to de-accumulate precipitation).
    """
    lons = np.atleast_1d(np.asarray(lons, dtype="f8"))
    hours: set[int] = set()
    for p in PASSES:
        off = step_offsets(lons, p)
        for k in range(-1, 3):
            col = off[..., 0] - 1 if k == -1 else off[..., k]
            hours.update(int(h) % 24 for h in np.unique(col))
    return sorted(hours)


def check_pass(pass_: str) -> str:
    """``pass_`` if it is "AM" or "PM", else a ValidationError."""
    if pass_ not in PASSES:
        raise ValidationError(f"pass must be one of {', '.join(PASSES)} (upper case), got {pass_!r}")
    return pass_


# YYYY, YYYY-MM or YYYY-MM-DD, optionally with a time of day; "20170101" (a year 20170101 to numpy) is refused
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2}([T ][\d:.]*)?)?)?")


def parse_date(value, name: str = "date", prefix: str = "") -> np.datetime64 | None:
    """``value`` (a YYYY-MM-DD string, a date or a datetime64) as ``datetime64[D]``; None stays None.

    Anything else raises :class:`~ftcloud.errors.ValidationError` naming ``name`` and the value.
    """
    if value is None:
        return None
    text = (
        value
        if isinstance(value, str)
        else str(np.datetime64(value, "D"))
        if isinstance(value, np.datetime64)
        else str(value)
    )
    d = None
    if _DATE.fullmatch(text.strip()):
        try:
            d = np.datetime64(text.strip()[:10], "D")
        except ValueError:
            d = None
    if d is None or np.isnat(d):
        raise ValidationError(f"{prefix}{name} {value!r} is not a date: expected YYYY-MM-DD")
    return d


def check_period(start, end, what: str = "", *, names: tuple[str, str] = ("start", "end")):
    """Parse the inclusive period ``start``..``end`` and raise unless ``start <= end``.

    Either may be None (not given: nothing to compare). ``what`` prefixes the message (a file,
    a function); ``names`` are how the two are called there (``("--start", "--end")`` on the
    command line). Returns both as ``datetime64[D]`` (or None); bad input raises
    :class:`~ftcloud.errors.ValidationError`.

    >>> check_period("2017-01-01", "2017-01-31")
    (np.datetime64('2017-01-01'), np.datetime64('2017-01-31'))
    """
    prefix = f"{what}: " if what else ""
    s = parse_date(start, names[0], prefix)
    e = parse_date(end, names[1], prefix)
    if s is not None and e is not None and e < s:
        raise ValidationError(
            f"{prefix}{names[1]} {e} is before {names[0]} {s}; both days are included, "
            f"so {names[1]} must be on or after {names[0]}"
        )
    return s, e


def split_mask(times, split: str, splits: dict | None = None) -> np.ndarray:
    """Days of ``times`` in ``split`` ("train", "val", "test") of ``splits``
    (default: the paper's, :data:`ftcloud.study.SPLITS`)."""
    t = pd.DatetimeIndex(times)
    m = np.zeros(len(t), bool)
    for a, b in (splits or SPLITS)[split]:
        m |= (t >= pd.Timestamp(a)) & (t <= pd.Timestamp(b))
    return m


def season_of(times) -> np.ndarray:
    """The season name of each of ``times`` (:data:`ftcloud.study.SEASON_MONTHS`), as an object array."""
    months = pd.DatetimeIndex(times).month
    out = np.empty(len(months), object)
    for name, ms in SEASON_MONTHS.items():
        out[np.isin(months, ms)] = name
    return out

"""Passes, predictor steps, and the local-solar-time -> UTC rule.

The FT overpasses are local solar times; ERA5-Land and IMERG are in UTC. For a pixel at
longitude ``lon`` the local hour ``L`` of local date ``D`` maps to the UTC instant
``D + L h - lon/15 h``, rounded to the nearest whole hour (halves round up). Over China
(73-135 E) that puts the AM steps (03-05 h local) on the previous UTC day and the PM steps
(15-17 h) on the same UTC day. See docs/source-formats.md.
"""

from __future__ import annotations

import numpy as np

PASSES = ("AM", "PM")
LOCAL_STEP_HOURS = {"AM": (3, 4, 5), "PM": (15, 16, 17)}
OVERPASS_LOCAL_HOUR = {"AM": 6.0, "PM": 18.0}


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
    if pass_ not in PASSES:
        raise ValueError(f"pass must be one of {PASSES}, got {pass_!r}")
    return pass_

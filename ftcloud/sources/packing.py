"""How the ERA5-Land predictors are stored: CF packing to a stated precision, then zstd.

Each dynamic predictor is written as ``int16`` with ``scale_factor``/``add_offset`` and
``_FillValue`` attributes (CF-1.10 section 8.1 "packed data"), which any netCDF/zarr/xarray
reader decodes to ``value = stored * scale_factor + add_offset``; the chunks are then
compressed with Blosc-zstd (level 5, byte shuffle). The rounding error of a decoded value is at
most half a step (``scale_factor / 2``), far below what the field itself knows:

=========  =========  ============  =====================  =============================================
variable   units      step          largest error (half)   what it is small against
=========  =========  ============  =====================  =============================================
stl1       K          0.005         0.0025                 ERA5-Land soil temperature errors of 1-3 K
                                                           against in-situ (Muñoz-Sabater et al. 2021)
swvl1      m3 m-3     2e-5          1e-5                   the 0.04 m3 m-3 accuracy goal of SMAP soil
                                                           moisture (Entekhabi et al. 2010)
sde        m          0.001         0.0005                 snow-depth gauges' ~1 cm resolution (assumed)
pr         mm h-1     0.002         0.001                  rain-gauge resolution 0.1-0.2 mm (assumed)
=========  =========  ============  =====================  =============================================

Values outside a variable's packable range are refused with one line (never wrapped or clipped
silently): :func:`check_packable`. ``-32768`` is the fill value (missing, decoded as NaN).

One consequence to know: ``stl1`` near 273.15 K moves by at most 0.0025 K, so a threshold
classification at exactly 273.15 K (ERA5_FT) may flip for values within 0.0025 K of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftcloud.errors import ValidationError

FILL = -32768
_LO, _HI = -32767, 32767


@dataclass(frozen=True)
class Packing:
    scale_factor: float
    add_offset: float
    units: str

    @property
    def precision(self) -> float:
        """Largest rounding error of a decoded value."""
        return self.scale_factor / 2

    @property
    def valid_range(self) -> tuple[float, float]:
        """The smallest and largest value that packs without overflow."""
        return (_LO * self.scale_factor + self.add_offset, _HI * self.scale_factor + self.add_offset)


#: the predictors' packing (module docstring); changing it changes every store's plan fingerprint
PREDICTOR_PACKING = {
    "stl1": Packing(0.005, 273.15, "K"),  # 109.3 .. 437.0 K
    "swvl1": Packing(2e-5, 0.3, "m3 m-3"),  # -0.355 .. 0.955
    "sde": Packing(0.001, 32.0, "m"),  # -0.77 .. 64.8 m
    "pr": Packing(0.002, 65.0, "mm h-1"),  # -0.53 .. 130.5 mm/h
}


def compressor():
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE)


def encoding(name: str, packing: dict | None = None) -> dict:
    """The xarray/zarr encoding of one packed variable (empty when it is not packed)."""
    p = (packing or PREDICTOR_PACKING).get(name)
    if p is None:
        return {}
    return {
        "dtype": "int16",
        "scale_factor": p.scale_factor,
        "add_offset": p.add_offset,
        "_FillValue": FILL,
        "compressor": compressor(),
    }


def _first_outside(da, lo: float, hi: float, where):
    """(label of the source, value, count) of the first value of ``da`` outside [lo, hi], or None.
    ``where``: a string, or a callable given the element's ``{dim: position}``."""
    v = np.asarray(da.values)
    if not np.issubdtype(v.dtype, np.number):
        return None
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(((v < lo) | (v > hi)).ravel())
    if not bad.size:
        return None
    pos = dict(zip(da.dims, (int(i) for i in np.unravel_index(bad[0], v.shape))))
    return (where(pos) if callable(where) else where), float(v.ravel()[bad[0]]), int(bad.size)


def check_packable(ds, packing: dict | None, where) -> None:
    """Refuse (one line) a value that the packing of its variable cannot hold.

    ``where``: a string, or a callable given the offending element's ``{dim: position}`` that
    names its source (the file, the date).
    """
    for name, p in (packing or {}).items():
        if name not in ds:
            continue
        lo, hi = p.valid_range
        found = _first_outside(ds[name], lo, hi, where)
        if found:
            label, val, _ = found
            raise ValidationError(
                f"{label}: variable {name!r} has value {val:g} {p.units}, expected "
                f"{lo:g} .. {hi:g} {p.units} (the range its int16 packing holds)"
            )


#: physical ranges checked at the door for every stored variable (output names): a value outside
#: is an error naming the file, the date, the value and the range (never clipped or masked).
#: Dynamic predictors from :data:`ftcloud.core.metadata.PREDICTORS`; statics assumed.
PHYSICAL_RANGES = {
    "stl1": (180.0, 350.0, "K"),  # Earth's recorded soil temperatures lie well inside (assumed)
    "swvl1": (0.0, 1.0, "m3 m-3"),  # a volume fraction
    "sde": (0.0, 50.0, "m"),  # deeper than any seasonal snowpack (assumed)
    "pr": (0.0, 130.0, "mm h-1"),  # ERA5-Land hourly maxima are below 100 mm/h (assumed); packing holds 130.5
    "pr_imerg": (0.0, 500.0, "mm h-1"),
    "tci": (0.0, 5000.0, "m"),
    "aow": (0.0, 1.0, "1"),
    "elevation": (-500.0, 9000.0, "m"),
}

_HINTS = {
    "stl1": " (values in degC labelled K?)",
    "swvl1": " (percent instead of a fraction?)",
    "sde": " (mm or cm instead of m?)",
}


def check_physical(ds, where, ranges: dict | None = None) -> None:
    """Refuse (one line) the first value of any variable in ``ranges`` outside its physical range.

    ``where`` as in :func:`check_packable`."""
    for name, (lo, hi, units) in (ranges or PHYSICAL_RANGES).items():
        if name not in ds:
            continue
        found = _first_outside(ds[name], lo, hi, where)
        if found:
            label, val, n_bad = found
            hint = _HINTS.get(name, "") if abs(val) < 100 or name != "stl1" else ""
            raise ValidationError(
                f"{label}: variable {name!r} has value {val:g} {units}, outside its physical "
                f"range {lo:g} .. {hi:g} {units}{hint}; {n_bad} value(s) of this input are outside"
            )


def decode(raw: np.ndarray, attrs: dict, fill=None) -> np.ndarray:
    """float32 values of a packed zarr chunk, exactly as xarray decodes it (float64 arithmetic,
    then float32). ``fill``: the zarr array's ``fill_value`` (where xarray keeps ``_FillValue``)."""
    if "scale_factor" not in attrs and "add_offset" not in attrs:
        return np.asarray(raw, "f4")
    fill = attrs.get("_FillValue", fill)
    out = raw.astype("f8") * float(attrs.get("scale_factor", 1.0)) + float(attrs.get("add_offset", 0.0))
    if fill is not None:
        out[raw == fill] = np.nan
    return out.astype("f4")

"""Every accuracy claim beside its baselines: one common mask, block-bootstrap intervals.

A fused product's accuracy means little alone. :func:`compare` scores several FT products
against one reference **on the same pixel-days** (the common mask: the reference and every
product valid, i.e. 0 thawed / 1 frozen) and gives each statistic a 95 % interval from a
block bootstrap. Pixel-days are strongly autocorrelated (a frozen spell is one event, not
thirty), so the resampling unit is a block (below) -- and the interval of a *gain* (product minus
baseline) comes from the same resamples, so that the pairing of the two products on each pixel-day is kept.

Statistics (SPEC section 5, product state / reference state):

* ``CA_F = N[F/F] / (N[F/F] + N[T/F])``, ``CA_T = N[T/T] / (N[T/T] + N[F/T])``,
  ``CA_O = (N[F/F] + N[T/T]) / N``.
* Bootstrap: draw ``n_blocks`` blocks with replacement ``n_boot`` times; each statistic is
  recomputed from the summed per-block confusion counts; the interval is the percentile
  interval ``[q(2.5 %), q(97.5 %)]``.

The numpy kernel (:func:`block_confusion`, :func:`bootstrap_counts`) knows nothing of
xarray; :func:`compare` takes plain arrays of any shape with matching block ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ftcloud.core.metadata import ft_valid
from ftcloud.errors import GridMismatchError, MissingVariableError
from ftcloud.study import SEASON_MONTHS
import pandas as pd
import logging
import xarray as xr
from ftcloud.science.validation import (
    sample_at_stations,
)

log = logging.getLogger(__name__)

__all__ = [
    "Comparison",
    "block_confusion",
    "bootstrap_counts",
    "compare",
    "compare_counts",
    "CommonCounts",
    "pixel_year_blocks",
    "time_blocks",
    "MIN_BLOCKS",
    "gain_sentence",
    "STATISTICS",
]

#: the statistics of :func:`compare`, as (name, numerator cells, denominator cells) over the
#: confusion cells (0 FF, 1 TF, 2 TT, 3 FT) = N[product/reference]
STATISTICS = {"CA_O": ((0, 2), (0, 1, 2, 3)), "CA_F": ((0,), (0, 1)), "CA_T": ((2,), (2, 3))}


#: fewer independent blocks than this give no interval (and no verdict)
MIN_BLOCKS = 10


def block_confusion(
    product: np.ndarray, reference: np.ndarray, blocks: np.ndarray, mask: np.ndarray, n_blocks: int
) -> np.ndarray:
    """Confusion counts per block: (n_blocks, 4) int64 of N[F/F], N[T/F], N[T/T], N[F/T].

    ``product``/``reference`` hold 1 frozen / 0 thawed (other values are ignored through
    ``mask``); ``blocks`` are integer block ids in ``[0, n_blocks)`` of the same shape.
    """
    p = product[mask].astype(np.int8) == 1
    r = reference[mask].astype(np.int8) == 1
    cell = np.where(r, np.where(p, 0, 1), np.where(p, 3, 2))  # FF, TF, TT, FT
    b = blocks[mask].astype(np.int64)
    return np.bincount(b * 4 + cell, minlength=n_blocks * 4).reshape(n_blocks, 4)


def bootstrap_counts(per_block: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Summed confusion counts of ``n_boot`` block resamples: (n_boot, 4).

    ``per_block`` may also be (n_blocks, k, 4) for k products resampled *together*
    (returns (n_boot, k, 4)), which keeps products paired for their differences.
    """
    nb = per_block.shape[0]
    flat = per_block.reshape(nb, -1).astype("f8")
    out = np.empty((n_boot, flat.shape[1]))
    step = max(1, 2_000_000 // max(nb, 1))
    for a in range(0, n_boot, step):
        k = min(step, n_boot - a)
        idx = rng.integers(0, nb, size=(k, nb))
        w = np.stack([np.bincount(row, minlength=nb) for row in idx]).astype("f8")  # (k, nb) multiplicities
        out[a : a + k] = w @ flat
    return out.reshape((n_boot,) + per_block.shape[1:])


def _stat(counts: np.ndarray, name: str) -> np.ndarray:
    num, den = STATISTICS[name]
    n = counts[..., list(num)].sum(axis=-1)
    d = counts[..., list(den)].sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d > 0, n / np.where(d > 0, d, 1), np.nan)


def pixel_year_blocks(times, shape_yx: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """Block ids (time, *shape_yx) of pixel-years, and their number (only where neighbouring
    pixels' errors are independent: else use :func:`time_blocks`).

    ``times``: the time axis (anything :class:`pandas.DatetimeIndex` accepts).
    """
    years = pd.DatetimeIndex(times).year.to_numpy()
    uy, yi = np.unique(years, return_inverse=True)
    npix = int(np.prod(shape_yx)) if len(shape_yx) else 1
    pix = np.arange(npix).reshape(shape_yx) if len(shape_yx) else np.zeros((), int)
    ids = yi.reshape((-1,) + (1,) * len(shape_yx)) * npix + pix[None, ...]
    return ids.astype(np.int64), int(uy.size * npix)


def time_blocks(times, shape: tuple[int, ...] = (), days: int = 10) -> tuple[np.ndarray, int]:
    """Block ids (time, *shape) of ``days``-day periods of the whole domain, and their number.

    Every pixel (or station) of the same period shares one id, so a resample keeps the spatial
    correlation of the errors; periods count from the first time step.
    """
    t = pd.DatetimeIndex(times)
    if len(t) == 0:
        return np.zeros((0,) + tuple(shape), np.int64), 0
    k = ((t - t[0]).days // int(days)).to_numpy().astype(np.int64)
    ids = np.broadcast_to(k.reshape((-1,) + (1,) * len(shape)), (len(t),) + tuple(shape))
    return np.ascontiguousarray(ids), int(k.max()) + 1


@dataclass
class Comparison:
    """Products scored on one common mask against one reference.

    ``table``: one row per product: ``n`` (pixel-days on the common mask), and for each of
    CA_O, CA_F, CA_T the estimate with ``_lo``/``_hi`` (95 % block-bootstrap interval).
    ``gains``: one row per baseline: the ``CA_O`` difference ``target - baseline`` (``gain``,
    fraction) with its paired interval and ``p_le_0`` (bootstrap fraction of resamples with a
    gain <= 0), and the same for CA_F (``gain_F``) and CA_T (``gain_T``).
    """

    reference: str
    target: str
    table: pd.DataFrame
    gains: pd.DataFrame
    n_blocks: int
    n_boot: int
    block: str
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "reference": self.reference,
            "target": self.target,
            "n_blocks": self.n_blocks,
            "n_boot": self.n_boot,
            "block": self.block,
            "notes": list(self.notes),
            "table": _records(self.table),
            "gains": _records(self.gains),
        }


def _records(df: pd.DataFrame) -> list:
    out = []
    for name, row in df.iterrows():
        d = {"product": name}
        for k, v in row.items():
            d[k] = (
                None
                if (isinstance(v, float) and not np.isfinite(v))
                else (int(v) if k in ("n", "n_F", "n_T") else float(v) if isinstance(v, (float, np.floating)) else v)
            )
        out.append(d)
    return out


def compare(
    products: Mapping[str, np.ndarray],
    reference: np.ndarray,
    blocks: np.ndarray,
    n_blocks: int,
    *,
    target: str = "fused",
    reference_name: str = "truth",
    mask: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    block: str = "10-day domain",
    min_blocks: int = MIN_BLOCKS,
) -> Comparison:
    """Score ``products`` against ``reference`` on their common mask, with block-bootstrap intervals.

    Parameters
    ----------
    products : mapping of name -> array
        FT codes (1 frozen, 0 thawed, anything else missing), all of ``reference``'s shape.
    reference : array
        The reference FT codes (truth, in-situ, a target product).
    blocks, n_blocks : int array, int
        Block id of every element (e.g. :func:`time_blocks`) and the number of ids.
    target : str
        The product whose gain over every other product is reported (``gains``).
    mask : bool array, optional
        Further restriction (a season, a split); the common mask is ``mask`` & reference valid
        & every product valid.
    n_boot, seed, ci
        Bootstrap resamples, generator seed, interval level.
    block : str
        How the blocks were made (recorded in the result).
    min_blocks : int
        Below this many non-empty blocks, intervals are NaN and a note says why.

    Returns
    -------
    Comparison
    """
    names = list(products)
    if target not in products:
        raise MissingVariableError(
            f"compare: target {target!r} is not among the products {names}; pass target= one of them"
        )
    common = ft_valid(reference)
    for k in names:
        if np.shape(products[k]) != np.shape(reference):
            raise GridMismatchError(
                f"compare: product {k!r} has shape {np.shape(products[k])}, the reference {np.shape(reference)}: "
                "every product must cover the same days and cells (is the product from another store or window?)"
            )
        common &= ft_valid(products[k])
    if mask is not None:
        common &= np.broadcast_to(mask, common.shape)
    per = np.stack([block_confusion(products[k], reference, blocks, common, n_blocks) for k in names], axis=1)
    return compare_counts(
        per,
        names,
        target=target,
        reference_name=reference_name,
        n_boot=n_boot,
        seed=seed,
        ci=ci,
        block=block,
        min_blocks=min_blocks,
    )


def compare_counts(
    per: np.ndarray,
    names: list,
    *,
    target: str = "fused",
    reference_name: str = "truth",
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    block: str = "10-day domain",
    min_blocks: int = MIN_BLOCKS,
) -> Comparison:
    """:func:`compare` from per-block confusion counts ``per`` (n_blocks, len(names), 4), as
    :func:`block_confusion` makes them on a common mask (or :class:`CommonCounts` accumulates
    them batch by batch, so that a long period never has to be held whole)."""
    names = list(names)
    if target not in names:
        raise MissingVariableError(
            f"compare: target {target!r} is not among the products {names}; pass target= one of them"
        )
    per = np.asarray(per)
    used = per.sum(axis=(1, 2)) > 0
    per = per[used]
    total = per.sum(axis=0)  # (k, 4)
    rng = np.random.default_rng(seed)
    boot = bootstrap_counts(per, n_boot, rng) if per.shape[0] else np.zeros((n_boot,) + total.shape)
    a = (1 - ci) / 2
    notes = []
    if per.shape[0] < min_blocks:
        boot = np.full_like(boot, np.nan)
        notes.append(f"only {per.shape[0]} non-empty blocks ({block}), fewer than {min_blocks}: no interval")
    rows = {}
    for j, k in enumerate(names):
        row = {"n": int(total[j].sum()), "n_F": int(total[j][[0, 1]].sum()), "n_T": int(total[j][[2, 3]].sum())}
        for s in STATISTICS:
            est = float(_stat(total[j], s))
            bs = _stat(boot[:, j], s)
            ok = np.isfinite(bs)
            lo, hi = np.quantile(bs[ok], [a, 1 - a]) if ok.any() else (np.nan, np.nan)
            row[s], row[f"{s}_lo"], row[f"{s}_hi"] = est, float(lo), float(hi)
        rows[k] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    ti = names.index(target)
    grows = {}
    for j, k in enumerate(names):
        if k == target:
            continue
        row = {}
        for s, key in (("CA_O", "gain"), ("CA_F", "gain_F"), ("CA_T", "gain_T")):
            d = _stat(boot[:, ti], s) - _stat(boot[:, j], s)
            est = table.loc[target, s] - table.loc[k, s]
            ok = np.isfinite(d)
            lo, hi = np.quantile(d[ok], [a, 1 - a]) if ok.any() else (np.nan, np.nan)
            row.update({key: float(est), f"{key}_lo": float(lo), f"{key}_hi": float(hi)})
            if s == "CA_O":
                row["p_le_0"] = float(np.mean(d[ok] <= 0)) if ok.any() else np.nan
        grows[k] = row
    gains = pd.DataFrame.from_dict(grows, orient="index")
    return Comparison(reference_name, target, table, gains, int(used.sum()), int(n_boot), block, notes)


class CommonCounts:
    """Streaming :func:`compare`: feed batches of days, get the same :class:`Comparison`.

    ``add(products, reference, blocks, mask)`` takes one batch (any subset of days, each day
    wholly inside one call or split across calls: the counts just add); ``result()`` runs
    :func:`compare_counts`. Memory: (n_blocks, k, 4) counts, whatever the period.
    """

    def __init__(self, names, n_blocks: int, **kwargs):
        self.names = list(names)
        self.n_blocks = int(n_blocks)
        self.kwargs = kwargs
        self.per = np.zeros((self.n_blocks, len(self.names), 4), np.int64)

    def add(
        self,
        products: Mapping[str, np.ndarray],
        reference: np.ndarray,
        blocks: np.ndarray,
        mask: np.ndarray | None = None,
    ) -> None:
        common = ft_valid(reference)
        for k in self.names:
            common &= ft_valid(products[k])
        if mask is not None:
            common &= np.broadcast_to(mask, common.shape)
        for j, k in enumerate(self.names):
            self.per[:, j] += block_confusion(products[k], reference, blocks, common, self.n_blocks)

    def result(self) -> Comparison:
        return compare_counts(self.per, self.names, **self.kwargs)


def _finite(v) -> bool:
    return v is not None and np.isfinite(v)


def gain_sentence(target_label: str, baseline_label: str, gain, lo, hi, n, reference: str) -> str:
    """One plain sentence for a gain and its interval (fractions; printed in points).

    ``None``/NaN gains (an empty common mask) and missing intervals (too few blocks) say so.
    """
    if not _finite(gain) or not n:
        return f"{target_label} and {baseline_label} share no pixel-day against {reference}: no comparison."
    g = 100 * gain
    if not (_finite(lo) and _finite(hi)):
        return (
            f"{target_label} vs {baseline_label} against {reference}: {g:+.2f} points over {int(n):,} common "
            f"pixel-days, but too few independent blocks for an interval: no verdict."
        )
    a, b = 100 * lo, 100 * hi
    if a > 0:
        verdict = f"{target_label} is more accurate than {baseline_label}"
    elif b < 0:
        verdict = f"{target_label} is LESS accurate than {baseline_label}"
    else:
        verdict = f"{target_label} is not distinguishable from {baseline_label}"
    return (
        f"{verdict} against {reference}: {g:+.2f} points (95 % interval {a:+.2f} .. {b:+.2f}) "
        f"over {int(n):,} common pixel-days."
    )


# --------------------------------------------------------------------------------------
# the study's xarray-level wrappers


#: the seasons of the baseline comparison and their months (None: every day)
COMPARE_SEASONS = {"all": None, **SEASON_MONTHS}


def _codes(da: xr.DataArray) -> np.ndarray:
    """uint8 FT codes (1 frozen, 0 thawed, 255 missing) of an FT array (codes or float 1/0/NaN)."""
    v = np.asarray(da.values)
    if v.dtype.kind == "f":
        return np.where(np.isfinite(v), v, 255).astype("u1")
    return v.astype("u1")


def baseline_comparison(
    products: Mapping[str, xr.DataArray],
    truth: xr.DataArray | None,
    insitu: xr.DataArray | None,
    period: tuple[str, str],
    n_boot: int = 1000,
) -> pd.DataFrame:
    """Every product on one common mask per (reference, pass, season), with 95 % intervals.

    ``products``: gridded FT (pass, time, y, x), the first one the target (ConvLSTM_FT).
    Against the truth: every pixel-day of ``period``; against in-situ: the network stations'
    pixels (``insitu`` from :func:`network_ft`). Blocks: 10 consecutive days of the whole window
    (or of all stations), which keeps the errors' spatial correlation (ftcloud.science.compare).
    Returns one row per (reference, pass, season, product) with CA_O/CA_F/CA_T, their
    intervals, n, and the target's gain over the product with its paired interval.
    """
    names = list(products)
    target = names[0]
    rows = []
    refs = {}
    if truth is not None:
        refs["truth"] = truth.sel(time=slice(*period)).transpose("pass", "time", "y", "x")
    if insitu is not None:
        refs["insitu"] = insitu.sel(time=slice(*period)).transpose("pass", "time", "station")
    for rname, ref in refs.items():
        times = pd.DatetimeIndex(ref["time"].values)
        sel = {k: products[k].sel(time=times).transpose("pass", "time", "y", "x") for k in names}
        if rname == "insitu":
            r_, c_ = ref["pixel_row"], ref["pixel_col"]
            sel = {k: sample_at_stations(v, r_, c_).transpose("pass", "time", "station") for k, v in sel.items()}
        for p in ref["pass"].values:
            rv = _codes(ref.sel({"pass": p}))
            pv = {k: _codes(v.sel({"pass": p})) for k, v in sel.items()}
            blocks, nb = time_blocks(times, rv.shape[1:])
            for season, months in COMPARE_SEASONS.items():
                m = np.ones(len(times), bool) if months is None else np.isin(times.month, months)
                if not m.any():
                    continue
                c = compare(
                    pv,
                    rv,
                    blocks,
                    nb,
                    target=target,
                    reference_name=rname,
                    mask=m.reshape((-1,) + (1,) * (rv.ndim - 1)),
                    n_boot=n_boot,
                    seed=0,
                    block="10-day blocks of the whole window" if rname == "truth" else "10-day blocks of all stations",
                )
                for k, r in c.table.iterrows():
                    row = {"reference": rname, "pass": str(p), "season": season, "product": k, **r.to_dict()}
                    if k in c.gains.index:
                        row.update(c.gains.loc[k].to_dict())
                    rows.append(row)
    return pd.DataFrame(rows)

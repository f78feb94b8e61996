"""The twin's planted frozen-day trends are recovered from its hidden truth, within its own noise.

docs/twin.md section 7: every Qinghai-Tibet pixel warms at the rate that gives its permafrost
class's target frozen-day slope (very stable -0.31 ... seasonally frozen ground -0.02 days/yr).
One realisation carries common interannual weather noise (~0.08 days/yr on a 41-year slope, the
same for all pixels of a small window), so one seed cannot tell -0.31 from -0.20; this test
averages several seeds and derives its tolerance from the residual scatter of the series.

The twin: a 10 x 10-cell window (EASE2 9 km rows 343-352, cols 2988-2997) around Amne Machin
(99.5 E, 34.8 N), whose massif gives all six stability classes for every seed used here, over
1980-2020 (the period of Table 2), seeds 0-4, without targets or stations (~25 s per seed on
2 cores, most of it the ERA5-Land files the twin always writes). Only the truth summary is
kept (``frozen_days``, ``target_slope``, ``permafrost_stability``, ``region``; section 8).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from ftcloud.science.trends import regional_table

SEEDS = (0, 1, 2, 3, 4)
WINDOW = (343, 353, 2988, 2998)  # rows, cols (half-open) of EASE2_G9km
START, END = "1980-01-01", "2020-12-31"
NYEARS = 41


@pytest.fixture(scope="module")
def truths(tmp_path_factory):
    """Per seed: the truth summary (loaded) and the twin's recorded realised slopes."""
    from ftcloud.core.grid import EASE2_9KM, GridWindow
    from ftcloud.synth import generate

    win = GridWindow(EASE2_9KM, *WINDOW, name="amne_machin")
    out = []
    for seed in SEEDS:
        root = tmp_path_factory.mktemp(f"planted{seed}")
        generate(win, START, END, str(root), seed=seed, insitu=False, targets_start="2100-01-01", progress=False)
        with xr.open_dataset(root / "truth" / "truth_summary_9km.nc") as ds:
            ts = ds.load()
        realised = json.loads((root / "truth" / "parameters.json").read_text())["truth_frozen_day_slopes"]
        shutil.rmtree(root)  # ~100 MB of ERA5-Land per seed
        out.append((seed, ts, realised))
    return out


def _strata(ts: xr.Dataset) -> dict[str, np.ndarray]:
    """name -> pixel mask, named as regional_table names its rows (flag_meanings)."""
    reg, st = ts["region"].values, ts["permafrost_stability"].values
    out = {"qinghai_tibet": reg == 1}
    for code, name in enumerate(ts["permafrost_stability"].attrs["flag_meanings"].split()):
        if code and ((reg == 1) & (st == code)).any():
            out[name] = (reg == 1) & (st == code)
    return out


def _ols_se(t: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slope, its standard error sqrt(s^2 / sum (t - tbar)^2) and the lag-1
    autocorrelation of the residuals."""
    tc = t - t.mean()
    b = float(tc @ (y - y.mean()) / (tc @ tc))
    r = y - y.mean() - b * tc
    se = float(np.sqrt(r @ r / (t.size - 2) / (tc @ tc)))
    return b, se, float(r[:-1] @ r[1:] / (r @ r))


@pytest.mark.slow
def test_planted_frozen_day_slopes_are_recovered(truths):
    """Sen slopes of the truth's stratum-mean frozen days (regional_table, as Table 2) against
    the planted slopes, averaged over the seeds.

    Per seed s and stratum: d_s = Sen slope - planted slope (the mean ``target_slope`` of the
    stratum's pixels, which by linearity is the slope its mean series is built to have), and
    se_s = the least-squares standard error of the same series, times sqrt(pi/3) = 1.023 (the
    Theil-Sen slope's efficiency relative to least squares under normal errors is 3/pi; Sen
    1968). Seeds have independent weather, so mean(d) has SE = sqrt(sum se_s^2) / K, and the
    planted slope must lie within 4 of those: the twin's calibration (docs/twin.md: "unbiased
    across seeds") and the Table 2 code must be right to that precision. The least-squares SE
    assumes independent years: checked on the residuals' lag-1 autocorrelation below.
    Sign: wherever the planted slope is more than 3 SE from 0 the recovered mean has its sign;
    and the classes with the largest planted slopes (very stable, stable) must be > 4 SE from 0,
    so a twin without its planted warming (recovered slopes ~0) fails this test.
    """
    d, se2, planted, sen, r1_qt = {}, {}, {}, {}, []
    for seed, ts, realised in truths:
        assert ts.sizes["year"] == NYEARS and bool((ts["days_in_period"] >= 365).all())
        fd = ts["frozen_days"].mean("pass").astype(np.float64)  # the twin's definition: mean of AM and PM
        fd = fd.drop_vars([c for c in fd.coords if c not in fd.dims]).assign_attrs(units="days")
        years = fd["year"].values.astype(np.float64)
        tab = regional_table(fd.assign_coords(year=years), ts["region"], ts["permafrost_stability"]).set_index("name")
        strata = _strata(ts)
        assert set(strata) == {
            "qinghai_tibet",
            "very_stable",
            "stable",
            "semi_stable",
            "transitional",
            "unstable",
            "seasonally_frozen_ground",
        }, (seed, sorted(strata))
        tgt = ts["target_slope"].values
        for name, mask in strata.items():
            assert np.isfinite(tgt[mask]).all(), (seed, name)  # every pixel has a planted slope (all freeze)
            series = fd.values[:, mask].mean(axis=1)
            b, se, r1 = _ols_se(years, series)
            if name != "qinghai_tibet":  # the twin's own record of the same least-squares slope
                assert b == pytest.approx(realised[f"qt_{name}"]["realised_slope_days_per_year"], abs=6e-5), (
                    seed,
                    name,
                )
            else:
                r1_qt.append(r1)
            p = float(tgt[mask].mean())
            s = float(tab.loc[name, "sen_slope"])
            d.setdefault(name, []).append(s - p)
            se2.setdefault(name, []).append((np.sqrt(np.pi / 3) * se) ** 2)
            planted.setdefault(name, []).append(p)
            sen.setdefault(name, []).append(s)
    # independent years: the residual lag-1 autocorrelation of white noise is ~N(-1/n, 1/n)
    k = len(r1_qt)
    assert abs(np.mean(r1_qt) + 1 / NYEARS) < 4 / np.sqrt(k * NYEARS), r1_qt

    report = []
    for name in d:
        k = len(d[name])
        se_comb = float(np.sqrt(np.sum(se2[name])) / k)
        mean_d, mean_p, mean_s = float(np.mean(d[name])), float(np.mean(planted[name])), float(np.mean(sen[name]))
        report.append(f"{name:<26} planted {mean_p:+.3f}  recovered {mean_s:+.3f}  +- {se_comb:.3f} (SE, {k} seeds)")
        assert abs(mean_d) <= 4 * se_comb, (name, mean_s, mean_p, se_comb, sen[name])
        if abs(mean_p) > 3 * se_comb:
            assert np.sign(mean_s) == np.sign(mean_p), (name, mean_s, mean_p, se_comb)
        if name in ("very_stable", "stable"):
            assert abs(mean_p) > 4 * se_comb, (name, mean_p, se_comb)  # the test has the power to fail
    print("\nplanted vs recovered frozen-day slopes [days/yr], 1980-2020, seeds", SEEDS, "\n  " + "\n  ".join(report))

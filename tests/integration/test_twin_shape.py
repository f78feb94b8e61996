"""The shape of the learning problem on the default demo twin (issue 9, SPEC section 10).

These tests state what the twin must be -- not what the model scores:

* thresholding ERA5-Land ``stl1`` at 273.15 K does not already give the truth (bounded from the
  literature, overall and in the transition season);
* SMAP_E_FT and ESDR_FT land near their published accuracies;
* the truth is not a function of any single predictor;
* the orderings the twin's physics imply (ESDR better on frozen soil, SMAP on thawed soil; the
  paper's section 4.3 Meteorology_FT / ERA5_FT asymmetries) hold on three seeds with margins from
  block-bootstrap intervals.

Bounds and their sources (docs/twin.md, "Accuracy of the twin's products"):

* ERA5_FT < 92.5 % overall (both passes), < 94 % in either pass, < 90 % in the transition season
  (partly assumed, see the test's docstring): Kim et al. (2017, ESSD 9:133) report
  90.3 % (PM) / 84.3 % (AM) for the best long satellite FT record (ESDR) against stations, and the
  paper's CTC ranks ERA5_FT below ConvLSTM_FT in thawed (AM) or frozen (PM) accuracy; a reanalysis
  threshold more accurate than that would make the learning problem trivial. Reanalysis soil
  temperature errors of RMSE 2-9 K, largest in the cold season (Herrington et al. 2024, TC 18:1835),
  make a threshold ambiguous exactly when the soil is near 0 degC, i.e. in the transition season.
* SMAP_E_FT within [80, 93] %: the SMAP L3 FT requirement is 80 % (SMAP L3_FT_P ATBD, Dunbar et al.
  2016); ESDR_FT within [80, 95] %: Kim et al. 2017 (84.3 / 90.3 %) +- about 5 points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud.science.compare import compare
from ftcloud.core.grid import (
    EASE2_9KM,
    EASE2_25KM,
    EASE2Regridder,
    LatLonRegridder,
    covering_window,
    lonlat_to_xy,
    region_window,
)
from ftcloud.synth import generate
from ftcloud.core.timeutil import PASSES, step_offsets

SEEDS = (0, 1, 2)
PERIOD = ("2018-07-01", "2019-06-30")
TRANSITION = (2, 3, 4, 10, 11)
SMAP_GROUP = "Freeze_Thaw_Retrieval_Data_Global"


def _read(out, region="demo"):
    """Truth, ERA5_FT and predictors at the overpass steps, SMAP, ESDR and CMA Met_FT, from the twin's files."""
    win = region_window(region)
    tr = xr.open_dataset(out / "truth" / "truth_ft_9km.nc", mask_and_scale=False)
    ft = tr.ft.values.astype(np.uint8)  # (pass, time, y, x), 254 sea
    dates = pd.DatetimeIndex(tr.time.values)
    era = (
        xr.open_mfdataset(
            sorted((out / "era5land").glob("*.nc")),
            combine="nested",
            concat_dim="time",
            data_vars="minimal",
            coords="minimal",
            compat="override",
        )
        .drop_duplicates("time")
        .load()
    )
    rg = LatLonRegridder(era.latitude.values, era.longitude.values, win)
    lon, _ = win.lonlat
    pred = {}
    for ip, p in enumerate(PASSES):
        offs = step_offsets(lon, p)
        for step in range(3):
            off = offs[..., step]
            assert np.unique(off).size == 1  # the demo window lies in one UTC-offset band
            want = dates + pd.to_timedelta(int(off.flat[0]), "h")
            for v in ("stl1", "swvl1", "sde"):
                pred[(p, v, step)] = rg(era[v].sel(time=want).values)
    era5 = np.stack(
        [np.where(np.isfinite(pred[(p, "stl1", 2)]), pred[(p, "stl1", 2)] < np.float32(273.15), 254) for p in PASSES]
    ).astype(np.uint8)
    files = sorted((out / "smap_e_ft").rglob("*.h5"))
    sm = np.stack(
        [
            xr.open_dataset(f, group=SMAP_GROUP, engine="h5netcdf", mask_and_scale=False).freeze_thaw.values
            for f in files
        ]
    )
    smap = np.full(ft.shape, 254, np.uint8)
    smap[:, dates.get_indexer(pd.DatetimeIndex([pd.Timestamp(f.name.split("_")[5]) for f in files]))] = sm.transpose(
        1, 0, 2, 3
    )
    es = xr.concat([xr.open_dataset(f, mask_and_scale=False) for f in sorted((out / "esdr_ft").glob("*.nc"))], "time")
    code = EASE2Regridder(covering_window(win, EASE2_25KM, 1), win)(es.ft_status.values)
    esdr = np.full(ft.shape, 254, np.uint8)
    ei = dates.get_indexer(pd.DatetimeIndex(es.time.values))
    esdr[0, ei] = np.where(code == 254, 254, np.isin(code, (0, 2)))  # 0 frozen both, 2 AM frozen / PM thawed
    esdr[1, ei] = np.where(code == 254, 254, np.isin(code, (0, 3)))
    # CMA stations: Meteorology_FT (ftcloud.science.reference.meteorology_ft's rule, applied here by hand)
    # at their 9 km cells
    st = pd.read_csv(out / "insitu/cma/stations.csv")
    d = pd.read_csv(out / "insitu/cma/t0cm_daily.csv", parse_dates=["date"])
    x, y = lonlat_to_xy(st.lon.values, st.lat.values)
    cols = np.floor((x - win.x[0]) / EASE2_9KM.cell_size + 0.5).astype(int)
    rows = np.floor((win.y[0] - y) / EASE2_9KM.cell_size + 0.5).astype(int)
    assert ((rows >= 0) & (rows < ft.shape[2]) & (cols >= 0) & (cols < ft.shape[3])).all()
    met = np.full((2, len(dates), len(st)), 254, np.uint8)
    for k, name in enumerate(st.station):
        s = d[d.station == name].set_index("date").reindex(dates)
        ok = s.t0_min_degC.notna().values
        met[0, ok, k] = s.t0_max_degC.values[ok] < 0  # AM: the day's maximum
        met[1, ok, k] = s.t0_min_degC.values[ok] < 0  # PM: the day's minimum
    return {
        "dates": dates,
        "truth": ft,
        "ERA5_FT": era5,
        "SMAP_E_FT": smap,
        "ESDR_FT": esdr,
        "pred": pred,
        "met": met,
        "st_rows": rows,
        "st_cols": cols,
    }


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def twin(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"shape{request.param}")
    generate("demo", *PERIOD, out, seed=request.param, targets_start=PERIOD[0], progress=False)
    return _read(out)


def _blocks(dates, shape):
    years = pd.DatetimeIndex(dates).year.to_numpy()
    yi = np.unique(years, return_inverse=True)[1]
    npix = int(np.prod(shape))
    return yi.reshape(-1, *([1] * len(shape))) * npix + np.arange(npix).reshape(shape)[None], (yi.max() + 1) * npix


def _season(dates, months):
    return np.isin(pd.DatetimeIndex(dates).month, months)[:, None, None]


def _acc(prod, ref, m):
    ok = (prod <= 1) & (ref <= 1) & m
    return float((prod[ok] == ref[ok]).mean())


def test_era5_threshold_is_below_the_literature_bound(twin):
    """Bounds: both passes together below 92.5 % (ESDR's best published 90.3 % plus 2 points),
    each pass below 94 %, each pass's transition season below 90 %. Measured on the one-year demo
    twins, seeds 0-2: the overall PM value spreads over 89-93 % with the year's share of easy
    deep-winter and summer days (a seed also changes the world), so the per-pass overall bound only
    excludes a near-copy of the truth; the pooled and transition-season bounds carry the argument."""
    overall = []
    for ip, p in enumerate(PASSES):
        t, e = twin["truth"][ip], twin["ERA5_FT"][ip]
        overall.append(_acc(e, t, np.ones(t.shape, bool)))
        trans = _acc(e, t, np.broadcast_to(_season(twin["dates"], TRANSITION), t.shape))
        assert overall[-1] < 0.94, (p, overall[-1])
        assert trans < 0.90, (p, trans)
    assert np.mean(overall) < 0.925, overall


def test_targets_land_near_their_published_accuracy(twin):
    everywhere = np.ones(twin["truth"].shape[1:], bool)
    for ip, p in enumerate(PASSES):
        t = twin["truth"][ip]
        a_s = _acc(twin["SMAP_E_FT"][ip], t, everywhere)
        a_e = _acc(twin["ESDR_FT"][ip], t, everywhere)
        assert 0.80 <= a_s <= 0.93, (p, a_s)
        assert 0.80 <= a_e <= 0.95, (p, a_e)


def _bayes_accuracy(x, y, nbins=200):
    """Best accuracy of ANY function of x alone (the majority class per quantile bin of x)."""
    q = np.unique(np.quantile(x, np.linspace(0, 1, nbins + 1)))
    b = np.searchsorted(q, x)
    n1 = np.bincount(b, weights=y, minlength=q.size + 1)
    n = np.bincount(b, minlength=q.size + 1)
    return float(np.maximum(n1, n - n1).sum() / n.sum())


def test_truth_is_not_a_function_of_any_single_predictor(twin):
    """Even the best re-calibrated threshold (any function) of one predictor misses the truth
    on a sizeable share of pixel-days; a function of the predictor would reach 100 %."""
    trans = np.broadcast_to(_season(twin["dates"], TRANSITION), twin["truth"].shape[1:])
    for (p, v, step), x in twin["pred"].items():
        t = twin["truth"][PASSES.index(p)]
        ok = (t <= 1) & np.isfinite(x)
        overall = _bayes_accuracy(x[ok], t[ok].astype(float))
        tr = _bayes_accuracy(x[ok & trans], t[ok & trans].astype(float))
        assert overall < 0.95, (p, v, step, overall)
        assert tr < 0.92, (p, v, step, tr)


def test_esdr_better_on_frozen_smap_better_on_thawed(twin):
    blocks, nb = _blocks(twin["dates"], twin["truth"].shape[2:])
    for ip, p in enumerate(PASSES):
        c = compare(
            {"ESDR_FT": twin["ESDR_FT"][ip], "SMAP_E_FT": twin["SMAP_E_FT"][ip]},
            twin["truth"][ip],
            blocks,
            nb,
            target="ESDR_FT",
            n_boot=300,
        )
        g = c.gains.loc["SMAP_E_FT"]
        assert g["gain_F_lo"] > 0, (p, g.to_dict())  # ESDR's frozen accuracy is higher, beyond its interval
        assert g["gain_T_hi"] < 0, (p, g.to_dict())  # SMAP's thawed accuracy is higher


def test_meteorology_and_era5_asymmetries_of_section_4_3(twin):
    """Cui et al. 2024 section 4.3, against the truth at the CMA stations' cells in the frozen and
    transition seasons: AM -- Meteorology_FT the lower frozen accuracy, ERA5_FT the lower thawed
    accuracy; PM -- Meteorology_FT the lower thawed, ERA5_FT the lower frozen accuracy. Margins:
    the paired block-bootstrap interval (station-year blocks) of each difference excludes 0."""
    r, c = twin["st_rows"], twin["st_cols"]
    cold = np.isin(twin["dates"].month, (12, 1) + TRANSITION)[:, None]
    years = twin["dates"].year.to_numpy()
    yi = np.unique(years, return_inverse=True)[1]
    blocks = yi[:, None] * len(r) + np.arange(len(r))[None, :]
    nb = (yi.max() + 1) * len(r)
    for ip, p in enumerate(PASSES):
        t = twin["truth"][ip][:, r, c]
        e = twin["ERA5_FT"][ip][:, r, c]
        m = twin["met"][ip]
        res = compare(
            {"Meteorology_FT": m, "ERA5_FT": e}, t, blocks, nb, target="Meteorology_FT", mask=cold, n_boot=500
        )
        g = res.gains.loc["ERA5_FT"]  # Meteorology_FT - ERA5_FT
        if p == "AM":
            assert g["gain_F_hi"] < 0, g.to_dict()  # Met: lower frozen accuracy
            assert g["gain_T_lo"] > 0, g.to_dict()  # ERA5: lower thawed accuracy
        else:
            assert g["gain_T_hi"] < 0, g.to_dict()  # Met: lower thawed accuracy
            assert g["gain_F_lo"] > 0, g.to_dict()  # ERA5: lower frozen accuracy


_CITATION = ("assumed", "et al.", "ATBD", "documentation", "Table", "section", "measured", "NSIDC")


def test_every_error_parameter_names_its_source_and_lands_in_the_provenance(tmp_path):
    import dataclasses
    import json

    from ftcloud.synth.params import PARAMETER_SOURCES, TwinParameters

    p = TwinParameters()
    missing = []
    for group in ("era5", "imerg", "smap", "esdr", "stations"):
        for f in dataclasses.fields(getattr(p, group)):
            src = PARAMETER_SOURCES.get(f"{group}.{f.name}")  # one entry per parameter, no wildcards
            if not src or not any(w in src for w in _CITATION):
                missing.append(f"{group}.{f.name}")
    assert not missing, f"error parameters without a source or 'assumed': {missing}"
    generate("tiny", "2018-01-01", "2018-01-03", tmp_path, insitu=False, progress=False)
    doc = json.loads((tmp_path / "truth" / "parameters.json").read_text())
    assert doc["parameter_sources"] == PARAMETER_SOURCES
    assert doc["parameters"]["era5"]["weather_correlation"] == p.era5.weather_correlation


def test_ctc_finds_the_section_4_3_asymmetries(twin):
    """The paper finds its asymmetries by CTC, not against a truth: the triplet (Meteorology_FT,
    ERA5_FT, ESDR_FT) over the CMA stations' station-days of the frozen and transition seasons
    (pooled) must estimate the same four orderings. The margin 0.02 is an assumed floor; the
    measured differences on seed 0 are 0.05 to 0.7."""
    from ftcloud.science.ctc import triple_collocation

    r, c = twin["st_rows"], twin["st_cols"]
    cold = np.isin(twin["dates"].month, (12, 1) + TRANSITION)

    def series(x):
        return xr.DataArray(np.where(x <= 1, x, np.nan).astype(float).ravel(), dims="time")

    for ip, p in enumerate(PASSES):
        met = twin["met"][ip][cold]
        era = twin["ERA5_FT"][ip][:, r, c][cold]
        esdr = twin["ESDR_FT"][ip][:, r, c][cold]
        res = triple_collocation(series(met), series(era), series(esdr), dim="time", min_count=30)
        # fitted (reason ok, or an estimate just outside [0, 1] where a class is rare: use the raw estimates)
        assert int(res["reason"].values) in (0, 6), int(res["reason"].values)
        psi, eta = res["psi_raw"].values, res["eta_raw"].values  # products in order: Met, ERA5, ESDR
        if p == "AM":
            assert psi[0] < psi[1] - 0.02, psi  # Met: lower frozen accuracy
            assert eta[1] < eta[0] - 0.02, eta  # ERA5: lower thawed accuracy
        else:
            assert eta[0] < eta[1] - 0.02, eta  # Met: lower thawed accuracy
            assert psi[1] < psi[0] - 0.02, psi  # ERA5: lower frozen accuracy

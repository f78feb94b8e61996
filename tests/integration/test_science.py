"""The science layer on the digital twin: `ftcloud validate` / `ftcloud trends` end to end, planted
trends recovered, CTC against the hidden truth.

Two small twins of the ``tiny`` region (13 x 10 cells around Maqu), seed 0, built once per module:

* ``twin_2018``: 2018 with targets and in-situ stations, ingested (~20 s), plus a mock fused product
  (the truth with 8 % independent flips) so that the commands can run without a trained model;
* ``twin_20y``: 2001-2020 without targets (~13 s; a 41-year twin takes ~32 s, over this file's
  budget), whose truth becomes the "product" of the trend test.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud.science import ctc as sci_ctc
from ftcloud.workflows import inputs
from ftcloud.science import reference
from ftcloud.science import trends as sci_trends
from ftcloud import study
from ftcloud.report import tables
from ftcloud.science import validation
from ftcloud.workflows import trends as wf_trends
from ftcloud.workflows import validate as wf_validate
from ftcloud.cli import main

PNGS_VALIDATE = (
    "fig03_ft_maps_AM.png",
    "fig03_ft_maps_PM.png",
    "fig04_accuracy_by_network.png",
    "fig05_accuracy_by_season.png",
    "fig06_ctc_AM.png",
    "fig07_ctc_PM.png",
)
PNGS_TRENDS = ("fig11_regional_series.png", "fig12_stability_series.png", "slope_map.png")
MOCK_FLIP = 0.08


def _write_product(ft: xr.DataArray, url: str) -> str:
    """Write FT codes (pass, time, y, x) as an ftcloud product group marked complete."""
    from ftcloud.io.stores import mark_complete

    ds = xr.Dataset(
        {
            "ft": ft.astype("u1").assign_attrs(
                long_name="mock fused FT", flag_values=[0, 1], flag_meanings="thawed frozen"
            )
        }
    )
    ds.to_zarr(url, mode="w", consolidated=True)
    mark_complete(url)
    return url


def _truth_codes(truth_dir) -> xr.DataArray:
    with xr.open_dataset(os.path.join(truth_dir, "truth_ft_9km.nc")) as ds:
        ft = ds["ft"].load()
    ft = ft.drop_vars([c for c in ft.coords if c not in ft.dims])
    return xr.where(ft.isnull(), 255, ft).astype("u1").transpose("pass", "time", "y", "x")


@pytest.fixture(scope="module")
def twin_2018(tmp_path_factory):
    from ftcloud.workflows.ingest import ingest
    from ftcloud.synth import generate

    root = tmp_path_factory.mktemp("science2018")
    src, store = root / "src", root / "store"
    generate(
        "tiny", "2018-01-01", "2018-12-31", str(src), seed=0, insitu=True, targets_start="2018-01-01", progress=False
    )
    ingest(str(src), str(store), progress=False)
    truth = _truth_codes(src / "truth")
    rng = np.random.default_rng(7)
    flip = (rng.random(truth.shape) < MOCK_FLIP) & (truth.values < 2)
    mock = truth.copy(data=np.where(flip, 1 - truth.values, truth.values).astype("u1"))
    product = _write_product(mock, str(root / "product" / "ft_mock.zarr"))
    return {"root": root, "src": src, "store": str(store), "product": product}


@pytest.fixture(scope="module")
def twin_20y(tmp_path_factory):
    from ftcloud.synth import generate

    root = tmp_path_factory.mktemp("science20y")
    src = root / "src"
    generate(
        "tiny", "2001-01-01", "2020-12-31", str(src), seed=0, insitu=False, targets_start="2100-01-01", progress=False
    )
    product = _write_product(_truth_codes(src / "truth"), str(root / "truth_as_product.zarr"))
    return {"root": root, "src": src, "product": product}


def _assert_png(path):
    import matplotlib.image as mpimg
    from PIL import Image

    assert os.path.getsize(path) > 5000, path
    with Image.open(path) as im:  # print resolution, and a vector PDF beside it
        assert round(im.info["dpi"][0]) >= 300, (path, im.info.get("dpi"))
    pdf = os.path.splitext(str(path))[0] + ".pdf"
    assert open(pdf, "rb").read(5) == b"%PDF-", pdf
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200, (path, img.shape)
    assert float(img[..., :3].std()) > 0.05, f"{path} looks blank"


# --------------------------------------------------------------------------------------
# validate


def test_validate_cli_end_to_end(twin_2018, tmp_path):
    out = tmp_path / "validate"
    assert (
        main(["-q", "validate", "--store", twin_2018["store"], "--product", twin_2018["product"], "--out", str(out)])
        == 0
    )
    for name in (
        "direct_validation.csv",
        "direct_validation.md",
        "ctc_summary.csv",
        "ctc_summary.md",
        "ctc_stations.csv",
        "validate-summary.json",
    ):
        assert (out / name).stat().st_size > 100, name
    for name in PNGS_VALIDATE:
        _assert_png(out / "figures" / name)
    summary = json.loads((out / "validate-summary.json").read_text())
    assert summary["truth"] == str(twin_2018["src"] / "truth")  # found through the store's ftcloud_source
    assert summary["direct_period"] == ["2018-04-01", "2018-12-31"]  # the test period clipped to the data

    # direct validation: counts zarr, CSV, Markdown
    dz = xr.open_zarr(out / "direct_validation.zarr")
    assert set(dz["product"].values) == {"ConvLSTM_FT", "SMAP_E_FT", "truth"}
    assert set(dz["reference"].values) == {"insitu", "truth"}
    assert list(dz["season"].values) == ["all", "frozen", "transition", "thawed"]
    assert {"all", "Maqu"} <= set(dz["network"].values)
    tot = dz[["N_FF", "N_TF", "N_TT", "N_FT"]].to_array().sum("variable")
    assert (tot == dz["n"]).all()
    df = pd.read_csv(out / "direct_validation.csv")
    sel = df[(df.season == "all") & (df.network == "all")]
    # the mock product is the truth with 8 % independent flips: against the truth at the station
    # pixels it must score 1 - 0.08 (4 standard errors of ~2,700 pixel-days: +-0.02). A wrong
    # station -> pixel or local-date alignment would pull it towards the climatological agreement.
    for p in ("AM", "PM"):
        r = sel[(sel.reference == "truth") & (sel["product"] == "ConvLSTM_FT") & (sel["pass"] == p)].iloc[0]
        assert abs(r.CA_O - (1 - MOCK_FLIP)) < 0.02, (p, r.CA_O)
        # the in-situ FT rule (+-1 h around 06:00/18:00 local solar time) agrees with the truth on
        # ~96 % of station-days (the twin's probes: 0.3 K offsets, 0.15 K noise, 0.5 h lag); reading
        # the same hours in UTC instead (no longitude shift) gives ~90 % AM on the demo run.
        r = sel[(sel.reference == "insitu") & (sel["product"] == "truth") & (sel["pass"] == p)].iloc[0]
        assert r.CA_O > 0.93, (p, r.CA_O)
    md = (out / "direct_validation.md").read_text()
    assert "| Maqu | all |" in md and "ConvLSTM_FT CA_O" in md

    # every product beside its baselines on one common mask (per reference, pass, season)
    b = pd.read_csv(out / "baselines.csv")
    assert set(b["product"]) == {"ConvLSTM_FT", "ERA5_FT", "SMAP_E_FT", "ESDR_FT"}
    assert set(b["reference"]) == {"truth", "insitu"}
    for _, grp in b.groupby(["reference", "pass", "season"]):
        assert grp["n"].nunique() == 1  # one common mask: the same pixel-days for every product
        # an interval brackets the estimate, or there is none (fewer than 10 ten-day blocks, e.g. Dec-Jan of 2018)
        has = grp["CA_O_lo"].notna()
        assert ((grp["CA_O_lo"] <= grp["CA_O"] + 1e-12) & (grp["CA_O"] <= grp["CA_O_hi"] + 1e-12))[has].all()
        assert has.all() or grp["season"].iloc[0] == "frozen"
    # the common mask counted independently from the stores: every product and the truth valid (0/1)
    per = summary["baselines_period"]
    days = pd.date_range(*per)
    conv = xr.open_zarr(twin_2018["product"])["ft"].sel({"pass": "AM"}).sel(time=days).values
    stl1 = (
        xr.open_zarr(os.path.join(twin_2018["store"], "predictors", "era5land"))["stl1"]
        .sel({"pass": "AM"})
        .isel(step=2)
    )
    stl1 = stl1.sel(time=days).transpose("time", "y", "x").values
    smap = (
        xr.open_zarr(os.path.join(twin_2018["store"], "targets", "smap_e_ft"))["smap_e_ft"]
        .sel({"pass": "AM"})
        .sel(time=days)
        .values
    )
    esdr = (
        xr.open_zarr(os.path.join(twin_2018["store"], "targets", "esdr_ft"))["esdr_ft"]
        .sel({"pass": "AM"})
        .sel(time=days)
        .values
    )
    tr = _truth_codes(twin_2018["src"] / "truth").sel({"pass": "AM"}).sel(time=days).values
    ok = np.isin(conv, (0, 1)) & np.isfinite(stl1) & np.isin(smap, (0, 1)) & np.isin(esdr, (0, 1)) & np.isin(tr, (0, 1))
    row = b[(b["reference"] == "truth") & (b["pass"] == "AM") & (b["season"] == "all") & (b["product"] == "SMAP_E_FT")]
    assert int(row["n"].iloc[0]) == int(ok.sum())
    # and SMAP_E_FT's accuracy on that mask, by hand
    assert float(row["CA_O"].iloc[0]) == pytest.approx(float((smap[ok] == tr[ok]).mean()))
    assert "In words:" in (out / "baselines.md").read_text()

    # CTC at the CMA stations
    cz = xr.open_zarr(out / "ctc.zarr")
    assert list(cz["season"].values) == ["all", "frozen", "transition"]
    assert list(cz["product"].values) == ["ConvLSTM_FT", "ERA5_FT", "Meteorology_FT"]
    assert cz.sizes["station"] >= 5
    s = pd.read_csv(out / "ctc_summary.csv")
    assert {"all", "land_cover", "koppen", "tci"} <= set(s.stratum_type)
    a = s[(s.stratum_type == "all") & (s.season == "all")].set_index(["pass", "product"])
    # the paper's section 4.3 asymmetry: in the morning Meteorology_FT (AM: the day's 0 cm maximum
    # < 0) misses frozen soil, in the afternoon (PM: the day's minimum < 0) it does not; the CTC
    # finds it, and so does the truth (the orderings themselves: tests/integration/test_twin_shape.py)
    for col in ("psi", "truth_psi"):
        assert a.loc[("AM", "Meteorology_FT"), col] < a.loc[("PM", "Meteorology_FT"), col] - 0.2, col
    st = pd.read_csv(out / "ctc_stations.csv")
    assert {"station", "reason", "psi", "eta", "pi", "truth_pi", "land_cover", "koppen", "tci"} <= set(st.columns)
    assert "## All stations" in (out / "ctc_summary.md").read_text()


def test_validate_skips_missing_insitu(twin_2018, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(twin_2018["store"], store, ignore=shutil.ignore_patterns("insitu"))
    res = wf_validate.validate(
        str(store),
        twin_2018["product"],
        str(tmp_path / "out"),
        truth=str(twin_2018["src"] / "truth"),
        figures=False,
        progress=False,
    )
    assert len(res.skipped) == 2
    assert not (tmp_path / "out" / "direct_validation.csv").exists()


def test_commands_without_truth(twin_2018, twin_20y, tmp_path, monkeypatch):
    """Outside the twin (no truth folder) the same tables come out, without the truth columns."""
    monkeypatch.setattr(wf_validate, "find_truth", lambda *a, **k: None)
    monkeypatch.setattr(wf_trends, "find_truth", lambda *a, **k: None)
    res = wf_validate.validate(
        twin_2018["store"], twin_2018["product"], str(tmp_path / "v"), figures=False, progress=False
    )
    assert res.truth is None and not res.skipped
    assert set(pd.read_csv(tmp_path / "v" / "direct_validation.csv")["reference"]) == {"insitu"}
    s = pd.read_csv(tmp_path / "v" / "ctc_summary.csv")
    assert "truth_pi" not in s.columns and s["pi"].notna().any()
    res = wf_trends.trends(twin_20y["product"], twin_2018["store"], str(tmp_path / "t"), progress=False)
    t = pd.read_csv(tmp_path / "t" / "table2.csv")
    assert "planted_slope" not in t.columns and len(t) == 3 * 7  # AM, PM, mean x (QT, all, 5 classes)
    _assert_png(tmp_path / "t" / "figures" / "fig12_stability_series.png")


# --------------------------------------------------------------------------------------
# trends


def test_trends_cli_recovers_planted_slopes(twin_2018, twin_20y, tmp_path):
    truth_dir = twin_20y["src"] / "truth"
    with xr.open_dataset(truth_dir / "truth_summary_9km.nc") as ts:
        region = ts["region"].values
    from ftcloud.io.stores import open_group

    # the statics of the 2018 store describe the same cells (the twin's static world depends on the seed only)
    assert (open_group(twin_2018["store"], "statics")["region"].values == region).all()
    out = tmp_path / "trends"
    assert (
        main(
            [
                "-q",
                "trends",
                "--product",
                twin_20y["product"],
                "--store",
                twin_2018["store"],
                "--truth",
                str(truth_dir),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    for name in ("table2.csv", "table2.md", "regional_series.csv", "trends-summary.json"):
        assert (out / name).stat().st_size > 100, name
    for name in PNGS_TRENDS:
        _assert_png(out / "figures" / name)
    z = xr.open_zarr(out / "trends.zarr")
    assert list(z["pass"].values) == ["AM", "PM", "mean"]
    assert z["frozen_days"].dims == ("pass", "year", "y", "x") and z.sizes["year"] == 20
    assert z["frozen_days"].dtype == np.float64  # a count of days, not a timedelta, when read back
    assert z["slope"].dims == ("pass", "y", "x") and z["significant_fdr"].dtype == bool

    t = pd.read_csv(out / "table2.csv")
    m = t[t["pass"] == "mean"].set_index("name")
    params = json.loads((truth_dir / "parameters.json").read_text())["truth_frozen_day_slopes"]
    # 1. the product here IS the truth, so the Table 2 built from the product's FT codes must equal
    #    the one built from the twin's own frozen-day counts, and the twin's recorded class means
    assert np.allclose(m["sen_slope"], m["truth_sen_slope"], atol=1e-9)
    for cls in ("semi_stable", "transitional", "unstable", "seasonally_frozen_ground"):
        assert abs(m.loc[cls, "mean_frozen_days"] - params[f"qt_{cls}"]["mean_frozen_days"]) < 0.01, cls
    # 2. planted vs recovered. One realisation of the twin carries common interannual weather
    #    noise: the class-mean series scatter by ~6.4 days around their trend, so a 20-year slope
    #    has a standard error of 6.4 / sqrt(sum (t - mean t)^2) = 6.4 / 25.8 = 0.25 days/yr (0.08 for
    #    41 years, as docs/twin.md reports). The tolerance is the 95 % Sen/Mann-Kendall confidence
    #    interval of each regional series (Sen 1968; ~ +-2 SE), computed by regional_table itself.
    planted = m[m["planted_n_pixels"] > 0]
    assert set(planted.index) >= {
        "qinghai_tibet",
        "semi_stable",
        "transitional",
        "unstable",
        "seasonally_frozen_ground",
    }
    assert planted["planted_in_ci"].all(), planted[["sen_slope", "slope_low", "slope_high", "planted_slope"]]
    half = (planted["slope_high"] - planted["slope_low"]) / 2
    assert (half < 1.0).all(), half  # not vacuous: a slope per day, or per decade, would fall outside
    assert (
        abs(m.loc["stable", "planted_slope"] - (-0.22)) < 1e-6
        and abs(m.loc["unstable", "planted_slope"] - (-0.05)) < 1e-6
    )
    md = (out / "table2.md").read_text()
    assert "| stability | seasonally_frozen_ground |" in md and "planted_slope" in md


# --------------------------------------------------------------------------------------
# CTC against the truth


def _gridded(twin):
    from ftcloud.io.stores import open_group

    store = twin["store"]
    smap = open_group(store, "targets/smap_e_ft")["smap_e_ft"].transpose("pass", "time", "y", "x").load()
    esdr = open_group(store, "targets/esdr_ft")["esdr_ft"].transpose("pass", "time", "y", "x").load()
    era = reference.era5_ft(open_group(store, "predictors/era5land")["stl1"]).transpose("pass", "time", "y", "x").load()
    truth = inputs.open_truth_ft(str(twin["src"] / "truth"), smap).load()
    strip = lambda a: a.drop_vars([c for c in a.coords if c not in a.dims])  # noqa: E731
    return {k: strip(v) for k, v in {"SMAP_E_FT": smap, "ESDR_FT": esdr, "ERA5_FT": era, "truth": truth}.items()}


def _ctc_errors(products: dict, truth: xr.DataArray) -> pd.DataFrame:
    """Mean over the pixels where the CTC is defined of the CTC estimate minus the actual accuracy."""
    res = sci_ctc.ctc_vs_truth(products, truth)
    ok = res["reason"] == 0
    # ~all 130 pixels x 2 passes are fitted over a year; up to a third estimate an accuracy above 1
    # (twin 2.0: ERA5_FT's actual sensitivity is ~0.99; 77 of 260 pixel-passes) and are left out of
    # the means (reason 6)
    fitted = ok | (res["reason"] == 6)
    assert int(fitted.sum()) >= 0.9 * ok.size and int(ok.sum()) >= 0.6 * ok.size
    rows = []
    for prod in products:
        for p in ("AM", "PM"):
            o = ok.sel({"pass": p})

            def mean(v, prod=prod, p=p, o=o):
                return float(res[v].sel(product=prod, **{"pass": p}).where(o).mean())

            rows.append(
                {
                    "product": prod,
                    "pass": p,
                    **{f"d_{v}": mean(v) - mean(f"truth_{v}") for v in ("psi", "eta", "pi")},
                    "truth_pi": mean("truth_pi"),
                }
            )
    return pd.DataFrame(rows)


def _independent_reference(truth: xr.DataArray, rate: float = 0.10, seed: int = 3) -> xr.DataArray:
    """The truth with independent flips at ``rate``: a member whose errors are independent of everything."""
    rng = np.random.default_rng(seed)
    t = truth.values
    flip = rng.random(t.shape) < rate
    codes = np.where(np.isnan(t), 255, np.where(flip, 1 - t, t)).astype("u1")
    return truth.copy(data=codes)


@pytest.mark.parametrize("pair", [("SMAP_E_FT", "ESDR_FT"), ("ERA5_FT", "SMAP_E_FT")])
def test_ctc_estimates_actual_accuracy_within_002(twin_2018, pair):
    """CTC's estimate of each product's sensitivity, specificity and balanced accuracy is within
    0.02 of the actual accuracy against the hidden truth (pixel-wise over 2018, mean over the 130
    pixels, per pass), for triplets whose errors are conditionally independent.

    The twin's own products do not all satisfy CTC's assumption: ERA5_FT and ESDR_FT both err at
    the freeze/thaw transitions (ERA5's early annual cycle and cold mornings, ESDR's temporal
    smoothing and 25 km mixing), with error correlations given the truth of 0.15-0.22, while
    SMAP_E_FT's errors correlate with either at <= 0.08. So the triplets here pair SMAP_E_FT with
    ESDR_FT or ERA5_FT and complete them with an independent-error member (the truth with 10 %
    i.i.d. flips, standing in for a well-behaved third product). The all-twin triplet is the
    strict xfail below.
    """
    g = _gridded(twin_2018)
    ref = _independent_reference(g["truth"])
    err = _ctc_errors({"independent_ref": ref, pair[0]: g[pair[0]], pair[1]: g[pair[1]]}, g["truth"])
    worst = err[["d_psi", "d_eta", "d_pi"]].abs().max(axis=1)
    assert (worst <= 0.02).all(), err


@pytest.mark.xfail(
    strict=True,
    reason="ERA5_FT and ESDR_FT errors are conditionally dependent on the twin (r = 0.15-0.22 "
    "given the truth): CTC overestimates their AM specificity by ~0.03-0.04 (this window, "
    "2015-2020: ERA5_FT +0.036, ESDR_FT +0.031; 2018: +0.033, +0.028) and ERA5_FT's AM "
    "balanced accuracy by 0.021",
)
def test_ctc_all_twin_products_within_002(twin_2018):
    g = _gridded(twin_2018)
    err = _ctc_errors({"ERA5_FT": g["ERA5_FT"], "SMAP_E_FT": g["SMAP_E_FT"], "ESDR_FT": g["ESDR_FT"]}, g["truth"])
    assert (err[["d_psi", "d_eta", "d_pi"]].abs().max(axis=1) <= 0.02).all(), err


# --------------------------------------------------------------------------------------
# the rules, on hand-made inputs


def test_network_ft_reads_the_local_solar_overpass():
    # a station at 90 E: local solar time = UTC + 6 h. The soil is -1 degC from 23:00 to 01:00 UTC
    # (05:00-07:00 local) and +2 degC otherwise: frozen at the AM overpass, thawed at PM.
    t = pd.date_range("2019-01-01", "2019-01-04 23:30", freq="30min")
    hours = t.hour + t.minute / 60
    temp = np.where((hours >= 23) | (hours <= 1), -1.0, 2.0)
    da = xr.DataArray(
        temp[None, :],
        dims=("station", "time"),
        coords={"station": ["s"], "time": t, "lon": ("station", [90.0])},
        attrs={"units": "degC"},
    )
    ft = reference.network_ft(da)
    assert ft.dims == ("pass", "station", "time")
    # local day 2019-01-01 starts at 18:00 UTC of 2018-12-31: its AM window is complete from the 2nd on
    am = ft.sel({"pass": "AM"}).isel(station=0).sel(time=slice("2019-01-02", "2019-01-04")).values
    pm = ft.sel({"pass": "PM"}).isel(station=0).sel(time=slice("2019-01-01", "2019-01-04")).values
    assert (am == 1).all() and (pm == 0).all()
    # the same series read in UTC (no shift) would be thawed at 06:00
    utc = (
        reference.network_ft(da, lon=[0.0])
        .sel({"pass": "AM"})
        .isel(station=0)
        .sel(time=slice("2019-01-02", "2019-01-04"))
        .values
    )
    assert (utc == 0).all()
    # too few readings in the window -> missing
    gappy = da.where((hours < 23) & (hours > 1))
    assert (reference.network_ft(gappy).sel({"pass": "AM"}).isel(station=0).values == 255).all()


def test_meteorology_and_era5_rules():
    t = pd.date_range("2019-01-01", periods=3, freq="D")
    t4 = pd.date_range("2019-01-01", periods=4, freq="D")
    # hand-computed: AM frozen iff t0_max < 0, PM frozen iff t0_min < 0 (strictly; exactly 0 is thawed)
    cma = xr.Dataset(
        {
            "t0_min": (("station", "time"), [[-3.0, -1.5, 0.0, np.nan]], {"units": "degC"}),
            "t0_max": (("station", "time"), [[2.0, -0.5, 0.0, -1.0]], {"units": "degC"}),
        },
        coords={"station": ["a"], "time": t4},
    )
    m = reference.meteorology_ft(cma)
    assert m.sel({"pass": "AM"}).values.tolist() == [[0, 1, 0, 1]]
    assert m.sel({"pass": "PM"}).values.tolist() == [[1, 1, 0, 255]]
    vals = np.full((3, 2, 3, 1), 300.0)  # (time, pass, step, y); only step 2 counts
    vals[:, 0, 2, 0] = [273.0, 273.2, 274.0]
    vals[:, 1, 2, 0] = [270.0, 280.0, 273.15]
    stl1 = xr.DataArray(
        vals, dims=("time", "pass", "step", "y"), coords={"time": t, "pass": ["AM", "PM"]}, attrs={"units": "K"}
    )
    e = reference.era5_ft(stl1)
    assert e.sel({"pass": "AM"}).values.ravel().tolist() == [1, 0, 0]
    assert e.sel({"pass": "PM"}).values.ravel().tolist() == [1, 0, 0]  # strictly below 273.15 K


def test_to_markdown_and_masks():
    df = pd.DataFrame({"a": ["x", "y"], "v": [0.12345, np.nan], "ok": [True, False], "n": [3, 4]})
    md = tables.to_markdown(df, digits=2)
    assert md.splitlines()[0] == "| a | v | ok | n |" and "| x | 0.12 | yes | 3 |" in md and "| y |  | no | 4 |" in md
    region = xr.DataArray(
        np.array([[1, 1], [2, 0]], "u1"),
        dims=("y", "x"),
        attrs={"flag_values": [0, 1, 2], "flag_meanings": "none qinghai_tibet northwest"},
    )
    stab = xr.DataArray(
        np.array([[1, 6], [0, 0]], "u1"),
        dims=("y", "x"),
        attrs={"flag_values": [0, 1, 6], "flag_meanings": "none very_stable seasonally_frozen_ground"},
    )
    masks = sci_trends.stratum_masks(region, stab)
    assert [(g, n, int(mk.sum())) for g, n, mk in masks] == [
        ("region", "qinghai_tibet", 2),
        ("region", "northwest", 1),
        ("all", "all regions", 3),
        ("stability", "very_stable", 1),
        ("stability", "seasonally_frozen_ground", 1),
    ]
    fd = xr.DataArray(
        np.arange(40, dtype=float).reshape(10, 2, 2),
        dims=("year", "y", "x"),
        coords={"year": np.arange(2000, 2010)},
        attrs={"units": "days"},
    )
    tab = sci_trends.table2(fd, region, stab)
    assert list(zip(tab["group"], tab["name"])) == [(g, n) for g, n, _ in masks]
    s = sci_trends.regional_series(fd, masks)
    assert np.allclose(s.mean("year").values, tab["mean_frozen_days"].values)


# --------------------------------------------------------------------------------------
# review fixes (issue 9): ERA5_FT step, CTC out-of-range estimates, tables masked below a count


def _stl1_steps(values_per_step, dtype="f8", coord=True):
    """stl1 (time, pass, step, y) whose three steps hold different series: values_per_step[s] over 3 days."""
    vals = np.empty((3, 2, 3, 1), dtype)
    for s, v in enumerate(values_per_step):
        vals[:, :, s, 0] = np.asarray(v, dtype)[:, None]
    coords = {"time": pd.date_range("2019-01-01", periods=3), "pass": ["AM", "PM"]}
    if coord:  # as predictors/era5land stores it
        coords["step"] = ("step", np.arange(3, dtype="i1"), {"local_hours_AM": "3 4 5", "local_hours_PM": "15 16 17"})
    return xr.DataArray(vals, dims=("time", "pass", "step", "y"), coords=coords, attrs={"units": "K"}, name="stl1")


def test_era5_ft_takes_the_05h_17h_step_and_fails_clearly_without_it():
    from ftcloud.errors import FTCloudError, ValidationError

    # each step frozen on a different day: step 0 on day 0, step 1 on day 1, step 2 (05 h / 17 h) on day 2
    frozen, thawed = 272.0, 274.0
    per_step = [[frozen, thawed, thawed], [thawed, frozen, thawed], [thawed, thawed, frozen]]
    for coord in (True, False):
        e = reference.era5_ft(_stl1_steps(per_step, coord=coord))
        assert "step" not in e.dims
        for p in ("AM", "PM"):
            assert e.sel({"pass": p}).values.ravel().tolist() == [0, 0, 1], (coord, p)
    rule = reference.era5_ft(_stl1_steps(per_step)).attrs["rule"]
    assert "5 h AM" in rule and "17 h PM" in rule and "nearest stored hour" in rule
    # already reduced to step 2 (ctc_at_stations samples the stations first): accepted through the scalar coordinate
    pre = _stl1_steps(per_step).isel(step=2)
    assert reference.era5_ft(pre).sel({"pass": "AM"}).values.ravel().tolist() == [0, 0, 1]
    # float32 exactly at 273.15 K is thawed, one ulp below frozen
    at = np.float32(273.15)
    e32 = reference.era5_ft(
        _stl1_steps([[frozen] * 3, [frozen] * 3, [at, np.nextafter(at, np.float32(0)), at]], dtype="f4")
    )
    assert e32.sel({"pass": "PM"}).values.ravel().tolist() == [0, 1, 0]
    # clear ftcloud errors, naming the variable and what was expected
    bad = [
        (_stl1_steps(per_step).isel(step=slice(0, 2)), "2 value"),  # too short
        (_stl1_steps(per_step, coord=False).isel(step=2), "no 'step' axis"),  # absent, nothing says which hour it is
        (_stl1_steps(per_step).isel(step=0), "reduced to step 0"),
    ]  # the 03 h step
    for da, msg in bad:
        with pytest.raises(ValidationError, match=msg) as ei:
            reference.era5_ft(da)
        assert isinstance(ei.value, FTCloudError) and "stl1" in str(ei.value) and "05 h" in str(ei.value)


def _direct_ds(counts):
    """A direct-validation Dataset (reference, product, season, network, pass) from counts (season -> 4 counts)."""
    seasons = list(study.SEASONS)
    arr = np.array([counts[s] for s in seasons], dtype=np.int64)  # (season, 4)
    shape = (1, 1, len(seasons), 1, 1)
    ds = xr.Dataset(
        coords={
            "reference": ["insitu"],
            "product": ["ConvLSTM_FT"],
            "season": seasons,
            "network": ["all"],
            "pass": ["AM"],
        }
    )
    dims = ("reference", "product", "season", "network", "pass")
    for i, k in enumerate(("N_FF", "N_TF", "N_TT", "N_FT")):
        ds[k] = (dims, arr[:, i].reshape(shape))
    ds["n"] = ds["N_FF"] + ds["N_TF"] + ds["N_TT"] + ds["N_FT"]
    ds["CA_F"] = ds["N_FF"] / (ds["N_FF"] + ds["N_TF"])
    ds["CA_T"] = ds["N_TT"] / (ds["N_TT"] + ds["N_FT"])
    ds["CA_O"] = (ds["N_FF"] + ds["N_TT"]) / ds["n"]
    return ds


def test_direct_tables_mask_accuracies_over_few_station_days():
    from ftcloud.science.validation import MIN_TABLE_COUNT

    assert MIN_TABLE_COUNT == 20
    # frozen season: 3 + 1 thawed pairs (CA_T over 4 station-days: masked); thawed season: 19 frozen pairs (masked)
    counts = {
        "all": [400, 40, 500, 60],
        "frozen": [300, 30, 3, 1],
        "transition": [90, 9, 200, 40],
        "thawed": [10, 9, 297, 19],
    }
    ddf = validation._direct_table(_direct_ds(counts))
    r = ddf.set_index("season")
    assert (
        np.isnan(r.loc["frozen", "CA_T"])
        and r.loc["frozen", "CA_F"] == 300 / 330
        and r.loc["frozen", "CA_O"] == 303 / 334
    )
    assert np.isnan(r.loc["thawed", "CA_F"]) and r.loc["thawed", "CA_T"] == 297 / 316
    assert r.loc["all", ["CA_F", "CA_T", "CA_O"]].tolist() == [400 / 440, 500 / 560, 900 / 1000]
    assert r.loc["frozen", "N_TT"] == 3  # the counts stay
    md = tables._direct_markdown(ddf, ("2018-04-01", "2020-12-31"), "test rule")
    # CA columns in %: frozen CA_T masked, thawed CA_F masked, the rest shown
    assert f"| all | frozen | 334 | {100 * 300 / 330:.2f} | – | {100 * 303 / 334:.2f} |" in md
    assert f"| all | thawed | 335 | – | {100 * 297 / 316:.2f} | {100 * 307 / 335:.2f} |" in md
    assert f"| all | all | 1000 | {100 * 400 / 440:.2f} | {100 * 500 / 560:.2f} | 90.00 |" in md
    assert "– : masked, fewer than 20 station-days behind the statistic (2 cells in this table)" in md


def _ctc_stations(rng):
    """CTC at 31 'stations': 30 with 1,000 days at 95 % frozen (some estimates out of range), one with 12 valid days."""
    n, nst = 1000, 31
    truth = rng.random((n, nst)) < 0.95
    xs = []
    for sens, spec in ((0.95, 0.85), (0.80, 0.92), (0.88, 0.88)):
        u = rng.random(truth.shape)
        xs.append(np.where(truth, u < sens, u >= spec).astype("u1"))
    sparse = [
        [0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1],
        [0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0],
        [0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1],
    ]
    for x, s in zip(xs, sparse):
        x[:, -1] = 255
        x[:12, -1] = s  # a CTC defined over 12 days (min_count=5 below), psi 0.69, eta 0.87
    coords = {"time": pd.date_range("1980-01-01", periods=n), "station": [f"s{i:02d}" for i in range(nst)]}
    das = [xr.DataArray(x, dims=("time", "station"), coords=coords).expand_dims({"pass": ["AM"]}) for x in xs]
    from ftcloud.errors import UndefinedStatisticWarning

    with pytest.warns(UndefinedStatisticWarning, match="reason 6"):
        res = sci_ctc.triple_collocation(*das, min_count=5, names=list(study.CTC_NAMES))
    return res.expand_dims(season=["all"]).transpose("season", "product", "pass", "station", ...)


def test_ctc_summaries_report_medians_counts_and_mask_sparse_strata(rng):
    ctc = _ctc_stations(rng)
    reason = ctc["reason"].values[0, 0]  # (station,)
    assert (reason == 6).sum() >= 3 and reason[-1] == 0 and int(ctc["n"].values[0, 0, -1]) == 12
    tci = xr.DataArray(np.r_[np.full(30, 10.0), 400.0], dims="station")  # the sparse station alone in ">=350"
    sdf = sci_ctc.ctc_summaries(ctc, {"tci": (tci, "tci")})
    ok = reason == 0
    for prod in study.CTC_NAMES:
        psi = ctc["psi"].sel(product=prod).values[0, 0]
        r = sdf[(sdf.stratum_type == "all") & (sdf["product"] == prod)].iloc[0]
        assert r.n_stations == ok.sum() and r.n_out_of_range == (reason == 6).sum() and r.n_total == 31
        assert r.n_days == int(ctc["n"].values[0, 0][ok].sum())
        assert r.psi == pytest.approx(np.mean(psi[ok]), rel=1e-12)
        assert r.psi_median == pytest.approx(np.median(psi[ok]), rel=1e-12)
        eta_raw = ctc["eta_raw"].sel(product=prod).values[0, 0]
        assert r.eta_median == pytest.approx(np.median(ctc["eta"].sel(product=prod).values[0, 0][ok]), rel=1e-12)
        assert r.eta <= 1 and np.isfinite(eta_raw[reason == 6]).all()
        lone = sdf[(sdf.stratum_type == "tci") & (sdf.stratum == ">=350") & (sdf["product"] == prod)].iloc[0]
        assert lone.n_stations == 1 and lone.n_days == 12
        assert np.isnan(lone[["psi", "psi_median", "eta", "eta_median", "pi", "pi_median"]].astype(float)).all()
        low = sdf[(sdf.stratum_type == "tci") & (sdf.stratum == "<50") & (sdf["product"] == prod)].iloc[0]
        assert low.psi == pytest.approx(np.mean(psi[:30][ok[:30]]), rel=1e-12)
    assert (ctc["eta_raw"].values > 1).any() and (sdf[["psi", "eta", "pi"]].dropna() <= 1).all().all()
    md = tables._ctc_markdown(sdf, ("1980-01-01", "1982-09-26"), 31)
    assert "| >=350 | 1 | AM | ConvLSTM_FT | 1 | 0 | 12 | – | – | – | – | – | – |" in md
    assert "– : masked, fewer than 20 station-days behind the statistic" in md
    assert all("–" not in ln for ln in md.splitlines() if ln.startswith("| all | AM |"))
    st = sci_ctc._ctc_station_table(ctc, None).set_index(["product", "station"])
    assert st.loc[("ERA5_FT", "s30"), "reason"] == "too_few_samples" and np.isnan(st.loc[("ERA5_FT", "s30"), "psi"])
    flagged = [f"s{i:02d}" for i in np.flatnonzero(reason == 6)]
    rows = st.loc[[("ERA5_FT", s) for s in flagged]]
    assert (
        (rows["reason"] == "estimate_out_of_range").all() and rows["psi"].isna().all() and rows["eta_raw"].notna().all()
    )


# --------------------------------------------------------------------------------------
# results as objects: what the commands return is what a later report reads back


@pytest.fixture(scope="module")
def outputs(twin_2018, twin_20y, tmp_path_factory):
    """One ``validate`` and one ``trends`` (with figures) that the tests below only read."""
    root = tmp_path_factory.mktemp("outputs")
    v = wf_validate.validate(twin_2018["store"], twin_2018["product"], str(root / "v"), progress=False)
    t = wf_trends.trends(twin_20y["product"], twin_2018["store"], str(root / "t"), progress=False)
    return {"root": root, "v": v, "t": t}


def test_results_load_back_what_validate_and_trends_returned(outputs, tmp_path):
    from ftcloud.report.results import TrendsResults, ValidationResults

    v, t, root = outputs["v"], outputs["t"], outputs["root"]
    assert isinstance(v, ValidationResults) and isinstance(t, TrendsResults)
    v2, t2 = ValidationResults.load(str(root / "v")), TrendsResults.load(str(root / "t"))
    for name in ("direct", "baselines", "ctc", "ctc_stations"):
        a, b = getattr(v, name), getattr(v2, name)
        assert a is not None and len(a) > 0, name
        # the CSV round trip: same columns, rows and values (strings and floats as pandas reads them)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b, check_dtype=False, check_exact=False), name
    assert (v2.direct_period, v2.baselines_period, v2.ctc_period) == (v.direct_period, v.baselines_period, v.ctc_period)
    assert set(v2.figures) == {
        "ft_maps_AM",
        "ft_maps_PM",
        "accuracy_by_network",
        "accuracy_by_season",
        "ctc_AM",
        "ctc_PM",
    }
    assert v2.direct_headline() == v.direct_headline() and v2.ctc_headline() == v.ctc_headline()
    pd.testing.assert_frame_equal(t.table2.reset_index(drop=True), t2.table2, check_dtype=False)
    assert t2.years == (2001, 2020) and set(t2.figures) == {"regional_series", "stability_series", "slope_map"}
    assert t2.fdr_significant_fraction.keys() == {"AM", "PM", "mean"}
    # the summary is the object's own account, and a folder without it holds no result
    s = json.loads((root / "t" / "trends-summary.json").read_text())
    assert s["table2"] == t.table2_rows("mean") and len(s["table2"]) == 7
    assert ValidationResults.load(str(tmp_path / "nowhere")) is None


def test_the_run_report_is_built_from_result_objects_not_files(outputs, tmp_path):
    """write_report takes the objects: a report folder beside no validation/ or trends/ output
    still carries their tables, so nothing was re-read from files by name."""
    from ftcloud.report.html import write_report
    from ftcloud.report.results import ModelCards, RunResults

    v, t = outputs["v"], outputs["t"]
    out = tmp_path / "elsewhere"
    res = RunResults(out=str(out), models=ModelCards(str(out / "models")), validation=v, trends=t)
    rep = write_report(res)
    assert not (out / "validation").exists() and not (out / "trends").exists()
    page = (out / "report" / "report.html").read_text()
    assert "Table 2: frozen days and their trend (days/year), 2001-2020" in page
    assert page.count("<img ") == 9  # the six validation figures and three trend figures, embedded
    assert rep["figures"] == 9
    ctc = pd.read_csv(out / "report" / "ctc.csv")
    pd.testing.assert_frame_equal(ctc, v.ctc.reset_index(drop=True), check_dtype=False)
    t2 = pd.read_csv(out / "report" / "table2.csv")
    assert len(t2) == len(t.table2) and set(t2["name"]) == set(t.table2["name"])
    # the headline of the in-situ comparison comes from v.baselines
    f = pd.read_csv(out / "report" / "findings.csv")
    ins = f[f["finding"].str.startswith("fused - SMAP_E_FT overall")]["this run vs in-situ"]
    b = v.baselines
    want = b[(b["reference"] == "insitu") & (b["season"] == "all") & (b["product"] == "SMAP_E_FT")]
    assert np.allclose(sorted(ins), sorted(100 * want["gain"]), equal_nan=True)
    # and an empty run folder gives a report that says so rather than failing
    empty = write_report(RunResults.load(str(tmp_path / "empty")))
    assert empty["figures"] == 0 and "not available" in (tmp_path / "empty" / "report" / "report.html").read_text()


def test_results_of_a_moved_or_older_folder_keep_their_figures(outputs, tmp_path):
    """The summary records figures relative to its folder, and a summary written before it recorded
    figures (an older ftcloud) finds them by their layout names: the report does not lose them."""
    from ftcloud.report.results import ValidationResults

    shutil.copytree(outputs["root"] / "v", tmp_path / "moved")  # the shared outputs stay where they are
    res = ValidationResults.load(str(tmp_path / "moved"))
    assert len(res.figures) == 6 and all(p.startswith(str(tmp_path / "moved")) for p in res.figures.values())
    js = tmp_path / "moved" / "validate-summary.json"
    s = json.loads(js.read_text())
    del s["figures"]
    js.write_text(json.dumps(s))
    assert ValidationResults.load(str(tmp_path / "moved")).figures == res.figures
    (tmp_path / "moved" / "figures" / "fig06_ctc_AM.png").unlink()
    assert set(res.figures) - set(ValidationResults.load(str(tmp_path / "moved")).figures) == {"ctc_AM"}


def test_a_rerun_that_skips_a_part_leaves_no_stale_table_and_counts_stations(twin_2018, tmp_path):
    from ftcloud.io.stores import open_group
    from ftcloud.report.results import ValidationResults

    out = tmp_path / "v"
    v = wf_validate.validate(twin_2018["store"], twin_2018["product"], str(out), figures=False, progress=False)
    n_st = open_group(twin_2018["store"], "insitu/cma").sizes["station"]  # the store's own count
    assert v.n_ctc_stations == n_st and f"{n_st} CMA station" in (out / "ctc_summary.md").read_text()
    # the same folder again, from a store without in-situ data: the old tables must not come back
    store = tmp_path / "store"
    shutil.copytree(twin_2018["store"], store, ignore=shutil.ignore_patterns("insitu"))
    v2 = wf_validate.validate(str(store), twin_2018["product"], str(out), figures=False, progress=False)
    assert v2.direct is None and v2.ctc is None and len(v2.skipped) == 2
    for name in (
        "direct_validation.csv",
        "direct_validation.md",
        "direct_validation.zarr",
        "ctc_summary.csv",
        "ctc_stations.csv",
        "ctc.zarr",
    ):
        assert not (out / name).exists(), name
    back = ValidationResults.load(str(out))
    assert back.direct is None and back.ctc is None and back.ctc_stations is None
    back.summary()  # consistent with itself (it raised on a stale table without its period)
    back.save()


def test_seven_years_say_n_a_in_words_in_the_report_tables_and_figures(twin_20y, twin_2018, tmp_path, monkeypatch):
    """Fewer years than the trend test needs: "n/a: 7 years < 10", not NaN legends, empty maps and 0 %."""
    from ftcloud.report import figures as F
    from ftcloud.report.html import write_report
    from ftcloud.report.results import ModelCards, RunResults

    ft = _truth_codes(twin_20y["src"] / "truth").sel(time=slice("2014-01-01", "2020-12-31"))
    product = _write_product(ft, str(tmp_path / "seven.zarr"))
    drawn, save = {}, F._save

    def keep(fig, path):  # the figure objects, to read what they say (and the files, as usual)
        drawn[os.path.basename(path)] = fig
        return save(fig, path)

    monkeypatch.setattr(F, "_save", keep)
    t = wf_trends.trends(product, twin_2018["store"], str(tmp_path / "t"), progress=False)
    assert t.years == (2014, 2020)
    legend = [x.get_text() for x in drawn["fig11_regional_series.png"].axes[0].get_legend().get_texts()]
    assert legend and all("nan" not in x for x in legend), legend
    assert any("n/a (7 years < 10)" in x for x in legend), legend
    sm = drawn["slope_map.png"]
    assert len(sm.axes) == 1  # no colour bar over an empty map
    assert any("7 years < 10" in x.get_text() for x in sm.axes[0].texts)
    out = tmp_path / "run"
    rep = write_report(RunResults(out=str(out), models=ModelCards(str(out / "models")), trends=t))
    page = open(rep["files"]["report.html"]).read()
    assert "n/a: 7 years &lt; 10" in page  # the significant-pixels headline and the Table 2 note
    assert "Trends n/a: 7 years &lt; 10" in page
    assert ">nan<" not in page and "nan d/yr" not in page
    find = pd.read_csv(out / "report" / "findings.csv", keep_default_na=False)  # "n/a" as written
    slopes = find[find["finding"].str.startswith("Sen slope")]
    assert len(slopes) and (slopes["planted in CI"] == "").all() and (slopes["this run 95% CI"] == "n/a").all()


def test_every_output_follows_the_cf_and_acdd_rules(twin_2018, outputs):
    """The store's groups and what validate and trends write, opened with xarray, against the rule set
    of ftcloud.testing.cf_problems."""
    from ftcloud.io.stores import open_group
    from ftcloud.layout import GROUPS
    from ftcloud.testing import cf_problems

    tmp_path = outputs["root"]
    problems = []
    from ftcloud.io.stores import store_status

    for name, group in GROUPS.items():
        if name in ("imerg", "tb_smap", "tb_multifreq"):  # optional sources this twin was written without
            assert store_status(os.path.join(twin_2018["store"], group)) is None
            continue
        problems += cf_problems(open_group(twin_2018["store"], group), group)
    for path in (
        tmp_path / "v" / "ctc.zarr",
        tmp_path / "v" / "direct_validation.zarr",
        tmp_path / "t" / "trends.zarr",
    ):
        problems += cf_problems(xr.open_zarr(path), path.name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("group,var", [("targets/smap_e_ft", "smap_e_ft"), ("targets/esdr_ft", "esdr_ft")])
def test_plain_xarray_masks_the_missing_ft_code_and_ftcloud_keeps_the_codes(twin_2018, group, var):
    """A scientist's ``xr.open_zarr(...)[var].mean()`` is the frozen share of the valid days (255 masked by
    its _FillValue), not a mean that counts 255; ftcloud's own reader keeps uint8 codes."""
    import zarr

    from ftcloud.io.stores import open_group

    path = os.path.join(twin_2018["store"], group)
    raw = zarr.open_group(path, mode="r")[var][:]
    assert (raw == 255).any() and ((raw == 0) | (raw == 1)).any()
    expected = raw[raw != 255].mean()  # numpy on the raw codes: the oracle
    ds = xr.open_zarr(path)
    assert ds[var].encoding["_FillValue"] == 255 and ds[var].dtype.kind == "f"
    assert float(ds[var].mean()) == pytest.approx(expected, rel=1e-6)
    assert float(ds[var].mean()) != pytest.approx(raw.mean(), rel=1e-3)  # the unmasked mean differs
    kept = open_group(twin_2018["store"], group)[var]
    assert kept.dtype == np.uint8 and int((kept == 255).sum()) == int((raw == 255).sum())


def test_rioxarray_reads_the_ft_grid_and_its_nodata(twin_2018):
    """GDAL's view through rioxarray: the EASE-Grid 2.0 CRS from the crs grid mapping, and 255 as the
    encoded nodata of the FT variable."""
    rioxarray = pytest.importorskip("rioxarray", reason="rioxarray is in the [test] extra; not installed here")
    assert rioxarray
    ds = xr.open_zarr(os.path.join(twin_2018["store"], "targets/smap_e_ft"), decode_coords="all")
    da = ds["smap_e_ft"].isel(time=0).sel({"pass": "AM"})
    assert da.rio.crs is not None and da.rio.crs.to_epsg() == 6933
    assert da.rio.encoded_nodata == 255
    assert da.rio.resolution()[0] == pytest.approx(9008.055210146, rel=1e-6)


def _as_foreign(product: str, url: str, *, latlon: bool = False) -> str:
    """The mock product as someone else's dataset: variable FT_state, TPDC codes 1 frozen / 2 thawed / 0 fill,
    a noleap calendar, no ftcloud attributes (optionally on degrees named lat/lon)."""
    import cftime

    ft = xr.open_zarr(product, mask_and_scale=False)["ft"].load()
    codes = np.select([ft.values == 1, ft.values == 0], [1, 2], 0).astype("u1")
    t = pd.DatetimeIndex(ft["time"].values)
    times = [cftime.DatetimeNoLeap(d.year, d.month, d.day) for d in t]
    dims, coords = ("pass", "time", "y", "x"), {"pass": ft["pass"].values, "time": times}
    if latlon:
        dims = ("pass", "time", "lat", "lon")
        coords |= {"lat": np.linspace(34.3, 33.5, ft.sizes["y"]), "lon": np.linspace(101, 102.2, ft.sizes["x"])}
    else:
        coords |= {"y": ft["y"].values, "x": ft["x"].values}
    attrs = {"flag_values": np.array([0, 1, 2], "u1"), "flag_meanings": "fill frozen thawed"}
    xr.Dataset({"FT_state": (dims, codes, attrs)}, coords=coords).to_zarr(url, mode="w")
    return url


def test_validate_your_own_product_on_the_store_grid_scores_as_ftclouds(twin_2018, outputs, tmp_path, capsys):
    """`ftcloud validate --product own.zarr --variable --codes`: the same FT states in someone else's coding and
    calendar give the same direct validation as the ftcloud product they came from."""
    from ftcloud.cli import main

    own = _as_foreign(twin_2018["product"], str(tmp_path / "own.zarr"))
    args = ["-q", "validate", "--store", twin_2018["store"], "--product", own, "--out", str(tmp_path / "v")]
    assert main([*args, "--no-figures", "--variable", "FT_state", "--codes", "frozen=1,thawed=2"]) == 0
    mine = pd.read_csv(tmp_path / "v" / "direct_validation.csv")
    ref = pd.read_csv(outputs["root"] / "v" / "direct_validation.csv")
    assert len(mine) == len(ref) > 0
    pd.testing.assert_frame_equal(mine, ref)
    capsys.readouterr()
    latlon = _as_foreign(twin_2018["product"], str(tmp_path / "ll.zarr"), latlon=True)
    rc = main(["-q", "validate", "--store", twin_2018["store"], "--product", latlon, "--out", str(tmp_path / "v2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "lat/lon grid" in err[0] and "regrid it to the store's grid" in err[0]


def test_validate_compares_a_foreign_product_by_its_flags(twin_2018, tmp_path, capsys):
    """`--compare` takes any CF FT zarr (no ftcloud status record): named by its folder, its codes read from
    its flag_values/flag_meanings; the same states as the product give the same accuracy on the common mask."""
    from ftcloud.cli import main

    own = _as_foreign(twin_2018["product"], str(tmp_path / "theirs.zarr"))
    rc = main(
        [
            "-q",
            "validate",
            "--store",
            twin_2018["store"],
            "--product",
            twin_2018["product"],
            "--out",
            str(tmp_path / "v"),
            "--no-figures",
            "--compare",
            own,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    # a compared product joins the families' table, on the common mask of all of them; the headline keeps its own
    head = pd.read_csv(tmp_path / "v" / "baselines.csv")
    assert "theirs" not in set(head["product"])
    b = pd.read_csv(tmp_path / "v" / "baselines_with_families.csv")
    mine, theirs = (b[b["product"] == n].reset_index(drop=True) for n in ("ConvLSTM_FT", "theirs"))
    assert len(theirs) == len(mine) > 0
    np.testing.assert_allclose(theirs["CA_O"], mine["CA_O"])

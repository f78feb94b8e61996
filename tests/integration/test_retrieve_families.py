"""The retrieval families end to end on a twin with brightness temperatures: `ftcloud retrieve` for every
family, their products side by side in `ftcloud validate --compare`, ERT's split and accuracy."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud.cli import main
from ftcloud.workflows.retrieve import METHODS

START, END = "2016-01-01", "2017-08-31"


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["-q", *args])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tb_store(tmp_path_factory):
    from ftcloud.synth import generate
    from ftcloud.workflows.ingest import ingest

    root = tmp_path_factory.mktemp("families")
    generate("tiny", START, END, str(root / "src"), seed=6, insitu=False, targets_start=START, progress=False, tb=True)
    ingest(str(root / "src"), str(root / "store"), progress=False)
    return root


@pytest.fixture(scope="module")
def products(tb_store):
    out = {}
    for m in METHODS:
        path = tb_store / f"{m}.zarr"
        rc, text, err = _run(
            "retrieve",
            "--method",
            m,
            "--store",
            str(tb_store / "store"),
            "--out",
            str(path),
            "--fit-start",
            "2016-01-01",
            "--fit-end",
            "2016-12-31",
        )
        assert rc == 0, err
        out[m] = (path, text)
    return out


def test_every_family_writes_a_cf_ft_product(products):
    from ftcloud.io.stores import store_status
    from ftcloud.testing import cf_problems

    for m, (path, text) in products.items():
        assert store_status(str(path)) == "complete", m
        ds = xr.open_zarr(path, mask_and_scale=False)
        assert ds["ft"].dims == ("pass", "time", "y", "x") and ds["ft"].dtype == np.uint8
        assert set(np.unique(ds["ft"].values)) <= {0, 1, 255}
        assert not cf_problems(xr.open_zarr(path), m), cf_problems(xr.open_zarr(path), m)
        card = json.loads(ds.attrs["ftcloud_retrieval"])
        assert card["method"] == m and card["fit_period"] == ["2016-01-01", "2016-12-31"]
        assert f"retrieve {m}:" in text


def test_ert_reports_a_reproducible_70_15_15_split_and_importances(products, tb_store):
    from ftcloud.retrieve.ert import ERTRetrieval
    from ftcloud.layout import Store
    from ftcloud.workflows.retrieve import retrieval_inputs

    card = json.loads(xr.open_zarr(products["ert"][0]).attrs["ftcloud_retrieval"])
    acc = card["metrics"]["accuracy"]
    n = {k: v["n"] for k, v in acc.items()}
    total = sum(n.values())
    assert abs(n["train"] - 0.70 * total) <= 1 and abs(n["validation"] - 0.15 * total) <= 1
    assert set(card["metrics"]["feature_importances"]) >= {"TB36.5V", "stl1", "elevation"}
    assert sum(card["metrics"]["feature_importances"].values()) == pytest.approx(1.0, abs=1e-6)
    ds, target = retrieval_inputs(Store(str(tb_store / "store")), "ert")
    sl = dict(time=slice("2016-01-01", "2016-06-30"))
    a = ERTRetrieval(n_estimators=20, seed=3).fit(ds.sel(**sl).load(), target.sel(**sl).load()).metrics
    b = ERTRetrieval(n_estimators=20, seed=3).fit(ds.sel(**sl).load(), target.sel(**sl).load()).metrics
    c = ERTRetrieval(n_estimators=20, seed=4).fit(ds.sel(**sl).load(), target.sel(**sl).load()).metrics
    assert a == b  # the same seed: the same split, trees and scores
    assert a["accuracy"] != c["accuracy"]
    # no overfit beyond noise: validation and test agree within 4 binomial standard errors
    v, t = acc["validation"], acc["test"]
    se = np.sqrt(v["accuracy"] * (1 - v["accuracy"]) * (1 / v["n"] + 1 / t["n"]))
    assert abs(v["accuracy"] - t["accuracy"]) < 4 * se


def test_families_side_by_side_on_one_common_mask(products, tb_store):
    """ERT trained on SMAP_E_FT beats SMAP_E_FT itself against the truth (SMAP's flips are noise the trees
    average out): its paired gain interval lies above 0 on the held-out half year; every product of the
    table is scored on the same pixel-days."""
    out = tb_store / "v"
    args = [
        "validate",
        "--store",
        str(tb_store / "store"),
        "--product",
        str(products["ert"][0]),
        "--out",
        str(out),
        "--test-start",
        "2017-01-01",
        "--test-end",
        "2017-06-30",
        "--ctc-start",
        "2017-01-01",
        "--ctc-end",
        "2017-06-30",
    ]
    for m in ("npr", "msta", "dia", "dfa", "autoencoder"):
        args += ["--compare", str(products[m][0])]
    rc, _, err = _run(*args)
    assert rc == 0, err
    # the headline table keeps the ConvLSTM's own baselines and mask; the families have their own table
    head = pd.read_csv(out / "baselines.csv")
    assert set(head["product"]) == {"ConvLSTM_FT", "ERA5_FT", "SMAP_E_FT", "ESDR_FT"}
    b = pd.read_csv(out / "baselines_with_families.csv")
    truth = b[b["reference"] == "truth"]
    hn = head[(head["reference"] == "truth") & (head["season"] == "all")].groupby("pass")["n"].first()
    fn = truth[truth["season"] == "all"].groupby("pass")["n"].first()
    assert (hn >= fn).all()  # the families' mask is the smaller one (NPR leaves forests out)
    assert {"NPR_FT", "MSTA_FT", "DIA_FT", "DFA_FT", "AE_FT", "SMAP_E_FT", "ConvLSTM_FT"} <= set(truth["product"])
    for _, g in truth.groupby(["pass", "season"]):
        assert g["n"].nunique() == 1  # one common mask
    smap = truth[(truth["season"] == "all") & (truth["product"] == "SMAP_E_FT")]
    assert (smap["gain_lo"] > 0).all(), smap[["pass", "gain", "gain_lo", "gain_hi"]]
    for name in ("families_accuracy_by_season.png", "families_error_maps_AM.png", "families_error_maps_PM.png"):
        assert (out / "figures" / name).stat().st_size > 20_000


def test_bad_family_inputs_are_one_line(tmp_path, tiny_store):
    rc, _, err = _run("retrieve", "--method", "dia", "--store", tiny_store, "--out", str(tmp_path / "d.zarr"))
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "predictors/tb_multifreq" in lines[0]
    rc, _, err = _run(
        "validate", "--store", tiny_store, "--product", str(tmp_path / "nothing.zarr"), "--out", str(tmp_path / "v")
    )
    assert rc == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("seed", [0, 1])
def test_the_autoencoders_error_is_lower_in_peak_winter_than_peak_summer_on_a_held_out_year(tb_store, seed):
    """Trained on 2016 only; on 2017 (never seen) the reconstruction error of peak-winter windows ranks below
    that of peak-summer windows: the chance that a random winter window has the smaller error (the AUC) is
    near 1, far from the 0.5 of no skill (its standard error over thousands of windows is below 0.01)."""
    from ftcloud.layout import Store
    from ftcloud.retrieve.autoencoder import AutoencoderRetrieval
    from ftcloud.workflows.retrieve import retrieval_inputs

    ds, _ = retrieval_inputs(Store(str(tb_store / "store")), "autoencoder")
    ae = AutoencoderRetrieval(seed=seed, epochs=15).fit(ds.sel(time=slice("2016-01-01", "2016-12-31")).load())
    err = ae.window_errors(ds.sel(time=slice("2017-01-01", "2017-08-31")).load())
    month = err["time"].dt.month
    w = err.where(month.isin([1, 2])).values.ravel()
    s = err.where(month.isin([7, 8])).values.ravel()
    w, s = w[np.isfinite(w)], s[np.isfinite(s)]
    assert len(w) > 1000 and len(s) > 1000
    rng = np.random.default_rng(0)
    auc = float((rng.choice(w, 20000) < rng.choice(s, 20000)).mean())
    assert np.median(w) < np.median(s) and auc > 0.9, (np.median(w), np.median(s), auc)


def test_the_autoencoder_is_exported_with_a_checksummed_card_and_refused_when_changed(products):
    from ftcloud.errors import ValidationError
    from ftcloud.retrieve.autoencoder import AutoencoderRetrieval

    path = products["autoencoder"][0]
    card = json.loads(xr.open_zarr(path).attrs["ftcloud_retrieval"])
    assert card["model"]["folder"] == "model"  # inside the product: written, completed and swapped with it
    folder = str(path / "model")
    loaded = AutoencoderRetrieval.from_export(folder)
    from ftcloud.layout import Store
    from ftcloud.workflows.retrieve import retrieval_inputs

    ds, _ = retrieval_inputs(Store(str(path.parent / "store")), "autoencoder")
    again = loaded.predict(ds.chunk({"y": 5})).values
    np.testing.assert_array_equal(again, xr.open_zarr(path, mask_and_scale=False)["ft"].values)
    ts = f"{folder}/ft_autoencoder.ts.pt"
    with open(ts, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ValidationError, match="does not match the card"):
        AutoencoderRetrieval.from_export(folder)


def test_smap_granules_carry_references_from_the_previous_year(tb_store):
    """freeze_reference / thaw_reference of a 2017 granule = the mean observed NPR of January-February /
    July-August 2016 at that pixel and pass (computed here from the 2016 granules themselves); fill in 2016."""
    import glob

    import h5py

    src = tb_store / "src" / "smap_e_ft"

    def field(path, name):
        with h5py.File(path) as h:
            a = h["Freeze_Thaw_Retrieval_Data_Global"][name][:].astype("f8")
        return np.where(a == -9999, np.nan, a)

    def season_mean(months):
        files = [f for f in sorted(glob.glob(str(src / "2016" / "*.h5"))) if int(f.split("_P_E_")[1][4:6]) in months]
        stack = np.stack([field(f, "normalized_polarization_ratio") for f in files])
        return np.nanmean(stack, axis=0)

    later = sorted(glob.glob(str(src / "2017" / "*.h5")))[100]
    np.testing.assert_allclose(field(later, "freeze_reference"), season_mean((1, 2)), rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(field(later, "thaw_reference"), season_mean((7, 8)), rtol=1e-5, equal_nan=True)
    first = sorted(glob.glob(str(src / "2016" / "*.h5")))[10]
    assert np.isnan(field(first, "freeze_reference")).all()


def test_every_family_is_worst_in_the_transition_seasons(products, tb_store):
    """On the twin each family errs most when the soil freezes and thaws (Feb-Apr, Oct-Nov): its accuracy
    against the truth there is below both the frozen (Dec-Jan) and the thawed (May-Sep) season's, by more
    than two points (tens of thousands of pixel-days per season: far beyond the sampling noise)."""
    from ftcloud.workflows.inputs import open_product, open_truth_ft

    truth = None
    for m, (path, _) in products.items():
        p = open_product(str(path))["ft"].load()
        if truth is None:
            truth = open_truth_ft(str(tb_store / "src" / "truth"), p).load()
        t = truth.sel(time=p.time)
        month = p["time"].dt.month
        acc = {}
        for name, months in {"frozen": [12, 1], "transition": [2, 3, 4, 10, 11], "thawed": [5, 6, 7, 8, 9]}.items():
            ok = (p <= 1) & t.notnull() & month.isin(months)
            assert int(ok.sum()) > 10_000, (m, name)
            acc[name] = float(((p == t) & ok).sum() / ok.sum())
        assert acc["transition"] < min(acc["frozen"], acc["thawed"]) - 0.02, (m, acc)


def test_a_product_on_an_object_store_carries_its_model_and_matches_the_local_one(products, tb_store):
    """The write order on a non-local filesystem (fsspec memory://, as S3): the product's skeleton, then the
    model into its model/ folder, then the tasks that read it from there; the same seed and store give the
    local product's values, and the exported trees reopen from the URL."""
    from ftcloud.retrieve.ert import ERTRetrieval
    from ftcloud.workflows.retrieve import retrieve

    url = "memory://ftcloud-test-families/ert.zarr"
    retrieve(str(tb_store / "store"), "ert", url, fit_period=("2016-01-01", "2016-12-31"), progress=False)
    from ftcloud.io.stores import get_mapper

    remote = xr.open_zarr(get_mapper(url), mask_and_scale=False)["ft"].values
    local = xr.open_zarr(products["ert"][0], mask_and_scale=False)["ft"].values
    np.testing.assert_array_equal(remote, local)
    again = ERTRetrieval.from_export(url + "/model")
    assert again.metrics["accuracy"]["test"]["n"] > 0


def test_a_store_of_several_tiles_gives_the_same_product(products, tb_store, tmp_path):
    """A region wider than one store chunk (China is 6 x 4 tiles of 128 cells): the product is written tile by
    tile (its zarr chunks are the store's tiles) and holds the values of the one-tile store's product."""
    from ftcloud.workflows.ingest import ingest
    from ftcloud.workflows.retrieve import retrieve

    chunks = {"predictors": {"time": 32, "pass": 1, "y": 4, "x": 4}, "targets": {"time": 365, "y": 4, "x": 4}}
    store = tmp_path / "store"
    ingest(str(tb_store / "src"), str(store), sources=["tb_multifreq"], chunks=chunks, progress=False)
    out = tmp_path / "dia.zarr"
    retrieve(str(store), "dia", str(out), fit_period=("2016-01-01", "2016-12-31"), progress=False)
    got = xr.open_zarr(out, mask_and_scale=False)["ft"]
    assert got.encoding["chunks"][2:] == (4, 4)
    np.testing.assert_array_equal(got.values, xr.open_zarr(products["dia"][0], mask_and_scale=False)["ft"].values)

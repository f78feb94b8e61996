"""The ``.ftcloud`` accessor: registered by ``import ftcloud``, forwards to the science functions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import ftcloud  # noqa: F401  (registers the accessor)
from ftcloud.errors import MissingVariableError


def _ft(years=12, seed=0):
    """Daily FT codes (time, y, x): frozen from day 1 to day k of each year, k known per year and pixel."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2001-01-01", f"{2000 + years}-12-31", freq="D")
    k = rng.integers(60, 120, size=(years, 2, 3))  # frozen days per year and pixel
    doy = t.dayofyear.values
    yi = t.year.values - 2001
    codes = (doy[:, None, None] <= k[yi]).astype("u1")
    da = xr.DataArray(codes, dims=("time", "y", "x"), coords={"time": t}, name="ft")
    da.attrs = {"flag_values": [0, 1], "flag_meanings": "thawed frozen"}
    return da, k


def test_import_registers_the_accessor_in_a_fresh_interpreter():
    code = (
        "import xarray as xr, ftcloud; da = xr.DataArray([0, 1], dims='time'); "
        "print(hasattr(da, 'ftcloud'), hasattr(xr.Dataset(), 'ftcloud'))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.split() == ["True", "True"], p.stderr


def test_frozen_days_and_sen_slope_against_hand_counts_and_scipy():
    from scipy.stats import theilslopes

    da, k = _ft()
    fd = da.ftcloud.frozen_days()
    assert fd.dims == ("year", "y", "x")
    np.testing.assert_array_equal(fd.values, k)  # the hand count
    slope = fd.ftcloud.sen_slope()
    for y in range(2):
        for x in range(3):
            assert slope.values[y, x] == pytest.approx(theilslopes(k[:, y, x], np.arange(2001, 2013))[0])


def test_mann_kendall_against_pymannkendall():
    pmk = pytest.importorskip("pymannkendall")
    da, k = _ft(seed=3)
    mk = da.ftcloud.frozen_days().ftcloud.mann_kendall()
    ref = pmk.original_test(k[:, 1, 2].astype(float))
    assert float(mk["p"].values[1, 2]) == pytest.approx(ref.p, rel=1e-9)
    assert float(mk["slope"].values[1, 2]) == pytest.approx(ref.slope, rel=1e-9)


def test_classification_accuracy_against_a_hand_count():
    t = pd.date_range("2020-01-01", periods=6, freq="D")
    prod = xr.DataArray(np.array([1, 1, 0, 0, 1, 255], "u1"), dims="time", coords={"time": t})
    ref = xr.DataArray(np.array([1, 0, 0, 0, 1, 1], "u1"), dims="time", coords={"time": t})
    acc = prod.ftcloud.classification_accuracy(ref)
    # frozen in the reference: days 0, 4 (day 5 is missing in the product) -> both right: CA_F = 1
    # thawed in the reference: days 1, 2, 3 -> 2 right: CA_T = 2/3; overall 4 of 5
    assert float(acc["CA_F"]) == 1.0 and float(acc["CA_T"]) == pytest.approx(2 / 3)
    assert float(acc["CA_O"]) == pytest.approx(4 / 5)


def test_triple_collocation_and_the_dataset_form_forward_unchanged():
    from ftcloud.science.ctc import triple_collocation

    rng = np.random.default_rng(5)
    truth = rng.random((400, 2)) < 0.5
    obs = [
        xr.DataArray(np.where(rng.random(truth.shape) < e, ~truth, truth).astype("u1"), dims=("time", "x"))
        for e in (0.05, 0.1, 0.2)
    ]
    a = obs[0].ftcloud.triple_collocation(obs[1], obs[2])
    b = triple_collocation(*obs)
    xr.testing.assert_identical(a, b)
    da, _ = _ft()
    ds = xr.Dataset({"ft": da, "elevation": (("y", "x"), np.zeros((2, 3)))})
    assert ds.ftcloud.ft_variable == "ft"
    xr.testing.assert_identical(ds.ftcloud.frozen_days(), da.ftcloud.frozen_days())
    xr.testing.assert_identical(ds.rename(ft="state").ftcloud.frozen_days(var="state"), da.ftcloud.frozen_days())


def test_a_dataset_without_one_ft_variable_names_the_choices():
    ds = xr.Dataset({"a": ("time", [0, 1]), "b": ("time", [1, 0])})
    with pytest.raises(MissingVariableError, match=r"no single FT variable in this Dataset \(a, b\).*var='NAME'"):
        ds.ftcloud.frozen_days()


def test_the_datasets_variable_is_chosen_by_name_or_by_the_whole_word_frozen():
    t = pd.date_range("2020-01-01", periods=4, freq="D")
    codes = np.array([1, 0, 1, 1], "u1")
    flagged = {"flag_values": [0, 1], "flag_meanings": "thawed frozen"}
    # "ft" wins over another flagged variable; "unfrozen_ok" is not the word "frozen"
    ds = xr.Dataset(
        {
            "ft": ("time", codes),
            "smap": ("time", 1 - codes, flagged),
            "qc": ("time", codes, {"flag_meanings": "unfrozen_ok bad"}),
        },
        coords={"time": t},
    )
    assert ds.ftcloud.ft_variable == "ft"
    assert ds.drop_vars("ft").ftcloud.ft_variable == "smap"
    # a Dataset argument is resolved to its FT variable too
    ref = xr.Dataset({"state": ("time", codes, flagged)}, coords={"time": t})
    acc = ds.ftcloud.classification_accuracy(ref)
    assert float(acc["CA_O"]) == 1.0
    assert float(ds.ftcloud.classification_accuracy(ref, var="smap")["CA_O"]) == 0.0


def test_series_methods_on_a_dataset_take_its_frozen_days():
    from scipy.stats import theilslopes

    da, k = _ft()
    trends_like = xr.Dataset({"frozen_days": da.ftcloud.frozen_days()})
    slope = trends_like.ftcloud.sen_slope()
    assert float(slope.values[0, 0]) == pytest.approx(theilslopes(k[:, 0, 0], np.arange(2001, 2013))[0])
    with pytest.raises(MissingVariableError, match="sen_slope works on yearly series.*frozen_days"):
        xr.Dataset({"ft": da}).ftcloud.sen_slope()

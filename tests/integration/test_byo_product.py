"""Bring your own product: a foreign-looking CF FT zarr (lat/lon grid, noleap calendar, TPDC codes
1 frozen / 2 thawed, no ftcloud attributes) read by open_product, `ftcloud trends --product` without
a store, and triple collocation on it."""

from __future__ import annotations

import json

import cftime
import numpy as np
import pytest
import xarray as xr
from scipy.stats import theilslopes

from ftcloud.cli import main
from ftcloud.errors import MissingVariableError, ValidationError
from ftcloud.workflows.inputs import open_product

YEARS = np.arange(2001, 2013)


def _foreign(tmp_path, *, flags=True, name="FT_state"):
    """12 noleap years on a 3 x 4 lat/lon grid; pixel (i, j) frozen for the first k[year, i, j] days of
    each year (k falls by about 1 day a year); codes 1 frozen, 2 thawed, 0 fill over 'water' (0, 0)."""
    rng = np.random.default_rng(11)
    k = (80 - (YEARS - YEARS[0])[:, None, None] + rng.integers(-3, 4, size=(len(YEARS), 3, 4))).astype(int)
    times = [
        cftime.DatetimeNoLeap(int(y), 1, 1) + __import__("datetime").timedelta(days=d)
        for y in YEARS
        for d in range(365)
    ]
    doy = np.tile(np.arange(1, 366), len(YEARS))
    yi = np.repeat(np.arange(len(YEARS)), 365)
    codes = np.where(doy[:, None, None] <= k[yi], 1, 2).astype("u1")
    codes[:, 0, 0] = 0  # water: neither frozen nor thawed
    attrs = {"long_name": "soil freeze/thaw state"}
    if flags:
        attrs |= {"flag_values": np.array([0, 1, 2], "u1"), "flag_meanings": "water frozen thawed"}
    ds = xr.Dataset(
        {name: (("time", "lat", "lon"), codes, attrs)},
        coords={"time": times, "lat": [35.0, 34.75, 34.5], "lon": [100.0, 100.25, 100.5, 100.75]},
    )
    url = tmp_path / "own.zarr"
    ds.to_zarr(url, mode="w")
    return str(url), k, codes


def test_open_product_reads_a_foreign_cf_ft_dataset(tmp_path):
    url, k, codes = _foreign(tmp_path)
    ds = open_product(url)
    ft = ds["ft"]
    assert ft.dims == ("time", "y", "x") and ft.dtype == np.uint8
    assert np.issubdtype(ft["time"].dtype, np.datetime64) and ft.sizes["time"] == 12 * 365  # noleap: no Feb 29
    assert list(ds["lat"].values) == [35.0, 34.75, 34.5] and ds["x"].attrs["units"] == "degrees_east"
    v = ft.values
    # 1 -> frozen (1), 2 -> thawed (0), the water code -> missing (255): by the file's own flags
    np.testing.assert_array_equal(v, np.select([codes == 1, codes == 2], [1, 0], 255))


def test_codes_given_where_the_file_has_no_flags(tmp_path):
    url, _, codes = _foreign(tmp_path, flags=False)
    with pytest.raises(ValidationError, match=r"holds codes \[0, 1, 2\] without flag_values.*--codes frozen=1"):
        open_product(url, variable="FT_state")
    with pytest.raises(MissingVariableError, match="no single FT variable"):
        open_product(url)
    ft = open_product(url, variable="FT_state", codes={"frozen": [1], "thawed": [2]})["ft"]
    np.testing.assert_array_equal(ft.values, np.select([codes == 1, codes == 2], [1, 0], 255))


def test_ftcloud_trends_on_your_own_product_without_a_store(tmp_path, capsys):
    url, k, _ = _foreign(tmp_path, flags=False)
    out = tmp_path / "t"
    rc = main(
        ["-q", "trends", "--product", url, "--out", str(out), "--variable", "FT_state", "--codes", "frozen=1,thawed=2"]
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "Table 2 and the regional series need an ftcloud store" in text
    z = xr.open_zarr(out / "trends.zarr")
    fd = z["frozen_days"].sel({"pass": "mean"}).values  # (year, y, x)
    # the oracle: the planted counts, scaled to the standard year (a noleap year lacks Feb 29 in leap years)
    days = np.array([366 if (y % 4 == 0) else 365 for y in YEARS])
    want = k * (days / 365)[:, None, None]
    want[:, 0, 0] = np.nan
    np.testing.assert_allclose(fd, want, rtol=1e-9, equal_nan=True)
    slope = z["slope"].sel({"pass": "mean"}).values
    for i, j in ((0, 1), (1, 2), (2, 3)):
        assert slope[i, j] == pytest.approx(theilslopes(want[:, i, j], YEARS)[0], rel=1e-9)
    assert np.isnan(slope[0, 0])
    s = json.loads((out / "trends-summary.json").read_text())
    assert s["table2"] == [] and s["notes"] and (out / "figures" / "slope_map.png").exists()


def test_triple_collocation_on_your_own_product(tmp_path):
    """CTC runs on the normalised codes, and gives what it gives on the native 0/1 codes."""
    url, _, codes = _foreign(tmp_path)
    ft = open_product(url)["ft"]
    rng = np.random.default_rng(3)
    truth = np.select([codes == 1, codes == 2], [1, 0], 255).astype("u1")
    noisy = [
        xr.DataArray(
            np.where((rng.random(truth.shape) < e) & (truth < 2), 1 - truth, truth).astype("u1"),
            dims=ft.dims,
            coords=ft.coords,
        )
        for e in (0.1, 0.2)
    ]
    a = ft.ftcloud.triple_collocation(noisy[0], noisy[1])
    native = xr.DataArray(truth, dims=ft.dims, coords=ft.coords)
    b = native.ftcloud.triple_collocation(noisy[0], noisy[1])
    xr.testing.assert_allclose(a, b)
    assert int(np.isfinite(a["psi"].isel({d: 0 for d in a["psi"].dims if d not in ("y", "x")}).values).sum()) > 0

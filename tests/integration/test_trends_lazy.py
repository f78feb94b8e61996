"""`ftcloud trends` builds its per-pixel graph without computing, then runs it on the cluster in one go."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ftcloud import layout
from ftcloud.io.stores import mark_complete
from ftcloud.science.trends import fdr, frozen_days, mann_kendall
from ftcloud.testing import ComputedWhileBuildingError, assert_lazy, no_compute
from ftcloud.workflows import trends as wf_trends

YEARS = range(2005, 2017)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 12-year FT product (2 passes x 6 x 5 cells, frozen days falling ~1 day/year) and its statics group."""
    root = tmp_path_factory.mktemp("lazy")
    rng = np.random.default_rng(7)
    t = pd.date_range(f"{YEARS[0]}-01-01", f"{YEARS[-1]}-12-31", freq="D")
    ny, nx = 6, 5
    doy = t.dayofyear.values
    yr = (t.year.values - YEARS[0]).astype(float)
    # frozen when the day of year is far from mid-summer; the frozen season shrinks each year
    half = 110 - 1.0 * yr[:, None, None] + rng.normal(0, 3, (len(t), ny, nx))
    frozen = (doy[:, None, None] < half / 2 + 1) | (doy[:, None, None] > 366 - half / 2)
    ft = np.stack([frozen, frozen]).astype("u1")
    ft[:, rng.random((len(t), ny, nx)) < 0.03] = 255  # gaps
    x = 1000.0 + 9008.055210146 * np.arange(nx)
    y = 4000000.0 - 9008.055210146 * np.arange(ny)
    prod = xr.Dataset(
        {
            "ft": (
                ("pass", "time", "y", "x"),
                ft,
                {"flag_values": [0, 1], "flag_meanings": "thawed frozen", "missing_value": 255},
            )
        },
        coords={"pass": ["AM", "PM"], "time": t, "y": y, "x": x},
    )
    url = str(root / layout.PRODUCT_NAME)
    prod.chunk({"pass": 1, "time": 365, "y": 3, "x": 5}).to_zarr(url, mode="w", consolidated=True)
    mark_complete(url)
    region = np.where(np.arange(nx)[None, :] < 3, 1, 2) * np.ones((ny, 1), int)
    st = xr.Dataset(
        {
            "region": (
                ("y", "x"),
                region.astype("u1"),
                {"flag_values": [1, 2], "flag_meanings": "north qinghai_tibet"},
            ),
            "permafrost_stability": (
                ("y", "x"),
                np.where(region == 2, 3, 0).astype("u1"),
                {"flag_values": [0, 3], "flag_meanings": "none stable"},
            ),
        },
        coords={"y": y, "x": x},
    )
    store = root / "store"
    st.to_zarr(str(store / layout.STATICS), mode="w", consolidated=True)
    mark_complete(str(store / layout.STATICS))
    return {"product": url, "store": str(store), "ft": prod["ft"]}


def test_the_graph_is_built_without_a_single_compute(small):
    with no_compute("building ftcloud trends' graph") as seen:
        g = wf_trends.trend_graph(small["product"])
    assert seen == []
    assert_lazy(g.frozen_days)
    assert_lazy(g.mk)
    assert_lazy(g.significant_fdr)
    assert list(g.frozen_days["pass"].values) == ["AM", "PM", "mean"]


def test_no_compute_catches_an_eager_step(small):
    """The callback check fails on what the old `science.trends` did: frozen days to numpy before the trend test."""
    with pytest.raises(ComputedWhileBuildingError):
        with no_compute():
            fd = wf_trends.trend_graph(small["product"]).frozen_days
            fd.values  # noqa: B018


def test_the_lazy_graph_equals_the_eager_computation(small):
    g = wf_trends.trend_graph(small["product"]).compute()
    ft = small["ft"].load()  # the in-memory path, step by step
    fd = frozen_days(ft).transpose("pass", "year", "y", "x")
    fd = fd.drop_vars([c for c in fd.coords if c not in fd.dims])
    fd = xr.concat([fd, fd.mean("pass", skipna=False).expand_dims({"pass": ["mean"]})], dim="pass")
    mk = mann_kendall(fd, dim="year")
    np.testing.assert_array_equal(g.frozen_days.values, fd.values)
    for k in ("slope", "slope_low", "slope_high", "p", "tau"):
        np.testing.assert_allclose(g.mk[k].values, mk[k].values, rtol=0, atol=1e-12, err_msg=k)
    np.testing.assert_array_equal(g.significant_fdr.values, fdr(mk["p"], dims=["y", "x"]).values)
    # the planted decline (about one frozen day a year) is found at (nearly) every pixel
    assert float((g.mk["slope"].sel({"pass": "mean"}) < 0).mean()) > 0.9


def test_ftcloud_trends_runs_its_reductions_on_the_cluster(small, tmp_path):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl,
        distributed.Client(cl) as client,
    ):
        with distributed.get_task_stream(client) as ts:
            res = wf_trends.trends(small["product"], small["store"], str(tmp_path / "t"), figures=False, progress=False)
    keys = [t["key"] if isinstance(t["key"], str) else t["key"][0] for t in ts.data]
    names = {str(k).rsplit("-", 1)[0] for k in keys}
    # the per-pixel Mann-Kendall kernel ran as cluster tasks (the old command ran it on numpy in the client)
    assert any(n.startswith("mk_kernel") for n in names), sorted(names)
    assert any(n.startswith("open_dataset-ft") for n in names), "frozen days were not computed on the cluster"
    assert (tmp_path / "t" / "trends.zarr").exists() and res.table2_rows("mean")

"""EASE2 grids, regions and regridding, against hand-computed cases."""

import numpy as np
import pytest

from ftcloud.errors import GridMismatchError
from ftcloud.core.grid import (
    EASE2_9KM,
    EASE2_25KM,
    EASE2Regridder,
    GridWindow,
    LatLonRegridder,
    covering_window,
    latlon_source_box,
    lonlat_to_xy,
    region_window,
    xy_to_lonlat,
)


def test_grid_constants_match_nsidc():
    # NSIDC EASE-Grid 2.0: 9 km 3856 x 1624, 25 km 1388 x 584, both spanning x = +-17367530.45 m
    assert EASE2_9KM.x_min == pytest.approx(-17367530.445, abs=0.01)
    assert EASE2_9KM.y_max == pytest.approx(7314540.831, abs=0.01)
    assert EASE2_25KM.x_min == pytest.approx(-17367530.44, abs=0.01)
    assert EASE2_25KM.y_max == pytest.approx(7307375.92, abs=0.01)


def test_projection_round_trip_and_known_point():
    # EPSG:6933 maps lon 0, lat 0 to the origin, and x is linear in longitude
    x, y = lonlat_to_xy([0.0, 90.0, 180.0], [0.0, 0.0, 0.0])
    assert x[0] == pytest.approx(0.0, abs=1e-6) and y[0] == pytest.approx(0.0, abs=1e-6)
    assert x[2] == pytest.approx(2 * x[1]) and x[2] == pytest.approx(17367530.445, rel=1e-6)
    lon, lat = xy_to_lonlat(*lonlat_to_xy([101.5], [33.9]))
    assert lon[0] == pytest.approx(101.5) and lat[0] == pytest.approx(33.9)


def test_region_windows():
    china = region_window("china")
    assert china.shape == (404, 657)  # SPEC: ~657 x 404 cells
    demo = region_window("demo")
    lon, lat = demo.lonlat
    assert lon.min() >= 99.0 and lon.max() <= 103.5 and lat.min() >= 33.0 and lat.max() <= 36.0
    # every neighbouring cell outside the window has its centre outside the box
    g = EASE2_9KM
    left_lon, _ = xy_to_lonlat(g.x(demo.col0 - 1), demo.y[0])
    assert left_lon < 99.0
    with pytest.raises(ValueError, match="known regions"):
        region_window("atlantis")


def test_window_coords_are_cf():
    w = region_window("tiny")
    ds = w.template()
    assert ds["x"].attrs["units"] == "m" and ds["lat"].dims == ("y", "x")
    assert ds["crs"].attrs["grid_mapping_name"] == "lambert_cylindrical_equal_area"
    assert ds["crs"].attrs["standard_parallel"] == 30.0
    assert np.allclose(np.diff(ds["x"].values), EASE2_9KM.cell_size)
    assert np.allclose(np.diff(ds["y"].values), -EASE2_9KM.cell_size)


def _source_for(window):
    lats, lons = latlon_source_box(window)
    return lats, lons


def test_bilinear_keeps_constant_and_linear_fields():
    w = region_window("tiny")
    lats, lons = _source_for(w)
    LON, LAT = np.meshgrid(lons, lats)
    rg = LatLonRegridder(lats, lons, w, "bilinear")
    const = np.full(LON.shape, 273.15)
    assert np.allclose(rg(const), 273.15)
    lin = 3.0 * LON - 2.0 * LAT + 5.0
    tlon, tlat = w.lonlat
    assert np.allclose(rg(lin), 3.0 * tlon - 2.0 * tlat + 5.0, atol=1e-9)
    # leading dimensions are carried through
    stack = np.stack([lin, 2 * lin])
    out = rg(stack)
    assert out.shape == (2, *w.shape) and np.allclose(out[1], 2 * out[0])


def test_bilinear_renormalises_over_missing_neighbours():
    w = region_window("tiny")
    lats, lons = _source_for(w)
    field = np.full((lats.size, lons.size), 5.0)
    field[::2, ::2] = np.nan
    out = LatLonRegridder(lats, lons, w, "bilinear")(field)
    assert np.allclose(out, 5.0)  # any valid neighbour -> the constant, never a diluted value


def test_nearest_picks_the_right_cell_by_hand():
    # a 25 km source window whose cell values are their own (row, col) codes
    w9 = GridWindow(EASE2_9KM, 100, 103, 200, 205)
    src = covering_window(w9, EASE2_25KM, margin=1)
    codes = (np.arange(src.shape[0])[:, None] * 1000 + np.arange(src.shape[1])[None, :]).astype("f8")
    out = EASE2Regridder(src, w9, "nearest")(codes)
    for i in range(w9.shape[0]):
        for j in range(w9.shape[1]):
            x, y = w9.x[j], w9.y[i]
            # hand: the 25 km cell containing (x, y)
            col = int((x - EASE2_25KM.x_min) // EASE2_25KM.cell_size)
            row = int((EASE2_25KM.y_max - y) // EASE2_25KM.cell_size)
            assert out[i, j] == (row - src.row0) * 1000 + (col - src.col0)


def test_latlon_nearest_by_hand():
    w = GridWindow(EASE2_9KM, 354, 356, 3010, 3012)
    lats, lons = _source_for(w)
    codes = np.arange(lats.size * lons.size, dtype="f8").reshape(lats.size, lons.size)
    out = LatLonRegridder(lats, lons, w, "nearest")(codes)
    tlon, tlat = w.lonlat
    for i in range(2):
        for j in range(2):
            r = int(np.argmin(np.abs(lats - tlat[i, j])))
            c = int(np.argmin(np.abs(lons - tlon[i, j])))
            assert out[i, j] == codes[r, c]


def test_no_seams_at_tile_edges():
    w = region_window("demo")
    lats, lons = _source_for(w)
    rng = np.random.default_rng(1)
    field = rng.normal(size=(lats.size, lons.size))
    whole = LatLonRegridder(lats, lons, w)(field)
    left = LatLonRegridder(lats, lons, w.sub(slice(None), slice(0, 20)))(field)
    right = LatLonRegridder(lats, lons, w.sub(slice(None), slice(20, None)))(field)
    assert np.array_equal(np.concatenate([left, right], axis=1), whole)


def test_source_not_covering_target_is_an_error():
    w = region_window("tiny")
    lats, lons = _source_for(w)
    with pytest.raises(GridMismatchError, match="does not cover"):
        LatLonRegridder(lats[:3], lons, w)

"""Readers on the real files of ../shared/realdata: values match a direct read, fill -> NaN, packing undone,
units checked."""

import numpy as np
import pytest

from conftest import realdata
from ftcloud.errors import MissingVariableError, UnitsError
from ftcloud.sources.common import open_xarray_file
from ftcloud.sources.era5land import open_era5
from ftcloud.sources.targets import SMAP_GROUP, open_smap, smap_to_ft
from ftcloud.core.grid import region_window


def test_era5_grib_matches_direct_cfgrib_read():
    cfgrib = pytest.importorskip("cfgrib")
    p = realdata("era5_grib_uk/era5-2mt-2019-03-uk.grib")
    ds = open_era5(str(p), variables=("t2m",), units={"t2m": ("K",)})
    direct = cfgrib.open_dataset(str(p), indexpath="")
    assert ds["t2m"].shape == (744, 33, 49)
    np.testing.assert_array_equal(ds["t2m"].values, direct["t2m"].values)
    # reference values published with the kit
    assert float(ds["t2m"][0, 0, 0]) == 282.4248046875
    assert float(ds["t2m"][-1, -1, -1]) == 281.454833984375
    assert ds["latitude"].values[0] > ds["latitude"].values[-1]  # descending, as delivered
    t = ds["time"].values
    assert t[0] == np.datetime64("2019-03-01T00") and t[-1] == np.datetime64("2019-03-31T23")
    # the file holds 2 m temperature, not soil temperature: asking for stl1 is a clear error
    with pytest.raises(MissingVariableError, match="stl1.*t2m"):
        open_era5(str(p))


def test_era5_packed_netcdf_unpacks_like_netcdf4():
    netCDF4 = pytest.importorskip("netCDF4")
    p = realdata("era5_conus_packed/era5_1995-07-14T12.nc")
    ds = open_era5(str(p), variables=("t2m", "sp"), units={"t2m": ("K",), "sp": ("Pa",)})
    with netCDF4.Dataset(str(p)) as nc:
        v = nc["t2m"]
        v.set_auto_maskandscale(False)
        raw = v[:].astype("f8")
        expect = raw * v.scale_factor + v.add_offset
        expect[raw == v._FillValue] = np.nan
    assert ds["t2m"].shape == (1, 105, 237)  # the scalar time became a dimension
    np.testing.assert_allclose(ds["t2m"].values[0], expect, rtol=0, atol=1e-9)
    assert float(ds["t2m"][0, 0, 0]) == pytest.approx(287.49196305216094, abs=1e-9)
    assert ds["time"].values[0] == np.datetime64("1995-07-14T12")
    # opened lazily (how the ERA5-Land work items open their monthly files), the same values
    lazy = open_era5(str(p), variables=("t2m", "sp"), units={"t2m": ("K",), "sp": ("Pa",)}, lazy=True)
    try:
        np.testing.assert_array_equal(
            lazy["t2m"].isel(latitude=slice(10, 40), longitude=slice(5, 90)).values, ds["t2m"].values[:, 10:40, 5:90]
        )
    finally:
        lazy.close()
    # units are checked, never guessed
    with pytest.raises(UnitsError, match="t2m.*'K'.*expected 'degC'"):
        open_era5(str(p), variables=("t2m",), units={"t2m": ("degC",)})


def test_smap_ft_granule_group_layout_and_fill():
    h5py = pytest.importorskip("h5py")
    p = realdata("smap_ft/SPL3FTP_test_reference.h5")
    ds = open_xarray_file(str(p), group=SMAP_GROUP, what="SMAP FT granule")
    with h5py.File(p) as f:
        raw = f[f"{SMAP_GROUP}/freeze_reference"][:]
        fill = f[f"{SMAP_GROUP}/freeze_reference"].attrs["_FillValue"][0]
    assert ds["freeze_reference"].dims == ("am_pm", "y", "x") and ds.sizes["am_pm"] == 2
    expect = np.where(raw == fill, np.nan, raw)
    np.testing.assert_array_equal(ds["freeze_reference"].values, expect)
    assert int(np.isnan(ds["freeze_reference"].values).sum()) == 21806  # published count
    # the real granule has no freeze_thaw state: the reader says so and lists what it found
    raw_ds = open_smap(str(p))
    with pytest.raises(MissingVariableError, match="freeze_thaw.*freeze_reference"):
        smap_to_ft(raw_ds, region_window("tiny"), None, str(p))

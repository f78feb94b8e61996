"""The twin's brightness temperatures: the emission physics against closed forms and its documented sources,
the retrieval families erring where their physics says, and the files in the products' layouts."""

from __future__ import annotations

import glob
import math

import h5py
import numpy as np
import pytest
import xarray as xr

from ftcloud.synth.observers import tb as TB


def test_fresnel_against_closed_forms():
    # normal incidence: both polarisations ((sqrt(e) - 1) / (sqrt(e) + 1))^2
    for eps in (3.0, 16.0, 80.0):
        rh, rv = TB.fresnel(eps, 0.0)
        expect = ((math.sqrt(eps) - 1) / (math.sqrt(eps) + 1)) ** 2
        assert rh == pytest.approx(expect, rel=1e-9) and rv == pytest.approx(expect, rel=1e-9)
    # the Brewster angle of a lossless dielectric: no V reflection there; H always reflects more than V
    rh, rv = TB.fresnel(4.0, math.degrees(math.atan(2.0)))
    assert rv == pytest.approx(0.0, abs=1e-12) and rh > 0.1
    for theta in (10.0, 40.0, 55.0, 70.0):
        rh, rv = TB.fresnel(10.0 - 1.0j, theta)
        assert rh > rv


def test_water_permittivity_against_the_literature():
    # fresh water: static permittivity 88 at 0 degC and relaxation near 9 GHz (0 degC) / 17 GHz (20 degC)
    # (Klein & Swift 1977; Ulaby & Long 2014, ch. 4): the loss peaks at the relaxation frequency
    for t, f_rel in ((0.0, 9.0), (20.0, 17.1)):
        f = np.linspace(2, 40, 381)
        loss = -np.imag(TB.water_permittivity(f, t))
        assert f[np.argmax(loss)] == pytest.approx(f_rel, abs=0.6)
    assert TB.water_permittivity(0.01, 0.0).real == pytest.approx(88.0, abs=0.1)


def test_freezing_raises_l_band_emissivity_and_lowers_npr():
    kw = dict(t_air_c=-5.0, snow_depth_m=0.0, vwc=0.5, water_fraction=0.0, barren=0.0)
    h_t, v_t = TB.surface_tb(1.41, 40.0, t_soil_c=-0.5, theta=0.25, liquid_fraction=1.0, **kw)
    h_f, v_f = TB.surface_tb(1.41, 40.0, t_soil_c=-0.5, theta=0.25, liquid_fraction=0.1, **kw)
    assert h_f > h_t + 20 and v_f > v_t  # frozen: ice, low permittivity, high emissivity
    npr_f, npr_t = (v_f - h_f) / (v_f + h_f), (v_t - h_t) / (v_t + h_t)
    assert npr_f < 0.6 * npr_t


def test_dry_snow_follows_changs_gradient_and_wet_snow_removes_it():
    """Chang et al. (1987): TB19H - TB37H grows by 1 K per 4.8 mm SWE over dry snow (shallow packs)."""
    kw = dict(t_soil_c=-3.0, theta=0.2, liquid_fraction=0.2, vwc=0.3, water_fraction=0.0, barren=0.0)
    diff = {}
    for sd in (0.0, 0.2):  # 0.2 m at 250 kg m-3 = 50 mm SWE
        h19, _ = TB.surface_tb(18.7, 55.0, t_air_c=-8.0, snow_depth_m=sd, **kw)
        h37, _ = TB.surface_tb(36.5, 55.0, t_air_c=-8.0, snow_depth_m=sd, **kw)
        diff[sd] = float(h19 - h37)
    assert diff[0.2] - diff[0.0] == pytest.approx(50 / 4.8, rel=0.15)  # saturation bends it a little
    _, v19 = TB.surface_tb(18.7, 55.0, t_air_c=1.0, snow_depth_m=0.2, **kw)
    _, v37 = TB.surface_tb(36.5, 55.0, t_air_c=1.0, snow_depth_m=0.2, **kw)
    assert abs(float(v37 - v19)) < 0.5  # wet snow: an absorber near 0 degC, no scattering gradient


def _npr_errors(states: dict, seed: int) -> dict:
    """NPR seasonal-threshold error rate per kind of frozen ground, with references from dry frozen and thawed
    ground and SMAP's noise."""
    from ftcloud.retrieve.threshold import npr, seasonal_scale

    rng = np.random.default_rng(seed)

    def draw(n, **st):
        h, v = TB.surface_tb(1.41, 40.0, **st)
        h = h + TB.NEDT_K["L"] * rng.standard_normal(n)
        v = v + TB.NEDT_K["L"] * rng.standard_normal(n)
        return npr(h, v)

    n = 4000
    base = dict(vwc=0.5, water_fraction=0.0, barren=0.0, snow_depth_m=0.0)
    ref_f = draw(n, t_soil_c=-6.0, t_air_c=-12.0, theta=0.25, liquid_fraction=0.2, **base).mean()
    ref_t = draw(n, t_soil_c=12.0, t_air_c=15.0, theta=0.25, liquid_fraction=1.0, **base).mean()
    out = {}
    for name, st in states.items():
        x = seasonal_scale(draw(n, **st), ref_f, ref_t)
        out[name] = float((x >= 0.5).mean())  # every state here is truly frozen: thawed calls are errors
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_npr_errs_over_open_water_and_wet_snow_not_over_dry_frozen_ground(seed):
    frozen = dict(t_soil_c=-2.0, theta=0.25, liquid_fraction=0.25, vwc=0.5, barren=0.0)
    err = _npr_errors(
        {
            "dry frozen": dict(t_air_c=-6.0, snow_depth_m=0.0, water_fraction=0.0, **frozen),
            "wet snow": dict(t_air_c=1.0, snow_depth_m=0.15, water_fraction=0.0, **frozen),
            "unfrozen lake 30 %": dict(t_air_c=-1.0, snow_depth_m=0.0, water_fraction=0.3, **frozen),
        },
        seed,
    )
    se = math.sqrt(0.25 / 4000)  # the largest standard error of a rate over 4000 draws
    assert err["dry frozen"] < 0.05
    assert err["wet snow"] > err["dry frozen"] + 10 * se
    assert err["unfrozen lake 30 %"] > err["dry frozen"] + 10 * se


def test_dia_errs_over_a_dry_desert():
    """Dry barren ground scatters like frozen ground: DIA calls a cool thawed desert night frozen, a vegetated
    thawed pixel at the same temperatures not (Grody 1991's scattering signatures)."""
    from ftcloud.retrieve.threshold import dia_frozen, spectral_gradient

    kw = dict(t_soil_c=5.0, t_air_c=2.0, liquid_fraction=1.0, snow_depth_m=0.0, water_fraction=0.0)
    out = {}
    for name, st in {
        "desert": dict(theta=0.03, vwc=0.05, barren=1.0),
        "grass": dict(theta=0.2, vwc=0.6, barren=0.0),
    }.items():
        _, v19 = TB.surface_tb(18.7, 55.0, **kw, **st)
        _, v37 = TB.surface_tb(36.5, 55.0, **kw, **st)
        out[name] = bool(dia_frozen(v37, spectral_gradient(v19, v37)))
    assert out == {"desert": True, "grass": False}


@pytest.fixture(scope="module")
def tb_twin(tmp_path_factory):
    from ftcloud.synth import generate

    out = tmp_path_factory.mktemp("tbtwin")
    generate(
        "tiny",
        "2016-01-01",
        "2016-03-31",
        str(out),
        seed=2,
        insitu=False,
        targets_start="2016-01-01",
        progress=False,
        tb=True,
    )
    return out


def test_smap_granules_carry_tb_in_the_spl3ftp_layout(tb_twin):
    f = sorted(glob.glob(str(tb_twin / "smap_e_ft" / "2016" / "SMAP_L3_FT_P_E_*.h5")))[20]
    with h5py.File(f) as h:
        g = h["Freeze_Thaw_Retrieval_Data_Global"]
        ft = g["freeze_thaw"][:]
        h_, v_, n_ = (g[k][:] for k in ("tbh_mean", "tbv_mean", "normalized_polarization_ratio"))
        assert g["tbh_mean"].attrs["units"] in (b"K", "K") and h_.shape == ft.shape
    have = ft != 254
    assert (h_[~have] == -9999).all() and (h_[have] > 150).all() and (v_[have] > h_[have]).all()
    np.testing.assert_allclose(n_[have], (v_[have] - h_[have]) / (v_[have] + h_[have]), rtol=1e-5)


def test_the_multifrequency_record_is_cetb_like(tb_twin):
    files = sorted(glob.glob(str(tb_twin / "tb_multifreq" / "2016" / "NSIDC0630-EASE2_T25km-*.nc")))
    assert len(files) == 24  # 6 frequencies x H/V x morning/evening
    ds = xr.open_dataset(files[0])
    assert ds["TB"].dims == ("time", "y", "x") and ds.sizes["time"] == 91
    assert ds["TB"].encoding["dtype"] == np.dtype("u2") and ds["TB"].encoding["scale_factor"] == pytest.approx(0.01)
    tb = ds["TB"].values
    assert np.nanmin(tb) > 100 and np.nanmax(tb) < 320  # H over the cells' lakes is cold

"""Brightness temperatures (TB) from the twin's hidden state: SMAP L-band H and V at 9 km, and a
multi-frequency conical scanner (AMSR2-like 6.9-89 GHz, H and V) on the 25 km cells.

The physics (docs/twin.md, "Brightness temperatures", gives each choice with its source or "assumed"):

* soil permittivity from a refractive mixing model of solid, liquid water (Debye water), ice and air
  (Dobson et al. 1985, alpha = 0.65): freezing turns liquid water into ice, so the permittivity falls
  and the emissivity jumps up, the polarisation difference (NPR) drops;
* Fresnel reflectivities, the roughness model of Wang & Choudhury (1981) and the tau-omega canopy
  (Mo et al. 1982) with vegetation optical depth b * VWC (Jackson & Schmugge 1991);
* dry snow darkens the higher frequencies by volume scattering, calibrated to Chang et al. (1987)
  (TB19H - TB37H = SWE / 4.8 mm); wet snow absorbs and emits near 0 degC;
* open water mixes in by its area fraction (Fresnel with Debye water: strongly polarised), lake ice when
  the air has been cold;
* dry barren ground scatters at the higher frequencies (deserts, Grody 1991);
* sensor noise: Gaussian with each channel's NEDT (SMAP 1.3 K; AMSR2 0.34-1.2 K).

Pure functions and two observers with no I/O; the writers put the arrays into the products' layouts.
"""

from __future__ import annotations

import numpy as np

from ftcloud.synth import _fields as F

__all__ = [
    "MULTIFREQ_GHZ",
    "MULTIFREQ_INCIDENCE_DEG",
    "NEDT_K",
    "SMAP_FREQ_GHZ",
    "SMAP_INCIDENCE_DEG",
    "MultiFreqTbObserver",
    "SmapTbObserver",
    "fresnel",
    "soil_permittivity",
    "surface_tb",
    "water_permittivity",
]

FREEZING_K = 273.15
SMAP_FREQ_GHZ = 1.41
SMAP_INCIDENCE_DEG = 40.0
#: AMSR2 channel centre frequencies (GHz) by the name used in files (JAXA AMSR2 instrument description)
MULTIFREQ_GHZ = {"06.9": 6.925, "10.7": 10.65, "18.7": 18.7, "23.8": 23.8, "36.5": 36.5, "89.0": 89.0}
MULTIFREQ_INCIDENCE_DEG = 55.0
#: noise-equivalent delta T per channel (K): SMAP radiometric uncertainty requirement (Entekhabi et al. 2014,
#: SMAP Handbook) and the AMSR2 specification (Imaoka et al. 2010)
NEDT_K = {"L": 1.3, "06.9": 0.34, "10.7": 0.7, "18.7": 0.7, "23.8": 0.6, "36.5": 0.7, "89.0": 1.2}
#: noise streams of the hash generator (one per product; see ftcloud.synth._fields)
S_TB_SMAP, S_TB_MULTI = 60, 61

# soil: porosity and solid permittivity of a loam (Dobson et al. 1985), ice (Matzler 1987)
POROSITY = 0.45
EPS_SOLID = 4.7
EPS_ICE = 3.15 - 0.001j
ALPHA = 0.65
#: vegetation water content (kg m-2) at the peak of the season by land cover class (assumed)
VWC_PEAK = {1: 1.5, 2: 6.0, 3: 1.0, 4: 0.6, 5: 0.0, 6: 0.0, 7: 0.05, 8: 0.2, 9: 1.0}
B_VEG = 0.11  # tau = b * VWC at L-band (Jackson & Schmugge 1991: about 0.12)
OMEGA_L = 0.05  # single-scattering albedo at L-band (SMAP ATBD's grass/crop value)
H_ROUGH_L = 0.13  # Wang & Choudhury h at L-band (SMAP ATBD range 0.1-0.16)
CHANG_K_PER_MM = 1 / 4.8  # TB19H - TB37H per mm SWE (Chang et al. 1987)
SNOW_DARKENING_MAX_K = 80.0  # saturation of the scattering darkening (assumed)
WET_SNOW_EMISSIVITY = 0.96  # wet snow at 19-89 GHz (assumed, Walker & Goodison 1993 describe the warm signal)
WET_SNOW_LIQUID_L = 0.15  # L-band: wet snow reads as a surface with this much liquid water (assumed)
LAKE_ICE_AIR_C = -3.0  # lakes carry ice below this air temperature (assumed)
#: dry barren ground at 36.5 GHz, scaling with f^2 (assumed: sized so that a cool dry desert falls below the DIA's
#: 258 K with a negative gradient, the confusion that gives the TPDC DIA record its desert class; Grody 1991)
DESERT_DARKENING_K = 20.0


def water_permittivity(f_ghz, t_c=0.0):
    """Complex permittivity of fresh water, single Debye relaxation with the temperature fits of
    Klein & Swift (1977) / Stogryn (1971).

    >>> round(float(water_permittivity(1.41, 0.0).real), 1), round(float(water_permittivity(36.5, 0.0).real), 1)
    (86.1, 9.7)
    """
    t = np.asarray(t_c, dtype="f8")
    eps_s = 88.045 - 0.4147 * t + 6.295e-4 * t**2 + 1.075e-5 * t**3
    two_pi_tau = 1.1109e-10 - 3.824e-12 * t + 6.938e-14 * t**2 - 5.096e-16 * t**3  # Stogryn's fit is 2 pi tau (s)
    eps_inf = 4.9
    return eps_inf + (eps_s - eps_inf) / (1 + 1j * np.asarray(f_ghz) * 1e9 * two_pi_tau)


def soil_permittivity(theta, liquid_fraction, f_ghz, t_c=0.0):
    """Complex permittivity of soil with volumetric water ``theta`` of which ``liquid_fraction`` is liquid
    (the rest ice), by the refractive mixing model of Dobson et al. (1985) with alpha = 0.65.

    >>> e_thawed = soil_permittivity(0.25, 1.0, 1.41)
    >>> e_frozen = soil_permittivity(0.25, 0.1, 1.41)
    >>> bool(e_thawed.real > 3 * e_frozen.real)
    True
    """
    th = np.clip(np.asarray(theta, "f8"), 0.0, POROSITY)
    liq = th * np.clip(liquid_fraction, 0.0, 1.0)
    ice = th - liq
    ew = water_permittivity(f_ghz, np.maximum(t_c, 0.0))
    mix = (1 - POROSITY) * EPS_SOLID**ALPHA + liq * ew**ALPHA + ice * EPS_ICE**ALPHA + (POROSITY - th) * 1.0
    return mix ** (1 / ALPHA)


def fresnel(eps, incidence_deg: float):
    """Fresnel power reflectivities (r_h, r_v) of a smooth surface of complex permittivity ``eps``.

    >>> rh, rv = fresnel(80.0, 0.0)  # normal incidence: both ((sqrt(e) - 1) / (sqrt(e) + 1))^2
    >>> round(float(rh), 4), round(float(rv), 4)
    (0.6382, 0.6382)
    """
    th = np.deg2rad(incidence_deg)
    c, s2 = np.cos(th), np.sin(th) ** 2
    root = np.sqrt(np.asarray(eps, dtype=complex) - s2)
    rh = np.abs((c - root) / (c + root)) ** 2
    rv = np.abs((eps * c - root) / (eps * c + root)) ** 2
    return rh, rv


def _rough(rh, rv, f_ghz, incidence_deg):
    """Wang & Choudhury (1981): r'_p = ((1 - Q) r_p + Q r_q) exp(-h cos^2 theta); h and Q grow with frequency
    (the same roughness is rougher at shorter wavelengths; assumed power 0.5)."""
    h = min(H_ROUGH_L * (f_ghz / SMAP_FREQ_GHZ) ** 0.5, 0.6)
    q = min(0.02 * (f_ghz / SMAP_FREQ_GHZ) ** 0.5, 0.3)
    k = np.exp(-h * np.cos(np.deg2rad(incidence_deg)) ** 2)
    return ((1 - q) * rh + q * rv) * k, ((1 - q) * rv + q * rh) * k


def surface_tb(
    f_ghz: float,
    incidence_deg: float,
    *,
    t_soil_c,
    t_air_c,
    theta,
    liquid_fraction,
    snow_depth_m,
    vwc,
    water_fraction,
    barren,
    snow_density: float = 250.0,
):
    """(TB_h, TB_v) in K of a mixed pixel: land (soil under snow and canopy) and open water by area fraction.

    All state arguments broadcast together; temperatures in degC, ``snow_depth_m`` in metres, ``vwc`` in
    kg m-2, ``water_fraction`` and ``barren`` (1 = dry barren ground) in 0..1.
    """
    t_soil = np.asarray(t_soil_c, "f8")
    t_air = np.asarray(t_air_c, "f8")
    sd = np.asarray(snow_depth_m, "f8")
    wet_snow = (sd > 0.01) & (t_air > 0.0)
    lband = f_ghz < 3.0
    # the liquid water the surface shows: wet snow reads as moist at L-band
    liq = np.asarray(liquid_fraction, "f8")
    th = np.asarray(theta, "f8")
    if lband:
        th_eff = np.where(wet_snow, np.maximum(th, WET_SNOW_LIQUID_L), th)
        liq_eff = np.where(wet_snow, np.maximum(liq, WET_SNOW_LIQUID_L / np.maximum(th_eff, 1e-6)), liq)
    else:
        th_eff, liq_eff = th, liq
    eps = soil_permittivity(th_eff, liq_eff, f_ghz, t_soil)
    rh, rv = _rough(*fresnel(eps, incidence_deg), f_ghz, incidence_deg)
    # effective temperature: the soil at L-band; towards the air (skin) at the higher frequencies (assumed)
    w_skin = 0.0 if lband else 0.5 * min(1.0, (f_ghz / 36.5) ** 0.5)
    t_eff = FREEZING_K + t_soil + w_skin * (t_air - t_soil)
    t_can = FREEZING_K + t_air
    # canopy: tau-omega; frozen canopies are more transparent (assumed factor 0.7)
    tau = B_VEG * np.asarray(vwc, "f8") * (f_ghz / SMAP_FREQ_GHZ) ** 0.4 * np.where(t_air < -2.0, 0.7, 1.0)
    omega = min(OMEGA_L + 0.001 * f_ghz, 0.12)
    gamma = np.exp(-tau / np.cos(np.deg2rad(incidence_deg)))
    out = []
    for r in (rh, rv):
        tb = t_eff * (1 - r) * gamma + t_can * (1 - omega) * (1 - gamma) * (1 + r * gamma)
        if not lband:
            # dry snow: volume scattering, Chang's 19-37 GHz calibration, f^4 (Rayleigh) and saturating
            swe_mm = sd * snow_density
            a = CHANG_K_PER_MM / (1 - (18.7 / 36.5) ** 4) * (f_ghz / 36.5) ** 4
            # dry barren ground (deserts) scatters too; both saturate together (no TB below ~150 K at 89 GHz)
            linear = a * swe_mm + DESERT_DARKENING_K * np.asarray(barren, "f8") * (f_ghz / 36.5) ** 2
            dark = SNOW_DARKENING_MAX_K * (1 - np.exp(-linear / SNOW_DARKENING_MAX_K))
            tb = np.where(wet_snow, WET_SNOW_EMISSIVITY * FREEZING_K, tb - dark)
        out.append(tb)
    # open water (or lake ice) by area fraction
    fw = np.asarray(water_fraction, "f8")
    frozen_lake = t_air < LAKE_ICE_AIR_C
    eps_w = np.where(frozen_lake, EPS_ICE, water_permittivity(f_ghz, np.maximum(t_air, 0.0)))
    wh, wv = fresnel(eps_w, incidence_deg)
    t_w = FREEZING_K + np.maximum(t_air, 0.0)
    return tuple((1 - fw) * tb + fw * t_w * (1 - r) for tb, r in zip(out, (wh, wv)))


def vegetation_water(land_cover, doy) -> np.ndarray:
    """VWC (kg m-2) of each pixel on day-of-year ``doy``: :data:`VWC_PEAK` times a green-up curve peaking in
    late July (forests keep 80 %; assumed)."""
    peak = np.vectorize(lambda k: VWC_PEAK.get(int(k), 0.5))(land_cover).astype("f8")
    green = np.exp(-(((np.asarray(doy, "f8")[..., None] - 205.0) / 55.0) ** 2))
    keep = np.where(np.asarray(land_cover) == 2, 0.8, 0.2)
    return peak * (keep + (1 - keep) * green)


def _state(domain, truth: dict, dates: np.ndarray, params) -> dict:
    """The hidden state the radiometers see, on the work cells: (nday, 2, ncell) arrays and statics."""
    ps = domain.p9
    sw = params.soil_water
    T = truth["T"]
    liquid = sw.frozen_liquid_residual + (1 - sw.frozen_liquid_residual) * F.sig((T + 0.5) / 0.4)
    doy = (dates.astype("datetime64[D]") - dates.astype("datetime64[Y]")).astype(int) + 1
    vwc = vegetation_water(ps.land_cover, doy)[:, None, :]
    barren = (ps.land_cover == 7).astype("f8")[None, None, :] * np.clip((0.12 - truth["theta"]) / 0.08, 0, 1)
    return {
        "t_soil_c": T,
        "t_air_c": truth["Tfree"],
        "theta": truth["theta"],
        "liquid_fraction": liquid,
        "snow_depth_m": truth["sd"],
        "vwc": vwc,
        "water_fraction": np.where(ps.sea, 1.0, ps.owf)[None, None, :],
        "barren": barren,
        "snow_density": params.snow.density,
    }


class SmapTbObserver:
    """SMAP L-band TB H and V (K) at 9 km on the region window, AM and PM, with the radiometer's noise;
    the normalised polarisation ratio NPR = (V - H) / (V + H) (SMAP L3 FT ATBD). Stateless."""

    def __init__(self, domain, params, seed: int):
        self.domain, self.p, self.seed = domain, params, int(seed)
        self._acc: dict = {}  # (year, "freeze"|"thaw") -> [sum, count] of observed NPR (2, npix)

    def references(self, dates: np.ndarray, npr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The granules' ``freeze_reference`` and ``thaw_reference`` for ``dates``: the mean observed NPR of the
        previous calendar year's January-February and July-August per pixel and pass (the SMAP L3 FT product
        builds its references from earlier observations; NaN in the first year). ``npr`` (nday, 2, npix), NaN
        where not observed, is accumulated (call in date order)."""
        years = dates.astype("datetime64[Y]").astype(int) + 1970
        months = dates.astype("datetime64[M]").astype(int) % 12 + 1
        out = np.full((2, *npr.shape), np.nan, "f4")
        for i in range(len(dates)):
            for k, season in enumerate(("freeze", "thaw")):
                acc = self._acc.get((years[i] - 1, season))
                if acc is not None:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        out[k, i] = np.where(acc[1] > 0, acc[0] / acc[1], np.nan)
            season = "freeze" if months[i] in (1, 2) else "thaw" if months[i] in (7, 8) else None
            if season is not None:
                acc = self._acc.setdefault((years[i], season), [np.zeros(npr.shape[1:]), np.zeros(npr.shape[1:])])
                ok = np.isfinite(npr[i])
                acc[0] += np.where(ok, npr[i], 0.0)
                acc[1] += ok
        for key in [k for k in self._acc if k[0] < years.min() - 1]:
            del self._acc[key]  # state: two years at most
        return out[0], out[1]

    def observe(self, dates: np.ndarray, days: np.ndarray, truth: dict) -> dict:
        """``tbh``, ``tbv``, ``npr`` (nday, 2, npix) float32 on the region window's cells."""
        ci = self.domain.crop_idx
        st = _state(self.domain, truth, dates, self.p)
        h, v = surface_tb(SMAP_FREQ_GHZ, SMAP_INCIDENCE_DEG, **st)
        ps = self.domain.p9
        out = {}
        for k, (pol, tb) in enumerate((("h", h), ("v", v))):
            noise = NEDT_K["L"] * F.hash_normal(
                self.seed,
                S_TB_SMAP,
                ps.k1[None, None, :],
                ps.k2[None, None, :],
                days[:, None, None],
                np.array([0, 1])[None, :, None] * 2 + k,
            )
            out[f"tb{pol}"] = (tb + noise)[:, :, ci].astype("f4")
        out["npr"] = ((out["tbv"] - out["tbh"]) / (out["tbv"] + out["tbh"])).astype("f4")
        return out


class MultiFreqTbObserver:
    """AMSR2-like TB (K) for every channel of :data:`MULTIFREQ_GHZ`, H and V, AM and PM, as the mean over the
    9 km cells of each 25 km cell (the footprint), with each channel's noise. Stateless."""

    def __init__(self, domain, params, seed: int):
        self.domain, self.p, self.seed = domain, params, int(seed)

    def observe(self, dates: np.ndarray, days: np.ndarray, truth: dict) -> dict:
        """``{"TB36.5V": (nday, 2, n25), ...}`` float32 on the 25 km cells."""
        dom = self.domain
        st = _state(dom, truth, dates, self.p)
        k1, k2 = dom.key25
        out = {}
        for c, (name, f) in enumerate(MULTIFREQ_GHZ.items()):
            tbs = surface_tb(f, MULTIFREQ_INCIDENCE_DEG, **st)
            for k, (pol, tb) in enumerate(zip("HV", tbs)):
                nd = tb.shape[0]
                agg = np.stack([np.stack([dom.mean25(tb[i, j]) for j in range(2)]) for i in range(nd)])
                noise = NEDT_K[name] * F.hash_normal(
                    self.seed,
                    S_TB_MULTI,
                    k1[None, None, :],
                    k2[None, None, :],
                    days[:, None, None],
                    np.array([0, 1])[None, :, None] * 100 + c * 2 + k,
                )
                out[f"TB{name}{pol}"] = (agg + noise).astype("f4")
        return out

"""Every number of the digital twin, in one place.

The values are documented (with the equations they enter) in ``docs/twin.md``; the
generator records them verbatim in ``truth/parameters.json`` so that a run's provenance
names the exact twin it was scored against. Override by passing a modified
:class:`TwinParameters` (``dataclasses.replace``) to :func:`ftcloud.synth.generate`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = [
    "TwinParameters",
    "ClimateParams",
    "PrecipParams",
    "SnowParams",
    "SoilWaterParams",
    "TruthParams",
    "TrendParams",
    "Era5Errors",
    "ImergErrors",
    "SmapErrors",
    "EsdrErrors",
    "StationParams",
    "NETWORKS",
    "STABILITY_CLASSES",
    "REGION_CODES",
    "LAND_COVER_CLASSES",
    "KOPPEN_CLASSES",
    "PARAMETER_SOURCES",
]

#: permafrost_stability codes (auxiliary file and truth summary).
STABILITY_CLASSES = {
    0: "none",
    1: "very_stable",
    2: "stable",
    3: "semi_stable",
    4: "transitional",
    5: "unstable",
    6: "seasonally_frozen_ground",
}
#: region codes (China's four geographic regions; 0 = sea / outside).
REGION_CODES = {0: "none", 1: "qinghai_tibet", 2: "northwest", 3: "north", 4: "south"}
#: land_cover codes (the CLCD legend).
LAND_COVER_CLASSES = {
    1: "cropland",
    2: "forest",
    3: "shrub",
    4: "grassland",
    5: "water",
    6: "snow_ice",
    7: "barren",
    8: "impervious",
    9: "wetland",
}
#: koppen codes (main Koppen-Geiger groups).
KOPPEN_CLASSES = {1: "tropical", 2: "arid", 3: "temperate", 4: "cold", 5: "polar"}


@dataclass(frozen=True)
class ClimateParams:
    """The hidden soil's climate (0-7 cm soil temperature, degC)."""

    # mean annual soil temperature at sea level: m0 + m1*(lat-20) + m2*(lat-20)^2
    sea_level_mean: tuple = (26.0, -0.25, -0.02)
    lapse_rate_K_per_km: float = 4.5
    tci_cooling_K_per_m: float = 0.002  # shaded / wind-swept complex terrain is colder
    local_anomaly_K: float = 1.2  # microclimate field (value noise, 0.15 deg lattice)
    local_anomaly_spacing_deg: float = 0.15
    # annual half-amplitude of the daily mean: a0 + a1*(lat-18) + a2*continentality + a3*elev_km
    amplitude: tuple = (5.0, 0.30, 2.0, 0.3)
    coldest_doy: float = 18.0
    # diurnal half-range of 0-7 cm: d0 + d1*elev_km, times land-cover factor and cloud damping
    diurnal: tuple = (2.5, 0.8)
    diurnal_spring_boost: float = 0.25  # +25 % around day 80-170 (dry, sunny spring)
    cloud_damping: float = 0.55  # diurnal range x (1 - 0.55 * cloudiness)
    diurnal_peak_hour: float = 14.5  # local solar hour of the 0-7 cm maximum
    # weather anomaly: sigma(doy) = s0 + s1*cos(2 pi (doy-15)/365.25)  (K)
    weather_sigma: tuple = (2.4, 0.9)
    weather_ar1: float = 0.80  # daily AR(1) coefficient of the basis coefficients
    weather_n_large: int = 20  # Fourier modes, wavelength 6-30 deg
    weather_n_meso: int = 12  # Fourier modes, wavelength 1.5-4 deg
    weather_meso_weight: float = 0.45
    slow_sigma_K: float = 0.25  # slow (seasonal-scale) anomaly, AR(1) 0.98 per day
    slow_ar1: float = 0.98
    air_offset_K: float = -2.5  # daily mean air = soil base - 2.5 K (+ 1.2 x weather)
    air_weather_factor: float = 1.2


@dataclass(frozen=True)
class PrecipParams:
    """True precipitation: intermittent, monsoonal, falls as snow when cold."""

    occurrence_z: float = 0.4  # wet when the latent field exceeds z0 = 0.4 - 0.6*(m-1)
    occurrence_season: float = 0.35
    intensity_power: float = 1.5
    monsoon_doy: float = 200.0
    # seasonality m(doy) = exp(k cos(2 pi (doy - 200)/365.25)) / I0(k), k = k0 + k1 * min(1.5 wetness, 1)
    monsoon_kappa: tuple = (0.5, 1.3)
    latent_ar1: float = 0.5
    latent_n_large: int = 16  # wavelength 4-20 deg, AR(1)
    latent_n_small: int = 16  # wavelength 0.6-2.5 deg, white in time
    latent_small_weight: float = 0.9
    storm_local_hour: float = 17.0  # convective peak (local solar), +- N(0, 3 h) per day
    storm_hour_sd: float = 3.0
    storm_width_h: tuple = (1.5, 5.5)  # uniform range of the within-day Gaussian width


@dataclass(frozen=True)
class SnowParams:
    """Degree-day snow pack (truth); ERA5-Land's own version in :class:`Era5Errors`."""

    rain_snow_threshold_C: float = 1.0  # 50 % snow at air temperature 1 degC
    rain_snow_width_K: float = 0.6
    melt_threshold_C: float = -1.0
    degree_day_mm_per_K: float = 4.0
    sublimation_mm_per_day: float = 0.5
    radiation_melt_mm_per_day: float = 1.5  # x clip(1 + (Ta - melt_threshold)/8 K, 0, 1)
    radiation_melt_range_K: float = 8.0
    density: float = 0.25  # depth = SWE / density
    # insulation of the soil by snow depth s (m): exp(-s / scale)
    diurnal_damping_m: float = 0.03
    weather_damping_m: float = 0.10
    seasonal_insulation_m: float = 0.25


@dataclass(frozen=True)
class SoilWaterParams:
    """ERA5-Land layer-1 bucket (0-7 cm = 70 mm)."""

    layer_mm: float = 70.0
    wilting: float = 0.06
    field_capacity: tuple = (0.18, 0.12)  # fc = 0.18 + 0.12 * wetness
    saturation: float = 0.45
    drainage_per_day: float = 0.25
    et_per_day: float = 0.015
    frozen_infiltration: float = 0.2
    frozen_liquid_residual: float = 0.2  # liquid fraction of frozen soil water


@dataclass(frozen=True)
class TruthParams:
    """Latent heat and hysteresis of the hidden soil's FT state."""

    zero_curtain_strength: float = 0.75  # T_c = T - s c tanh(T / c)
    zero_curtain_scale_K: float = 1.5
    hysteresis_K: float = 0.3  # freeze when T_c < -0.3, thaw when T_c > +0.3
    overpass_hours: tuple = (6.0, 18.0)
    spinup_days: int = 31  # the state model starts on the last July 1 at least this long before start


@dataclass(frozen=True)
class TrendParams:
    """Planted warming, chosen so the truth's frozen-day slopes match the paper's Table 2."""

    reference_year: float = 1980.5
    # target frozen-day slopes (days/year) per QT permafrost stability class
    qt_class_slopes: dict = field(default_factory=lambda: {1: -0.31, 2: -0.22, 3: -0.11, 4: -0.09, 5: -0.05, 6: -0.02})
    region_slopes: dict = field(default_factory=lambda: {2: -0.32, 3: -0.29})
    default_warming_K_per_yr: float = 0.025  # where nothing freezes (south, QT class 0)
    # MAGT_1980 class edges (degC):
    # very stable < -5 <= stable < -3 <= semi < -1.5 <= trans < -0.5 <= unstable <= 0.5 < SFG
    class_edges: tuple = (-5.0, -3.0, -1.5, -0.5, 0.5)
    sensitivity_floor: float = 0.3  # sqrt(A^2-M^2) >= 0.3 A in dFD/dT
    # the analytic dFD/dT ignores weather noise, snow and hysteresis; the realised
    # sensitivity is smaller, so the rate is scaled up by this factor (calibrated on demo)
    sensitivity_correction: float = 1.0


@dataclass(frozen=True)
class Era5Errors:
    """How ERA5-Land sees the hidden soil."""

    # M0_era = M_sl(lat) - 4.5 z_s - lapse_error * (z_s - 3 km) + land-cover bias + TCI bias, z_s = orography
    # smoothed over a 3x3 stencil at +-0.1 deg; no micro-climate field, no TCI cooling
    lapse_error_K_per_km: float = 1.0
    smoothing_offset_deg: float = 0.1
    land_cover_bias_K: dict = field(
        default_factory=lambda: {1: 0.4, 2: -0.8, 3: -0.2, 4: -0.3, 5: -0.4, 6: -0.8, 7: 0.6, 8: 0.8, 9: -0.4}
    )
    tci_bias_K_per_m: float = -0.003
    amplitude_factor: float = 1.05
    season_lead_days: float = 6.0  # ERA5's thin, weakly insulated layer follows the air earlier
    season_lead_sd_days: float = 5.0  # per point and year: freeze/thaw onset timing error (assumed)
    # ERA5-Land's own weather: correlation of its daily anomaly with the truth's (Herrington et al.
    # 2024: cold-season r = 0.55-0.85 of reanalysis vs in-situ soil temperature; mid-range)
    weather_correlation: float = 0.7
    # cold-season cold bias over the Qinghai-Tibet Plateau, x plateau x winter weight (K)
    # (Herrington et al. 2024: cold by 1-5 K, largest in the cold season; Cao et al. 2020:
    # ERA5-Land underestimates soil temperature at mid-low latitudes)
    cold_season_bias_K: float = -2.5
    # ERA5-Land's snow density is biased low (Cao et al. 2020): deeper, more insulating snow (assumed x0.7)
    snow_density_factor: float = 0.7
    diurnal_factor: float = 1.3
    diurnal_peak_hour: float = 13.5
    zero_curtain_strength: float = 0.4
    zero_curtain_scale_K: float = 1.0
    # reanalysis error: a spatially smooth field (10 Fourier modes, wavelength 0.5-3 deg) with
    # AR(1) daily coefficients, plus an AR(1) per grid point, plus hourly white noise
    error_field_sigma_K: float = 1.8
    error_field_ar1: float = 0.7
    error_field_modes: int = 10
    error_field_wavelength_deg: tuple = (0.5, 3.0)
    noise_sigma_K: float = 0.5  # AR(1) per grid point and day
    noise_ar1: float = 0.7
    hourly_noise_K: float = 0.1
    snowfall_factor: float = 1.35
    melt_threshold_offset: tuple = (0.8, 1.2)  # N(mean, sd) per point and year (K): late / early melt
    degree_day_factor: float = 0.85
    precip_factor_plateau: float = 0.25  # x (1 + 0.25 * plateau)
    precip_timing_shift_h: float = 1.0
    precip_width_factor: float = 1.3


@dataclass(frozen=True)
class ImergErrors:
    lognormal_sigma: float = 0.6
    detection_threshold_mm_h: float = 0.1
    miss_probability: float = 0.5
    snow_factor: float = 0.6


@dataclass(frozen=True)
class SmapErrors:
    """SMAP_E_FT = truth + class-dependent misclassification + missing swaths."""

    frozen_as_thawed: float = 0.07
    thawed_as_frozen: float = 0.035
    near_zero_frozen: float = 0.14  # x exp(-|T| / 1.5 K)
    near_zero_thawed: float = 0.10
    near_zero_scale_K: float = 1.5
    wet_snow: float = 0.30  # frozen soil under wet snow (air > 0 degC) reads thawed
    transition_season: float = 0.04  # Feb-Apr, Oct-Nov
    tci_per_400m: float = 0.06
    open_water: float = 0.20  # x open-water fraction
    # vegetation (L-band canopy emission masks the soil): flip probability added by land cover,
    # x pass factor (canopy and soil temperatures agree better in the morning: Cui et al. 2024 §4.4)
    vegetation: dict = field(default_factory=lambda: {2: 0.10, 3: 0.03, 1: 0.03, 9: 0.05})
    vegetation_pass_factor: dict = field(default_factory=lambda: {"AM": 0.5, "PM": 1.0})
    pixel_year_sd: float = 0.03  # persistent per pixel-year reference error
    error_ar1: float = 0.5  # day-to-day correlation of the error draws
    water_fill_fraction: float = 0.5  # open water above this -> fill
    swath_period_km: float = 2300.0
    swath_gap_fraction: dict = field(default_factory=lambda: {"AM": 0.18, "PM": 0.26})
    swath_angle_deg: dict = field(default_factory=lambda: {"AM": 78.0, "PM": 102.0})
    swath_daily_shift: float = 0.375  # of a period per day
    day_missing_probability: float = 0.01
    outages: tuple = (("2019-06-19", "2019-07-23"),)  # SMAP safe mode


@dataclass(frozen=True)
class EsdrErrors:
    """ESDR_FT = 25 km majority of the truth, smoothed in time, with its own errors."""

    smoothing_weight_today: float = 0.6  # g = 0.6 f + 0.4 g_prev
    frozen_as_thawed: float = 0.02
    thawed_as_frozen: float = 0.05
    near_zero_frozen: float = 0.04
    cold_thawed: float = 0.20  # x exp(-T / 3 K) for thawed soil at T > 0
    cold_thawed_scale_K: float = 3.0
    transition_season: float = 0.03
    # site terms on the 25 km cell, added to both flip probabilities (assumed magnitudes; terrain,
    # open water and forest degrade 37 GHz seasonal-threshold FT: Kim et al. 2011, 2017)
    tci_per_400m: float = 0.05
    open_water: float = 0.15
    vegetation: dict = field(default_factory=lambda: {2: 0.05, 9: 0.03})
    error_ar1: float = 0.3
    day_missing_probability: float = 0.015


@dataclass(frozen=True)
class StationParams:
    """In-situ 5 cm networks and CMA 0 cm stations."""

    insitu_period: tuple = ("2018-01-01", "2020-12-31")
    diurnal_damping_5cm: float = 0.85
    lag_5cm_h: float = 0.5
    noise_5cm_K: float = 0.15
    offset_5cm_K: float = 0.3
    single_gap_probability: float = 0.005
    outages_per_station_year: float = 1.0
    outage_days: tuple = (1, 20)
    cma_density_km2: float = 12000.0
    cma_min_stations: int = 5
    surface_diurnal_factor: float = 1.7  # 0 cm vs 0-7 cm diurnal half-range
    surface_peak_hour: float = 13.0
    surface_weather_factor: float = 1.2
    surface_noise_K: float = 0.5
    cma_missing_probability: float = 0.01


#: the six dense networks: name, lon, lat, stations, depth (cm), radius (km), first, last day
NETWORKS = (
    ("Genhe", 121.5, 50.8, 18, 5, 40.0, "2018-04-01", "2020-12-31"),
    ("Saihanba", 117.3, 42.3, 11, 5, 30.0, "2018-09-01", "2020-12-31"),
    ("SDR", 116.0, 42.0, 27, 3, 35.0, "2018-09-01", "2020-12-31"),
    ("Maqu", 101.9, 33.9, 19, 5, 40.0, "2018-01-01", "2020-12-31"),
    ("Naqu", 92.0, 31.4, 33, 5, 50.0, "2018-01-01", "2019-12-31"),
    ("Pali", 89.1, 27.8, 13, 5, 30.0, "2018-01-01", "2020-12-31"),
)


@dataclass(frozen=True)
class TwinParameters:
    """All parameters of the twin (see docs/twin.md)."""

    climate: ClimateParams = field(default_factory=ClimateParams)
    precip: PrecipParams = field(default_factory=PrecipParams)
    snow: SnowParams = field(default_factory=SnowParams)
    soil_water: SoilWaterParams = field(default_factory=SoilWaterParams)
    truth: TruthParams = field(default_factory=TruthParams)
    trend: TrendParams = field(default_factory=TrendParams)
    era5: Era5Errors = field(default_factory=Era5Errors)
    imerg: ImergErrors = field(default_factory=ImergErrors)
    smap: SmapErrors = field(default_factory=SmapErrors)
    esdr: EsdrErrors = field(default_factory=EsdrErrors)
    stations: StationParams = field(default_factory=StationParams)

    def to_dict(self) -> dict:
        """JSON-ready nested dict (dict keys become strings)."""

        def conv(o):
            if isinstance(o, dict):
                return {str(k): conv(v) for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return [conv(v) for v in o]
            return o

        return conv(dataclasses.asdict(self))


_A = "assumed"
_CAO = "Cao et al. 2020, The Cryosphere 14:2581 (ERA5-Land soil temperature bias in permafrost regions)"
_HER = (
    "Herrington et al. 2024, The Cryosphere 18:1835 (reanalysis soil temperatures: cold 1-5 K, RMSE 2-9 K, cold-season "
    "r 0.55-0.85)"
)
_ZHAO = "Zhao & He 2022, Front. Earth Sci. 10:907730 (ERA5-Land RMSE 2.2 K, biases from elevation differences)"
_CUI = "Cui et al. 2024, Remote Sens. 16:950 (the paper)"
_SMAP = (
    "SMAP L3_FT_P/L3_FT_P_E ATBD (Dunbar et al. 2016): 80 % accuracy requirement; error sources wet snow, open "
    "water, vegetation, terrain"
)
_ESDR = (
    "Kim et al. 2017, ESSD 9:133 (FT-ESDR: 90.3 % PM / 84.3 % AM vs stations; quality flags for open water > "
    "20 % and elevation gradient > 300 m)"
)

#: where each error parameter of the twin comes from: a source, or "assumed" (docs/twin.md);
#: written into truth/parameters.json and the run report's provenance
PARAMETER_SOURCES = {
    "era5.lapse_error_K_per_km": f"{_ZHAO}; magnitude {_A}",
    "era5.smoothing_offset_deg": "ERA5-Land's 0.1 degree orography (ECMWF ERA5-Land documentation)",
    "era5.land_cover_bias_K": f"{_CAO} (bias varies with surface type); magnitudes {_A}",
    "era5.tci_bias_K_per_m": f"{_ZHAO} (terrain); magnitude {_A}",
    "era5.amplitude_factor": f"{_HER} (monthly variability overestimated 20-50 % in winter); 5 % {_A}",
    "era5.season_lead_days": _A,
    "era5.season_lead_sd_days": _A,
    "era5.weather_correlation": (
        f"{_HER}; its r is for soil-temperature anomalies, applied here to the weather anomaly (an extrapolation)"
    ),
    "era5.cold_season_bias_K": (
        f"{_HER}; {_CAO} (underestimated at mid-low latitudes); Herrington is pan-Arctic: extrapolated to the "
        "plateau, magnitude within its 1-5 K"
    ),
    "era5.snow_density_factor": f"{_CAO} (low bias of ERA5-Land snow density); factor {_A}",
    "era5.diurnal_factor": f"{_A}; gives the paper's section 4.3 ERA5_FT direction ({_CUI})",
    "era5.diurnal_peak_hour": _A,
    "era5.zero_curtain_strength": _A,
    "era5.zero_curtain_scale_K": _A,
    "era5.error_field_sigma_K": f"{_HER} (total random error within RMSE 2-9 K); split {_A}",
    "era5.error_field_ar1": _A,
    "era5.error_field_modes": _A,
    "era5.error_field_wavelength_deg": _A,
    "era5.noise_sigma_K": _A,
    "era5.noise_ar1": _A,
    "era5.hourly_noise_K": _A,
    "era5.snowfall_factor": f"{_CAO} (bias correlates with maximum snow height); factor {_A}",
    "era5.melt_threshold_offset": _A,
    "era5.degree_day_factor": _A,
    "era5.precip_factor_plateau": _A,
    "era5.precip_timing_shift_h": _A,
    "era5.precip_width_factor": _A,
    "imerg.lognormal_sigma": _A,
    "imerg.detection_threshold_mm_h": (
        "GPM IMERG minimum detectable rate order 0.1 mm/h (IMERG technical documentation); assumed here"
    ),
    "imerg.miss_probability": _A,
    "imerg.snow_factor": "IMERG underestimates snowfall (IMERG technical documentation); factor assumed",
    "smap.frozen_as_thawed": (
        f"{_SMAP}; rates {_A}, total accuracy checked against the requirement (tests/integration/test_twin_shape.py)"
    ),
    "smap.thawed_as_frozen": f"{_SMAP}; {_A}",
    "smap.near_zero_frozen": _A,
    "smap.near_zero_thawed": _A,
    "smap.near_zero_scale_K": _A,
    "smap.water_fill_fraction": f"{_SMAP} (open-water pixels are flagged); threshold {_A}",
    "smap.day_missing_probability": _A,
    "smap.wet_snow": f"{_SMAP}; {_CUI} section 4.4 (wet snow on frozen soil reads thawed); magnitude {_A}",
    "smap.transition_season": f"{_CUI} (accuracy lowest in the transition season); {_A}",
    "smap.tci_per_400m": f"{_SMAP}; {_CUI} Fig. 10 (accuracy falls with TCI); {_A}",
    "smap.open_water": f"{_SMAP}; {_A}",
    "smap.vegetation": f"{_SMAP}; {_A}",
    "smap.vegetation_pass_factor": (
        f"{_CUI} section 4.4 (canopy and soil temperatures agree better in the morning); {_A}"
    ),
    "smap.pixel_year_sd": _A,
    "smap.error_ar1": _A,
    "smap.swath_period_km": "SMAP 1000 km swath, 6 am / 6 pm orbits; stripe geometry assumed",
    "smap.swath_gap_fraction": (
        "gap fractions as measured on the real SPL3FTP_E granule in shared/realdata (docs/source-formats.md); "
        "assumed per pass"
    ),
    "smap.swath_angle_deg": _A,
    "smap.swath_daily_shift": _A,
    "smap.outages": "SMAP safe mode 2019-06-19 .. 2019-07-23 (NSIDC SPL3FTP_E version notes)",
    "esdr.frozen_as_thawed": f"{_ESDR}; {_A}, total accuracy checked against it (tests/integration/test_twin_shape.py)",
    "esdr.thawed_as_frozen": f"{_ESDR}; {_A}, total accuracy checked against it (tests/integration/test_twin_shape.py)",
    "esdr.near_zero_frozen": f"{_ESDR}; {_A}, total accuracy checked against it (tests/integration/test_twin_shape.py)",
    "esdr.cold_thawed": f"{_ESDR}; {_A}, total accuracy checked against it (tests/integration/test_twin_shape.py)",
    "esdr.cold_thawed_scale_K": (
        f"{_ESDR}; {_A}, total accuracy checked against it (tests/integration/test_twin_shape.py)"
    ),
    "esdr.transition_season": (
        f"{_ESDR}; {_A}, total accuracy checked against it (tests/integration/test_twin_shape.py)"
    ),
    "esdr.smoothing_weight_today": f"{_ESDR} (25 km, temporally smoother than SMAP); weight {_A}",
    "esdr.error_ar1": _A,
    "esdr.day_missing_probability": _A,
    "esdr.tci_per_400m": f"{_ESDR} (elevation-gradient flag); magnitude {_A}",
    "esdr.open_water": f"{_ESDR} (open-water flag); magnitude {_A}",
    "esdr.vegetation": _A,
    "stations.insitu_period": f"{_CUI} Table 1 (the networks' periods, 2018-2020)",
    "stations.diurnal_damping_5cm": _A,
    "stations.lag_5cm_h": _A,
    "stations.noise_5cm_K": _A,
    "stations.offset_5cm_K": _A,
    "stations.single_gap_probability": _A,
    "stations.outages_per_station_year": _A,
    "stations.outage_days": _A,
    "stations.cma_density_km2": f"{_CUI} section 2 (824 CMA stations over China, about one per 11,600 km2)",
    "stations.cma_min_stations": _A,
    "stations.surface_diurnal_factor": (
        f"{_CUI} section 4.3 (0 cm surface warms and cools faster than 0-7 cm); magnitude {_A}"
    ),
    "stations.surface_peak_hour": _A,
    "stations.surface_weather_factor": _A,
    "stations.surface_noise_K": _A,
    "stations.cma_missing_probability": _A,
}

"""The study as data: every constant of Cui et al. 2024 that ftcloud's code relies on, defined once.

The science kernels take these as defaults and the workflows pass them on; nothing else in the
package types a season's months, an overpass hour, a split or a number of the paper again
(``tests/unit/test_architecture.py`` greps for that). Sources: ``../shared/SPEC.md`` (sections
in the comments) and the paper in ``../shared/seeds/``.

Examples
--------
>>> from ftcloud import study
>>> study.SEASON_MONTHS["frozen"]
(12, 1)
>>> study.OVERPASS_HOURS["AM"], study.LOCAL_STEP_HOURS["AM"]
(6.0, (3, 4, 5))
"""

from __future__ import annotations

import math

__all__ = [
    "BASELINE_PRODUCTS",
    "CTC_NAMES",
    "CTC_OUT_OF_RANGE",
    "CTC_PERIOD",
    "CTC_REASONS",
    "CTC_SEASONS",
    "FREEZING_K",
    "LOCAL_STEP_HOURS",
    "OVERPASS_HOURS",
    "PAPER",
    "PASSES",
    "SEASONS",
    "SEASON_MONTHS",
    "SPLITS",
    "TARGETS_START",
    "TCI_BINS",
    "TCI_LABELS",
    "TEST_PERIOD",
    "TRAINING",
    "MIN_TREND_YEARS",
]

# -- passes and hours (SPEC section 2) --------------------------------------------------------
#: the two FT overpasses of SMAP (descending AM, ascending PM)
PASSES = ("AM", "PM")
#: local solar hour of each overpass
OVERPASS_HOURS = {"AM": 6.0, "PM": 18.0}
#: the three hourly ERA5-Land steps before each overpass, local solar time (the model's time axis)
LOCAL_STEP_HOURS = {"AM": (3, 4, 5), "PM": (15, 16, 17)}
#: 0 degC in kelvin: the threshold of ERA5_FT and of the in-situ FT rule
FREEZING_K = 273.15

# -- seasons (SPEC section 5) ---------------------------------------------------------------
#: the months of each season
SEASON_MONTHS = {"frozen": (12, 1), "transition": (2, 3, 4, 10, 11), "thawed": (5, 6, 7, 8, 9)}
#: every season a table reports, in display order ("all" = every day)
SEASONS = ("all", *SEASON_MONTHS)
#: the seasons of the CTC tables (SPEC section 6: thawed is left out, one class dominates)
CTC_SEASONS = ("all", "frozen", "transition")

# -- periods and splits (SPEC section 3) -----------------------------------------------------
#: the paper's splits (inclusive date ranges)
SPLITS = {
    "train": (("2015-04-01", "2016-03-31"), ("2016-11-01", "2017-03-31")),
    "val": (("2016-04-01", "2016-10-31"), ("2017-11-01", "2018-03-31")),
    "test": (("2018-04-01", "2020-12-31"),),
}
#: the direct validation's period: the test split
TEST_PERIOD = SPLITS["test"][0]
#: the CTC period: the whole product
CTC_PERIOD = ("1980-01-01", "2020-12-31")
#: the first day of the FT targets (SMAP enhanced L3 FT starts 2015-03-31; the first split day)
TARGETS_START = SPLITS["train"][0][0]
#: training and prediction defaults (TrainConfig, InferencePlan, the CLI; ftcloud.yaml repeats them for users to
#: read, and tests/unit/test_architecture.py checks it agrees)
TRAINING = {"epochs": 25, "patience": 4, "predict_batch_days": 16}
#: the fewest valid years a Sen slope / Mann-Kendall test is computed from (fewer: NaN, "n/a" in the report)
MIN_TREND_YEARS = 10

# -- products ------------------------------------------------------------------------------
#: the CTC triplet (SPEC section 6)
CTC_NAMES = ("ConvLSTM_FT", "ERA5_FT", "Meteorology_FT")
#: the fused product and the baselines it stands beside
BASELINE_PRODUCTS = ("ConvLSTM_FT", "ERA5_FT", "SMAP_E_FT", "ESDR_FT")

# -- strata (SPEC section 6) ----------------------------------------------------------------
#: terrain complexity index classes of the paper (m): < 50, 50-150, 150-250, 250-350, >= 350
TCI_BINS = (-math.inf, 50.0, 150.0, 250.0, 350.0, math.inf)
TCI_LABELS = ("<50", "50-150", "150-250", "250-350", ">=350")

# -- CTC reason codes (the ``reason`` variable; 0 = statistics defined) ------------------------
CTC_REASONS = {
    0: "ok",
    1: "too_few_samples",
    2: "zero_variance",
    3: "nonpositive_covariance",
    4: "class_balance_out_of_range",
    5: "nonfinite_estimate",
    6: "estimate_out_of_range",
}
#: the code of pixels whose fit is fine but whose estimated psi or eta is outside [0, 1]
CTC_OUT_OF_RANGE = 6

# -- the paper's numbers (SPEC sections 5 and 7) ----------------------------------------------
PAPER = {
    "gain_overall_pct_points": 2.44,
    "gain_frozen_season_pct_points": 7.03,
    "table2_slope": {
        "northwest": -0.32,
        "north": -0.29,
        "qinghai_tibet": -0.06,
        "very_stable": -0.31,
        "stable": -0.22,
        "semi_stable": -0.11,
        "transitional": -0.09,
        "unstable": -0.05,
        "seasonally_frozen_ground": -0.02,
    },
    "table2_mean_days": {"qinghai_tibet": 239, "northwest": 144, "north": 102},
}

"""ERA5-Land stl1/swvl1/sde/tp -> predictors/era5land (wiring only; logic in ftcloud.sources)."""

from _common import settings

from ftcloud.sources.pipelines import era5land_recipe

s = settings()
recipe = era5land_recipe(s["source"], s["window"], s["start"], s["end"], s["chunks"]["predictors"]).transform(
    s["store"]
)

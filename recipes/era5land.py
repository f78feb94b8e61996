"""ERA5-Land stl1/swvl1/sde/tp -> predictors/era5land (wiring only; logic in ftcloud.recipes)."""

from _common import settings

from ftcloud.recipes.pipelines import era5land_recipe

s = settings()
recipe = era5land_recipe(s["source"], s["window"], s["start"], s["end"], s["chunks"]["predictors"]).transform(s["store"])

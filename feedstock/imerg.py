"""GPM IMERG half-hourly granules -> predictors/imerg (optional predictor; wiring only)."""

from _common import settings

from ftcloud.sources.pipelines import imerg_recipe

s = settings()
start = s["imerg"]["start"] or "2000-06-01"
end = s["imerg"]["end"] or s["end"]
recipe = imerg_recipe(s["source"], s["window"], start, end, s["chunks"]["predictors"]).transform(s["store"])

"""ESDR FT (NSIDC-0477, 25 km) -> targets/esdr_ft on the 9 km grid (wiring only)."""

from _common import settings

from ftcloud.sources.pipelines import esdr_recipe

s = settings()
recipe = esdr_recipe(s["source"], s["window"], s["targets_start"], s["end"], s["chunks"]["targets"]).transform(
    s["store"]
)

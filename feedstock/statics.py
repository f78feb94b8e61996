"""SMAP ancillary layers (TCI, open water, lat, lon) + auxiliary class maps -> statics (wiring only)."""

from _common import settings

from ftcloud.sources.pipelines import first_smap_url, statics_recipe

s = settings()
recipe = statics_recipe(s["source"], s["window"], first_smap_url(s["source"], s["targets_start"], s["end"])).transform(
    s["store"]
)

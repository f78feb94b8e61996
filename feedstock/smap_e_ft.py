"""SMAP enhanced L3 FT (SPL3FTP_E) -> targets/smap_e_ft (wiring only)."""

from _common import settings

from ftcloud.sources.pipelines import smap_recipe

s = settings()
recipe = smap_recipe(s["source"], s["window"], s["targets_start"], s["end"], s["chunks"]["targets"]).transform(
    s["store"]
)

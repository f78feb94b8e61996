"""Dense-network 5 cm soil temperature and CMA 0 cm daily min/max -> insitu/networks, insitu/cma (wiring only)."""

from _common import settings

from ftcloud.sources.pipelines import cma_recipe, networks_recipe

s = settings()
_networks = networks_recipe(s["source"], s["window"], s["start"], s["end"], s["chunks"]["insitu"])
_cma = cma_recipe(s["source"], s["window"], s["start"], s["end"])
recipes = {r.name: r.transform(s["store"]) for r in (_networks, _cma) if r is not None}

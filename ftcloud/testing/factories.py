"""Fake-data factories: native files with fields the caller chooses, a small public-style product.

``write_era5land_file`` writes a file in the CDS layout of docs/source-formats.md (with the
twin's own writer) from arrays the caller chooses, so a test can plant analytic fields (linear in lon/lat,
known hourly accumulations) and check the recipe's output against hand-computed values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def write_era5land_file(path, times, lats, lons, fields: dict, *, units: dict | None = None) -> None:
    """Write one ERA5-Land NetCDF4 file (the twin's writer: int16 packed, hours since 1900-01-01).

    ``fields`` maps variable name -> float array (time, lat, lon); NaN becomes the fill.
    ``units`` overrides the units attribute of a variable (to test the units check); names
    other than the four predictors are written as given (to test a wrong variable name).
    """
    from pathlib import Path

    from ftcloud.synth.writers import ERA5_VARS, write_era5_month

    variables = {
        n: ((units or {}).get(n, ERA5_VARS.get(n, ("1", n))[0]), ERA5_VARS.get(n, ("1", n))[1]) for n in fields
    }
    times = pd.DatetimeIndex(times).values.astype("datetime64[h]")
    write_era5_month(
        Path(path),
        np.asarray(lats),
        np.asarray(lons),
        times,
        dict(fields),
        "written by ftcloud.testing",
        variables=variables,
    )


def publish_demo(folder, start: str = "2009-01-01", end: str = "2020-12-31", seed: int = 0) -> dict:
    """A small public-style dataset: the ``tiny`` twin's truth written as an ftcloud FT product
    (``ft_convlstm.zarr``) plus the store's ``statics`` group (regions, permafrost stability),
    both consolidated and marked complete. Returns their relative paths and the twin's planted slopes."""
    import json
    import os

    import xarray as xr

    from ftcloud.workflows.ingest import ingest
    from ftcloud.io.stores import mark_complete
    from ftcloud.synth import generate

    folder = str(folder)
    src = os.path.join(folder, "_sources")
    generate("tiny", start, end, src, seed=seed, insitu=False, targets_start=end[:4] + "-01-01", progress=False)
    ingest(src, os.path.join(folder, "store"), sources=["statics"], progress=False)
    with xr.open_dataset(os.path.join(src, "truth", "truth_ft_9km.nc")) as ds:
        ft = ds["ft"].load()
    ft = ft.drop_vars([c for c in ft.coords if c not in ft.dims])
    codes = xr.where(ft.isnull(), 255, ft).astype("u1").transpose("pass", "time", "y", "x")
    codes.attrs = {
        "long_name": "freeze/thaw state (twin truth standing in for ConvLSTM_FT)",
        "flag_values": [0, 1],
        "flag_meanings": "thawed frozen",
        "missing_value": 255,
    }
    url = os.path.join(folder, "ft_convlstm.zarr")
    xr.Dataset({"ft": codes}).to_zarr(url, mode="w", consolidated=True)
    mark_complete(url)
    with open(os.path.join(src, "truth", "parameters.json")) as f:
        params = json.load(f)
    return {"product": "ft_convlstm.zarr", "store": "store", "truth": os.path.join(src, "truth"), "parameters": params}


def random_model(store: str, out: str, hidden: tuple = (4,), seed: int = 3) -> str:
    """Export AM and PM ConvLSTM models with fixed random weights and ``store``'s normalisation into ``out``
    (a model whose predictions are meaningless but whose files, shapes and speed are a trained one's)."""
    import torch

    from ftcloud.model.convlstm import DualHeadConvLSTM, FusedFTModel, ModelConfig
    from ftcloud.model.data import load_target_period
    from ftcloud.model.export import export_model

    data = load_target_period(store, "AM")
    x = np.asarray(data.X).transpose(2, 0, 1, 3, 4).reshape(8, -1)
    mean, std = np.nanmean(x, axis=1), np.nanstd(x, axis=1) + 1e-6
    torch.manual_seed(seed)
    cfg = ModelConfig(hidden=tuple(hidden))
    for p in ("AM", "PM"):
        m = FusedFTModel(DualHeadConvLSTM(cfg), torch.tensor(mean), torch.tensor(std)).eval()
        export_model(m, str(out), p, {"halo": cfg.halo, "architecture": cfg.to_dict()})
    return str(out)

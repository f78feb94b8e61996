"""The ``.ftcloud`` accessor on xarray objects: the science functions as methods, nothing more.

Registered when ftcloud is imported. Each method forwards to one function of
:mod:`ftcloud.science` with the object as its first argument (and, on a Dataset, its FT
variable); the science modules are imported on the first call, so ``import ftcloud`` stays light.

* ``da.ftcloud.frozen_days(...)``: :func:`ftcloud.science.trends.frozen_days`
* ``da.ftcloud.sen_slope(...)``: :func:`ftcloud.science.trends.sen_slope`
* ``da.ftcloud.mann_kendall(...)``: :func:`ftcloud.science.trends.mann_kendall`
* ``da.ftcloud.classification_accuracy(reference, ...)``:
  :func:`ftcloud.science.validation.classification_accuracy`
* ``da.ftcloud.triple_collocation(x2, x3, ...)``: :func:`ftcloud.science.ctc.triple_collocation`

On a Dataset the same methods work on one of its variables: ``var=`` names it; else
``frozen_days``, ``classification_accuracy`` and ``triple_collocation`` take the FT variable
(``ft``, else the one variable whose ``flag_meanings`` hold the word ``frozen``) and
``sen_slope`` and ``mann_kendall`` the yearly series ``frozen_days`` (as in ``trends.zarr``).
Dataset arguments (the reference, the other two products) are resolved to their FT variable.

Examples
--------
>>> import numpy as np, pandas as pd, xarray as xr
>>> import ftcloud
>>> t = pd.date_range("2001-01-01", "2002-12-31", freq="D")
>>> ft = xr.DataArray((t.month <= 3).astype("u1"), dims="time", coords={"time": t})
>>> ft.ftcloud.frozen_days().values.tolist()
[90.0, 90.0]
"""

from __future__ import annotations

import importlib

import xarray as xr

__all__ = ["FTCloudArrayAccessor", "FTCloudDatasetAccessor"]

#: the methods that work on yearly series: on a Dataset they take ``frozen_days`` by default
_SERIES_METHODS = ("sen_slope", "mann_kendall")
#: method -> (science module, function)
_FORWARDS = {
    "frozen_days": ("trends", "frozen_days"),
    "sen_slope": ("trends", "sen_slope"),
    "mann_kendall": ("trends", "mann_kendall"),
    "classification_accuracy": ("validation", "classification_accuracy"),
    "triple_collocation": ("ctc", "triple_collocation"),
}


def _function(method: str):
    module, name = _FORWARDS[method]
    return getattr(importlib.import_module(f"ftcloud.science.{module}"), name)


def _forward(method: str):
    module, name = _FORWARDS[method]

    def call(self, *args, **kwargs):
        kwargs = dict(kwargs)
        first = self._array(kwargs, method)  # takes ``var`` out of kwargs on a Dataset
        args = [_ft_variable(a) if isinstance(a, xr.Dataset) else a for a in args]
        return _function(method)(first, *args, **kwargs)

    call.__name__ = method
    call.__qualname__ = method
    call.__doc__ = f"Forwards to :func:`ftcloud.science.{module}.{name}` with this object as its first argument."
    return call


class _Accessor:
    def __init__(self, obj):
        self._obj = obj


@xr.register_dataarray_accessor("ftcloud")
class FTCloudArrayAccessor(_Accessor):
    """``da.ftcloud``: the science functions of :mod:`ftcloud.science` on a DataArray."""

    def _array(self, kwargs, method: str) -> xr.DataArray:
        return self._obj


def _ft_name(ds: xr.Dataset) -> str:
    if "ft" in ds.data_vars:
        return "ft"
    flagged = [k for k, v in ds.data_vars.items() if "frozen" in str(v.attrs.get("flag_meanings", "")).split()]
    if len(flagged) == 1:
        return str(flagged[0])
    from ftcloud.errors import MissingVariableError

    raise MissingVariableError(
        f"no single FT variable in this Dataset ({', '.join(map(str, ds.data_vars)) or 'none'}); "
        "pass var='NAME' or call the method on the DataArray"
    )


def _ft_variable(ds: xr.Dataset) -> xr.DataArray:
    return ds[_ft_name(ds)]


@xr.register_dataset_accessor("ftcloud")
class FTCloudDatasetAccessor(_Accessor):
    """``ds.ftcloud``: the science functions on the Dataset's FT variable (``var=`` names it)."""

    def _array(self, kwargs, method: str) -> xr.DataArray:
        var = kwargs.pop("var", None)
        if var is None and method in _SERIES_METHODS:
            if "frozen_days" not in self._obj.data_vars:
                from ftcloud.errors import MissingVariableError

                raise MissingVariableError(
                    f"{method} works on yearly series: this Dataset has no frozen_days variable "
                    f"({', '.join(map(str, self._obj.data_vars)) or 'none'}); pass var='NAME', or call "
                    "ds.ftcloud.frozen_days() first"
                )
            var = "frozen_days"
        return self._obj[var if var is not None else self.ft_variable]

    @property
    def ft_variable(self) -> str:
        """The name of the FT variable: ``ft``, else the one whose ``flag_meanings`` hold ``frozen``."""
        return _ft_name(self._obj)


for _m in _FORWARDS:
    setattr(FTCloudArrayAccessor, _m, _forward(_m))
    setattr(FTCloudDatasetAccessor, _m, _forward(_m))
del _m

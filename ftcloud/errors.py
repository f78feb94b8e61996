"""The few exception and warning classes ftcloud raises.

Each narrows a builtin so that callers who catch ``ValueError`` / ``KeyError`` keep working;
every message names the file (or store), the variable and what was expected.
"""

from __future__ import annotations

__all__ = [
    "FTCloudError",
    "ValidationError",
    "MissingVariableError",
    "UnitsError",
    "GridMismatchError",
    "TimeAxisError",
    "SourceFileError",
    "IncompleteStoreError",
    "StorageError",
    "AccessDeniedError",
    "LockedError",
    "MissingExtraError",
    "UndefinedStatisticWarning",
    "EXTRAS",
    "require",
]


class FTCloudError(Exception):
    """Base class of ftcloud's own errors."""


class ValidationError(FTCloudError, ValueError):
    """Input data that does not meet ftcloud's expectations."""


class MissingVariableError(ValidationError, KeyError):
    """A required variable is absent from a file or store."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class UnitsError(ValidationError):
    """A variable carries units other than those expected (never guessed)."""


class GridMismatchError(ValidationError):
    """Coordinates do not match the expected grid or window."""


class TimeAxisError(ValidationError):
    """Duplicate, missing or non-monotonic time stamps."""


class SourceFileError(ValidationError, OSError):
    """A source file is missing, truncated, corrupt or holds only fill values."""


class IncompleteStoreError(FTCloudError, RuntimeError):
    """A store was opened that a previous run did not finish writing."""


class StorageError(FTCloudError, OSError):
    """A store cannot be reached, read or written: unknown scheme, missing bucket, access denied,
    an endpoint that does not answer. The message names the URL (without credentials)."""


class AccessDeniedError(StorageError, PermissionError):
    """The store refused the request (wrong or missing credentials, a private bucket)."""


class LockedError(FTCloudError, RuntimeError):
    """Another ftcloud process holds the output's lease."""


class UndefinedStatisticWarning(UserWarning):
    """A statistic is undefined for some pixels (reported as NaN with a reason)."""


# -- optional dependencies ------------------------------------------------------------------------------

#: the modules each extra of pyproject.toml brings (tests/unit/test_extras.py checks them against it);
#: the core (numpy, xarray, dask, zarr, fsspec/s3fs, scipy, pyproj, matplotlib...) is always there
EXTRAS = {
    "ingest": ("apache_beam", "pangeo_forge_recipes", "kerchunk", "cfgrib", "eccodes", "h5py", "h5netcdf", "netCDF4"),
    "torch": ("torch",),
    "gateway": ("dask_gateway",),
}


class MissingExtraError(FTCloudError, ImportError):
    """A feature needs an optional extra (``pip install "ftcloud[ingest]"``) that is not installed.

    An ``ImportError`` for callers who probe optional features; the CLI prints it as one line (exit 2)."""


def require(extra: str, *modules: str, feature: str | None = None, load: bool = True, note: str = ""):
    """Check that ``modules`` (default: every module of ``extra``) are installed, else raise
    :class:`MissingExtraError` naming the extra and the command that installs it.

    ``load=True`` imports them and returns the first; ``load=False`` only looks them up (no import,
    so no side effects such as ecCodes loading its libraries) and returns None.
    """
    import importlib
    import importlib.util

    modules = modules or EXTRAS[extra]
    what = feature or f"this part of ftcloud ({modules[0]})"
    hint = f'pip install -c constraints.txt "ftcloud[{extra}]"' + (f" ({note})" if note else "")
    first = None
    for name in modules:
        try:
            if load:
                mod = importlib.import_module(name)
                first = mod if first is None else first
                continue
            found = importlib.util.find_spec(name) is not None
        except ImportError as e:  # absent, or present but broken (a missing shared library)
            if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] == name.split(".")[0]:
                why = f"{name} is not installed"
            else:
                why = f"{name} cannot be imported: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            raise MissingExtraError(f"{what} needs the [{extra}] extra ({why}): {hint}", name=name) from e
        except ValueError:  # find_spec of a module whose __spec__ is None
            found = True
        if not found:
            raise MissingExtraError(f"{what} needs the [{extra}] extra ({name} is not installed): {hint}", name=name)
    return first

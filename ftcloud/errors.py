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
    "UndefinedStatisticWarning",
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

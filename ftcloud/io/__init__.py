"""Storage helpers: URL -> fsspec filesystem/mapper, zarr groups, completion markers."""

from ftcloud.io.stores import (  # noqa: F401
    filesystem,
    get_mapper,
    join,
    mark_complete,
    mark_incomplete,
    open_group,
    store_status,
)

"""The storage layer: URLs -> fsspec filesystems and zarr mappers, status records, transactions, leases, secrets.

* :mod:`ftcloud.io.stores`: filesystems, mappers, verified group opening, status records, content ids.
* :mod:`ftcloud.io.transaction`: write beside (``.NAME.ftcloud-new``), then swap in.
* :mod:`ftcloud.io.lease`: one writer per output (``OUT.ftcloud-lock``), local disks and S3.
* :mod:`ftcloud.io.secrets`: credentials never reach logs or outputs.
"""

from ftcloud.io.stores import (
    filesystem,
    get_mapper,
    join,
    mark_complete,
    mark_incomplete,
    open_group,
    store_status,
)

__all__ = ["filesystem", "get_mapper", "join", "mark_complete", "mark_incomplete", "open_group", "store_status"]

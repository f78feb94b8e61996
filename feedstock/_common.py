"""Shared wiring for the feedstock-style recipe modules.

Values known only at deploy time come from the environment (a runner injects them), never
from this folder: FTCLOUD_SOURCE (source root URL), FTCLOUD_STORE (target root URL),
FTCLOUD_REGION / FTCLOUD_START / FTCLOUD_END / FTCLOUD_IMERG__START ... (see ftcloud.config).
"""

from ftcloud.config import get_options
from ftcloud.core.grid import region_window


def settings():
    opts = get_options()
    return {
        "source": opts["source"] or "ftcloud-out/sources",
        "store": opts["store"] or "ftcloud-out/store",
        "imerg": opts["imerg"],
        "window": region_window(opts["region"]),
        "start": opts["start"],
        "end": opts["end"],
        "targets_start": max(opts["start"], opts["targets_start"]),
        "chunks": opts["chunks"],
    }

"""The ``s3_faults`` fixture: an :class:`.s3proxy.S3FaultProxy` in front of the session's moto S3."""

from __future__ import annotations

import pytest

from .s3proxy import S3FaultProxy


@pytest.fixture
def s3_faults(s3):
    """A fault proxy on 127.0.0.1 in front of the moto server of ``tests/conftest.py`` (credentials: ``s3``).

    Yields the proxy with no faults set; ``.set(p503=0.1, pdrop=0.05, stall=None)`` arms it, ``.endpoint_url``
    is where clients go, ``.counts`` tells what happened. Closed (stalled requests released) after the test."""
    proxy = S3FaultProxy(s3["endpoint_url"], seed=20240311).start()
    try:
        yield proxy
    finally:
        proxy.close()

"""How big a fault or load test runs: its short form in ``make test``, its long form under
``make soak`` (``PEERLINK_SOAK=1``)."""

from __future__ import annotations

import os


def soaking() -> bool:
    """Whether this run is ``make soak``."""
    return os.environ.get("PEERLINK_SOAK") == "1"


def scale(short: int, long: int) -> int:
    """``short`` in ``make test``, ``long`` in ``make soak``."""
    return long if soaking() else short

"""Outcome measures: WEMWBS and SWEMWBS.

WEMWBS: 14 items scored 1 to 5; the score is the sum, 14 to 70. SWEMWBS: 7 items scored 1 to 5;
the raw sum (7 to 35) is converted to a metric score with the Warwick table (Stewart-Brown et
al. 2009). Only complete responses are scored: no prorating.

Short Warwick Edinburgh Mental Wellbeing Scale (SWEMWBS) (c) NHS Health Scotland, University of
Warwick and University of Edinburgh, 2008, all rights reserved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from shared.events.vocabulary import Instrument

ITEMS: Final[dict[Instrument, int]] = {"WEMWBS": 14, "SWEMWBS": 7}
ITEM_MIN: Final = 1
ITEM_MAX: Final = 5
SWEMWBS_NOTICE: Final = (
    "Short Warwick Edinburgh Mental Wellbeing Scale (SWEMWBS) (c) NHS Health Scotland, "
    "University of Warwick and University of Edinburgh, 2008, all rights reserved.")

SWEMWBS_METRIC: Final[dict[int, float]] = {
    7: 7.00, 8: 9.51, 9: 11.25, 10: 12.40, 11: 13.33, 12: 14.08, 13: 14.75, 14: 15.32,
    15: 15.84, 16: 16.36, 17: 16.88, 18: 17.43, 19: 17.98, 20: 18.59, 21: 19.25, 22: 19.98,
    23: 20.73, 24: 21.54, 25: 22.35, 26: 23.21, 27: 24.11, 28: 25.03, 29: 26.02, 30: 27.03,
    31: 28.13, 32: 29.31, 33: 30.70, 34: 32.55, 35: 35.00,
}
"""SWEMWBS raw score to metric score (confirm against Warwick's published table before release)."""


class IncompleteResponse(ValueError):
    """A response with the wrong number of items or an item outside 1 to 5."""


@dataclass(frozen=True)
class Score:
    """A scored response."""

    instrument: Instrument
    raw: int
    metric: float | None


def score(instrument: Instrument, items: Sequence[int]) -> Score:
    """Score a complete response; raises ``IncompleteResponse`` otherwise (no prorating)."""
    expected = ITEMS[instrument]
    if len(items) != expected:
        raise IncompleteResponse(f"{instrument} has exactly {expected} items, not {len(items)}")
    for position, item in enumerate(items, start=1):
        if isinstance(item, bool) or not ITEM_MIN <= item <= ITEM_MAX:
            raise IncompleteResponse(f"item {position} must be a whole number from "
                                     f"{ITEM_MIN} to {ITEM_MAX}")
    raw = sum(items)
    metric = SWEMWBS_METRIC[raw] if instrument == "SWEMWBS" else None
    return Score(instrument, raw, metric)

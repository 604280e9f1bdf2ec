"""WEMWBS and SWEMWBS scoring, and the outcome command's validation.

DOMAIN.md section 3: WEMWBS is 14 items scored 1 to 5, total the sum (14 to 70). SWEMWBS is
7 items scored 1 to 5; the raw sum (7 to 35) converts to a metric score with the Warwick table.
Only complete responses are scored: no prorating. The table below is copied from DOMAIN.md,
not from the code, so that a typo in either shows.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.mentoring.domain.outcomes import (
    SWEMWBS_NOTICE,
    IncompleteResponse,
    Score,
    score,
)
from services.mentoring.service_layer.commands import RecordOutcome

# DOMAIN.md section 3, "SWEMWBS raw to metric", read column by column.
WARWICK_TABLE = {
    7: 7.00, 17: 16.88, 27: 24.11,
    8: 9.51, 18: 17.43, 28: 25.03,
    9: 11.25, 19: 17.98, 29: 26.02,
    10: 12.40, 20: 18.59, 30: 27.03,
    11: 13.33, 21: 19.25, 31: 28.13,
    12: 14.08, 22: 19.98, 32: 29.31,
    13: 14.75, 23: 20.73, 33: 30.70,
    14: 15.32, 24: 21.54, 34: 32.55,
    15: 15.84, 25: 22.35, 35: 35.00,
    16: 16.36, 26: 23.21,
}

NOTICE = ("Short Warwick Edinburgh Mental Wellbeing Scale (SWEMWBS) (c) NHS Health Scotland, "
          "University of Warwick and University of Edinburgh, 2008, all rights reserved.")


def items_summing_to(total: int, count: int) -> list[int]:
    """``count`` items from 1 to 5 adding up to ``total``, spread as evenly as possible."""
    base, extra = divmod(total, count)
    items = [base + 1] * extra + [base] * (count - extra)
    assert sum(items) == total and all(1 <= i <= 5 for i in items)
    return items


def test_the_table_covers_every_raw_score_once() -> None:
    assert sorted(WARWICK_TABLE) == list(range(7, 36))


@pytest.mark.parametrize(("raw", "metric"), sorted(WARWICK_TABLE.items()))
def test_every_row_of_the_swemwbs_table(raw: int, metric: float) -> None:
    scored = score("SWEMWBS", items_summing_to(raw, 7))
    assert scored == Score("SWEMWBS", raw, metric)
    assert scored.metric == metric  # exact: the table is data, not a formula


@pytest.mark.parametrize("items", [
    [1, 5, 1, 5, 1, 5, 3],
    [3, 3, 3, 3, 3, 3, 3],
    [5, 1, 5, 1, 5, 1, 3],
])
def test_the_metric_depends_only_on_the_raw_sum(items: list[int]) -> None:
    assert score("SWEMWBS", items) == Score("SWEMWBS", 21, 19.25)


@pytest.mark.parametrize(("items", "raw"), [
    ([1] * 14, 14),
    ([5] * 14, 70),
    ([3] * 14, 42),
    ([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4], 40),
])
def test_wemwbs_is_the_sum_with_no_metric(items: list[int], raw: int) -> None:
    assert score("WEMWBS", items) == Score("WEMWBS", raw, None)


@pytest.mark.parametrize(("instrument", "items"), [
    ("SWEMWBS", [3] * 6),
    ("SWEMWBS", [3] * 8),
    ("SWEMWBS", []),
    ("SWEMWBS", [3] * 14),
    ("WEMWBS", [3] * 13),
    ("WEMWBS", [3] * 15),
    ("WEMWBS", [3] * 7),
])
def test_a_wrong_number_of_items_is_not_scored(instrument: Any, items: list[int]) -> None:
    with pytest.raises(IncompleteResponse, match=f"exactly {7 if instrument == 'SWEMWBS' else 14}"):
        score(instrument, items)


@pytest.mark.parametrize(("instrument", "bad"), [
    ("SWEMWBS", 0), ("SWEMWBS", 6), ("SWEMWBS", -1),
    ("WEMWBS", 0), ("WEMWBS", 6), ("WEMWBS", True),
])
@pytest.mark.parametrize("position", [0, -1])
def test_an_item_outside_1_to_5_is_not_scored(instrument: Any, bad: int, position: int) -> None:
    items = [3] * (7 if instrument == "SWEMWBS" else 14)
    items[position] = bad
    with pytest.raises(IncompleteResponse, match="item"):
        score(instrument, items)


@pytest.mark.parametrize("items", [[5] * 6, [4] * 6 + [0]])
def test_no_prorating(items: list[int]) -> None:
    """Six good items are not scaled up to seven: the response is not scored at all."""
    with pytest.raises(IncompleteResponse):
        score("SWEMWBS", items)


def test_the_copyright_notice_is_exact() -> None:
    assert SWEMWBS_NOTICE == NOTICE


# --- the command (API body and partner event) --------------------------------------------------

def outcome(**changes: Any) -> dict[str, Any]:
    return {"match_id": "mat_1", "timepoint": "intake", "instrument": "SWEMWBS",
            "items": [3] * 7, **changes}


@pytest.mark.parametrize("body", [
    outcome(),
    outcome(timepoint="exit", items=[1] * 7),
    outcome(timepoint="follow-up", items=[5] * 7, recorded_on="2026-11-20"),
    outcome(instrument="WEMWBS", items=[1] * 14),
    outcome(instrument="WEMWBS", items=[5] * 14),
])
def test_a_complete_outcome_is_accepted(body: dict[str, Any]) -> None:
    command = RecordOutcome.model_validate(body)
    assert list(command.items) == body["items"]


@pytest.mark.parametrize(("body", "says"), [
    (outcome(items=[3] * 6), "exactly 7"),
    (outcome(items=[3] * 8), "exactly 7"),
    (outcome(instrument="WEMWBS", items=[3] * 13), "exactly 14"),
    (outcome(instrument="WEMWBS", items=[3] * 15), "exactly 14"),
    (outcome(instrument="WEMWBS", items=[3] * 7), "exactly 14"),
    (outcome(items=[3] * 6 + [0]), "1 to 5"),
    (outcome(items=[6] + [3] * 6), "1 to 5"),
    (outcome(instrument="WEMWBS", items=[3] * 13 + [6]), "1 to 5"),
    (outcome(items=[True] + [3] * 6), "integer"),
    (outcome(items=[3.0] * 7), "integer"),
    (outcome(items=["3"] * 7), "integer"),
    (outcome(instrument="EQ-5D"), "instrument"),
    (outcome(timepoint="midway"), "timepoint"),
    (outcome(notes="x"), "notes"),
])
def test_an_incomplete_or_wrong_outcome_is_refused(body: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RecordOutcome.model_validate(body)
    assert says in str(refused.value)


def test_true_is_not_read_as_one() -> None:
    with pytest.raises(ValidationError) as refused:
        RecordOutcome.model_validate_json(
            '{"match_id": "mat_1", "timepoint": "intake", "instrument": "SWEMWBS", '
            '"items": [true, 1, 1, 1, 1, 1, 1]}')
    assert [e["loc"] for e in refused.value.errors()] == [("items", 0)]

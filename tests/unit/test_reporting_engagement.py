"""Coverage and engagement figures, SWEMWBS change, medians and CSV, all disclosure-controlled."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.reporting.domain.contributions import contributions_of
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import (
    OutcomeRules,
    coverage_rows,
    engagement_rows,
    swemwbs_change,
)
from services.reporting.entrypoints.api import to_csv
from shared.events.mentoring import MatchMade, MentoringEnded, OutcomeRecorded, SessionLogged

POLICY = DisclosurePolicy()
RULES = OutcomeRules()


def cell(measure: str, n: int, org: str = "partner-a", month: str = "2026-11") -> dict[str, Any]:
    return {"month": month, "org": org, "team": "unknown", "borough": "unknown",
            "gender": "unknown", "age_band": "unknown", "measure": measure, "n": n}


def test_coverage_is_screened_over_due_with_privacy_and_marac() -> None:
    cells = [cell("due", 40, "trust"), cell("screened", 30, "trust"),
             cell("declined", 3, "trust"), cell("asked_in_private", 27, "trust"),
             cell("marac_referrals", 9, "trust")]

    [row] = coverage_rows(cells, "org", None, POLICY)

    assert row["org"] == "trust"
    assert (row["due"]["display"], row["screened"]["display"]) == ("40", "30")
    assert row["screened"]["rate"] == 0.75
    assert row["declined"]["display"] == "fewer than 8"
    assert row["asked_in_private"]["rate"] == pytest.approx(25 / 30, abs=1e-4)
    assert row["marac_referrals"]["display"] == "10"


@pytest.mark.parametrize(("changes", "shown"), [([300] * 29, False), ([300] * 30, True)])
def test_the_mean_swemwbs_change_needs_30_people(changes: list[int], shown: bool) -> None:
    result = swemwbs_change(changes, POLICY, RULES)
    assert (result["mean"] is not None) is shown
    assert (result["withheld_reason"] is None) is shown
    if shown:
        assert result["mean"] == 3.0


def test_a_meaningful_improvement_is_at_least_the_threshold() -> None:
    changes = [300] * 10 + [299] * 10  # 3.00 and 2.99 metric points
    result = swemwbs_change(changes, POLICY, RULES)
    assert result["n"]["display"] == "20"
    assert result["meaningful_improvement"]["display"] == "10"
    assert result["meaningful_improvement"]["rate"] == 0.5


@pytest.mark.parametrize(("waits", "median"), [([5] * 7, None), ([1, 2, 3, 4, 5, 6, 7, 30], 4.5)])
def test_the_median_days_to_match_is_withheld_over_small_groups(waits: list[int],
                                                                median: float | None) -> None:
    snapshot = {"cells": [cell("matched", len(waits))],
                "days_to_match": [cell("days_to_match", w) for w in waits],
                "swemwbs_changes": []}
    [row] = engagement_rows(snapshot, "org", None, POLICY, RULES)
    assert row["median_days_to_match"] == {"value": median, "withheld": median is None}


def test_active_mentees_count_at_release_time_whatever_the_period() -> None:
    snapshot = {"cells": [cell("matched", 12, month="2026-10"),
                          cell("active_mentees", 12, month="2026-10"),
                          cell("active_mentees", -2, month="2026-11"),
                          cell("planned_endings", 2, month="2026-11")],
                "days_to_match": [], "swemwbs_changes": []}
    [row] = engagement_rows(snapshot, "org", {"2026-11"}, POLICY, RULES)
    assert row["matched"]["display"] == "0"
    assert row["active_mentees"]["display"] == "10"
    assert row["planned_endings"]["display"] == "fewer than 8"


def test_mentoring_events_contribute_in_their_own_month() -> None:
    matched = MatchMade(match_id="m", referral_id="r", mentor_id="x", org="partner-a",
                        matched_on=date(2026, 1, 31), days_from_referral=12, waitlisted=True)
    ended = MentoringEnded(match_id="m", org="partner-a", ended_on=date(2026, 3, 1),
                           planned=False)
    session = SessionLogged(session_id="s", match_id="m", org="partner-a",
                            held_on=date(2026, 2, 3), duration_minutes=50, mode="phone",
                            attendance="cancelled-by-mentor", safeguarding_concern=False)
    outcome = OutcomeRecorded(outcome_id="o", match_id="m", org="partner-a",
                              recorded_on=date(2026, 2, 5), timepoint="intake",
                              instrument="SWEMWBS", items=(3, 3, 3, 3, 3, 3, 3), raw_score=21,
                              metric_score=19.25)
    assert {(c.measure, c.value, c.month) for c in contributions_of(matched)} == {
        ("matched", 1, "2026-01"), ("waitlisted", 1, "2026-01"),
        ("active_mentees", 1, "2026-01"), ("days_to_match", 12, "2026-01")}
    assert {(c.measure, c.value) for c in contributions_of(ended)} == {
        ("unplanned_endings", 1), ("active_mentees", -1)}
    assert [(c.measure, c.month) for c in contributions_of(session)] == [
        ("sessions_cancelled", "2026-02")]
    assert [(c.measure, c.value) for c in contributions_of(outcome)] == [("swemwbs_intake", 1925)]


def test_csv_shows_counts_as_published() -> None:
    cells = [cell("due", 3, "trust"), cell("screened", 0, "trust")]
    text = to_csv(coverage_rows(cells, "org", None, POLICY))
    header, row = text.strip().splitlines()
    assert header.startswith("org,due,screened,screened_rate")
    assert row.startswith("trust,fewer than 8,0,")

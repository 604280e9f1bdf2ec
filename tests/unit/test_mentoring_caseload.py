"""A coordinator's caseload: what falls due, from dates (the domain) and from what mentoring
holds (the use case over fakes), for the caller's own organisation only."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.mentoring.domain.caseload import (
    DUE_WITHIN,
    FOLLOW_UP_WINDOW,
    follow_ups_due,
    mentor_dues,
    months_after,
    next_session,
)
from services.mentoring.domain.matching import EligibilityRules
from services.mentoring.service_layer import mentoring
from services.mentoring.service_layer.caseload import caseload
from services.mentoring.service_layer.commands import EndMatch, RecordOutcome
from shared.events.vocabulary import FOLLOW_UPS
from tests.support.fakes_mentoring import (
    COORDINATOR,
    TODAY,
    MentoringWorld,
    caller,
    session_command,
)

EVERY = timedelta(days=14)


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2026, 11, 30), 3, date(2027, 2, 28)),
    (date(2026, 6, 15), 12, date(2027, 6, 15)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
])
def test_months_after_keeps_the_day_or_the_months_last(day: date, months: int,
                                                       expected: date) -> None:
    assert months_after(day, months) == expected


def test_the_next_session_is_due_after_the_last_one_or_the_match() -> None:
    assert next_session(date(2026, 11, 1), None, EVERY).due_on == date(2026, 11, 15)
    assert next_session(date(2026, 11, 1), date(2026, 11, 10), EVERY).due_on == \
        date(2026, 11, 24)


def test_follow_ups_show_from_a_fortnight_before_until_two_months_late() -> None:
    ended = date(2026, 1, 10)
    due_3 = months_after(ended, 3)
    assert follow_ups_due(ended, set(), dict(FOLLOW_UPS), due_3 - DUE_WITHIN - timedelta(1)) \
        == []
    [early] = follow_ups_due(ended, set(), dict(FOLLOW_UPS), due_3 - DUE_WITHIN)
    assert (early.what, early.due_on) == ("3-months", due_3)
    assert follow_ups_due(ended, {"3-months"}, dict(FOLLOW_UPS), due_3) == []
    assert follow_ups_due(ended, set(), dict(FOLLOW_UPS),
                          due_3 + FOLLOW_UP_WINDOW + timedelta(1)) == []


def test_a_mentors_supervision_and_check_fall_due() -> None:
    rules = EligibilityRules(check_valid_days=365, supervision_days=42)
    today = date(2026, 11, 30)
    assert mentor_dues(today - timedelta(days=10), today - timedelta(days=10), rules,
                       today) == []
    [supervision] = mentor_dues(today - timedelta(days=30), today, rules, today)
    assert (supervision.what, supervision.due_on) == ("supervision", today + timedelta(12))
    assert [d.what for d in mentor_dues(None, None, rules, today)] == ["supervision", "check"]


@pytest.fixture
def world() -> MentoringWorld:
    return MentoringWorld()


def test_a_coordinators_caseload_lists_their_matches_follow_ups_and_mentors(
        world: MentoringWorld) -> None:
    _, _, active = world.matched()
    _, _, ended = world.matched()
    lapsing = world.mentor(supervision_held_on=TODAY - timedelta(days=35))
    with world.database.unit_of_work() as uow:
        mentoring.log_session(uow, world.keys, world.cipher, world.records, world.consent,
                              session_command(active), COORDINATOR, world.intervention)
        mentoring.end_active_match(uow, world.cipher, ended, None, EndMatch(
            planned=True, ended_on=TODAY - timedelta(days=85)), TODAY)
    with world.database.unit_of_work() as uow:
        mentoring.record_outcome(uow, world.keys, RecordOutcome(
            match_id=active, timepoint="intake", instrument="SWEMWBS", items=[3] * 7),
            COORDINATOR, TODAY)

    with world.database.read() as session:
        listed = caseload(session, COORDINATOR, TODAY, world.rules, EVERY)
        elsewhere = caseload(session, caller("partner-b", "mentor-coordinator"), TODAY,
                             world.rules, EVERY)

    [match] = listed["active_matches"]
    assert match["match_id"] == active
    assert match["due"] == [{"what": "session", "due_on": (TODAY + EVERY).isoformat(),
                             "overdue": False}]  # the intake is taken
    [follow_up] = listed["follow_ups_due"]
    assert (follow_up["match_id"], follow_up["what"]) == (ended, "3-months")
    assert follow_up["due_on"] == months_after(TODAY - timedelta(days=85), 3).isoformat()
    assert [(m["mentor_id"], [d["what"] for d in m["due"]]) for m in listed["mentors_due"]] \
        == [(lapsing, ["supervision"])]
    assert elsewhere["active_matches"] == elsewhere["follow_ups_due"] == []
    assert elsewhere["mentors_due"] == []
    assert "subject_id" not in str(listed)

"""Mentor eligibility and matching, pinned rule by rule at their boundaries.

The rules (issue 5, DOMAIN.md section 4): a mentor is matchable only when active, trained (on
or before today), with a criminal record check no older than 1095 days and supervision within
42 days (both settings, both boundaries inclusive). The mentee's gender, language and mode are
hard constraints, and in person also needs the same borough. Among matchable mentors with room
the one with the fewest current mentees wins, then the one matched longest ago (never matched
first), then the lowest mentor_id. Nobody suitable: the referral waits, naming what is unmet.
Automatic matching when a mentor gains room or becomes matchable is pinned in
tests/integration/test_mentoring_api.py, where the database decides who is waiting.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.mentoring.domain.matching import (
    DEFAULT_CHECK_VALID_DAYS,
    DEFAULT_SUPERVISION_DAYS,
    EligibilityRules,
    MatchChoice,
    MentorProfile,
    Preferences,
    choose_mentor,
    not_matchable_because,
)

TODAY = date(2026, 11, 26)
RULES = EligibilityRules()
CAPACITY = ("capacity: no matchable mentor has room",)


def mentor(mentor_id: str = "mnt_a", **changes: Any) -> MentorProfile:
    """A matchable mentor today: active, trained, checked and supervised recently, with room."""
    base = MentorProfile(
        mentor_id=mentor_id, gender="female", languages=frozenset({"en"}), borough="camden",
        modes=frozenset({"in-person", "phone", "video"}), capacity=2, status="active",
        training_completed_on=TODAY - timedelta(days=200),
        check_completed_on=TODAY - timedelta(days=100),
        last_supervision_on=TODAY - timedelta(days=7))
    return dataclasses.replace(base, **changes)


def days_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def test_the_defaults_are_the_documented_ones() -> None:
    assert (DEFAULT_CHECK_VALID_DAYS, DEFAULT_SUPERVISION_DAYS) == (1095, 42)
    assert (RULES.check_valid_days, RULES.supervision_days) == (1095, 42)


# --- eligibility --------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "matchable", "reason"), [
    ({}, True, None),
    ({"status": "in-training"}, False, "status is in-training, not active"),
    ({"status": "paused"}, False, "status is paused, not active"),
    ({"status": "left"}, False, "status is left, not active"),
    ({"training_completed_on": None}, False, "training not completed"),
    ({"training_completed_on": TODAY + timedelta(days=1)}, False, "training not completed"),
    ({"training_completed_on": TODAY}, True, None),
    ({"check_completed_on": None}, False, "criminal record check"),
    ({"check_completed_on": days_ago(1095)}, True, None),
    ({"check_completed_on": days_ago(1096)}, False, "criminal record check"),
    ({"check_completed_on": TODAY}, True, None),
    ({"last_supervision_on": None}, False, "no supervision within 42 days"),
    ({"last_supervision_on": days_ago(42)}, True, None),
    ({"last_supervision_on": days_ago(43)}, False, "no supervision within 42 days"),
    ({"last_supervision_on": TODAY}, True, None),
], ids=lambda v: repr(v) if isinstance(v, dict) else None)
def test_eligibility_boundaries(changes: dict[str, Any], matchable: bool,
                                reason: str | None) -> None:
    reasons = not_matchable_because(mentor(**changes), TODAY, RULES)
    assert (not reasons) is matchable
    if reason is not None:
        assert len(reasons) == 1
        assert reason in reasons[0]
    choice = choose_mentor(Preferences(), [mentor(**changes)], TODAY, RULES)
    assert choice.mentor_id == ("mnt_a" if matchable else None)


def test_every_reason_is_named_at_once() -> None:
    reasons = not_matchable_because(
        mentor(status="paused", training_completed_on=None, check_completed_on=None,
               last_supervision_on=None), TODAY, RULES)
    assert len(reasons) == 4


@pytest.mark.parametrize(("rules", "check_age", "supervision_age", "matchable"), [
    (EligibilityRules(check_valid_days=365, supervision_days=28), 365, 28, True),
    (EligibilityRules(check_valid_days=365, supervision_days=28), 366, 28, False),
    (EligibilityRules(check_valid_days=365, supervision_days=28), 365, 29, False),
    (EligibilityRules(check_valid_days=2000, supervision_days=90), 1500, 60, True),
    (EligibilityRules(check_valid_days=2000, supervision_days=90), 1500, 91, False),
])
def test_custom_rules(rules: EligibilityRules, check_age: int, supervision_age: int,
                      matchable: bool) -> None:
    profile = mentor(check_completed_on=days_ago(check_age),
                     last_supervision_on=days_ago(supervision_age))
    reasons = not_matchable_because(profile, TODAY, rules)
    assert (not reasons) is matchable
    if not matchable:
        assert any(str(rules.check_valid_days) in r or str(rules.supervision_days) in r
                   for r in reasons)


# --- hard constraints, one at a time ---------------------------------------------------------

@pytest.mark.parametrize(("wanted", "mentor_changes", "matched", "unmet"), [
    # gender
    (Preferences(mentor_gender="any"), {"gender": "male"}, True, ()),
    (Preferences(mentor_gender="any"), {"gender": "female"}, True, ()),
    (Preferences(mentor_gender="female"), {"gender": "female"}, True, ()),
    (Preferences(mentor_gender="female"), {"gender": "male"}, False, ("mentor_gender",)),
    (Preferences(mentor_gender="male"), {"gender": "male"}, True, ()),
    (Preferences(mentor_gender="male"), {"gender": "female"}, False, ("mentor_gender",)),
    (Preferences(mentor_gender="non-binary"), {"gender": "non-binary"}, True, ()),
    # language
    (Preferences(language="ur"), {"languages": frozenset({"en", "ur"})}, True, ()),
    (Preferences(language="ur"), {"languages": frozenset({"en"})}, False, ("language",)),
    (Preferences(language=None), {"languages": frozenset({"pl"})}, True, ()),
    # mode
    (Preferences(mode="video"), {"modes": frozenset({"video"})}, True, ()),
    (Preferences(mode="video"), {"modes": frozenset({"phone", "in-person"})}, False,
     ("mode",)),
    (Preferences(mode="phone"), {"modes": frozenset({"video"})}, False, ("mode",)),
    (Preferences(mode=None), {"modes": frozenset({"phone"})}, True, ()),
    # in person needs the same borough; phone and video do not
    (Preferences(mode="in-person", borough="camden"), {"borough": "camden"}, True, ()),
    (Preferences(mode="in-person", borough="camden"), {"borough": "islington"}, False,
     ("borough",)),
    (Preferences(mode="phone", borough="camden"), {"borough": "islington"}, True, ()),
    (Preferences(mode="video", borough="camden"), {"borough": "islington"}, True, ()),
    (Preferences(mode="in-person", borough="camden"),
     {"borough": "camden", "modes": frozenset({"phone"})}, False, ("mode",)),
])
def test_each_hard_constraint_on_its_own(wanted: Preferences, mentor_changes: dict[str, Any],
                                         matched: bool, unmet: tuple[str, ...]) -> None:
    choice = choose_mentor(wanted, [mentor(**mentor_changes)], TODAY, RULES)
    if matched:
        assert choice == MatchChoice("mnt_a")
    else:
        assert choice == MatchChoice(None, unmet)


def test_a_constraint_picks_the_one_mentor_who_meets_it() -> None:
    mentors = [mentor("mnt_a", languages=frozenset({"en"})),
               mentor("mnt_b", languages=frozenset({"en", "so"})),
               mentor("mnt_c", languages=frozenset({"pl"}))]
    assert choose_mentor(Preferences(language="so"), mentors, TODAY, RULES).mentor_id == "mnt_b"


def test_only_matchable_mentors_are_candidates() -> None:
    mentors = [mentor("mnt_a", status="paused", current_mentees=0),
               mentor("mnt_b", current_mentees=1)]
    assert choose_mentor(Preferences(), mentors, TODAY, RULES).mentor_id == "mnt_b"


# --- tie-breaks ------------------------------------------------------------------------

def at(day: int) -> datetime:
    return datetime(2026, 10, day, 12, tzinfo=UTC)


@pytest.mark.parametrize(("mentors", "winner"), [
    # fewest current mentees first, whatever the history and the id
    ([mentor("mnt_a", capacity=5, current_mentees=2),
      mentor("mnt_b", capacity=5, current_mentees=1, last_matched_at=at(20)),
      mentor("mnt_c", capacity=5, current_mentees=3)], "mnt_b"),
    ([mentor("mnt_z", capacity=5, current_mentees=0, last_matched_at=at(30)),
      mentor("mnt_a", capacity=5, current_mentees=1)], "mnt_z"),
    # then longest since last match
    ([mentor("mnt_a", current_mentees=1, last_matched_at=at(20)),
      mentor("mnt_b", current_mentees=1, last_matched_at=at(3)),
      mentor("mnt_c", current_mentees=1, last_matched_at=at(10))], "mnt_b"),
    # never matched comes before anyone matched, however long ago
    ([mentor("mnt_a", last_matched_at=at(1)),
      mentor("mnt_z", last_matched_at=None)], "mnt_z"),
    # then mentor_id
    ([mentor("mnt_c"), mentor("mnt_a"), mentor("mnt_b")], "mnt_a"),
    ([mentor("mnt_b", last_matched_at=at(5)), mentor("mnt_a", last_matched_at=at(5))],
     "mnt_a"),
])
def test_tie_breaks(mentors: list[MentorProfile], winner: str) -> None:
    assert choose_mentor(Preferences(), mentors, TODAY, RULES).mentor_id == winner
    assert choose_mentor(Preferences(), list(reversed(mentors)), TODAY,
                         RULES).mentor_id == winner


def test_tie_breaks_apply_only_among_those_meeting_the_constraints() -> None:
    mentors = [mentor("mnt_a", gender="male", current_mentees=0),
               mentor("mnt_b", gender="female", current_mentees=1)]
    assert choose_mentor(Preferences(mentor_gender="female"), mentors, TODAY,
                         RULES).mentor_id == "mnt_b"


# --- capacity ------------------------------------------------------------------------------

@pytest.mark.parametrize(("capacity", "current", "has_room"), [
    (2, 0, True), (2, 1, True), (2, 2, False), (1, 1, False), (0, 0, False), (1, 3, False),
])
def test_a_full_mentor_is_not_a_candidate(capacity: int, current: int, has_room: bool) -> None:
    choice = choose_mentor(Preferences(), [mentor(capacity=capacity, current_mentees=current)],
                           TODAY, RULES)
    assert choice == (MatchChoice("mnt_a") if has_room else MatchChoice(None, CAPACITY))


def test_the_full_mentor_is_passed_over_for_one_with_room() -> None:
    mentors = [mentor("mnt_a", capacity=1, current_mentees=1),
               mentor("mnt_b", capacity=3, current_mentees=2, last_matched_at=at(25))]
    assert choose_mentor(Preferences(), mentors, TODAY, RULES).mentor_id == "mnt_b"


# --- the waitlist, with named reasons --------------------------------------------------------

@pytest.mark.parametrize(("wanted", "mentors", "unmet"), [
    # no mentor has room (or nobody is matchable at all): capacity
    (Preferences(), [], CAPACITY),
    (Preferences(), [mentor("mnt_a", capacity=1, current_mentees=1),
                     mentor("mnt_b", capacity=2, current_mentees=2)], CAPACITY),
    (Preferences(language="ur"), [mentor("mnt_a", capacity=1, current_mentees=1,
                                         languages=frozenset({"ur"}))], CAPACITY),
    (Preferences(), [mentor("mnt_a", status="paused"),
                     mentor("mnt_b", last_supervision_on=days_ago(60))], CAPACITY),
    # nobody speaks the language
    (Preferences(language="ur"), [mentor("mnt_a"), mentor("mnt_b",
                                                           languages=frozenset({"en", "pl"}))],
     ("language",)),
    # two constraints unmet: both named
    (Preferences(mentor_gender="male", language="ur"), [mentor("mnt_a"), mentor("mnt_b")],
     ("mentor_gender", "language")),
    (Preferences(language="ur", mode="video"),
     [mentor("mnt_a", modes=frozenset({"phone"}))], ("language", "mode")),
    (Preferences(mentor_gender="male", mode="in-person", borough="hackney"),
     [mentor("mnt_a")], ("mentor_gender", "borough")),
    # each constraint is met by someone, but nobody meets both: both named
    (Preferences(mentor_gender="male", language="ur"),
     [mentor("mnt_a", gender="male"), mentor("mnt_b", languages=frozenset({"ur"}))],
     ("mentor_gender", "language")),
])
def test_waitlist_names_the_unmet_constraints(wanted: Preferences, mentors: list[MentorProfile],
                                              unmet: tuple[str, ...]) -> None:
    choice = choose_mentor(wanted, mentors, TODAY, RULES)
    assert choice == MatchChoice(None, unmet)

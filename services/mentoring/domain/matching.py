"""Who may mentor, and who mentors whom.

A mentor is matchable only when active, trained, with a criminal record check no older than the
check validity (default 1095 days) and supervision within the supervision interval (default
42 days). The mentee's gender, language and mode preferences are hard constraints, and
in-person meetings also need the same borough. Among the candidates with room, the one with the
fewest current mentees wins, then the one matched longest ago (never matched first).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from shared.events.vocabulary import ContactMode, MentorStatus

DEFAULT_CHECK_VALID_DAYS: Final = 1095
DEFAULT_SUPERVISION_DAYS: Final = 42


@dataclass(frozen=True)
class EligibilityRules:
    """How recent a mentor's check and supervision must be."""

    check_valid_days: int = DEFAULT_CHECK_VALID_DAYS
    supervision_days: int = DEFAULT_SUPERVISION_DAYS


@dataclass(frozen=True)
class MentorProfile:
    """What matching needs to know about a mentor."""

    mentor_id: str
    gender: str
    languages: frozenset[str]
    borough: str
    modes: frozenset[ContactMode]
    capacity: int
    status: MentorStatus
    training_completed_on: date | None
    check_completed_on: date | None
    last_supervision_on: date | None
    current_mentees: int = 0
    last_matched_at: datetime | None = None


@dataclass(frozen=True)
class Preferences:
    """A mentee's hard constraints."""

    mentor_gender: str = "any"
    language: str | None = None
    mode: ContactMode | None = None
    borough: str | None = None


def not_matchable_because(mentor: MentorProfile, today: date,
                          rules: EligibilityRules) -> list[str]:
    """Why a mentor cannot be matched today (empty when matchable)."""
    reasons = []
    if mentor.status != "active":
        reasons.append(f"status is {mentor.status}, not active")
    if mentor.training_completed_on is None or mentor.training_completed_on > today:
        reasons.append("training not completed")
    if mentor.check_completed_on is None or \
            today - mentor.check_completed_on > timedelta(days=rules.check_valid_days):
        reasons.append(f"criminal record check missing or older than {rules.check_valid_days} "
                       "days")
    if mentor.last_supervision_on is None or \
            today - mentor.last_supervision_on > timedelta(days=rules.supervision_days):
        reasons.append(f"no supervision within {rules.supervision_days} days")
    return reasons


def _gender_ok(mentor: MentorProfile, wanted: Preferences) -> bool:
    return wanted.mentor_gender == "any" or mentor.gender == wanted.mentor_gender


def _language_ok(mentor: MentorProfile, wanted: Preferences) -> bool:
    return wanted.language is None or wanted.language in mentor.languages


def _mode_ok(mentor: MentorProfile, wanted: Preferences) -> bool:
    return wanted.mode is None or wanted.mode in mentor.modes


def _borough_ok(mentor: MentorProfile, wanted: Preferences) -> bool:
    return wanted.mode != "in-person" or wanted.borough is None or \
        mentor.borough == wanted.borough


CONSTRAINTS: Final = (
    ("mentor_gender", _gender_ok),
    ("language", _language_ok),
    ("mode", _mode_ok),
    ("borough", _borough_ok),
)


@dataclass(frozen=True)
class MatchChoice:
    """The chosen mentor, or the constraints that nobody available meets."""

    mentor_id: str | None
    unmet: tuple[str, ...] = ()


def choose_mentor(wanted: Preferences, mentors: Iterable[MentorProfile], today: date,
                  rules: EligibilityRules) -> MatchChoice:
    """The best matchable mentor with room, or the waitlist with the unmet constraints named."""
    available = [m for m in mentors if not not_matchable_because(m, today, rules)
                 and m.current_mentees < m.capacity]
    candidates = [m for m in available if all(ok(m, wanted) for _, ok in CONSTRAINTS)]
    if candidates:
        best = min(candidates, key=lambda m: (
            m.current_mentees,
            m.last_matched_at.timestamp() if m.last_matched_at else float("-inf"),
            m.mentor_id))
        return MatchChoice(best.mentor_id)
    if not available:
        return MatchChoice(None, ("capacity: no matchable mentor has room",))
    unmet = tuple(name for name, ok in CONSTRAINTS if not any(ok(m, wanted) for m in available))
    return MatchChoice(None, unmet or tuple(name for name, ok in CONSTRAINTS
                                            if not all(ok(m, wanted) for m in available)))

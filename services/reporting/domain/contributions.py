"""What each business event contributes to the de-identified figures.

A contribution is one measure (``screened``, ``current_abuse``...) with value 0 or 1 for one
person, in one cell of the dimensions (organisation, team, borough, gender, age band) and the
calendar month of the event's own date. Contributions are kept per person, so a withdrawal or
erasure can be subtracted exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.events.envelope import EventPayload
from shared.events.mentoring import (
    MatchMade,
    MenteeReferred,
    MentoringEnded,
    OutcomeRecorded,
    SessionLogged,
)
from shared.events.screening import (
    EnquiryDue,
    MaracReferralRequired,
    ScreeningCompleted,
    ScreeningDeclined,
    ScreeningNotSafe,
)

DIMENSIONS: tuple[str, ...] = ("org", "team", "borough", "gender", "age_band")
UNKNOWN = "unknown"
METRIC_SCALE = 100
"""SWEMWBS metric scores are kept as hundredths, so contributions stay whole numbers."""
ATTENDANCE_MEASURES = {
    "attended": "sessions_attended", "did-not-attend": "sessions_did_not_attend",
    "cancelled-by-mentee": "sessions_cancelled", "cancelled-by-mentor": "sessions_cancelled",
}


@dataclass(frozen=True)
class Contribution:
    """One measure of one person in one cell."""

    measure: str
    value: int
    month: str
    org: str
    team: str = UNKNOWN
    borough: str = UNKNOWN
    gender: str = UNKNOWN
    age_band: str = UNKNOWN


def month_of(day: date) -> str:
    """The calendar month (``YYYY-MM``) of an event's own date."""
    return f"{day.year:04d}-{day.month:02d}"


def contributions_of(payload: EventPayload) -> list[Contribution]:
    """The contributions of one event (none for events that do not count)."""
    if isinstance(payload, ScreeningCompleted):
        cell = dict(month=month_of(payload.asked_on), org=payload.org, team=payload.team,
                    borough=payload.borough, gender=payload.gender, age_band=payload.age_band)
        measures = {
            "screened": 1,
            "current_abuse": int(payload.current_abuse),
            "past_abuse": int(payload.past_abuse == "yes"),
            "either_abuse": int(payload.disclosed),
            "asked_in_private": int(payload.private),
        }
        return [Contribution(measure=m, value=v, **cell) for m, v in measures.items()]
    if isinstance(payload, ScreeningDeclined | ScreeningNotSafe):
        measure = "declined" if isinstance(payload, ScreeningDeclined) else "not_safe_to_ask"
        return [Contribution(measure=measure, value=1, month=month_of(payload.asked_on),
                             org=payload.org, team=payload.team, borough=payload.borough,
                             gender=payload.gender, age_band=payload.age_band)]
    if isinstance(payload, EnquiryDue):
        return [Contribution(measure="due", value=1, month=month_of(payload.due_on),
                             org=payload.org, team=payload.team)]
    if isinstance(payload, MaracReferralRequired):
        return [Contribution(measure="marac_referrals", value=1,
                             month=month_of(payload.raised_on), org=payload.org,
                             team=payload.team or UNKNOWN)]
    return _engagement(payload)


def _engagement(payload: EventPayload) -> list[Contribution]:
    """What the mentoring events contribute (active mentees count up on a match, down at its
    end; days to match and SWEMWBS scores feed medians and changes, never published raw)."""
    if isinstance(payload, MenteeReferred):
        return [Contribution(measure="referred", value=1, month=month_of(payload.referred_on),
                             org=payload.referred_by_org, borough=payload.borough or UNKNOWN,
                             gender=payload.gender or UNKNOWN,
                             age_band=payload.age_band or UNKNOWN)]
    if isinstance(payload, MatchMade):
        month = month_of(payload.matched_on)
        return [Contribution(measure="matched", value=1, month=month, org=payload.org),
                Contribution(measure="waitlisted", value=int(payload.waitlisted), month=month,
                             org=payload.org),
                Contribution(measure="active_mentees", value=1, month=month, org=payload.org),
                Contribution(measure="days_to_match", value=payload.days_from_referral,
                             month=month, org=payload.org)]
    if isinstance(payload, SessionLogged):
        return [Contribution(measure=ATTENDANCE_MEASURES[payload.attendance], value=1,
                             month=month_of(payload.held_on), org=payload.org)]
    if isinstance(payload, MentoringEnded):
        month = month_of(payload.ended_on)
        ending = "planned_endings" if payload.planned else "unplanned_endings"
        return [Contribution(measure=ending, value=1, month=month, org=payload.org),
                Contribution(measure="active_mentees", value=-1, month=month, org=payload.org)]
    if isinstance(payload, OutcomeRecorded) and payload.instrument == "SWEMWBS" \
            and payload.timepoint in ("intake", "exit") and payload.metric_score is not None:
        return [Contribution(measure=f"swemwbs_{payload.timepoint}",
                             value=round(payload.metric_score * METRIC_SCALE),
                             month=month_of(payload.recorded_on), org=payload.org)]
    return []

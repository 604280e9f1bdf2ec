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
from shared.events.screening import (
    EnquiryDue,
    ScreeningCompleted,
    ScreeningDeclined,
    ScreeningNotSafe,
)

DIMENSIONS: tuple[str, ...] = ("org", "team", "borough", "gender", "age_band")
UNKNOWN = "unknown"


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
    return []

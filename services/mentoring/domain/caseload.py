"""What falls due on a coordinator's caseload: each active match's next session and missing
intake measure, each ended match's timed follow-ups, each mentor's supervision and check.
Dates only, free of I/O."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from services.mentoring.domain.matching import EligibilityRules

DUE_WITHIN: Final = timedelta(days=14)
"""How far ahead a caseload looks: what falls due in the next 14 days, or is overdue."""
FOLLOW_UP_WINDOW: Final = timedelta(days=60)
"""How long after its date a follow-up not taken stays on the list (then it is missed)."""


@dataclass(frozen=True)
class Due:
    """One thing due: what, and when."""

    what: str
    due_on: date

    def view(self, today: date) -> dict[str, object]:
        """As a caseload lists it."""
        return {"what": self.what, "due_on": self.due_on.isoformat(),
                "overdue": self.due_on < today}


def months_after(day: date, months: int) -> date:
    """The same day ``months`` calendar months on (the month's last day when it is shorter)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_session(matched_on: date, last_held_on: date | None, every: timedelta) -> Due:
    """The next session of an active match: ``every`` after the last one (or the match)."""
    return Due("session", (last_held_on or matched_on) + every)


def follow_ups_due(ended_on: date, taken: set[str], follow_ups: dict[str, int], today: date
                   ) -> list[Due]:
    """The timed follow-ups of an ended match not yet taken, due within ``DUE_WITHIN`` or
    overdue by no more than ``FOLLOW_UP_WINDOW``."""
    due = [Due(timepoint, months_after(ended_on, months))
           for timepoint, months in follow_ups.items() if timepoint not in taken]
    return [d for d in due if today - FOLLOW_UP_WINDOW <= d.due_on <= today + DUE_WITHIN]


def mentor_dues(last_supervision_on: date | None, check_completed_on: date | None,
                rules: EligibilityRules, today: date) -> list[Due]:
    """A mentor's supervision and criminal record check, when either falls due within
    ``DUE_WITHIN`` (or is already due: never held counts as due today)."""
    dues = [Due("supervision", today if last_supervision_on is None
                else last_supervision_on + timedelta(days=rules.supervision_days)),
            Due("check", today if check_completed_on is None
                else check_completed_on + timedelta(days=rules.check_valid_days))]
    return [d for d in dues if d.due_on <= today + DUE_WITHIN]

"""Rules for the requests a person makes of the controller, free of I/O.

Erasure (UK GDPR Art. 17) and subject access (Art. 15) must be answered within one calendar
month of the request; the DPO may extend an erasure request once, by up to two further months,
saying why. An erasure request is decided once by the holding organisation's DPO: approve,
approve except record kinds kept under another lawful basis, or refuse (the reason is shown, as
the person must be told why).
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Final, Literal

from shared.events.vocabulary import RetainedKind

Decision = Literal["approve", "approve-except-retained", "refuse"]
RESPONSE_MONTHS: Final = 1
MAX_EXTENSION_MONTHS: Final = 2
ALWAYS_RETAINED: Final = (
    {"kind": "safeguarding-records",
     "lawful_basis": "UK GDPR Art. 17(3)(b) and (c): MARAC referrals with their DASH, "
                     "safeguarding concerns and safe-contact instructions are kept to comply "
                     "with a legal obligation and for public health in the public interest; "
                     "they never rested on consent"},
)
"""What every erasure keeps, whatever the DPO decides, and why."""


class ErasureStatus(enum.StrEnum):
    """Where an erasure request stands."""

    AWAITING = "awaiting-dpo-decision"
    REFUSED = "refused"
    IN_PROGRESS = "in-progress"
    COMPLETE = "complete"


class AccessRequestStatus(enum.StrEnum):
    """Where a subject access request stands."""

    OPEN = "open"
    COMPLETE = "complete"


class RequestRuleBroken(ValueError):
    """A decision or extension the rules do not allow; names the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AlreadyDecided(RuntimeError):
    """The request was decided already: a decision is made once."""


class AlreadyExtended(RuntimeError):
    """The request's deadline was extended already: once only."""


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months; a day the target month lacks becomes its last day
    (31 January plus one month is 28 or 29 February)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def due_at(requested_at: datetime) -> datetime:
    """When the answer to a request is due: one calendar month after it was made."""
    return add_months(requested_at, RESPONSE_MONTHS)


def is_overdue(status: str, due: datetime, now: datetime) -> bool:
    """Whether a request still waiting for its answer is past its deadline."""
    waiting = status in (ErasureStatus.AWAITING, AccessRequestStatus.OPEN)
    return waiting and now > due


def extended_due_at(status: str, due: datetime, extended_months: int | None, months: int,
                    reason: str) -> datetime:
    """The new deadline of an erasure request extended by ``months`` (1 or 2), once, while it
    awaits the decision."""
    if status != ErasureStatus.AWAITING:
        raise AlreadyDecided()
    if extended_months:
        raise AlreadyExtended()
    if not 1 <= months <= MAX_EXTENSION_MONTHS:
        raise RequestRuleBroken("months", "months: an extension is 1 or 2 further months")
    if not reason.strip():
        raise RequestRuleBroken("reason", "reason: say why the request needs longer (the "
                                          "person must be told)")
    return add_months(due, months)


def check_decision(status: str, decision: Decision, reason: str | None,
                   retained: Sequence[RetainedKind] | None) -> tuple[RetainedKind, ...]:
    """Check a DPO's decision against the rules; returns the record kinds it keeps.

    A decision is made once. ``refuse`` and ``approve-except-retained`` need a reason; only
    ``approve-except-retained`` names retained kinds, and it must name at least one.
    """
    if status != ErasureStatus.AWAITING:
        raise AlreadyDecided()
    if decision != "approve" and not (reason or "").strip():
        raise RequestRuleBroken("reason", f"reason: required to {decision} (the person must "
                                          "be told why)")
    if decision == "approve-except-retained":
        if not retained:
            raise RequestRuleBroken("retained", "retained: name the record kinds kept under "
                                                "another lawful basis")
        return tuple(retained)
    if retained is not None:
        raise RequestRuleBroken("retained", f"retained: only approve-except-retained keeps "
                                            f"record kinds, not {decision}")
    return ()


def status_after_decision(decision: Decision) -> ErasureStatus:
    """Refusal ends the request; approval starts erasing."""
    return ErasureStatus.REFUSED if decision == "refuse" else ErasureStatus.IN_PROGRESS

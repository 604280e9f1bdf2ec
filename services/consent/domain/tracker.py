"""The withdrawal tracker: a process manager that proves a withdrawal happened everywhere.

A withdrawal is pending until every required service has acknowledged it, then complete. If
the deadline passes first it is overdue (once: one alert, one event), and it still completes
by itself when the late service catches up. Acknowledgements are idempotent; one from a
service that was not required is recorded but changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from shared.events.vocabulary import ServiceName


class CascadeStatus(enum.StrEnum):
    """Where a withdrawal's cascade stands."""

    PENDING = "pending"
    OVERDUE = "overdue"
    COMPLETE = "complete"


class Transition(enum.Enum):
    """What a step of the state machine caused, for the caller to publish."""

    NONE = "none"
    COMPLETED = "completed"
    BECAME_OVERDUE = "became-overdue"


@dataclass
class WithdrawalCascade:
    """One withdrawal's acknowledgements against its required services."""

    required: frozenset[ServiceName]
    requested_at: datetime
    deadline_at: datetime
    status: CascadeStatus = CascadeStatus.PENDING
    acknowledged: dict[ServiceName, datetime] = field(default_factory=dict)
    completed_at: datetime | None = None

    @property
    def pending(self) -> frozenset[ServiceName]:
        """Required services that have not acknowledged yet."""
        return frozenset(self.required - self.acknowledged.keys())

    def acknowledge(self, service: ServiceName, applied_at: datetime) -> Transition:
        """Record a service's acknowledgement; the first one from each service counts."""
        self.acknowledged.setdefault(service, applied_at)
        if self.status is not CascadeStatus.COMPLETE and not self.pending:
            self.status = CascadeStatus.COMPLETE
            self.completed_at = max(self.acknowledged[s] for s in self.required) \
                if self.required else applied_at
            return Transition.COMPLETED
        return Transition.NONE

    def check_deadline(self, now: datetime) -> Transition:
        """Mark the withdrawal overdue once its deadline has passed while pending."""
        if self.status is CascadeStatus.PENDING and now >= self.deadline_at:
            self.status = CascadeStatus.OVERDUE
            return Transition.BECAME_OVERDUE
        return Transition.NONE

"""The reporting service's collaborators in memory, for its use-case unit tests: the read
model over in-memory SQLite (``memory_database``), disclosure settings with a small K, and
counted events as the worker hands them over."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, func, select

from services.reporting.adapters.tables import metadata, published_rows
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules
from services.reporting.service_layer.read_model import apply_event
from shared.auth import Principal
from shared.db import Database
from shared.events.consent import ConsentGranted, ConsentWithdrawn
from shared.events.envelope import CloudEvent
from shared.events.screening import ScreeningCompleted
from tests.support.fakes import memory_database

K = 3
"""People who must move before a figure changes, small enough to reach in a few events."""
RELEASED_AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ASKED_ON = date(2026, 11, 2)
ORG_KINDS = {"trust": "nhs-trust", "partner-a": "dva-partner"}


def consent_granted(subject: str, purpose: str, org: str = "trust"
                    ) -> tuple[CloudEvent, ConsentGranted]:
    """A consent-granted event about ``subject``, as the consent service publishes it."""
    granted = ConsentGranted.model_validate({"consent_id": f"cc-{subject}-{purpose}",
                                             "purpose": purpose, "method": "verbal",
                                             "org": org})
    return CloudEvent.wrap(granted, source="/peerlink/consent", subject=subject), granted


def withdrawal(*purposes: str, org: str = "trust") -> ConsentWithdrawn:
    """A consent-withdrawn payload of ``purposes`` recorded by ``org``."""
    return ConsentWithdrawn.model_validate({"withdrawal_id": "w-1", "purposes": purposes,
                                            "erasure": False, "method": "verbal",
                                            "org": org})


def viewer(org: str = "trust", *roles: str) -> Principal:
    """A person signed in at ``org`` with ``roles`` (ops-viewer by default)."""
    return Principal(subject=f"viewer-at-{org}", org=org,
                     roles=frozenset(roles or {"ops-viewer"}), org_kind=ORG_KINDS[org])


@dataclass
class ReportingWorld:
    """The reporting read model in memory, and the events that reached it."""

    policy: DisclosurePolicy = field(default_factory=lambda: DisclosurePolicy(k=K))
    rules: OutcomeRules = field(default_factory=OutcomeRules)
    database: Database = field(default_factory=lambda: memory_database(metadata))

    def screened(self, subject: str, current: bool = False, org: str = "trust",
                 asked_on: date = ASKED_ON) -> CloudEvent:
        """A screening of ``subject`` applied to the read model, as the worker applies it."""
        payload = ScreeningCompleted(
            screening_id=f"scr-{subject}-{asked_on}", org=org, team="north", borough="camden",
            gender="female", age_band="25-34", asked_on=asked_on, asked_by_role="nurse",
            training_level=2, private=True, hark_score=int(current), current_abuse=current,
            past_abuse="no", disclosed=current)
        event = CloudEvent.wrap(payload, source="/peerlink/screening", subject=subject)
        with self.database.unit_of_work() as uow:
            apply_event(uow, event, payload)
        return event

    def rows(self, table: Table, **where: Any) -> list[Any]:
        """The rows of ``table`` (those matching ``where``)."""
        query = select(table).where(*(table.c[k] == v for k, v in where.items()))
        with self.database.read() as session:
            return list(session.execute(query))

    def count(self, table: Table) -> int:
        """How many rows ``table`` holds."""
        with self.database.read() as session:
            return int(session.execute(select(func.count()).select_from(table)).scalar_one())

    def memory(self) -> dict[str, dict[str, Any]]:
        """The release rule's memory, by row key."""
        return {row.row_key: json.loads(row.state) for row in self.rows(published_rows)}

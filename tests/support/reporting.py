"""The reporting read model on a test database: a migrated database and screenings applied
straight to it (no broker), for the read-model and release tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from ops.migrations import migrate
from services.reporting.adapters.tables import metadata
from services.reporting.service_layer.read_model import apply_event
from shared.db import Database
from shared.events.envelope import CloudEvent
from shared.events.screening import ScreeningCompleted


@contextmanager
def reporting_database(url: str) -> Iterator[Database]:
    """The reporting database at ``url``, migrated, disposed of afterwards."""
    migrate("reporting", url)
    db = Database(url, metadata)
    try:
        yield db
    finally:
        db.dispose()


def screened(db: Database, subject: str, current: bool, org: str = "trust") -> CloudEvent:
    """Apply one completed screening of ``subject`` (current abuse or none) to the model."""
    payload = ScreeningCompleted(
        screening_id="scr", org=org, team="t", borough="camden", gender="female",
        age_band="25-34", asked_on=date(2026, 11, 2), asked_by_role="nurse", training_level=2,
        private=True, hark_score=int(current), current_abuse=current, past_abuse="no",
        disclosed=current)
    event = CloudEvent.wrap(payload, source="/peerlink/screening", subject=subject)
    with db.unit_of_work() as uow:
        apply_event(uow, event, payload)
    return event

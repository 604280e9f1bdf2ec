"""The person's current safe-contact instructions: a safe number, safe times, whether a
message may be left. Held sealed under the person's data key (so erasure shreds them), and
every update published to every holder (``safe-contact-updated``) in the same transaction.
Every read and every write is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import update

from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import subjects
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.identity import cipher_for, live_subject, opened_fields
from services.consent.service_layer.subjects import SOURCE
from shared.auth import Principal
from shared.db import UnitOfWork, utcnow
from shared.events.consent import SafeContact, SafeContactUpdated
from shared.events.envelope import CloudEvent
from shared.kafka.topics import events_topic

STORED_CONTEXT: Final = "subject.safe_contact"


@dataclass(frozen=True)
class SafeContactRecord:
    """The current instructions, when any were recorded."""

    contact: SafeContact | None
    updated_at: datetime | None


def update_safe_contact(uow: UnitOfWork, keys: SqlDataKeyStore, subject_id: str,
                        contact: SafeContact, caller: Principal, *,
                        trail: AuditTrail) -> datetime:
    """Replace the person's safe-contact instructions for the caller's organisation (which
    must have a relationship with them) and tell every holder; returns when."""
    session = uow.session
    live_subject(session, subject_id, caller)
    cipher = cipher_for(session, keys, subject_id)
    fields = {"safe_contact": contact.model_dump()}
    stored = cipher.seal(subject_id, STORED_CONTEXT, fields)
    now = utcnow()
    session.execute(update(subjects).where(subjects.c.subject_id == subject_id).values(
        safe_contact_sealed=stored.model_dump_json().encode(), safe_contact_updated_at=now))
    personal = cipher.seal(subject_id, SafeContactUpdated.event_type, fields)
    uow.publish(CloudEvent.wrap(SafeContactUpdated(org=caller.org, personal=personal),
                                source=SOURCE, subject=subject_id),
                events_topic("consent"), aggregate_type="subject")
    trail.record(uow, caller, "safe-contact-updated", subject_id)
    return now


def read_safe_contact(uow: UnitOfWork, keys: SqlDataKeyStore, subject_id: str,
                      caller: Principal, *, trail: AuditTrail) -> SafeContactRecord:
    """The person's current safe-contact instructions (none when never recorded), for the
    caller's organisation (which must have a relationship with them); the read is audited."""
    session = uow.session
    row = live_subject(session, subject_id, caller)
    trail.record(uow, caller, "safe-contact-read", subject_id,
                 recorded=row.safe_contact_sealed is not None)
    if row.safe_contact_sealed is None:
        return SafeContactRecord(None, None)
    opened = opened_fields(session, keys, subject_id, STORED_CONTEXT, row.safe_contact_sealed)
    return SafeContactRecord(SafeContact.model_validate(opened["safe_contact"]),
                             row.safe_contact_updated_at)

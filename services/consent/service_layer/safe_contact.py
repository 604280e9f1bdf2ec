"""The person's safe-contact instructions: a safe number, safe times, whether a message may be
left. Each organisation holds its own copy (``safe_contacts``, one row per subject and
organisation), sealed under the person's data key (so erasure shreds them): an organisation
reads and replaces only its own copy, so a relationship gained by registering someone never
opens the number another organisation recorded, and never lets it overwrite that number.
Every update is published (``safe-contact-updated``, ``org`` naming whose copy changed) in the
same transaction; holders apply it only to records that organisation is party to. Every read
and every write is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.consent.adapters.tables import safe_contacts
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.identity import cipher_for, live_subject, opened_fields
from services.consent.service_layer.ports import SubjectKeys
from services.consent.service_layer.subjects import SOURCE
from shared.auth import Principal
from shared.db import UnitOfWork, insert_if_absent, utcnow
from shared.events.consent import SafeContact, SafeContactUpdated
from shared.events.envelope import CloudEvent
from shared.kafka.topics import events_topic

STORED_CONTEXT: Final = "subject.safe_contact"


@dataclass(frozen=True)
class SafeContactRecord:
    """The organisation's current instructions, when it recorded any."""

    contact: SafeContact | None
    updated_at: datetime | None


def update_safe_contact(uow: UnitOfWork, keys: SubjectKeys, subject_id: str,
                        contact: SafeContact, caller: Principal, *,
                        trail: AuditTrail) -> datetime:
    """Replace the caller's organisation's copy of the person's safe-contact instructions (it
    must have a relationship with them) and tell every holder whose copy changed; returns
    when."""
    session = uow.session
    live_subject(session, subject_id, caller)
    cipher = cipher_for(session, keys, subject_id)
    fields = {"safe_contact": contact.model_dump()}
    stored = cipher.seal(subject_id, STORED_CONTEXT, fields).model_dump_json().encode()
    now = utcnow()
    if not insert_if_absent(session, safe_contacts, subject_id=subject_id, org=caller.org,
                            safe_contact_sealed=stored, updated_at=now):
        session.execute(update(safe_contacts).where(
            safe_contacts.c.subject_id == subject_id, safe_contacts.c.org == caller.org)
            .values(safe_contact_sealed=stored, updated_at=now))
    personal = cipher.seal(subject_id, SafeContactUpdated.event_type, fields)
    uow.publish(CloudEvent.wrap(SafeContactUpdated(org=caller.org, personal=personal),
                                source=SOURCE, subject=subject_id),
                events_topic("consent"), aggregate_type="subject")
    trail.record(uow, caller, "safe-contact-updated", subject_id)
    return now


def own_copy(session: Session, subject_id: str, org: str) -> Any:
    """The organisation's own safe-contact row for the person, if it recorded one."""
    return session.execute(select(safe_contacts).where(
        safe_contacts.c.subject_id == subject_id, safe_contacts.c.org == org)).first()


def opened(session: Session, keys: SubjectKeys, row: Any) -> SafeContact:
    """A safe-contact row's instructions, opened under the person's live data key."""
    fields = opened_fields(session, keys, row.subject_id, STORED_CONTEXT,
                           row.safe_contact_sealed)
    return SafeContact.model_validate(fields["safe_contact"])


def read_safe_contact(uow: UnitOfWork, keys: SubjectKeys, subject_id: str,
                      caller: Principal, *, trail: AuditTrail) -> SafeContactRecord:
    """The caller's organisation's copy of the person's safe-contact instructions (none when
    it recorded none, whatever another organisation recorded), for an organisation with a
    relationship with them; the read is audited."""
    session = uow.session
    live_subject(session, subject_id, caller)
    row = own_copy(session, subject_id, caller.org)
    trail.record(uow, caller, "safe-contact-read", subject_id, recorded=row is not None)
    if row is None:
        return SafeContactRecord(None, None)
    return SafeContactRecord(opened(session, keys, row), row.updated_at)

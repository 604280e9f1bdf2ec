"""Registering people: a random reference, a data key and the NHS-number mapping."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import subjects
from services.consent.domain.subjects import NhsNumberLookup
from shared.crypto import KnownKeys, PersonalDataCipher
from shared.db import UnitOfWork, utcnow
from shared.events.consent import SubjectRegistered
from shared.events.envelope import CloudEvent
from shared.identity import new_subject_reference
from shared.kafka.topics import events_topic

SOURCE = "/peerlink/consent"


@dataclass(frozen=True)
class Registration:
    """The outcome of registering a person."""

    subject_id: str
    created: bool


def register_subject(uow: UnitOfWork, keys: SqlDataKeyStore, lookup: NhsNumberLookup,
                     nhs_number: str, org: str) -> Registration:
    """Return the person's subject reference, creating it (with a data key) when new."""
    digest = lookup.digest(nhs_number)
    existing = uow.session.execute(
        select(subjects.c.subject_id).where(subjects.c.nhs_lookup == digest)).first()
    if existing is not None:
        return Registration(existing.subject_id, created=False)
    subject_id = new_subject_reference()
    key = keys.create(uow.session, subject_id)
    cipher = PersonalDataCipher(KnownKeys({subject_id: key}))
    sealed = cipher.seal(subject_id, "subject.nhs_number", {"nhs_number": nhs_number})
    uow.session.execute(subjects.insert().values(
        subject_id=subject_id, nhs_lookup=digest,
        nhs_number_sealed=sealed.model_dump_json().encode(),
        registered_by_org=org, registered_at=utcnow()))
    personal = cipher.seal(subject_id, SubjectRegistered.event_type, {"nhs_number": nhs_number})
    event = CloudEvent.wrap(SubjectRegistered(org=org, personal=personal),
                            source=SOURCE, subject=subject_id)
    uow.publish(event, events_topic("consent"), aggregate_type="subject")
    return Registration(subject_id, created=True)

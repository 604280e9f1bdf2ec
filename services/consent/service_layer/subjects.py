"""Registering people: a random reference, a data key and the NHS-number mapping."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import subject_orgs, subjects
from services.consent.domain.subjects import NhsNumberLookup
from services.consent.service_layer.audit import AuditTrail
from shared.auth import Principal
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
                     nhs_number: str, caller: Principal, *, trail: AuditTrail) -> Registration:
    """Return the person's subject reference, creating it (with a data key) when new.

    The caller's organisation is linked to the person, so it may act on their consent.
    """
    org = caller.org
    digest = lookup.digest(nhs_number)
    existing = uow.session.execute(
        select(subjects.c.subject_id).where(subjects.c.nhs_lookup == digest)).first()
    if existing is not None:
        _link(uow, existing.subject_id, org)
        trail.record(uow, caller, "subject-looked-up", existing.subject_id)
        return Registration(existing.subject_id, created=False)
    subject_id = new_subject_reference()
    key = keys.create(uow.session, subject_id)
    cipher = PersonalDataCipher(KnownKeys({subject_id: key}))
    sealed = cipher.seal(subject_id, "subject.nhs_number", {"nhs_number": nhs_number})
    uow.session.execute(subjects.insert().values(
        subject_id=subject_id, nhs_lookup=digest,
        nhs_number_sealed=sealed.model_dump_json().encode(),
        registered_by_org=org, registered_at=utcnow()))
    _link(uow, subject_id, org)
    trail.record(uow, caller, "subject-registered", subject_id)
    personal = cipher.seal(subject_id, SubjectRegistered.event_type, {"nhs_number": nhs_number})
    event = CloudEvent.wrap(SubjectRegistered(org=org, personal=personal),
                            source=SOURCE, subject=subject_id)
    uow.publish(event, events_topic("consent"), aggregate_type="subject")
    return Registration(subject_id, created=True)


def _link(uow: UnitOfWork, subject_id: str, org: str) -> None:
    linked = uow.session.execute(select(subject_orgs.c.org).where(
        subject_orgs.c.subject_id == subject_id, subject_orgs.c.org == org)).first()
    if linked is None:
        uow.session.execute(subject_orgs.insert().values(subject_id=subject_id, org=org))

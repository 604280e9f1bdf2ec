"""Registering people: a random reference, a data key and the NHS-number mapping."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import subject_orgs, subjects
from services.consent.domain.subjects import NhsNumberLookup
from services.consent.service_layer.audit import AuditTrail
from shared.auth import Principal
from shared.crypto import KnownKeys, PersonalDataCipher
from shared.db import UnitOfWork, insert_if_absent, utcnow
from shared.events.consent import RelationshipEstablished, SubjectRegistered
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import RelationshipBasis
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

    The caller's organisation gains a relationship with the person (registered as its own),
    which lets it record and see its own consents and records, never another organisation's.
    The person keeps one reference across the programme, so a repeat MARAC referral is still
    recognised; the caller is told nothing about whether the person was already known (the
    audit entry is the same either way).
    """
    org = caller.org
    digest = lookup.digest(nhs_number)
    existing = uow.session.execute(
        select(subjects.c.subject_id).where(subjects.c.nhs_lookup == digest)).first()
    if existing is not None:
        establish(uow, existing.subject_id, org, "registered")
        trail.record(uow, caller, "subject-registered", existing.subject_id)
        return Registration(existing.subject_id, created=False)
    subject_id = new_subject_reference()
    key = keys.create(uow.session, subject_id)
    cipher = PersonalDataCipher(KnownKeys({subject_id: key}))
    sealed = cipher.seal(subject_id, "subject.nhs_number", {"nhs_number": nhs_number})
    uow.session.execute(subjects.insert().values(
        subject_id=subject_id, nhs_lookup=digest,
        nhs_number_sealed=sealed.model_dump_json().encode(),
        registered_by_org=org, registered_at=utcnow()))
    trail.record(uow, caller, "subject-registered", subject_id)
    personal = cipher.seal(subject_id, SubjectRegistered.event_type, {"nhs_number": nhs_number})
    event = CloudEvent.wrap(SubjectRegistered(org=org, personal=personal),
                            source=SOURCE, subject=subject_id)
    uow.publish(event, events_topic("consent"), aggregate_type="subject")
    establish(uow, subject_id, org, "registered")
    return Registration(subject_id, created=True)


def others_hold_independently(session: Session, subject_id: str, org: str) -> bool:
    """Whether another organisation has a relationship with the person that did not come
    from ``org``'s own referral (it registered them, or another organisation referred them)."""
    return session.execute(select(subject_orgs.c.org).where(
        subject_orgs.c.subject_id == subject_id, subject_orgs.c.org != org,
        or_(subject_orgs.c.referred_by.is_(None), subject_orgs.c.referred_by != org)).limit(1)
    ).first() is not None


def has_relationship(session: Session, subject_id: str, org: str) -> bool:
    """Whether ``org`` has a relationship with the person."""
    return session.execute(select(subject_orgs.c.org).where(
        subject_orgs.c.subject_id == subject_id, subject_orgs.c.org == org)).first() is not None


def establish(uow: UnitOfWork, subject_id: str, org: str, basis: RelationshipBasis,
              referred_by: str | None = None) -> bool:
    """Give ``org`` a relationship with the person (once) and tell every service; returns
    whether it is new (two requests at once establish it once)."""
    if not insert_if_absent(uow.session, subject_orgs, subject_id=subject_id, org=org,
                            basis=basis, referred_by=referred_by):
        return False
    uow.publish(CloudEvent.wrap(RelationshipEstablished(org=org, basis=basis), source=SOURCE,
                                subject=subject_id),
                events_topic("consent"), aggregate_type="subject")
    return True

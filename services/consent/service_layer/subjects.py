"""Registering people: a random reference, a data key, and the mapping from their NHS number
(or a DVA partner's own client identifier); relationships with organisations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import Column, or_, select, update
from sqlalchemy.orm import Session

from services.consent.adapters.tables import subject_orgs, subjects
from services.consent.domain.subjects import NhsNumberLookup, SafeguardingPseudonyms
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.ports import SubjectKeys
from shared.auth import Principal
from shared.crypto import DataKey, KnownKeys, PersonalDataCipher
from shared.db import Database, UnitOfWork, insert_if_absent, utcnow
from shared.events.consent import RelationshipEstablished, SubjectRegistered
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import RelationshipBasis
from shared.identity import new_subject_reference
from shared.kafka.topics import events_topic

SOURCE = "/peerlink/consent"


NHS_NUMBER_CONTEXT: Final = "subject.nhs_number"
LOCAL_ID_CONTEXT: Final = "subject.local_id"
IdentifiedBy = Literal["nhs-number", "local-id"]
FORGOTTEN_ON_ERASURE: Final[dict[str, None]] = {
    "nhs_lookup": None, "nhs_number_sealed": None, "local_lookup": None,
    "local_id_sealed": None, "safeguarding_pseudonym": None}
"""What an erasure removes from the person's subject row: every way to find them, and what
was sealed under their (shredded) key. (Safe contact is held per organisation in
``safe_contacts``, whose rows erasure deletes.)"""


@dataclass(frozen=True)
class Identifiers:
    """The keyed hashes that name people: the lookups (under a key derived from the master
    key) and the safeguarding pseudonym (under its own key)."""

    lookup: NhsNumberLookup
    pseudonyms: SafeguardingPseudonyms


@dataclass(frozen=True)
class Registration:
    """The outcome of registering a person."""

    subject_id: str
    created: bool
    key: DataKey | None = None
    """The data key made for a new subject (None when the person was known)."""


@dataclass(frozen=True)
class _Naming:
    """How a registration names the person: which lookup column, its value, the pseudonym,
    and the sealed column with what it seals."""

    identified_by: IdentifiedBy
    column: Column[Any]
    digest: str
    pseudonym: str
    sealed_column: str
    context: str
    fields: dict[str, str]


def _naming(identifiers: Identifiers, org: str, nhs_number: str | None,
            local_id: str | None) -> _Naming:
    if nhs_number is not None and local_id is None:
        return _Naming("nhs-number", subjects.c.nhs_lookup, identifiers.lookup.digest(nhs_number),
                       identifiers.pseudonyms.of_nhs_number(nhs_number), "nhs_number_sealed",
                       NHS_NUMBER_CONTEXT, {"nhs_number": nhs_number})
    if local_id is not None and nhs_number is None:
        return _Naming("local-id", subjects.c.local_lookup,
                       identifiers.lookup.local_digest(org, local_id),
                       identifiers.pseudonyms.of_local_id(org, local_id), "local_id_sealed",
                       LOCAL_ID_CONTEXT, {"local_id": local_id})
    raise ValueError("a person is registered by exactly one of an NHS number or a local id")


def _live_subject(session: Session, naming: _Naming) -> str | None:
    """The subject the lookup names, if any, its row locked until commit (PostgreSQL: FOR NO
    KEY UPDATE, which an erasure's FOR UPDATE waits for, and which waits for an erasure
    under way, then reads the row as it left it): the person cannot be erased between this
    read and the registration's commit. An erased subject whose lookup survived (erasure
    removes it) is released from it, so registering the person again gives a new subject."""
    row = session.execute(select(subjects.c.subject_id, subjects.c.erased_at)
                          .where(naming.column == naming.digest)
                          .with_for_update(key_share=True)).first()
    if row is None:
        return None
    if row.erased_at is not None:
        session.execute(update(subjects).where(subjects.c.subject_id == row.subject_id)
                        .values({naming.column.name: None}))
        return None
    return str(row.subject_id)


def register_subject(uow: UnitOfWork, keys: SubjectKeys, identifiers: Identifiers,
                     caller: Principal, *, nhs_number: str | None = None,
                     local_id: str | None = None, trail: AuditTrail) -> Registration:
    """Return the person's subject reference, creating it (with a data key) when new.

    The person is named by a normalised NHS number, or, without one, by ``local_id``: the
    caller's organisation's own client identifier (the same identifier at another organisation
    is another person). The caller's organisation gains a relationship with the person
    (registered as its own), which lets it record and see its own consents and records, never
    another organisation's. The person keeps one reference across the programme, so a repeat
    MARAC referral is still recognised; the caller is told nothing about whether the person
    was already known (the audit entry is the same either way). Two registrations of one
    person at once make one subject (the look-up columns are unique; the second insert does
    nothing and finds the first).
    """
    org = caller.org
    naming = _naming(identifiers, org, nhs_number, local_id)
    session = uow.session
    subject_id = _live_subject(session, naming)
    created, key = False, None
    if subject_id is None:
        candidate = new_subject_reference()
        insert_if_absent(session, subjects, subject_id=candidate, registered_by_org=org,
                         registered_at=utcnow(), safeguarding_pseudonym=naming.pseudonym,
                         **{naming.column.name: naming.digest})
        # whichever registration of the person committed first holds the look-up (read back:
        # the insert's row count is not reliable on PostgreSQL)
        subject_id = session.execute(select(subjects.c.subject_id)
                                     .where(naming.column == naming.digest)).scalar_one()
        created = subject_id == candidate
    trail.record(uow, caller, "subject-registered", subject_id,
                 identified_by=naming.identified_by)
    if created:
        key = keys.create(session, subject_id)
        cipher = PersonalDataCipher(KnownKeys({subject_id: key}))
        sealed = cipher.seal(subject_id, naming.context, naming.fields)
        session.execute(update(subjects).where(subjects.c.subject_id == subject_id).values(
            {naming.sealed_column: sealed.model_dump_json().encode()}))
        personal = (cipher.seal(subject_id, SubjectRegistered.event_type, naming.fields)
                    if naming.identified_by == "nhs-number" else None)
        uow.publish(CloudEvent.wrap(SubjectRegistered(org=org, personal=personal),
                                    source=SOURCE, subject=subject_id),
                    events_topic("consent"), aggregate_type="subject")
    establish(uow, subject_id, org, "registered")
    return Registration(subject_id, created=created, key=key)


def register_keyed(uow: UnitOfWork, keys: SubjectKeys, identifiers: Identifiers,
                   caller: Principal, nhs_number: str, *,
                   trail: AuditTrail) -> tuple[str, DataKey]:
    """``register_subject`` by NHS number for a service that seals the person's fields, and
    the person's data key with it (audited as served, in the same transaction): what the
    service would otherwise fetch in a second request, straight after. The key is that of
    a subject live as this commits (``_live_subject`` holds the person's row against an
    erasure); raises ``KeyShredded`` if their key is gone all the same."""
    registration = register_subject(uow, keys, identifiers, caller, nhs_number=nhs_number,
                                    trail=trail)
    key = registration.key or keys.data_key_in(uow.session, registration.subject_id)
    trail.record(uow, caller, "data-key-served", registration.subject_id)
    return registration.subject_id, key


def serve_data_key(database: Database, keys: SubjectKeys, subject_id: str,
                   caller: Principal, *, trail: AuditTrail) -> DataKey:
    """The person's data key, for a service holding their sealed fields (audited once
    served); raises ``KeyShredded`` or ``UnknownSubject``."""
    key = keys.data_key(subject_id)
    with database.unit_of_work() as uow:
        trail.record(uow, caller, "data-key-served", subject_id)
    return key


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
                            basis=basis, referred_by=referred_by, established_at=utcnow()):
        return False
    uow.publish(CloudEvent.wrap(RelationshipEstablished(org=org, basis=basis), source=SOURCE,
                                subject=subject_id),
                events_topic("consent"), aggregate_type="subject")
    return True

"""Fakes of the consent service's own ports, for its use cases' unit tests: people's data keys
in memory, the published audit heads, fixed keys for the audit chain, the records cipher and
the identifiers, all over ``memory_database`` (consent's tables, no migration)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.consent.adapters.tables import metadata
from services.consent.domain.audit import PublishedHead
from services.consent.domain.callers import Organisations
from services.consent.domain.subjects import NhsNumberLookup, SafeguardingPseudonyms
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.ports import HeadsUnavailable
from services.consent.service_layer.subjects import Identifiers, register_subject
from shared.auth import Principal
from shared.crypto import KEY_BYTES, DataKey, KeyShredded, PersonalDataCipher, RecordCipher
from shared.crypto import UnknownSubject as UnknownKey
from shared.db import Database
from tests.support.fakes import memory_database

AUDIT_KEY: Final = b"a" * KEY_BYTES
"""The audit chain's key (the fake of ``audit_key``'s configured key)."""
LOOKUP_KEY: Final = b"l" * KEY_BYTES
PSEUDONYM_KEY: Final = b"p" * KEY_BYTES
RECORDS_KEY: Final = b"r" * KEY_BYTES
ORGANISATIONS: Final = Organisations(trusts=frozenset({"trust"}),
                                     partners=frozenset({"partner-a", "partner-b"}))
"""The development organisations: one Trust, two DVA partners."""
NHS_NUMBER: Final = "9434765919"


@dataclass
class MemoryKeyStore:
    """People's data keys in memory (``SubjectKeys``): made, served and shredded at once,
    outside any transaction."""

    keys: dict[str, DataKey] = field(default_factory=dict)
    shredded: set[str] = field(default_factory=set)

    def create(self, session: Session, subject_id: str) -> DataKey:
        """A new key for a new subject."""
        key = DataKey(key_id=f"dk_{len(self.keys):032x}", material=os.urandom(KEY_BYTES))
        self.keys[subject_id] = key
        return key

    def data_key(self, subject_id: str) -> DataKey:
        """The subject's key; ``KeyShredded`` once shredded, ``UnknownSubject`` if never made."""
        if subject_id in self.shredded:
            raise KeyShredded()
        try:
            return self.keys[subject_id]
        except KeyError:
            raise UnknownKey() from None

    def data_key_in(self, session: Session, subject_id: str) -> DataKey:
        """As ``data_key`` (there is no transaction to read in)."""
        return self.data_key(subject_id)

    def shred(self, session: Session, subject_id: str) -> str | None:
        """Destroy the subject's key; its id, or None when it was gone already."""
        if subject_id in self.shredded or subject_id not in self.keys:
            return None
        self.shredded.add(subject_id)
        return self.keys[subject_id].key_id


@dataclass
class FakeHeads:
    """The audit heads the worker publishes, in memory; ``available=False``: reading them
    raises ``HeadsUnavailable``, as when Kafka does not answer."""

    heads: list[PublishedHead] = field(default_factory=list)
    available: bool = True

    def publish(self, head: PublishedHead) -> None:
        """Publish one head."""
        self.heads.append(head)

    def read_all(self) -> list[PublishedHead]:
        """Every head published."""
        if not self.available:
            raise HeadsUnavailable("the heads topic did not answer")
        return list(self.heads)


@dataclass
class ConsentFakes:
    """What consent's composition root builds, faked: the collaborators its use cases take."""

    database: Database
    keys: MemoryKeyStore
    identifiers: Identifiers
    cipher: PersonalDataCipher
    records: RecordCipher
    trail: AuditTrail
    heads: FakeHeads
    organisations: Organisations = ORGANISATIONS

    @property
    def partners(self) -> frozenset[str]:
        """The configured DVA partners."""
        return self.organisations.partners


def consent_fakes() -> ConsentFakes:
    """Consent's collaborators over a fresh in-memory database."""
    keys = MemoryKeyStore()
    return ConsentFakes(
        database=memory_database(metadata), keys=keys,
        identifiers=Identifiers(lookup=NhsNumberLookup(key=LOOKUP_KEY),
                                pseudonyms=SafeguardingPseudonyms(key=PSEUDONYM_KEY)),
        cipher=PersonalDataCipher(keys), records=RecordCipher(RECORDS_KEY),
        trail=AuditTrail(AUDIT_KEY), heads=FakeHeads())


def person(org: str = "trust", *roles: str, subject: str = "staff-1") -> Principal:
    """A person of ``org`` with ``roles`` (a clinician by default), as their token says."""
    kind = "dva-partner" if org in ORGANISATIONS.partners else "nhs-trust"
    return Principal(subject=subject, org=org, roles=frozenset(roles or ("clinician",)),
                     org_kind=kind)


def service(name: str) -> Principal:
    """A service acting alone, with its own token."""
    return Principal(subject=f"svc-{name}", org="peerlink-platform", roles=frozenset(),
                     service=name)


def via(name: str, caller: Principal) -> Principal:
    """``caller`` acting through the service ``name`` (on-behalf-of)."""
    return Principal(subject=caller.subject, org=caller.org, roles=caller.roles,
                     org_kind=caller.org_kind, via=name)


def rows(database: Database, table: str) -> list[Any]:
    """Every row of one of consent's tables."""
    with database.read() as session:
        return list(session.execute(select(database.metadata.tables[table])))


def audited(database: Database) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """The audit trail, oldest first: (actor, action, subject, detail) of each entry."""
    log = database.metadata.tables["audit_log"]
    with database.read() as session:
        return [(row.actor, row.action, row.subject_id, json.loads(row.detail))
                for row in session.execute(select(log).order_by(log.c.seq))]


def actions(database: Database) -> list[str]:
    """The audit trail's actions, oldest first."""
    return [action for _, action, _, _ in audited(database)]


def registered(fakes: ConsentFakes, caller: Principal | None = None, *,
               nhs_number: str | None = NHS_NUMBER, local_id: str | None = None) -> str:
    """Register a person (by the Trust's clinician, by default) and return their reference."""
    with fakes.database.unit_of_work() as uow:
        return register_subject(uow, fakes.keys, fakes.identifiers, caller or person(),
                                nhs_number=None if local_id else nhs_number,
                                local_id=local_id, trail=fakes.trail).subject_id

"""Fakes of the ports use cases depend on, for unit tests that need no server and no migration.

- ``memory_database``: a service's unit of work over an in-memory SQLite database built from the
  service's table metadata (no migrations, no file); ``published`` reads back what a use case
  put in its outbox.
- ``FakeConsent``: the consent service as the other services use it (``ConsentClient``):
  registering people, data keys, consent state, referrals, the audit trail, safeguarding
  pseudonyms and safe contact, all in memory, with switches for an erased person and for the
  service being unavailable.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import MetaData, select

from shared.auth import Principal
from shared.consent_client import ConsentState, SharingRequired
from shared.crypto import (
    KEY_BYTES,
    DataKey,
    KeyShredded,
    KeyStoreUnavailable,
    UnknownSubject,
)
from shared.db import Database
from shared.events.consent import SafeContact
from shared.events.envelope import CloudEvent


def memory_database(metadata: MetaData) -> Database:
    """A service database in memory, its tables created from ``metadata``.

    One connection per thread (SQLAlchemy's pool for ``sqlite://``): a unit test stays on one
    thread, so every unit of work sees the same database."""
    database = Database("sqlite://", metadata)
    metadata.create_all(database.engine)
    return database


def published(database: Database, event_type: str | None = None) -> list[CloudEvent]:
    """The events in the outbox, oldest first (only ``event_type``'s, when given)."""
    outbox = database.metadata.tables["outbox"]
    query = select(outbox.c.payload).order_by(outbox.c.seq)
    if event_type is not None:
        query = query.where(outbox.c.event_type == event_type)
    with database.read() as session:
        return [CloudEvent.from_bytes(row.payload) for row in session.execute(query)]


@dataclass
class Audited:
    """One entry the fake appended to the audit trail."""

    action: str
    subject_id: str | None
    org: str | None
    detail: dict[str, Any]


@dataclass
class FakeConsent:
    """The consent service in memory, with the ``ConsentClient`` methods services call."""

    available: bool = True
    """False: every call raises ``KeyStoreUnavailable``, as the client does when consent is
    down."""
    sharing_allowed: bool = True
    """False: ``establish_referral`` raises ``SharingRequired``."""
    audited: list[Audited] = field(default_factory=list)
    referrals: list[tuple[str, str, str]] = field(default_factory=list)
    """(subject, from organisation, to organisation) of each referral relationship made."""
    safe_contacts: dict[str, SafeContact] = field(default_factory=dict)
    granted: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """Consent state per (subject, holder organisation): purpose to state."""
    recipients: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    _by_nhs: dict[str, str] = field(default_factory=dict)
    _keys: dict[str, DataKey] = field(default_factory=dict)
    _shredded: set[str] = field(default_factory=set)
    _relationships: set[tuple[str, str]] = field(default_factory=set)

    def _up(self) -> None:
        if not self.available:
            raise KeyStoreUnavailable("the consent service did not answer")

    def register(self, nhs_number: str, caller: Principal | None = None) -> str:
        """The person's reference (the same for the same number), and a relationship with
        ``caller``'s organisation (the Trust's, with no caller)."""
        self._up()
        subject = self._by_nhs.get(nhs_number)
        if subject is None:
            subject = "sub_" + hashlib.sha256(nhs_number.encode()).hexdigest()[:32]
            self._by_nhs[nhs_number] = subject
            self._keys[subject] = DataKey(key_id=f"key_{subject[4:12]}",
                                          material=os.urandom(KEY_BYTES))
        if subject in self._shredded:
            raise KeyShredded()
        self._relationships.add((subject, caller.org if caller else "trust"))
        return subject

    def data_key(self, subject_id: str) -> DataKey:
        """The person's key; ``KeyShredded`` once erased, ``UnknownSubject`` if never made."""
        self._up()
        if subject_id in self._shredded:
            raise KeyShredded()
        try:
            return self._keys[subject_id]
        except KeyError:
            raise UnknownSubject() from None

    live_key = data_key

    def register_keyed(self, nhs_number: str,
                       caller: Principal | None = None) -> tuple[str, DataKey]:
        """``register`` and the person's key, in one call (as the client's)."""
        subject = self.register(nhs_number, caller)
        return subject, self._keys[subject]

    def confirmed(self, subject_id: str, key: DataKey, asked_at: float) -> None:
        """A key the registration answered with: the fake keeps every key already."""
        assert self._keys.get(subject_id) == key, "a key consent did not give"

    def shred(self, subject_id: str) -> None:
        """Erase the person: their key is gone for good."""
        self._shredded.add(subject_id)
        self._keys.pop(subject_id, None)

    def grant(self, subject_id: str, holder_org: str, purpose: str,
              recipients: frozenset[str] = frozenset()) -> None:
        """Record ``holder_org``'s consent to ``purpose`` (and whom its sharing names)."""
        self.granted.setdefault((subject_id, holder_org), {})[purpose] = "granted"
        self._relationships.add((subject_id, holder_org))
        if recipients:
            self.recipients[(subject_id, holder_org)] = recipients

    def audit(self, action: str, subject_id: str | None, caller: Principal | None,
              **detail: Any) -> None:
        """Append to the audit trail."""
        self._up()
        self.audited.append(Audited(action, subject_id, caller.org if caller else None,
                                    dict(detail)))

    def consents(self, subject_id: str, holder_org: str) -> ConsentState:
        """``holder_org``'s consents for the person, and whether it holds them."""
        self._up()
        return ConsentState(
            relationship=(subject_id, holder_org) in self._relationships,
            purposes=dict(self.granted.get((subject_id, holder_org), {})),
            sharing_recipients=self.recipients.get((subject_id, holder_org), frozenset()))

    def establish_referral(self, subject_id: str, to_org: str, caller: Principal) -> None:
        """Give ``to_org`` a relationship with the person, unless sharing is refused."""
        self._up()
        if not self.sharing_allowed:
            raise SharingRequired("partner-sharing does not name the receiving organisation")
        self._relationships.add((subject_id, to_org))
        self.referrals.append((subject_id, caller.org, to_org))

    def safeguarding_pseudonym(self, subject_id: str) -> str | None:
        """A stable pseudonym per person; ``KeyShredded`` once erased."""
        self._up()
        if subject_id in self._shredded:
            raise KeyShredded()
        return "sg_" + hashlib.sha256(subject_id.encode()).hexdigest()[:24]

    def update_safe_contact(self, subject_id: str, contact: SafeContact,
                            caller: Principal) -> None:
        """Record the person's safe-contact instructions."""
        self._up()
        self.safe_contacts[subject_id] = contact


@contextmanager
def consent_down(consent: FakeConsent) -> Iterator[None]:
    """The consent service stops answering for the block."""
    consent.available = False
    try:
        yield
    finally:
        consent.available = True

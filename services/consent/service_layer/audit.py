"""Appending to and reading the audit trail (every consent change, every access to
identifiable data, and every read of the trail itself)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from services.consent.adapters.tables import audit_head, audit_log
from services.consent.domain.audit import (
    GENESIS,
    ChainCheck,
    PublishedHead,
    entry_hash,
    verify_chain,
)
from services.consent.domain.callers import audit_writer
from services.consent.service_layer.ports import HeadsUnavailable
from shared.auth import Principal
from shared.db import Database, UnitOfWork, insert_if_absent, utcnow

HEAD_ID = 1


def _content(seq: int, at: str, actor: str, actor_org: str, action: str,
             subject_id: str | None, detail: str) -> dict[str, Any]:
    return {"seq": seq, "at": at, "actor": actor, "actor_org": actor_org, "action": action,
            "subject_id": subject_id, "detail": detail}


@dataclass(frozen=True)
class _Entry:
    """An entry recorded in a transaction, waiting for its last step to be chained."""

    actor: str
    actor_org: str
    action: str
    subject_id: str | None
    detail: str


class AuditTrail:
    """The audit trail under one audit key (which the database does not hold)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the audit key must be at least 32 bytes")
        self._key = key

    def __repr__(self) -> str:  # never print the key
        return "AuditTrail()"

    def record(self, uow: UnitOfWork, caller: Principal, action: str,
               subject_id: str | None = None, **detail: Any) -> None:
        """Append one entry, chained to the previous one, in the caller's transaction.

        The transaction's entries are appended together as its last step
        (``UnitOfWork.last``), in the order recorded: the chain's head row is then held
        only for that one append and the commit, not while the rest of the transaction
        runs, and it is the last lock the transaction takes.
        """
        if uow.session.in_nested_transaction():  # a rolled-back savepoint would keep it
            raise RuntimeError("an audit entry is recorded in the transaction, not a savepoint")
        pending: list[_Entry] = uow.session.info.setdefault(("audit-pending", id(self)), [])
        if not pending:
            session = uow.session
            uow.last(lambda: self._append(session, pending))
        pending.append(_Entry(caller.subject, caller.org, action, subject_id,
                              json.dumps(detail, sort_keys=True, default=str)))

    def _append(self, session: Session, pending: list[_Entry]) -> None:
        """Chain ``pending`` to the head, in order, and move the head once.

        Appends serialise on the head row, on both backends: its first statement is an
        UPDATE of it (a no-op that returns it), so the transaction holds the row lock
        (PostgreSQL) or the database's write lock (SQLite, where SELECT ... FOR UPDATE means
        nothing) when it reads the head.
        """
        head = session.execute(update(audit_head).where(audit_head.c.id == HEAD_ID)
                               .values(seq=audit_head.c.seq)
                               .returning(audit_head.c.seq, audit_head.c.hash)).first()
        if head is None:
            _create_head_row(session)  # the first append: two at once meet on this row
            head = session.execute(select(audit_head.c.seq, audit_head.c.hash)
                                   .where(audit_head.c.id == HEAD_ID).with_for_update()).one()
        seq, digest = head.seq, head.hash
        rows = []
        for entry in pending:
            seq, at = seq + 1, utcnow().isoformat()
            content = _content(seq, at, entry.actor, entry.actor_org, entry.action,
                               entry.subject_id, entry.detail)
            prev_hash, digest = digest, entry_hash(self._key, digest, content)
            rows.append({"seq": seq, "at": at, "actor": entry.actor,
                         "actor_org": entry.actor_org, "action": entry.action,
                         "subject_id": entry.subject_id, "detail": entry.detail,
                         "prev_hash": prev_hash, "hash": digest})
        pending.clear()
        session.execute(insert(audit_log), rows)
        session.execute(update(audit_head).where(audit_head.c.id == HEAD_ID)
                        .values(seq=seq, hash=digest))

    def verify(self, session: Session, published: Iterable[PublishedHead] = ()) -> ChainCheck:
        """Recompute the keyed chain from the first entry to the recorded head, and check it
        against the published heads, in one consistent snapshot of the database (on
        PostgreSQL, a REPEATABLE READ transaction when ``session`` has none open yet)."""
        if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        head = session.execute(select(audit_head.c.seq, audit_head.c.hash)
                               .where(audit_head.c.id == HEAD_ID)).first()
        rows = session.execute(select(audit_log).order_by(audit_log.c.seq))
        chain = (
            (row.seq, row.prev_hash, row.hash,
             _content(row.seq, row.at, row.actor, row.actor_org, row.action,
                      row.subject_id, row.detail))
            for row in rows
        )
        return verify_chain(self._key, chain,
                            (head.seq, head.hash) if head and head.seq else None, published)

    def current_head(self, session: Session) -> tuple[int, str] | None:
        """The newest entry's ``(seq, hash)``, if its keyed hash checks; None when the trail
        is empty. Raises ``ValueError`` when the newest entry does not carry its keyed hash
        (a head that would pin a forgery is never published)."""
        row = session.execute(select(audit_log).order_by(audit_log.c.seq.desc())
                              .limit(1)).first()
        if row is None:
            return None
        content = _content(row.seq, row.at, row.actor, row.actor_org, row.action,
                           row.subject_id, row.detail)
        if entry_hash(self._key, row.prev_hash, content) != row.hash:
            raise ValueError("the newest audit entry does not carry its keyed hash")
        return int(row.seq), str(row.hash)


def _create_head_row(session: Session) -> None:
    """Insert the head row at the genesis unless another transaction just did (it waits for
    that one to commit, on both backends)."""
    insert_if_absent(session, audit_head, id=HEAD_ID, seq=0, hash=GENESIS)


def entries(session: Session, org: str, subject_id: str | None = None,
            limit: int = 1000) -> list[dict[str, Any]]:
    """One organisation's people's entries, oldest first, optionally about one subject.

    They carry no chain position or hash: the programme-wide sequence would show, by its
    gaps, when other organisations acted on the same person.
    """
    query = select(audit_log).where(audit_log.c.actor_org == org).order_by(
        audit_log.c.seq).limit(limit)
    if subject_id is not None:
        query = query.where(audit_log.c.subject_id == subject_id)
    return [
        {"at": row.at, "actor": row.actor, "actor_org": row.actor_org, "action": row.action,
         "subject_id": row.subject_id, "detail": json.loads(row.detail)}
        for row in session.execute(query)
    ]


def read_trail(database: Database, caller: Principal, subject_id: str | None, *,
               trail: AuditTrail) -> list[dict[str, Any]]:
    """The caller's organisation's entries (``entries``), optionally about one subject: the
    read is audited first, in its own transaction, so the entries show it."""
    with database.unit_of_work() as uow:
        trail.record(uow, caller, "audit-read", subject_id)
    with database.read() as session:
        return entries(session, caller.org, subject_id)


def record_for_service(uow: UnitOfWork, caller: Principal, action: str,
                       subject_id: str | None, detail: dict[str, Any], *,
                       trail: AuditTrail) -> None:
    """Append an access another service made, alone or for a person, naming who acted
    (``audit_writer`` decides whether the service may write ``action``)."""
    trail.record(uow, audit_writer(caller, action), action, subject_id, **detail)


class PublishedHeads(Protocol):
    """Where the worker publishes the chain's heads (Kafka), read back to verify."""

    def read_all(self) -> list[PublishedHead]:
        """Every head published; raises ``HeadsUnavailable`` when they cannot be read."""
        ...


@dataclass(frozen=True)
class Verification:
    """The chain recomputed, and why the published heads could not be read, if they could
    not (the result is then not confirmed, so not valid)."""

    chain: ChainCheck
    heads_problem: str | None = None

    @property
    def valid(self) -> bool:
        """Valid only when the chain recomputes and agrees with every published head."""
        return self.chain.valid and self.heads_problem is None

    @property
    def heads_checked(self) -> int | None:
        """Published heads compared; None when they could not be read."""
        return None if self.heads_problem is not None else self.chain.heads_checked


def verify(database: Database, heads: PublishedHeads, caller: Principal, *,
           trail: AuditTrail) -> Verification:
    """Recompute the keyed chain and check it against every published head (read first: each
    names an entry committed before the snapshot read next); the verification is audited."""
    heads_problem = None
    published: list[PublishedHead] = []
    try:
        published = heads.read_all()
    except HeadsUnavailable as exc:
        heads_problem = str(exc)
    with database.read() as session:
        result = Verification(trail.verify(session, published), heads_problem)
    with database.unit_of_work() as uow:
        trail.record(uow, caller, "audit-verified", valid=result.valid,
                     heads_checked=result.heads_checked)
    return result


class HeadPublisher:
    """Publishes the chain's head when it moved since this publisher last published it.

    The head is read from the database and checked (its entry must carry its keyed hash)
    just before it is published, so a published head is what the database said at ``at``.
    It goes straight to Kafka, not through the outbox: the outbox is in the database the heads
    are meant to be out of reach of, and a head is a snapshot, so a lost or repeated one does
    no harm (the next tick publishes the head again).
    """

    def __init__(self, database: Database, trail: AuditTrail,
                 publish: Callable[[PublishedHead], None]) -> None:
        self._database = database
        self._trail = trail
        self._publish = publish
        self.last: tuple[int, str] | None = None

    def publish_if_moved(self) -> PublishedHead | None:
        """Publish the head if it moved; returns what was published, if anything."""
        with self._database.read() as session:
            head = self._trail.current_head(session)
            at = utcnow()
        if head is None or head == self.last:
            return None
        published = PublishedHead(seq=head[0], hash=head[1], at=at)
        self._publish(published)
        self.last = head
        return published

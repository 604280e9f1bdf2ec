"""Database plumbing: engines, the outbox and inbox tables, and the unit of work.

Each service owns one database (SQLite file by default, PostgreSQL when configured). Every
service's metadata gets an ``outbox`` (events written in the same transaction as the state
change), an ``outbox_marker`` (where the relay's marker record sits on each topic, to tell
when the broker lost what it was sent) and an ``inbox`` (ids of the events already applied,
for exactly-once effects).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
    and_,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker

from shared.events.envelope import CloudEvent

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SequenceId = BigInteger().with_variant(Integer(), "sqlite")
WRITE_OPTION = "peerlink_writes"
"""Execution option of a unit of work's connections: on SQLite its transaction begins
IMMEDIATE (holding the write lock from the start)."""


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect
                             ) -> datetime | None:
        """SQLite gives back naive UTC: make it aware."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def insert_if_absent(session: Session, table: Table, **values: Any) -> bool:
    """Insert a row unless one with the same key exists (``ON CONFLICT DO NOTHING`` on both
    backends, so two writers at once cannot fail on it); returns whether this one inserted."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = pg_insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite_insert(table).values(**values).on_conflict_do_nothing()
    else:
        statement = insert(table).values(**values)
    # RETURNING, not rowcount: psycopg reports -1 rows for a skipped insert here
    keys = table.primary_key.columns
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        statement.returning(*keys))
    return result.first() is not None


def insert_absent(session: Session, table: Table, rows: Sequence[dict[str, Any]]
                  ) -> set[tuple[Any, ...]]:
    """Insert every row whose key is not there yet, in one statement (``ON CONFLICT DO
    NOTHING``, so two writers at once cannot fail on it); returns the keys this one inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"insert_absent on {dialect}")
    insert_on = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_on(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return {tuple(row) for row in session.execute(statement, list(rows))}  # insertmanyvalues


def upsert(session: Session, table: Table, key: dict[str, Any], values: dict[str, Any],
           *, unless_same: str | None = None, unless_newer: str | None = None) -> None:
    """Insert the row with primary key ``key``, or update its ``values`` if it exists, in one
    statement (``ON CONFLICT DO UPDATE``), so two writers at once cannot both insert. With
    ``unless_same``, an existing row whose column of that name already has the new value is
    left as it is (its timestamps unchanged); with ``unless_newer``, one whose column of that
    name is later than the new value (an older record arriving late changes nothing)."""
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"upsert on {dialect}")
    insert_on = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_on(table).values(**key, **values)
    conditions = []
    if unless_same is not None:
        conditions.append(table.c[unless_same].is_distinct_from(statement.excluded[unless_same]))
    if unless_newer is not None:
        conditions.append(table.c[unless_newer] <= statement.excluded[unless_newer])
    where = and_(*conditions) if conditions else None
    session.execute(statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns), set_=values, where=where))


def service_metadata() -> MetaData:
    """A service's metadata, with the outbox, outbox marker and inbox tables already in it."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    Table(
        "outbox", metadata,
        Column("seq", SequenceId, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("aggregate_type", String(64), nullable=False),
        Column("aggregate_id", String(100), nullable=True, comment="the Kafka record key"),
        Column("event_type", String(100), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False, default=utcnow),
        Column("sent_at", UtcDateTime(), nullable=True, index=True),
    )
    Table(
        "outbox_marker", metadata,
        Column("topic", String(200), primary_key=True),
        Column("kafka_partition", Integer, nullable=False),
        Column("kafka_offset", BigInteger, nullable=False),
        Column("epoch", String(64), nullable=False, comment="the marker record's event id"),
        Column("written_at", UtcDateTime(), nullable=False, default=utcnow),
        comment="the outbox relay's marker record on each topic: while the broker still "
                "holds it, it holds the events marked sent to that topic",
    )
    Table(
        "inbox", metadata,
        Column("consumer", String(100), primary_key=True),
        Column("dedup_key", String(400), primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("applied_at", UtcDateTime(), nullable=False, default=utcnow),
    )
    return metadata


SQLITE_AT_LEAST = (3, 35)
"""The oldest SQLite the services run on: they use ``INSERT/UPDATE ... RETURNING``."""


def make_engine(url: str) -> Engine:
    """An engine for a service database; SQLite gets WAL and a busy timeout for two processes."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if sqlite3.sqlite_version_info < SQLITE_AT_LEAST:
            raise RuntimeError(f"SQLite {sqlite3.sqlite_version} is too old: the services need "
                               f"{'.'.join(map(str, SQLITE_AT_LEAST))} or later (RETURNING)")
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # transactions begin in _sqlite_begin
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # deleted and overwritten content is zeroed, not left in free pages (erasure)
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # A write transaction takes the write lock before its first read, so what it
            # reads cannot change under it before it writes (SQLite has no SELECT FOR UPDATE);
            # the driver would otherwise read outside any transaction until the first write.
            writes = connection.get_execution_options().get(WRITE_OPTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

        return engine
    # fail fast when the server is unreachable, and notice a peer that vanished (a relay's
    # lock lives in its session): TCP keepalives instead of the kernel's two hours
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_timeout=10,
                         connect_args={"connect_timeout": 5, "keepalives": 1,
                                       "keepalives_idle": 30, "keepalives_interval": 10,
                                       "keepalives_count": 3})


class UnitOfWork:
    """One transaction: the state change and the events it publishes commit together."""

    def __init__(self, session: Session, metadata: MetaData) -> None:
        self.session = session
        self._outbox = metadata.tables["outbox"]
        self._inbox = metadata.tables["inbox"]
        self._last: list[Callable[[], object]] = []

    def last(self, step: Callable[[], object]) -> None:
        """Run ``step`` in this transaction after everything else, just before it commits
        (in the order given; never when the transaction fails first). A lock ``step`` takes
        is then held only for the commit: the audit chain's head row is taken so."""
        self._last.append(step)

    def finish(self) -> None:
        """Run the steps kept for last (``Database.unit_of_work`` calls it)."""
        while self._last:
            self._last.pop(0)()

    def publish(self, event: CloudEvent, topic: str, aggregate_type: str) -> None:
        """Append an event to the outbox; the relay sends it after commit."""
        self.session.execute(insert(self._outbox).values(
            event_id=event.id, aggregate_type=aggregate_type, aggregate_id=event.subject,
            event_type=event.type, topic=topic, payload=event.to_bytes(), created_at=utcnow(),
        ))

    def claim(self, consumer: str, event: CloudEvent) -> bool:
        """Record that ``consumer`` applies ``event``; False if it already did (a redelivery).

        A concurrent duplicate fails the commit on the primary key, rolling its effect back.
        """
        key = event.dedup_key
        exists = self.session.execute(select(self._inbox.c.consumer).where(
            self._inbox.c.consumer == consumer, self._inbox.c.dedup_key == key)).first()
        if exists is not None:
            return False
        self.session.execute(insert(self._inbox).values(
            consumer=consumer, dedup_key=key, event_type=event.type, applied_at=utcnow()))
        return True

    def claim_all(self, consumer: str, events: Sequence[CloudEvent]) -> list[bool]:
        """``claim`` for many events in one statement: for each, whether this claims it
        (False for one already applied, and for an event's second time in ``events``). A
        concurrent claim of the same event waits for the other to commit, then is refused."""
        now = utcnow()
        first: dict[str, CloudEvent] = {}
        for candidate in events:
            first.setdefault(candidate.dedup_key, candidate)
        claimed = {key for _, key in insert_absent(self.session, self._inbox, [
            {"consumer": consumer, "dedup_key": key, "event_type": first_seen.type,
             "applied_at": now} for key, first_seen in first.items()])}
        result = []
        for candidate in events:
            result.append(candidate.dedup_key in claimed)
            claimed.discard(candidate.dedup_key)
        return result


class Database:
    """A service database: engine, metadata and transactions."""

    def __init__(self, url: str, metadata: MetaData) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.metadata = metadata
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(self.engine.execution_options(**{WRITE_OPTION: True}),
                                    expire_on_commit=False)

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """A transaction that commits on success and rolls back on any error (on SQLite it
        holds the write lock from its start: write transactions are serial)."""
        with self._writes.begin() as session:
            uow = UnitOfWork(session, self.metadata)
            yield uow
            uow.finish()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading."""
        with self._sessions() as session:
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only transaction whose statements all see the database as it was at its
        first read, and which blocks no writer (SQLite: a read transaction in WAL mode;
        PostgreSQL: REPEATABLE READ)."""
        bind = self.engine
        if self.engine.dialect.name == "postgresql":
            bind = self.engine.execution_options(isolation_level="REPEATABLE READ",
                                                postgresql_readonly=True)
        with self._sessions(bind=bind) as session, session.begin():
            yield session

    def scrub(self, tables: Iterable[str]) -> bool:
        """Remove from disk the old versions of rows just deleted or overwritten in
        ``tables`` (call after the transaction that shredded them has committed); returns
        whether it finished.

        SQLite zeroes them in the database file (``secure_delete``) but the write-ahead log
        still holds the old pages until a checkpoint: this checkpoints and truncates it
        (False when a reader kept it from finishing; the next scrub or checkpoint does).
        PostgreSQL keeps dead row versions until a VACUUM, run here outside any transaction.
        """
        names = list(tables)
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as connection:
                busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
            return not busy
        if self.engine.dialect.name == "postgresql":
            quote = self.engine.dialect.identifier_preparer.quote
            with self.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT") as connection:
                for name in names:
                    connection.exec_driver_sql(f"VACUUM {quote(name)}")
        return True

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(select(1))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def new_event_id() -> str:
    """A new event id."""
    return str(uuid.uuid4())

"""The outbox relay: publishes a service's committed events in order, then marks them sent.

One relay per service publishes at a time: it takes a lock for each tick (a PostgreSQL
session-level advisory lock on a connection it keeps, or an exclusive ``flock`` on
``<database>.relay.lock`` beside a SQLite file) and a relay that does not get it publishes
nothing. No database transaction is open while it waits on the broker: a batch is read in one
short transaction, sent, and the acknowledged events are marked sent in another, so API writes
never wait for Kafka. A crash between the send and the mark sends again (at least once; the
consumers' inboxes drop the repeat). A tick publishes only what the outbox held when it began,
every wait on the broker is bounded, and the backlog gauges are updated at the end of every
tick, whether it published or not.

The outbox is the durable log. Before it first sends to a topic, the relay puts a marker
record on it (a ``peerlink.outbox.marker`` CloudEvent, which consumers ignore) and keeps where
it landed in ``outbox_marker``. On start, every ``check_seconds`` and after any failed send, it
reads that offset back; where the broker no longer holds the marker (the local broker keeps
topics in memory only and forgets them when it stops), every event the outbox had sent to that
topic is marked unsent and goes out again, in seq order, after a new marker.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaTimeoutError, OffsetOutOfRangeError
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Row,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from shared.db import Database, utcnow
from shared.events.envelope import CloudEvent
from shared.kafka.producer import Delivery, EventProducer, KafkaEventProducer
from shared.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PENDING,
    OUTBOX_REPUBLISHED,
)

log = logging.getLogger(__name__)

MARKER_TYPE: Final = "peerlink.outbox.marker"
"""The type of the relay's marker records: no consumer handles it, so every one ignores it."""
WAIT_SECONDS: Final = 5.0
"""The longest one step of a tick waits on the broker (acknowledgements, a check, a connection)."""
CHECK_SECONDS: Final = 10.0
"""How often the relay checks that the broker still holds its markers."""
DELIVERY_TIMEOUT_MS: Final = 30_000
"""The relay producer's delivery timeout: a record is acknowledged or failed within it."""
GIVE_UP_SECONDS: Final = 45.0
"""A record neither acknowledged nor failed this long after it was queued has failed."""
LISTED_SECONDS: Final = 1.0
"""How long the broker's list of topics is trusted before the relay asks again."""

ProducerFactory = Callable[[], EventProducer]


class BrokerUnavailable(Exception):
    """The broker could not say what it holds (the message names no data)."""


@dataclass(frozen=True)
class Marker:
    """Where a relay's marker record landed on a topic."""

    topic: str
    partition: int
    offset: int
    epoch: str
    """The marker record's event id."""


def marker_event(service: str) -> CloudEvent:
    """A new marker record: no subject, no data, a fresh id (its epoch)."""
    return CloudEvent(id=str(uuid.uuid4()), source=f"urn:peerlink:{service}:relay",
                      type=MARKER_TYPE, time=utcnow())


def is_marker(value: bytes | None, epoch: str) -> bool:
    """Whether a record is the marker record with that epoch."""
    try:
        event = CloudEvent.from_bytes(value)
    except ValueError:
        return False
    return event.type == MARKER_TYPE and event.id == epoch


class BrokerLog(Protocol):
    """What the relay asks the broker about its log."""

    def topics(self) -> set[str]:
        """The topics the broker has; raises ``BrokerUnavailable``."""
        ...

    def holds(self, marker: Marker) -> bool:
        """Whether the broker still has ``marker`` at its offset; raises
        ``BrokerUnavailable``."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class KafkaBrokerLog:
    """Reads markers back with a consumer of no group (assign and seek; nothing committed,
    no topic created), every request bounded by ``wait_seconds``.

    It reads the record itself rather than comparing ListOffsets' end offsets, which the local
    Tansu broker answers wrongly; a fetch response's high watermark is right there.
    """

    def __init__(self, bootstrap: str, client_id: str, wait_seconds: float = WAIT_SECONDS,
                 **options: Any) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._wait = wait_seconds
        self._options = options
        self._consumer: Any = None

    def _connected(self) -> Any:
        if self._consumer is None:
            wait_ms = int(self._wait * 1000)
            try:
                self._consumer = KafkaConsumer(
                    bootstrap_servers=self._bootstrap, client_id=self._client_id,
                    enable_auto_commit=False, auto_offset_reset="none",
                    allow_auto_create_topics=False, request_timeout_ms=wait_ms,
                    bootstrap_timeout_ms=wait_ms, fetch_max_wait_ms=100,
                    reconnect_backoff_max_ms=1000, **self._options)
            except Exception as exc:
                raise BrokerUnavailable(f"no connection ({type(exc).__name__})") from exc
        return self._consumer

    def topics(self) -> set[str]:
        """The topics the broker has (fresh metadata)."""
        consumer = self._connected()
        try:
            return set(consumer.topics())
        except Exception as exc:
            self.close()
            raise BrokerUnavailable(f"no topic list ({type(exc).__name__})") from exc

    def holds(self, marker: Marker) -> bool:
        """Fetch the marker's offset: the marker there means held; another record there, no
        record up to the high watermark, no such partition or an offset out of range means
        lost."""
        consumer = self._connected()
        partition = TopicPartition(marker.topic, marker.partition)
        try:
            if marker.partition not in (consumer.partitions_for_topic(marker.topic) or set()):
                return False
            consumer.assign([partition])
            consumer.seek(partition, marker.offset)
            deadline = time.monotonic() + self._wait
            while time.monotonic() < deadline:
                for record in consumer.poll(timeout_ms=200, max_records=1).get(partition, []):
                    return bool(record.offset == marker.offset
                                and is_marker(record.value, marker.epoch))
                highwater = consumer.highwater(partition)
                if highwater is not None and highwater <= marker.offset:
                    return False
        except OffsetOutOfRangeError:
            return False
        except Exception as exc:
            self.close()
            raise BrokerUnavailable(f"the marker was not read ({type(exc).__name__})") from exc
        raise BrokerUnavailable("the marker was not read in time")

    def close(self) -> None:
        """Close the consumer (a later call connects again)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close(autocommit=False)


class RelayLock(Protocol):
    """Lets one relay of a service publish at a time."""

    def acquire(self) -> bool:
        """Take the lock unless another relay holds it; whether this relay holds it now."""
        ...

    def release(self) -> None:
        """Let another relay take it."""
        ...

    def close(self) -> None:
        """Release it and what holds it."""
        ...


def advisory_key(service: str) -> int:
    """The PostgreSQL advisory lock key of a service's relay (a signed 64-bit hash)."""
    digest = hashlib.blake2b(f"peerlink.outbox-relay:{service}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class AdvisoryLock:
    """A session-level ``pg_try_advisory_lock`` on a connection kept for the relay's lifetime
    (in autocommit: it holds no transaction). If the connection dies the server releases the
    lock; the next ``acquire`` connects again."""

    def __init__(self, engine: Engine, key: int) -> None:
        self._engine = engine
        self._key = key
        self._connection: Connection | None = None
        self._held = False

    def acquire(self) -> bool:
        """Try the lock (never waits). A lock this relay held is checked to be still its own:
        if its session ended (terminated, or the server restarted) another relay may hold it
        now."""
        if self._held and self._still_held():
            return True
        try:
            if self._connection is None:
                self._connection = self._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT")
            self._held = bool(self._connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar_one())
        except Exception:
            self.close()
            raise
        return self._held

    def release(self) -> None:
        """Unlock (closing the connection if that fails, which unlocks too)."""
        if not self._held or self._connection is None:
            return
        self._held = False
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        except Exception:
            self.close()
            raise

    def _still_held(self) -> bool:
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        try:
            assert self._connection is not None
            held = self._connection.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = CAST(:high AS oid)"
                " AND objid = CAST(:low AS oid) AND objsubid = 1"),
                {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF}).scalar_one()
        except Exception:
            held = 0
        if not held:
            log.warning("the outbox relay lost its lock; taking it again before publishing")
            self.close()
        return bool(held)

    def close(self) -> None:
        """Unlock and end the session: the connection is invalidated, not returned to the pool,
        where it would keep the lock. The unlock comes first because the server ends a closed
        session a moment later, and another relay must be able to take the lock at once."""
        connection, held = self._connection, self._held
        self._connection, self._held = None, False
        if connection is not None:
            with contextlib.suppress(Exception):
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                       {"key": self._key})
            with contextlib.suppress(Exception):
                connection.invalidate()
            connection.close()


class FileLock:
    """An exclusive ``flock`` on a file kept open for the relay's lifetime (two relays in one
    process conflict too: each opens the file itself)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._held = False

    def acquire(self) -> bool:
        """Try the lock (never waits)."""
        if self._held:
            return True
        if self._file is None:
            self._file = self.path.open("ab")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._held = True
        return True

    def release(self) -> None:
        """Unlock."""
        if self._held and self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._held = False

    def close(self) -> None:
        """Unlock and close the file."""
        self.release()
        file, self._file = self._file, None
        if file is not None:
            file.close()


class LocalLock:
    """A process-local lock, for an in-memory SQLite database (no other process sees it)."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._held = False

    def acquire(self) -> bool:
        """Try the lock (never waits)."""
        if not self._held:
            self._held = self._lock.acquire(blocking=False)
        return self._held

    def release(self) -> None:
        """Unlock."""
        if self._held:
            self._held = False
            self._lock.release()

    def close(self) -> None:
        """Unlock."""
        self.release()


_MEMORY_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_MEMORY_LOCKS_GUARD = threading.Lock()


def relay_lock(service: str, database: Database) -> RelayLock:
    """The lock the relays of ``service`` on ``database`` share."""
    url = database.engine.url
    backend = url.get_backend_name()
    if backend == "postgresql":
        return AdvisoryLock(database.engine, advisory_key(service))
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            return FileLock(Path(f"{url.database}.relay.lock"))
        with _MEMORY_LOCKS_GUARD:
            return LocalLock(_MEMORY_LOCKS.setdefault(database.engine, threading.Lock()))
    raise ValueError(f"no outbox relay lock for {backend}")


@dataclass(frozen=True)
class _InFlight:
    """An event handed to the producer, its acknowledgement not yet seen."""

    seq: int
    topic: str
    delivery: Delivery
    queued_at: float


class OutboxRelay:
    """Moves events from a service's outbox table to Kafka (at least once, in seq order)."""

    def __init__(self, service: str, database: Database, producers: ProducerFactory,
                 broker: BrokerLog, *, lock: RelayLock | None = None, batch_size: int = 500,
                 wait_seconds: float = WAIT_SECONDS, check_seconds: float = CHECK_SECONDS,
                 give_up_seconds: float = GIVE_UP_SECONDS) -> None:
        self._service = service
        self._db = database
        self._producers = producers
        self._broker = broker
        self._lock = lock or relay_lock(service, database)
        self._batch = batch_size
        self._wait = wait_seconds
        self._check_every = check_seconds
        self._give_up = give_up_seconds
        self._outbox = database.metadata.tables["outbox"]
        self._markers = database.metadata.tables["outbox_marker"]
        self._producer: EventProducer | None = None
        self._in_flight: list[_InFlight] = []
        self._checked_at: float | None = None
        """When the markers were last found held; None: check before publishing."""
        self._unmarked: set[str] | None = None
        """Topics sent to before this relay kept markers, found at the first check."""
        self._listed: tuple[float, set[str]] = (0.0, set())
        """When the broker last listed its topics, and those topics."""
        self._last_note: str | None = None

    def drain(self) -> int:
        """Publish what the outbox held when the tick began (for at most ``wait_seconds``
        of sending, or until the broker fails), if this relay holds the lock, then update the
        backlog gauges whatever happened; returns how many were sent.

        The lock is kept past the tick while events are in flight, so no other relay sends
        them again meanwhile."""
        try:
            if not self._lock.acquire():
                log.debug("another relay of this service is publishing; this one waits",
                          extra={"service": self._service})
                return 0
            try:
                return self._publish()
            finally:
                if not self._in_flight:
                    self._lock.release()
        finally:
            self.observe()

    def observe(self) -> tuple[int, float]:
        """Update and return the backlog gauges: pending count and oldest age in seconds."""
        outbox = self._outbox
        with self._db.read() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(outbox.c.created_at))
                .where(outbox.c.sent_at.is_(None))).one()
        age = _age_seconds(oldest)
        OUTBOX_PENDING.labels(self._service).set(count)
        OUTBOX_OLDEST_AGE.labels(self._service).set(age)
        return int(count), age

    def close(self) -> None:
        """Release the lock, the producer and the broker connection."""
        self._lock.close()
        self._broker.close()
        self._drop_producer()

    def _publish(self) -> int:
        sent = self._settle()
        if self._in_flight or not self._broker_checked():
            return sent
        if self._unmarked:
            if not self._mark(self._unmarked):
                return sent
            self._unmarked = set()
        upto, deadline = self._last_seq(), time.monotonic() + self._wait
        while time.monotonic() < deadline and (batch := self._read_batch(upto)):
            topics = {row.topic for row in batch}
            if not self._on_broker(topics) or not self._mark(topics):
                break
            self._send(batch)
            sent += self._settle()
            if self._in_flight or self._checked_at is None:
                break
        return sent

    def _last_seq(self) -> int:
        """The newest event's seq: a tick publishes no further, so that under a steady
        stream of writes it still ends (and the gauges move)."""
        with self._db.read() as session:
            return int(session.execute(select(func.max(self._outbox.c.seq))).scalar() or 0)

    def _read_batch(self, upto: int) -> Sequence[Row[int, str, str | None, bytes, str]]:
        """The next unsent events in seq order, up to ``upto``, read in a transaction of
        their own."""
        outbox = self._outbox
        with self._db.read() as session:
            return session.execute(
                select(outbox.c.seq, outbox.c.topic, outbox.c.aggregate_id, outbox.c.payload,
                       outbox.c.event_type)
                .where(outbox.c.sent_at.is_(None), outbox.c.seq <= upto)
                .order_by(outbox.c.seq).limit(self._batch)
            ).all()

    def _send(self, batch: Sequence[Row[int, str, str | None, bytes, str]]) -> None:
        """Hand a batch to the producer, stopping at the first event it does not take."""
        producer = self._connected_producer()
        if producer is None:
            return
        for row in batch:
            try:
                delivery = producer.send(
                    row.topic, row.aggregate_id.encode() if row.aggregate_id else None,
                    row.payload, [("ce_type", row.event_type.encode())])
            except KafkaTimeoutError:
                self._failed("the broker did not take events in time; will retry")
                return
            except Exception as exc:
                self._failed("the producer refused events; will retry",
                             error=type(exc).__name__)
                self._in_flight.clear()
                self._drop_producer()
                return
            self._in_flight.append(_InFlight(row.seq, row.topic, delivery, time.monotonic()))

    def _settle(self) -> int:
        """Wait (at most ``wait_seconds``) for the acknowledgements of what is in flight and
        mark the acknowledged events, up to the first that is not, sent; returns how many."""
        deadline = time.monotonic() + self._wait
        done = 0
        failure: str | None = None
        for item in self._in_flight:
            try:
                item.delivery.get(timeout=max(0.0, deadline - time.monotonic()))
            except KafkaTimeoutError:
                if time.monotonic() - item.queued_at < self._give_up:
                    break
                failure = "KafkaTimeoutError"
                break
            except Exception as exc:
                failure = type(exc).__name__
                break
            done += 1
        acknowledged = self._in_flight[:done]
        if acknowledged:
            self._mark_sent(acknowledged)
            del self._in_flight[:done]
        if failure is not None:
            self._failed("outbox publish failed; will retry", error=failure)
            self._in_flight.clear()
            self._drop_producer()
        elif self._in_flight:
            self._failed("the broker has not acknowledged events yet; waiting",
                         in_flight=len(self._in_flight))
        return done

    def _mark_sent(self, acknowledged: Iterable[_InFlight]) -> None:
        items = list(acknowledged)
        outbox = self._outbox
        with self._db.unit_of_work() as uow:
            uow.session.execute(update(outbox).where(outbox.c.seq.in_([i.seq for i in items]))
                                .values(sent_at=utcnow()))
        for topic, count in Counter(i.topic for i in items).items():
            EVENTS_PUBLISHED.labels(self._service, topic).inc(count)
        self._last_note = None

    def _broker_checked(self) -> bool:
        """Whether the broker has been found to hold every marker recently; checks now if
        not, marking the events of a topic whose marker it lost unsent."""
        if self._checked_at is not None and \
                time.monotonic() - self._checked_at < self._check_every:
            return True
        markers = self._saved_markers()
        if self._unmarked is None:
            self._unmarked = self._topics(sent=True) - set(markers)
        if not self._on_broker(set(markers) | self._topics(sent=False) | self._unmarked):
            return False
        try:
            lost = [marker for marker in markers.values() if not self._broker.holds(marker)]
        except BrokerUnavailable as exc:
            self._failed("the broker cannot say what it holds; not publishing yet",
                         error=str(exc))
            self._drop_producer()
            return False
        if lost:
            self._drop_producer()  # the broker that lost them knows nothing of it either
        for marker in lost:
            self._republish(marker)
        self._checked_at = time.monotonic()
        self._last_note = None
        return True

    def _on_broker(self, topics: set[str]) -> bool:
        """Whether the broker has every one of ``topics``. Nothing is sent to a topic it does
        not list: the local broker creates any topic a producer asks about, with its own
        partition count, ignoring the client's "do not create" (``create_topics`` would then
        leave it so). The list is asked for again after ``LISTED_SECONDS`` or a failure."""
        listed_at, listed = self._listed
        if topics <= listed and time.monotonic() - listed_at < LISTED_SECONDS:
            return True
        try:
            listed = self._broker.topics()
            self._listed = (time.monotonic(), listed)
            missing = topics - listed
        except BrokerUnavailable as exc:
            self._failed("the broker cannot say what it holds; not publishing yet",
                         error=str(exc))
            self._drop_producer()
            return False
        if missing:
            self._failed("waiting for topics to be created", topics=sorted(missing))
            self._drop_producer()
            return False
        return True

    def _republish(self, marker: Marker) -> None:
        """Mark every event sent to the marker's topic unsent, and forget the marker."""
        outbox, markers = self._outbox, self._markers
        with self._db.unit_of_work() as uow:
            result: CursorResult[Any] = uow.session.execute(  # type: ignore[assignment]
                update(outbox).where(outbox.c.topic == marker.topic,
                                     outbox.c.sent_at.is_not(None)).values(sent_at=None))
            uow.session.execute(delete(markers).where(markers.c.topic == marker.topic))
        count = max(0, result.rowcount)
        OUTBOX_REPUBLISHED.labels(self._service, marker.topic).inc(count)
        log.warning("the broker no longer holds this outbox's events; publishing them again",
                    extra={"service": self._service, "topic": marker.topic, "events": count})

    def _mark(self, topics: Iterable[str]) -> bool:
        """Put a marker on each of ``topics`` that has none; whether all have one now."""
        for topic in sorted(set(topics) - set(self._saved_markers())):
            producer = self._connected_producer()
            if producer is None:
                return False
            event = marker_event(self._service)
            try:
                where = producer.send(topic, None, event.to_bytes(),
                                      [("ce_type", MARKER_TYPE.encode())]).get(timeout=self._wait)
            except Exception as exc:
                self._failed("the marker was not published; will retry", topic=topic,
                             error=type(exc).__name__)
                if not isinstance(exc, KafkaTimeoutError):
                    self._drop_producer()
                return False
            self._save_marker(Marker(topic, where.partition, where.offset, event.id))
        return True

    def _save_marker(self, marker: Marker) -> None:
        markers = self._markers
        with self._db.unit_of_work() as uow:
            uow.session.execute(delete(markers).where(markers.c.topic == marker.topic))
            uow.session.execute(insert(markers).values(
                topic=marker.topic, kafka_partition=marker.partition,
                kafka_offset=marker.offset, epoch=marker.epoch, written_at=utcnow()))

    def _saved_markers(self) -> dict[str, Marker]:
        with self._db.read() as session:
            return {row.topic: Marker(row.topic, row.kafka_partition, row.kafka_offset, row.epoch)
                    for row in session.execute(select(self._markers))}

    def _topics(self, *, sent: bool) -> set[str]:
        """The topics of the sent (or of the unsent) events."""
        outbox = self._outbox
        column = outbox.c.sent_at
        with self._db.read() as session:
            return set(session.execute(
                select(outbox.c.topic).where(column.is_not(None) if sent else column.is_(None))
                .distinct()).scalars())

    def _connected_producer(self) -> EventProducer | None:
        if self._producer is None:
            try:
                self._producer = self._producers()
            except Exception as exc:
                self._failed("no producer connection; will retry", error=type(exc).__name__)
                return None
        return self._producer

    def _drop_producer(self) -> None:
        """Close the producer, after a failure or when the broker is in trouble (never with
        events in flight): a broker restart leaves it unusable (every send fails on an unknown
        producer id) and a new one is made for the next send."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            producer.close()
        except Exception:
            log.debug("the dropped producer did not close cleanly", exc_info=True)

    def _failed(self, message: str, **extra: Any) -> None:
        """Something the broker did not do: check the markers (and list the topics) before
        publishing again."""
        self._checked_at = None
        self._listed = (0.0, set())
        self._note(message, **extra)

    def _note(self, message: str, **extra: Any) -> None:
        """Why the relay is not publishing: a warning when it changes, then debug."""
        level = logging.DEBUG if message == self._last_note else logging.WARNING
        self._last_note = message
        log.log(level, message, extra={"service": self._service, **extra})


def kafka_relay(service: str, database: Database, bootstrap: str, *,
                check_seconds: float = CHECK_SECONDS, **options: Any) -> OutboxRelay:
    """The relay a worker runs: its own producer, which never creates a topic by sending to
    it and is made again after a fatal error, and marker checks, every wait bounded
    (``options`` are the Kafka clients' connection settings)."""
    wait_ms = int(WAIT_SECONDS * 1000)

    def producer() -> EventProducer:
        return KafkaEventProducer(
            bootstrap, f"peerlink-{service}-relay", allow_auto_create_topics=False,
            max_block_ms=wait_ms, bootstrap_timeout_ms=wait_ms,
            delivery_timeout_ms=DELIVERY_TIMEOUT_MS, reconnect_backoff_max_ms=1000, **options)

    return OutboxRelay(service, database, producer,
                       KafkaBrokerLog(bootstrap, f"peerlink-{service}-relay-check", **options),
                       check_seconds=check_seconds)


def _age_seconds(oldest: datetime | None) -> float:
    if oldest is None:
        return 0.0
    return max(0.0, (utcnow() - oldest).total_seconds())

"""The outbox relay: one relay of a service publishes at a time, no transaction waits on the
broker, the backlog gauges rise during an outage, and what a restarted local broker forgot
is published again (SQLite and PostgreSQL).

Two relays (threads, then processes) on one outbox of 1,000 events put exactly 1,000 records
on the topic, each person's in seq order. A write is not held up while the relay waits for an
acknowledgement, and a tick ends under a steady stream of writes. With nothing listening on
the broker's port, 50 waiting events show in the gauges after a tick that returns within
seconds; they drain once the broker is there. A broker
stopped and started again on the same port (memory storage: its topics are gone) gets every
event again, in order, and a consumer's inbox applies each once and ignores the markers.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError
from sqlalchemy import Column, MetaData, String, Table, func, select, text

from ops.broker import LocalBroker, free_port
from shared.db import Database, UnitOfWork, make_engine, service_metadata
from shared.events.envelope import CloudEvent
from shared.events.screening import EnquiryDue
from shared.kafka.consumer import EventApplier, InboundRecord, Outcome
from shared.kafka.outbox import (
    MARKER_TYPE,
    WAIT_SECONDS,
    AdvisoryLock,
    Marker,
    OutboxRelay,
    advisory_key,
    kafka_relay,
)
from shared.kafka.producer import Headers, create_topics
from shared.kafka.topics import TopicSpec
from shared.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PENDING, OUTBOX_REPUBLISHED
from tests.support.kafka import headers_of

pytestmark = pytest.mark.kafka

EVENTS = 1000
SUBJECTS = 25
PARTITIONS = 3


def _metadata() -> MetaData:
    metadata = service_metadata()
    Table("effects", metadata, Column("event_id", String(64), primary_key=True))
    return metadata


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url, _metadata())
    db.metadata.create_all(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    return _new_topic(kafka_bootstrap)


def _new_topic(bootstrap: str, name: str | None = None) -> str:
    name = name or f"test.relay.{uuid.uuid4().hex[:10]}"
    create_topics(bootstrap, [TopicSpec(name, "test", "an outbox relay test topic")],
                  partitions=PARTITIONS)
    return name


def _write(database: Database, topic: str, count: int, subjects: int = SUBJECTS
           ) -> list[CloudEvent]:
    """``count`` events for ``subjects`` people, in one transaction, as a service writes them."""
    events = [CloudEvent.wrap(EnquiryDue(org="trust", team=f"team-{i}", due_on="2026-11-02"),
                              source="/peerlink/screening", subject=f"sub-{i % subjects}")
              for i in range(count)]
    with database.unit_of_work() as uow:
        for event in events:
            uow.publish(event, topic, aggregate_type="enquiry")
    return events


def _published(bootstrap: str, topic: str, expected: int, timeout: float = 30.0
               ) -> tuple[list[ConsumerRecord], int]:
    """Every event record on ``topic`` in (partition, offset) order, waiting for ``expected``
    and then for a quiet second (so that extra copies show), and how many markers."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    records: list[ConsumerRecord] = []
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            if batches:
                quiet_since = time.monotonic()
            events = sum(headers_of(r)["ce_type"] != MARKER_TYPE for r in records)
            if events >= expected and time.monotonic() - quiet_since > 1.0:
                break
    finally:
        consumer.close()
    records.sort(key=lambda r: (r.partition, r.offset))
    events_only = [r for r in records if headers_of(r)["ce_type"] != MARKER_TYPE]
    return events_only, len(records) - len(events_only)


def _assert_each_once_in_order(records: list[ConsumerRecord], events: list[CloudEvent]
                               ) -> None:
    ids = [CloudEvent.from_bytes(r.value).id for r in records]
    assert len(ids) == len(events), f"{len(ids)} records for {len(events)} events"
    assert Counter(ids) == Counter(e.id for e in events)
    by_subject: dict[str, list[str]] = {}
    for record, event_id in zip(records, ids, strict=True):
        by_subject.setdefault(record.key.decode(), []).append(event_id)
    for subject, published in by_subject.items():
        assert published == [e.id for e in events if e.subject == subject], subject


def _drain_until_empty(relay: OutboxRelay, timeout: float = 60.0) -> int:
    sent = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent += relay.drain()
        if relay.observe()[0] == 0:
            return sent
        time.sleep(0.05)
    raise AssertionError(f"the outbox did not drain in {timeout:.0f} s")


def test_two_relays_at_once_put_each_event_on_the_topic_once_in_order(
        database_url: str, database: Database, topic: str, kafka_bootstrap: str) -> None:
    events = _write(database, topic, EVENTS)
    other = Database(database_url, _metadata())
    relays = [kafka_relay("test", db, kafka_bootstrap) for db in (database, other)]
    barrier = threading.Barrier(len(relays))
    sent: dict[int, int | BaseException] = {}

    def run(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            sent[i] = _drain_until_empty(relays[i])
        except BaseException as exc:  # reported by the assertion below
            sent[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(relays))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for relay in relays:
        relay.close()
    other.dispose()

    assert all(isinstance(n, int) for n in sent.values()), sent
    assert sum(n for n in sent.values() if isinstance(n, int)) == EVENTS
    records, markers = _published(kafka_bootstrap, topic, EVENTS)
    _assert_each_once_in_order(records, events)
    assert markers == 1


RELAY_PROCESS = """
import sys, time
from pathlib import Path
from shared.db import Database, service_metadata
from shared.kafka.outbox import kafka_relay

url, bootstrap, ready, go = sys.argv[1:5]
database = Database(url, service_metadata())
relay = kafka_relay("test", database, bootstrap)
relay.observe()
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.01)
sent, deadline = 0, time.monotonic() + 60
while time.monotonic() < deadline:
    sent += relay.drain()
    if relay.observe()[0] == 0:
        break
    time.sleep(0.05)
relay.close()
print(sent)
"""


def test_two_relay_processes_at_once_put_each_event_on_the_topic_once(
        database_url: str, database: Database, topic: str, kafka_bootstrap: str,
        tmp_path: Path) -> None:
    events = _write(database, topic, EVENTS)
    go, ready = tmp_path / "go", [tmp_path / f"ready-{i}" for i in range(2)]
    processes = [subprocess.Popen([sys.executable, "-c", RELAY_PROCESS, database_url,
                                   kafka_bootstrap, str(flag), str(go)],
                                  stdout=subprocess.PIPE, cwd=Path(__file__).parents[2])
                 for flag in ready]
    deadline = time.monotonic() + 60
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outputs = [process.communicate(timeout=120)[0] for process in processes]

    assert [p.returncode for p in processes] == [0, 0]
    assert sum(int(out) for out in outputs) == EVENTS
    records, markers = _published(kafka_bootstrap, topic, EVENTS)
    _assert_each_once_in_order(records, events)
    assert markers == 1


class _Delivery:
    """A pending send that the broker acknowledges once ``gate`` opens."""

    def __init__(self, gate: threading.Event, offset: int) -> None:
        self._gate = gate
        self._offset = offset

    def get(self, timeout: float | None = None) -> Any:
        if not self._gate.wait(timeout):
            raise KafkaTimeoutError("not acknowledged yet")
        return SimpleNamespace(partition=0, offset=self._offset)


class _SlowBroker:
    """A producer whose events are acknowledged only when the test says (markers at once),
    and a broker log that holds every marker."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.acknowledge = threading.Event()
        self.sending = threading.Event()
        self._offset = 0
        self._now = threading.Event()
        self._now.set()

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> _Delivery:
        self._offset += 1
        if dict(headers)["ce_type"] == MARKER_TYPE.encode():
            return _Delivery(self._now, self._offset)
        self.sending.set()
        return _Delivery(self.acknowledge, self._offset)

    def flush(self, timeout: float | None = None) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Nothing to release."""

    def topics(self) -> set[str]:
        return {self.topic}

    def holds(self, marker: Marker) -> bool:
        return True


def test_a_write_does_not_wait_while_the_relay_waits_for_the_broker(
        database_url: str, database: Database) -> None:
    broker = _SlowBroker("slow.events")
    relay = OutboxRelay("test", database, lambda: broker, broker, wait_seconds=10)
    _write(database, broker.topic, 1)
    results: list[int] = []
    publishing = threading.Thread(target=lambda: results.append(relay.drain()))
    publishing.start()
    assert broker.sending.wait(timeout=10)
    other = Database(database_url, _metadata())
    try:
        started = time.monotonic()
        _write(database, broker.topic, 1)
        write_seconds = time.monotonic() - started
        second = OutboxRelay("test", other, lambda: broker, broker)
        assert second.drain() == 0  # the first holds the lock
        second.close()
        if database.engine.dialect.name == "postgresql":
            with other.engine.connect() as connection:
                open_transactions = connection.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%'")).scalar_one()
            assert open_transactions == 0
    finally:
        broker.acknowledge.set()
        publishing.join(timeout=30)
        other.dispose()
    sent_next = relay.drain()  # a tick publishes what was there when it began
    relay.close()

    assert write_seconds < 1.0, f"a write waited {write_seconds:.2f} s for the relay"
    assert (results, sent_next) == ([1], 1)


def test_a_tick_ends_while_writes_keep_coming(database: Database) -> None:
    broker = _SlowBroker("busy.events")
    broker.acknowledge.set()

    class WriteOnEverySend(_SlowBroker):
        """Another event is committed while each one is being sent."""

        def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers
                 ) -> _Delivery:
            if dict(headers)["ce_type"] != MARKER_TYPE.encode():
                _write(database, topic, 1)
            return broker.send(topic, key, value, headers)

    busy = WriteOnEverySend(broker.topic)
    relay = OutboxRelay("busy", database, lambda: busy, busy)
    _write(database, broker.topic, 3)
    started = time.monotonic()
    sent = relay.drain()
    tick = time.monotonic() - started
    relay.close()

    assert sent == 3, "a tick published beyond what the outbox held when it began"
    assert tick < 2.0, f"a tick under a steady stream of writes took {tick:.1f} s"
    assert relay.observe()[0] == 3


def _gauges(service: str) -> tuple[float, float]:
    return (OUTBOX_PENDING.labels(service)._value.get(),
            OUTBOX_OLDEST_AGE.labels(service)._value.get())


def test_the_backlog_gauges_rise_while_the_broker_is_down_and_fall_once_it_is_back(
        database: Database) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    service = f"down-{uuid.uuid4().hex[:6]}"
    relay = kafka_relay(service, database, bootstrap)
    _write(database, "down.events", 50)
    try:
        for _ in range(2):
            started = time.monotonic()
            assert relay.drain() == 0
            tick = time.monotonic() - started
            pending, age = _gauges(service)
            assert pending == 50
            assert age > 0
            assert tick < 2 * WAIT_SECONDS + 2, f"a tick took {tick:.1f} s"

        with LocalBroker(port):
            _new_topic(bootstrap, "down.events")
            assert _drain_until_empty(relay) == 50
            assert _gauges(service) == (0, 0)
            records, markers = _published(bootstrap, "down.events", 50)
    finally:
        relay.close()
    assert (len(records), markers) == (50, 1)


def _applier(database: Database) -> EventApplier:
    effects = database.metadata.tables["effects"]

    def remember(uow: UnitOfWork, event: CloudEvent, _payload: object) -> None:
        uow.session.execute(effects.insert().values(event_id=event.id))

    class NoDeadLetters:
        def send(self, consumer: str, record: InboundRecord, reason: str, message: str
                 ) -> None:
            raise AssertionError(f"dead-lettered: {reason}: {message}")

    return EventApplier("test", "test.consumer", database, {"enquiry-due": remember},
                        NoDeadLetters())


def _apply(applier: EventApplier, records: list[ConsumerRecord]) -> Counter[Outcome]:
    return Counter(applier.process(InboundRecord(
        topic=r.topic, partition=r.partition, offset=r.offset, key=r.key, value=r.value,
        headers=tuple(r.headers or ()))) for r in records)


def _topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_events_a_restarted_broker_forgot_are_published_again_in_order_and_applied_once(
        database: Database) -> None:
    broker = LocalBroker(free_port()).start()
    service = f"restart-{uuid.uuid4().hex[:6]}"
    topic = _new_topic(broker.bootstrap)
    relay = kafka_relay(service, database, broker.bootstrap)
    consumer_db = Database("sqlite://", _metadata())
    consumer_db.metadata.create_all(consumer_db.engine)
    applier = _applier(consumer_db)
    try:
        before = _write(database, topic, 20, subjects=4)
        assert _drain_until_empty(relay) == 20
        records, _ = _published(broker.bootstrap, topic, 20)
        consumed = [r for r in records if r.partition == records[0].partition]
        assert set(_apply(applier, consumed)) == {Outcome.APPLIED}

        broker.stop()
        broker.start()
        after = _write(database, topic, 10, subjects=4)
        assert relay.drain() == 0
        assert topic not in _topics(broker.bootstrap), "the relay created the topic"
        _new_topic(broker.bootstrap, topic)
        assert _drain_until_empty(relay) == 30

        records, markers = _published(broker.bootstrap, topic, 30)
        _assert_each_once_in_order(records, before + after)
        assert OUTBOX_REPUBLISHED.labels(service, topic)._value.get() == 20
        outcomes = _apply(applier, records) + _apply(applier, _markers(broker.bootstrap, topic))
        assert outcomes == {Outcome.APPLIED: 30 - len(consumed),
                            Outcome.DUPLICATE: len(consumed), Outcome.IGNORED: markers}
        with consumer_db.read() as session:
            effects = consumer_db.metadata.tables["effects"]
            assert session.execute(select(func.count()).select_from(effects)).scalar_one() == 30
    finally:
        relay.close()
        broker.stop()
        consumer_db.dispose()


def _markers(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return [r for r in consumer if headers_of(r)["ce_type"] == MARKER_TYPE]
    finally:
        consumer.close()


def test_an_idle_relay_notices_the_broker_forgot_and_publishes_again(
        database: Database) -> None:
    broker = LocalBroker(free_port()).start()
    service = f"idle-{uuid.uuid4().hex[:6]}"
    topic = _new_topic(broker.bootstrap)
    relay = kafka_relay(service, database, broker.bootstrap, check_seconds=0.5)
    try:
        events = _write(database, topic, 6, subjects=2)
        assert _drain_until_empty(relay) == 6
        broker.stop()
        broker.start()
        _new_topic(broker.bootstrap, topic)
        time.sleep(0.6)

        assert _drain_until_empty(relay) == 6
        records, markers = _published(broker.bootstrap, topic, 6)
        _assert_each_once_in_order(records, events)
        assert markers == 1
    finally:
        relay.close()
        broker.stop()


@pytest.mark.postgres
def test_a_relay_lock_is_let_go_on_close_and_a_lost_one_is_noticed(
        postgres_database: Callable[[], str]) -> None:
    """Found by review: closing returned the lock's connection to the pool, still holding the
    session's lock; and a relay whose session was ended kept believing it held the lock."""
    url = postgres_database()
    first, second = make_engine(url), make_engine(url)
    key = advisory_key("screening")
    try:
        a, b = AdvisoryLock(first, key), AdvisoryLock(second, key)
        assert a.acquire() and not b.acquire()
        a.close()
        assert b.acquire(), "the closed relay's session kept the lock"
        assert b._connection is not None
        holder = b._connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with first.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})
        assert a.acquire(), "the lock whose session ended is free again"
        assert not b.acquire(), "the relay whose session ended still thought it held the lock"
        a.close()
        b.close()
    finally:
        first.dispose()
        second.dispose()

"""Outbox relay, inbox and dead letters over a real broker and both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, select

from shared.db import Database, UnitOfWork, service_metadata
from shared.events.envelope import CloudEvent
from shared.events.screening import EnquiryDue
from shared.identity import new_subject_reference
from shared.kafka.consumer import (
    DeadLetterSink,
    EventApplier,
    InboundRecord,
    Outcome,
    StalledRecord,
)
from shared.kafka.deadletters import DeadLetterCipher
from shared.kafka.outbox import MARKER_TYPE, kafka_relay
from shared.kafka.producer import KafkaEventProducer, create_topics
from shared.kafka.topics import TopicSpec
from tests.support.kafka import headers_of, read_topic

DEADLETTER_KEY = bytes(range(32))

pytestmark = pytest.mark.kafka


def _metadata() -> tuple[MetaData, Table]:
    metadata = service_metadata()
    effects = Table("effects", metadata, Column("event_id", String(64), primary_key=True))
    return metadata, effects


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    metadata, _ = _metadata()
    db = Database(database_url, metadata)
    metadata.create_all(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    name = f"test.{uuid.uuid4().hex[:10]}"
    create_topics(kafka_bootstrap, [TopicSpec(name, "test", "a test topic")], partitions=3)
    return name


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaEventProducer]:
    p = KafkaEventProducer(kafka_bootstrap, "peerlink-tests")
    yield p
    p.close()


def _enquiry(subject: str, team: str) -> CloudEvent:
    payload = EnquiryDue(org="trust", team=team, due_on="2026-11-02")
    return CloudEvent.wrap(payload, source="/peerlink/screening", subject=subject)


def test_relay_publishes_committed_events_in_order_keyed_by_subject(
        database: Database, topic: str, kafka_bootstrap: str) -> None:
    subject = new_subject_reference()
    events = [_enquiry(subject, f"team-{i}") for i in range(3)]
    with database.unit_of_work() as uow:
        for event in events:
            uow.publish(event, topic, aggregate_type="enquiry")
    relay = kafka_relay("test", database, kafka_bootstrap)

    assert relay.drain() == 3
    assert relay.drain() == 0
    assert relay.observe() == (0, 0.0)
    relay.close()

    records = [r for r in read_topic(kafka_bootstrap, topic, at_least=4)
               if headers_of(r)["ce_type"] != MARKER_TYPE]
    assert [CloudEvent.from_bytes(r.value).id for r in records] == [e.id for e in events]
    assert {r.key for r in records} == {subject.encode()}
    assert {r.partition for r in records} == {records[0].partition}
    assert headers_of(records[0])["ce_type"] == "enquiry-due"


def test_a_rolled_back_change_publishes_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError), database.unit_of_work() as uow:
        uow.publish(_enquiry(new_subject_reference(), "t"), "anywhere", aggregate_type="x")
        raise RuntimeError("the state change failed")
    with database.read() as session:
        outbox = database.metadata.tables["outbox"]
        assert session.execute(select(func.count()).select_from(outbox)).scalar_one() == 0


def _record(topic: str, value: bytes, offset: int = 0) -> InboundRecord:
    return InboundRecord(topic=topic, partition=1, offset=offset, key=b"k", value=value)


def _applier(database: Database, producer: KafkaEventProducer, deadletter_topic: str,
             **options: Any) -> tuple[EventApplier, Table]:
    effects = database.metadata.tables["effects"]

    def remember(uow: UnitOfWork, event: CloudEvent, _payload: object) -> None:
        uow.session.execute(effects.insert().values(event_id=event.id))

    sink = DeadLetterSink("test", deadletter_topic, producer, DeadLetterCipher(DEADLETTER_KEY))
    return EventApplier("test", "test.consumer", database, {"enquiry-due": remember}, sink,
                        **options), effects


def test_a_redelivered_event_is_applied_once(database: Database, producer: KafkaEventProducer,
                                             topic: str) -> None:
    applier, effects = _applier(database, producer, topic)
    record = _record("screening.events", _enquiry(new_subject_reference(), "t").to_bytes())

    assert applier.process(record) is Outcome.APPLIED
    assert applier.process(record) is Outcome.DUPLICATE
    with database.read() as session:
        assert session.execute(select(func.count()).select_from(effects)).scalar_one() == 1


def test_an_event_of_another_type_is_ignored(database: Database, producer: KafkaEventProducer,
                                             topic: str) -> None:
    applier, _ = _applier(database, producer, topic)
    other = CloudEvent(id="1", source="/x", type="something-else", time="2026-11-01T00:00:00Z")
    assert applier.process(_record("screening.events", other.to_bytes())) is Outcome.IGNORED


@pytest.mark.parametrize(("value", "reason", "names"), [
    (b"{not json", "validation", "Invalid JSON"),
    (b'{"specversion": "1.0", "id": "1", "source": "/x", "type": "enquiry-due", '
     b'"time": "2026-11-01T00:00:00Z", "data": {"org": "trust", "team": "t"}}',
     "validation", "due_on"),
])
def test_a_bad_record_is_dead_lettered_with_where_it_came_from(
        database: Database, producer: KafkaEventProducer, topic: str, kafka_bootstrap: str,
        value: bytes, reason: str, names: str) -> None:
    applier, _ = _applier(database, producer, topic)

    outcome = applier.process(_record("partner.trust.inbound", value, offset=41))

    assert outcome is Outcome.DEAD_LETTERED
    [dead] = read_topic(kafka_bootstrap, topic)
    headers = headers_of(dead)
    assert dead.value != value
    assert headers["peerlink-sealed"] == "aes256gcm/v2"
    cipher = DeadLetterCipher(DEADLETTER_KEY)
    assert cipher.open("partner.trust.inbound", 1, 41, dead.value) == value
    assert dead.key != b"k"  # the record's key is sealed as well
    assert cipher.open("partner.trust.inbound", 1, 41, dead.key, part="key") == b"k"
    assert headers["peerlink-error-reason"] == reason
    assert names in headers["peerlink-error"]
    assert headers["peerlink-original-topic"] == "partner.trust.inbound"
    assert headers["peerlink-original-partition"] == "1"
    assert headers["peerlink-original-offset"] == "41"
    assert headers["peerlink-consumer"] == "test.consumer"


def test_a_consent_record_is_never_dead_lettered(database: Database,
                                                 producer: KafkaEventProducer, topic: str,
                                                 kafka_bootstrap: str) -> None:
    applier, _ = _applier(database, producer, topic, halt_on_error=True)

    with pytest.raises(StalledRecord, match=r"consent\.events"):
        applier.process(_record("consent.events", b"{not json"))
    assert read_topic(kafka_bootstrap, topic, timeout=2) == []

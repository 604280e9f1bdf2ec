"""Topics are created explicitly, once, with the registry's partition counts."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer

from shared.kafka.producer import create_topics
from shared.kafka.topics import TopicSpec, registry

pytestmark = pytest.mark.kafka


def test_registry_covers_every_topic_of_the_architecture() -> None:
    names = {spec.name for spec in registry(["trust", "partner-a", "partner-b"])}
    assert names == {
        "consent.events", "screening.events", "mentoring.events", "cascade.acks", "audit.heads",
        "partner.trust.inbound", "partner.partner-a.inbound", "partner.partner-b.inbound",
        "deadletter.consent", "deadletter.screening", "deadletter.mentoring",
        "deadletter.reporting",
    }


def test_creation_is_explicit_and_idempotent(kafka_bootstrap: str) -> None:
    prefix = uuid.uuid4().hex[:8]
    specs = [TopicSpec(f"{prefix}.events", "test", "events"),
             TopicSpec(f"{prefix}.state", "test", "state", compacted=True)]

    first = create_topics(kafka_bootstrap, specs, partitions=4)
    second = create_topics(kafka_bootstrap, specs, partitions=4)

    assert sorted(first) == sorted(s.name for s in specs)
    assert second == []
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        for spec in specs:
            assert consumer.partitions_for_topic(spec.name) == {0, 1, 2, 3}
    finally:
        consumer.close()


def test_audit_heads_are_kept_for_ever_not_compacted() -> None:
    [heads] = [s for s in registry(["trust"]) if s.name == "audit.heads"]
    assert heads.owner == "consent"
    assert heads.kafka_configs() == {"cleanup.policy": "delete", "retention.ms": "-1"}


def test_state_topics_are_compacted_and_logs_kept() -> None:
    state = TopicSpec("s", "x", "state", compacted=True).kafka_configs()
    log = TopicSpec("l", "x", "log").kafka_configs()
    assert state["cleanup.policy"] == "compact"
    assert log == {"cleanup.policy": "delete", "retention.ms": "-1"}

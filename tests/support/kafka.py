"""Reading topics from the beginning, for assertions."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord


def read_topic(bootstrap: str, topic: str, *, at_least: int = 1,
               timeout: float = 20.0) -> list[ConsumerRecord]:
    """Every record on ``topic`` from the beginning, waiting until there are ``at_least``
    and then until a poll brings nothing more."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=500)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assignment)
        consumer.seek_to_beginning(*assignment)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=300).values()
            for batch in batches:
                records.extend(batch)
            if len(records) >= at_least and not batches:
                break
        return records
    finally:
        consumer.close()


def headers_of(record: ConsumerRecord) -> dict[str, str]:
    """A record's headers as text."""
    return {key: value.decode() for key, value in record.headers or []}


def dead_letters_of(records: list[ConsumerRecord], topic: str,
                    sent: list[tuple[int, int]]) -> list[ConsumerRecord]:
    """The dead letters of records sent to ``topic`` at (partition, offset) ``sent``, in that
    order: found by where they came from, since a dead letter's key is sealed."""
    where = {(h.get("peerlink-original-partition"), h.get("peerlink-original-offset")): r
             for r in records
             if (h := headers_of(r)).get("peerlink-original-topic") == topic}
    return [where[(str(p), str(o))] for p, o in sent if (str(p), str(o)) in where]

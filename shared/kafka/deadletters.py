"""Inspecting and replaying dead letters (``peerlink deadletter list|replay``).

Listing shows only the headers (where a record came from and why it failed), never the
record's value, which may hold personal data. Replaying sends a record back to the topic it
came from, after the cause was fixed; if it still fails it is dead-lettered again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from shared.kafka.producer import EventProducer


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record, with where it came from and why it failed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def original(self) -> tuple[str, int, int]:
        """The topic, partition and offset the record was consumed from."""
        return (self.headers.get("peerlink-original-topic", "?"),
                int(self.headers.get("peerlink-original-partition", "-1")),
                int(self.headers.get("peerlink-original-offset", "-1")))

    def describe(self) -> str:
        """One line for an operator: position, origin, reason (no value)."""
        topic, partition, offset = self.original
        return (f"{self.topic}[{self.partition}]@{self.offset}  from {topic}[{partition}]@"
                f"{offset}  {self.headers.get('peerlink-failed-at', '?')}  "
                f"{self.headers.get('peerlink-error-reason', '?')}: "
                f"{self.headers.get('peerlink-error', '')}")


def read_records(bootstrap: str, topic: str, idle_seconds: float = 2.0,
                 **options: Any) -> Iterator[bytes]:
    """Every record value on a topic, from the beginning, until it goes quiet."""
    for letter in read_dead_letters(bootstrap, topic, idle_seconds, **options):
        yield letter.value


def read_dead_letters(bootstrap: str, topic: str, idle_seconds: float = 2.0,
                      **options: Any) -> Iterator[DeadLetter]:
    """Every record on a (dead-letter) topic, from the beginning, until it goes quiet."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             client_id="peerlink-topic-reader", **options)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        last = time.monotonic()
        while time.monotonic() - last < idle_seconds:
            for tp, batch in consumer.poll(timeout_ms=300).items():
                last = time.monotonic()
                for message in batch:
                    yield DeadLetter(
                        topic=tp.topic, partition=tp.partition, offset=message.offset,
                        key=message.key, value=message.value or b"",
                        headers={k: v.decode(errors="replace")
                                 for k, v in message.headers or ()})
    finally:
        consumer.close()


def replay(producer: EventProducer, letters: list[DeadLetter]) -> int:
    """Send dead letters back to their original topics; returns how many were sent."""
    for letter in letters:
        topic, _, _ = letter.original
        if topic == "?":
            raise ValueError(f"{letter.topic}[{letter.partition}]@{letter.offset} does not say "
                             "where it came from")
        producer.send(topic, letter.key, letter.value, [
            ("peerlink-replayed-from",
             f"{letter.topic}[{letter.partition}]@{letter.offset}".encode())]).get(timeout=30)
    producer.flush(timeout=30)
    return len(letters)

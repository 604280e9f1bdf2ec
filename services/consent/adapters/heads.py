"""The audit chain's published heads on Kafka: written by the consent worker, read back in
full by verification.

Reading stops at each partition's high watermark as the fetch responses themselves report it
(checked on the local Tansu broker: every partition's watermark is known after the first poll),
not at ListOffsets' end offsets, which some Tansu builds answer wrongly; and it never trusts a
quiet poll: a partition whose watermark was not reached within the time limit makes the read
fail rather than come back short.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC
from typing import Any, Final

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from services.consent.domain.audit import PublishedHead
from services.consent.service_layer.ports import HeadsUnavailable
from shared.events.audit import AuditHeadPublished
from shared.events.catalogue import parse_payload
from shared.events.envelope import CloudEvent
from shared.kafka.producer import EventProducer

log = logging.getLogger(__name__)
RECORD_KEY: Final = b"consent-audit-head"
"""Every head has this key, so heads stay in one partition, in publication order."""
SOURCE: Final = "peerlink/consent/audit"


class KafkaHeadLog:
    """Publishes heads to, and reads every head from, one topic."""

    def __init__(self, bootstrap: str, topic: str, read_timeout_seconds: float = 10.0,
                 **client_options: Any) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._timeout = read_timeout_seconds
        self._options = client_options

    def publish(self, producer: EventProducer, head: PublishedHead) -> None:
        """Send one head and wait for the broker's acknowledgement."""
        event = CloudEvent.wrap(AuditHeadPublished(seq=head.seq, hash=head.hash, at=head.at),
                                source=SOURCE, subject=None, time=head.at)
        producer.send(self.topic, RECORD_KEY, event.to_bytes(),
                      [("ce_type", event.type.encode())]).get(timeout=30)

    def read_all(self) -> list[PublishedHead]:
        """Every head on the topic, from the beginning; raises ``HeadsUnavailable``."""
        deadline = time.monotonic() + self._timeout
        timeout_ms = int(self._timeout * 1000)
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap, client_id="peerlink-consent-audit-verify",
                enable_auto_commit=False, request_timeout_ms=max(timeout_ms, 1000) + 500,
                bootstrap_timeout_ms=timeout_ms, fetch_max_wait_ms=100, **self._options)
        except Exception as exc:
            raise HeadsUnavailable(f"Kafka did not answer ({type(exc).__name__})") from None
        try:
            return self._read(consumer, deadline)
        except HeadsUnavailable:
            raise
        except Exception as exc:
            raise HeadsUnavailable(f"reading {self.topic} failed ({type(exc).__name__})"
                                   ) from None
        finally:
            consumer.close()

    def _read(self, consumer: KafkaConsumer, deadline: float) -> list[PublishedHead]:
        if self.topic not in consumer.topics():  # fresh metadata of every topic
            raise HeadsUnavailable(f"the topic {self.topic} does not exist")
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            raise HeadsUnavailable(f"the topic {self.topic} does not exist")
        assignment = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(assignment)
        consumer.seek_to_beginning(*assignment)
        heads: list[PublishedHead] = []
        while True:
            for records in consumer.poll(timeout_ms=200).values():
                heads.extend(head for record in records
                             if (head := _head(record.value)) is not None)
            watermarks = [consumer.highwater(tp) for tp in assignment]
            if all(w is not None and consumer.position(tp) >= w
                   for tp, w in zip(assignment, watermarks, strict=True)):
                return heads
            if time.monotonic() >= deadline:
                raise HeadsUnavailable(f"reading {self.topic} did not finish in time")


def _head(value: bytes | None) -> PublishedHead | None:
    try:
        event = CloudEvent.from_bytes(value)
        payload = parse_payload(event)
    except (ValidationError, ValueError):
        log.warning("a record on the audit heads topic is not a head; ignored")
        return None
    if not isinstance(payload, AuditHeadPublished):
        log.warning("a record on the audit heads topic is not a head; ignored")
        return None
    return PublishedHead(seq=payload.seq, hash=payload.hash, at=payload.at.astimezone(UTC))


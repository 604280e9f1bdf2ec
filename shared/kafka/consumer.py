"""Applying consumed records exactly once, and dead-lettering what cannot be applied.

``EventApplier.process`` is plain synchronous code (the stream worker calls it in a thread):
it parses the CloudEvent, validates its payload, applies the handler and records the event in
the inbox in one transaction. A record that fails validation goes to the service's dead-letter
topic with headers naming the error and where it came from; for consent events (``halt`` mode)
it is never skipped: ``StalledRecord`` is raised and the caller retries until an operator acts.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import OperationalError

from shared.crypto import KeyStoreUnavailable
from shared.db import Database, UnitOfWork
from shared.events.catalogue import UnknownEventType, parse_payload
from shared.events.envelope import CloudEvent
from shared.kafka.producer import EventProducer
from shared.metrics import DEADLETTERS, EVENTS_APPLIED, EVENTS_DUPLICATE

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, CloudEvent, Any], None]
Decoder = Callable[[CloudEvent], BaseModel]
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (KeyStoreUnavailable, OperationalError)
MAX_REASON_CHARS = 1000


class RejectedEvent(ValueError):
    """A well-formed event that this service cannot apply (the message names the field)."""


class StalledRecord(Exception):
    """A record that must not be skipped could not be applied; retry, never dead-letter."""


class Outcome(enum.Enum):
    """What happened to one record."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead-lettered"


@dataclass(frozen=True)
class InboundRecord:
    """A consumed Kafka record, independent of the client library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


def describe_error(exc: BaseException) -> tuple[str, str]:
    """A reason code and a message naming fields and problems, never the input values."""
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        return "validation", "; ".join(parts)[:MAX_REASON_CHARS]
    if isinstance(exc, RejectedEvent | UnknownEventType):
        return "rejected", str(exc)[:MAX_REASON_CHARS]
    return "unexpected", type(exc).__name__


class DeadLetters(Protocol):
    """Where records that cannot be applied go."""

    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        """Keep the record with the reason."""
        ...


class DeadLetterSink:
    """Sends records that cannot be applied to ``deadletter.<service>``, with the reason."""

    def __init__(self, service: str, topic: str, producer: EventProducer) -> None:
        self._service = service
        self._topic = topic
        self._producer = producer

    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        """Dead-letter a record and wait for the broker to keep it."""
        headers = [
            ("peerlink-error-reason", reason.encode()),
            ("peerlink-error", message.encode()),
            ("peerlink-original-topic", record.topic.encode()),
            ("peerlink-original-partition", str(record.partition).encode()),
            ("peerlink-original-offset", str(record.offset).encode()),
            ("peerlink-consumer", consumer.encode()),
            ("peerlink-failed-at", datetime.now(UTC).isoformat().encode()),
        ]
        self._producer.send(self._topic, record.key, record.value or b"", headers).get(timeout=30)
        DEADLETTERS.labels(self._service, reason).inc()
        log.warning("record dead-lettered", extra={
            "reason": reason, "topic": record.topic, "partition": record.partition,
            "offset": record.offset})


class EventApplier:
    """Applies each event of the types it handles once, in a transaction with its inbox row."""

    def __init__(self, service: str, consumer: str, database: Database,
                 handlers: Mapping[str, Handler], deadletters: DeadLetters, *,
                 decode: Decoder = parse_payload, halt_on_error: bool = False,
                 reject_unhandled: bool = False) -> None:
        self._service = service
        self.consumer = consumer
        self._db = database
        self._handlers = handlers
        self._deadletters = deadletters
        self._decode = decode
        self._halt = halt_on_error
        self._reject_unhandled = reject_unhandled

    def process(self, record: InboundRecord) -> Outcome:
        """Apply one record; raises only for transient errors or a stalled consent record."""
        try:
            event = CloudEvent.from_bytes(record.value)
            handler = self._handlers.get(event.type)
            if handler is None:
                if self._reject_unhandled:
                    raise RejectedEvent(f"type: {event.type!r} is not accepted on {record.topic}")
                return Outcome.IGNORED
            payload = self._decode(event)
            with self._db.unit_of_work() as uow:
                if not uow.claim(self.consumer, event):
                    EVENTS_DUPLICATE.labels(self._service).inc()
                    return Outcome.DUPLICATE
                handler(uow, event, payload)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            reason, message = describe_error(exc)
            if self._halt:
                raise StalledRecord(f"{record.topic}[{record.partition}]@{record.offset}: "
                                    f"{reason}: {message}") from exc
            if reason == "unexpected":
                log.exception("handler failed", extra={"topic": record.topic,
                                                       "offset": record.offset})
            self._deadletters.send(self.consumer, record, reason, message)
            return Outcome.DEAD_LETTERED
        EVENTS_APPLIED.labels(self._service, event.type).inc()
        return Outcome.APPLIED

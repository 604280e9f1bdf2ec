"""Applying consumed records exactly once, and dead-lettering what cannot be applied.

``EventApplier.process`` is plain synchronous code (the stream worker calls it in a thread):
it decodes the CloudEvent from the record's value and headers (``shared.kafka.binding``:
structured or binary mode), validates its payload, applies the handler and records the event
in the inbox in one transaction. A record that fails validation goes to the service's dead-letter
topic with headers naming the error and where it came from; for consent events (``halt`` mode)
it is never skipped: ``StalledRecord`` is raised and the caller retries until an operator acts.

The dead letter's value is sealed under the service's dead-letter key; its headers (and the
logs) name only fields the schema knows and the problem, never a value a partner sent, nor a
field name they invented (a name can be a person's name).
"""

from __future__ import annotations

import base64
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import OperationalError

from shared.crypto import KeyStoreUnavailable
from shared.db import Database, UnitOfWork
from shared.events.catalogue import UnknownEventType, parse_payload
from shared.events.envelope import CloudEvent
from shared.kafka.binding import InvalidRecord, UnsupportedRecord, decode_record
from shared.kafka.deadletters import (
    ORIGINAL_HEADERS,
    SEALED_HEADER,
    SEALED_V2,
    DeadLetterCipher,
    encode_headers,
)
from shared.kafka.producer import EventProducer
from shared.logging import scrub
from shared.metrics import BATCHES_SPLIT, DEADLETTERS, EVENTS_APPLIED, EVENTS_DUPLICATE

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, CloudEvent, Any], None]
ManyHandler = Callable[[UnitOfWork, Sequence[tuple[CloudEvent, Any]]], None]
"""Applies several events of the types it is registered for at once, in their order, with the
same effect as their ``Handler`` one after another (fewer statements)."""
Decoder = Callable[[CloudEvent], BaseModel]


class DeadLetterUnavailable(Exception):
    """The dead-letter topic did not take a record: retry it, never skip it."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (KeyStoreUnavailable, OperationalError,
                                                     DeadLetterUnavailable)
MAX_REASON_CHARS = 1000
UNEXPECTED_FIELD = "unexpected field"
PLAIN_MESSAGES: frozenset[str] = frozenset({
    "missing", "string_type", "string_too_short", "string_too_long", "string_pattern_mismatch",
    "string_sub_type", "string_unicode", "int_type", "int_parsing", "int_from_float",
    "float_type", "float_parsing", "bool_type", "bool_parsing", "literal_error", "enum",
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of",
    "finite_number", "too_short", "too_long", "list_type", "tuple_type", "set_type",
    "dict_type", "model_type", "model_attributes_type", "date_type", "date_parsing",
    "date_from_datetime_parsing", "date_from_datetime_inexact", "date_past", "date_future",
    "datetime_type", "datetime_parsing", "datetime_from_date_parsing", "timezone_aware",
    "timezone_naive", "json_invalid", "json_type", "none_required", "union_tag_not_found",
    "value_error", "assertion_error", "decimal_type", "decimal_parsing", "uuid_type",
    "is_instance_of", "frozen_field",
})
"""pydantic error types whose message holds no input (``value_error`` and
``assertion_error`` carry our validators' own texts, which name fields, never values).
Others, such as ``union_tag_invalid`` and ``uuid_parsing``, quote what was sent: they are
described by their type alone."""


PEERLINK_SOURCE: Final = "/peerlink"
"""The ``source`` of every Peerlink service's events (``/peerlink/<service>``)."""


class RejectedEvent(ValueError):
    """A well-formed event that this service cannot apply (the message names the field)."""


def check_partner_source(event: CloudEvent) -> None:
    """Refuse a partner's event that claims a Peerlink service as its ``source``: a partner's
    topic carries only what its own systems send."""
    if event.source == PEERLINK_SOURCE or event.source.startswith(f"{PEERLINK_SOURCE}/"):
        raise RejectedEvent("source: a partner's event may not claim a Peerlink service")


class StalledRecord(Exception):
    """A record that must not be skipped could not be applied; retry, never dead-letter."""


RETRYABLE: tuple[type[BaseException], ...] = (StalledRecord, *TRANSIENT_ERRORS)
"""What ends an attempt to apply a record without skipping it: try again later."""


class BatchInterrupted(Exception):
    """A batch stopped at ``record`` (its ``done`` records before it are done); the cause is
    a ``RETRYABLE`` error. Retry from that record."""

    def __init__(self, done: int, record: InboundRecord) -> None:
        super().__init__(f"{record.topic}[{record.partition}]@{record.offset}")
        self.done = done
        self.record = record


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
    headers: Sequence[tuple[str, bytes | None]] = ()


def _describe_validation(error: Any) -> str:
    """``field.path: problem`` for one pydantic error. An unknown field is not named (its name
    was the sender's invention), only its place; a message that would quote input is replaced
    by the error type."""
    loc = [str(part) for part in error["loc"]]
    if error["type"] == "extra_forbidden":
        return f"{'.'.join(loc[:-1]) or 'record'}: {UNEXPECTED_FIELD}"
    problem = error["msg"] if error["type"] in PLAIN_MESSAGES else \
        f"is not valid ({error['type']})"
    return f"{'.'.join(loc) or 'record'}: {problem}"


def describe_error(exc: BaseException) -> tuple[str, str]:
    """A reason code and a message naming known fields and problems, never input values nor
    field names the sender made up."""
    if isinstance(exc, ValidationError):
        parts = dict.fromkeys(_describe_validation(err)
                              for err in exc.errors(include_input=False, include_url=False))
        return "validation", scrub("; ".join(parts))[:MAX_REASON_CHARS]
    if isinstance(exc, InvalidRecord):
        return "validation", scrub(str(exc))[:MAX_REASON_CHARS]
    if isinstance(exc, UnsupportedRecord):
        return "rejected", scrub(str(exc))[:MAX_REASON_CHARS]
    if isinstance(exc, UnknownEventType):
        return "rejected", "type: not an event type (or version) this service knows"
    if isinstance(exc, RejectedEvent):
        return "rejected", scrub(str(exc))[:MAX_REASON_CHARS]
    return "unexpected", type(exc).__name__


class DeadLetters(Protocol):
    """Where records that cannot be applied go."""

    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        """Keep the record with the reason."""
        ...


class DeadLetterSink:
    """Sends records that cannot be applied to ``deadletter.<service>``, sealed, with the
    reason."""

    def __init__(self, service: str, topic: str, producer: EventProducer,
                 cipher: DeadLetterCipher) -> None:
        self._service = service
        self._topic = topic
        self._producer = producer
        self._cipher = cipher

    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        """Dead-letter a record, its value sealed, and wait for the broker to keep it."""
        sealed = self._cipher.seal(record.topic, record.partition, record.offset,
                                   record.value or b"")
        key = None if record.key is None else self._cipher.seal(
            record.topic, record.partition, record.offset, record.key, part="key")
        kept = [] if not record.headers else [(ORIGINAL_HEADERS, base64.b64encode(
            self._cipher.seal(record.topic, record.partition, record.offset,
                              encode_headers(list(record.headers)), part="headers")))]
        headers = [
            *kept,
            (SEALED_HEADER, SEALED_V2.encode()),
            ("peerlink-error-reason", reason.encode()),
            ("peerlink-error", message.encode()),
            ("peerlink-original-topic", record.topic.encode()),
            ("peerlink-original-partition", str(record.partition).encode()),
            ("peerlink-original-offset", str(record.offset).encode()),
            ("peerlink-consumer", consumer.encode()),
            ("peerlink-failed-at", datetime.now(UTC).isoformat().encode()),
        ]
        try:
            self._producer.send(self._topic, key, sealed, headers).get(timeout=30)
        except Exception as exc:
            raise DeadLetterUnavailable(type(exc).__name__) from exc
        DEADLETTERS.labels(self._service, reason).inc()
        log.warning("record dead-lettered", extra={
            "reason": reason, "topic": record.topic, "partition": record.partition,
            "offset": record.offset})


class EventApplier:
    """Applies each event of the types it handles once, in a transaction with its inbox row."""

    def __init__(self, service: str, consumer: str, database: Database,
                 handlers: Mapping[str, Handler], deadletters: DeadLetters, *,
                 decode: Decoder = parse_payload, halt_on_error: bool = False,
                 reject_unhandled: bool = False,
                 many: Mapping[str, ManyHandler] | None = None) -> None:
        self._service = service
        self.consumer = consumer
        self._db = database
        self._handlers = handlers
        self._deadletters = deadletters
        self._decode = decode
        self._halt = halt_on_error
        self._reject_unhandled = reject_unhandled
        self._many = dict(many or {})

    def process(self, record: InboundRecord) -> Outcome:
        """Apply one record; raises only for transient errors or a stalled consent record."""
        try:
            prepared = self._prepare(record)
            if prepared is None:
                return Outcome.IGNORED
            with self._db.unit_of_work() as uow:
                if not uow.claim(self.consumer, prepared.event):
                    EVENTS_DUPLICATE.labels(self._service).inc()
                    return Outcome.DUPLICATE
                prepared.handler(uow, prepared.event, prepared.payload)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            return self._fail(record, exc)
        EVENTS_APPLIED.labels(self._service, prepared.event.type).inc()
        return Outcome.APPLIED

    def process_batch(self, records: Sequence[InboundRecord]) -> list[Outcome]:
        """Apply ``records`` in order, each once, as ``process`` would one after another, but
        each run of records that decode in one transaction with one inbox claim. A record
        that does not decode, and every record of a run whose transaction fails, goes through
        ``process`` alone: it is dead-lettered (or stalls) exactly as it would have been, and
        nothing after a stalled record is applied. Where ``process`` would raise, raises
        ``BatchInterrupted``: the records before it are done (applied, dead-lettered or left
        alone) and committed, so a retry starts from the one it names."""
        outcomes: list[Outcome] = []
        try:
            self._process_into(records, outcomes)
        except RETRYABLE as exc:
            raise BatchInterrupted(len(outcomes), records[len(outcomes)]) from exc
        return outcomes

    def _process_into(self, records: Sequence[InboundRecord], outcomes: list[Outcome]) -> None:
        """``process_batch``, appending each record's outcome as it is done."""
        run: list[_Prepared] = []
        for record in records:
            try:
                prepared = self._prepare(record)
            except TRANSIENT_ERRORS:
                raise
            except Exception:
                self._apply_run(run, outcomes)
                run = []
                outcomes.append(self.process(record))  # dead-letters it or stalls, as alone
                continue
            if prepared is None:
                self._apply_run(run, outcomes)
                run = []
                outcomes.append(Outcome.IGNORED)
            else:
                run.append(prepared)
        self._apply_run(run, outcomes)

    def _prepare(self, record: InboundRecord) -> _Prepared | None:
        """The record decoded with its handler and payload; None for a type this consumer
        leaves alone. Raises what makes it dead-letter."""
        event = decode_record(record.value, record.headers)
        handler = self._handlers.get(event.type)
        if handler is None:
            if self._reject_unhandled:
                raise RejectedEvent(f"type: not an event type accepted on {record.topic}")
            return None
        return _Prepared(record, event, handler, self._decode(event))

    def _apply_run(self, run: Sequence[_Prepared], outcomes: list[Outcome]) -> None:
        """Apply decoded records in one transaction; if it fails, one at a time instead."""
        if not run:
            return
        try:
            with self._db.unit_of_work() as uow:
                claimed = uow.claim_all(self.consumer, [prepared.event for prepared in run])
                self._apply_claimed(uow, [prepared for prepared, new
                                          in zip(run, claimed, strict=True) if new])
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # one of them fails: find which, alone
            BATCHES_SPLIT.labels(self._service).inc()
            log.warning("batch failed; applying its records one at a time", extra={
                "consumer": self.consumer, "records": len(run), "error": type(exc).__name__})
            for prepared in run:
                outcomes.append(self.process(prepared.record))
            return
        for prepared, new in zip(run, claimed, strict=True):
            if new:
                EVENTS_APPLIED.labels(self._service, prepared.event.type).inc()
            else:
                EVENTS_DUPLICATE.labels(self._service).inc()
            outcomes.append(Outcome.APPLIED if new else Outcome.DUPLICATE)

    def _apply_claimed(self, uow: UnitOfWork, claimed: Sequence[_Prepared]) -> None:
        """Apply events in order: each run of them that one ``ManyHandler`` takes at once,
        the others one by one."""
        start = 0
        while start < len(claimed):
            many = self._many.get(claimed[start].event.type)
            if many is None:
                prepared = claimed[start]
                prepared.handler(uow, prepared.event, prepared.payload)
                start += 1
                continue
            end = start + 1
            while end < len(claimed) and self._many.get(claimed[end].event.type) is many:
                end += 1
            many(uow, [(prepared.event, prepared.payload) for prepared in claimed[start:end]])
            start = end

    def _fail(self, record: InboundRecord, exc: Exception) -> Outcome:
        """Stall on ``record`` (halt mode) or dead-letter it with the reason."""
        reason, message = describe_error(exc)
        if self._halt:
            raise StalledRecord(f"{record.topic}[{record.partition}]@{record.offset}: "
                                f"{reason}: {message}") from exc
        if reason == "unexpected":
            log.exception("handler failed", extra={"topic": record.topic,
                                                   "offset": record.offset})
        self._deadletters.send(self.consumer, record, reason, message)
        return Outcome.DEAD_LETTERED


@dataclass(frozen=True)
class _Prepared:
    """A record decoded, with the handler for its type and its payload."""

    record: InboundRecord
    event: CloudEvent
    handler: Handler
    payload: Any

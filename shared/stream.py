"""The stream-worker side every service shares: a faust app with health, metrics, consumers
that apply each record once and an outbox relay.

Agents stay thin: they turn each faust message into an ``InboundRecord`` and hand it to an
``EventApplier`` in a thread; a batching agent hands over every record already waiting (up to
the batch size) at once, applied in one transaction (one record at a time only to isolate one
that fails). Offsets are acknowledged by the agent once applied, never by faust: a worker
stopped or crashing mid-batch has it delivered again. Nothing escapes an agent
(an escaped exception silently stalls its partitions): transient errors and stalled consent
records are retried with back-off, with ``peerlink_consent_events_stalled`` raised while a
consent record waits.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from shared.cascade import CascadeParticipant
from shared.db import Database
from shared.kafka.client import faust_credentials
from shared.kafka.consumer import (
    BatchInterrupted,
    DeadLetterSink,
    EventApplier,
    InboundRecord,
)
from shared.kafka.outbox import OutboxRelay
from shared.kafka.topics import events_topic
from shared.logging import json_logging_config
from shared.metrics import CONSENT_STALLED, LAST_APPLIED, initialise_worker_metrics
from shared.settings import PlatformSettings

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"  # aiohttp adds the charset itself


def faust_app(app_id: str, service: str, settings: PlatformSettings, *,
              store: str = "memory://", **options: Any) -> faust.App:
    """A faust app configured for Peerlink: explicit topics, idempotent producer, no table views."""
    return faust.App(
        app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),
        store=store,
        autodiscover=False,
        web_enabled=True,
        web_host=settings.worker_host,
        web_bind=settings.worker_host,
        web_port=settings.worker_port(service),
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        broker_session_timeout=settings.broker_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_seconds / 3),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        producer_acks=-1,
        producer_enable_idempotence=True,
        consumer_auto_offset_reset="earliest",
        **options,
    )


class StreamWorker:
    """One service's stream worker."""

    def __init__(self, service: str, app: faust.App,
                 readiness: Iterable[Callable[[], None]] = (),
                 batch_records: int = 200) -> None:
        self.service = service
        self.app = app
        self._batch_records = batch_records
        self._checks = list(readiness)
        initialise_worker_metrics(service)
        self._relays: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._add_pages()

    def _add_pages(self) -> None:
        service, checks = self.service, self._checks

        @self.app.page("/healthz")
        class Health(View):  # type: ignore[misc]
            async def get(self, request: Request) -> Response:
                return self.json({"status": "ok", "service": service, "role": "worker"})

        @self.app.page("/readyz")
        class Ready(View):  # type: ignore[misc]
            async def get(self, request: Request) -> Response:
                failing = []
                for check in checks:
                    try:
                        await asyncio.to_thread(check)
                    except Exception:
                        failing.append(getattr(check, "__name__", "check"))
                return self.json({"status": "not-ready" if failing else "ready",
                                  "failing": failing}, status=503 if failing else 200)

        @self.app.page("/metrics")
        class Metrics(View):  # type: ignore[misc]
            async def get(self, request: Request) -> Response:
                return self.text(generate_latest().decode(), content_type=METRICS_CONTENT_TYPE)

    def consume(self, name: str, topics: Iterable[str], applier: EventApplier,
                *, halt_on_error: bool = False, batch: bool = False) -> None:
        """Run ``applier`` over every record of ``topics`` in order: with ``batch``, the
        records already waiting (up to the worker's batch size) in one transaction, for
        handlers that do no I/O of their own; otherwise one at a time (a handler that calls
        the consent service must not hold a SQLite write lock across 200 calls)."""
        topic = self.app.topic(*topics, key_type=bytes, value_type=bytes,
                               key_serializer="raw", value_serializer="raw")
        service, most = self.service, self._batch_records if batch else 1

        async def agent(stream: Any) -> None:
            manual = stream.noack()  # acknowledged here, once applied: never by faust
            waiting = manual.channel.queue
            taken: list[Any] = []
            async for event in manual.events():
                taken.append(event)
                if len(taken) < most and not waiting.empty():
                    continue  # more has arrived already: take it too
                await apply_until_done(service, applier, [_record(e) for e in taken],
                                       halt_on_error)
                for applied in taken:
                    await manual.ack(applied)
                taken = []

        agent.__name__ = agent.__qualname__ = name
        self.app.agent(topic, name=f"{service}.{name}", concurrency=1)(agent)

    def join_cascade(self, participant: CascadeParticipant, database: Database,
                     deadletters: DeadLetterSink) -> None:
        """Apply consent events for this service; they are never skipped or dead-lettered."""
        applier = EventApplier(self.service, f"{self.service}.consent", database,
                               participant.handlers(), deadletters, halt_on_error=True)
        self.consume("consent_events", [events_topic("consent")], applier, halt_on_error=True)

    def relay(self, relay: OutboxRelay, interval_seconds: float) -> None:
        """Publish the service's outbox every ``interval_seconds``, in a thread of its own
        from the moment the worker starts: faust's timers wait until the app has reached the
        broker, so a worker started while the broker was away never published, and its
        backlog gauges never moved."""
        self._relays.append(threading.Thread(
            target=_relay_forever, args=(relay, interval_seconds, self._stopping),
            name=f"{self.service}-outbox-relay", daemon=True))

    def run(self, loglevel: str = "INFO") -> None:
        """Run the worker until interrupted, logging JSON lines like every other process."""
        logging.config.dictConfig(json_logging_config(f"{self.service}-worker", loglevel))
        for thread in self._relays:
            thread.start()
        try:
            self._run_faust(loglevel)
        finally:
            self._stopping.set()
            for thread in self._relays:
                thread.join(timeout=15)

    def _run_faust(self, loglevel: str) -> None:
        faust.Worker(self.app, loglevel=loglevel, quiet=True,
                     logging_config=json_logging_config(f"{self.service}-worker", loglevel),
                     ).execute_from_commandline()


def _record(event: Any) -> InboundRecord:
    """A faust event's message as an ``InboundRecord``."""
    message = event.message
    return InboundRecord(topic=message.topic, partition=message.partition,
                         offset=message.offset, key=message.key, value=message.value,
                         headers=tuple((k, v) for k, v in (message.headers or ())))


def _relay_forever(relay: OutboxRelay, interval_seconds: float,
                   stopping: threading.Event) -> None:
    """Drain the outbox every ``interval_seconds`` until ``stopping`` is set; a failed tick
    is logged and the next one tries again."""
    while not stopping.is_set():
        try:
            relay.drain()
        except Exception:
            log.exception("outbox relay failed; will retry")
        stopping.wait(interval_seconds)
    relay.close()


async def apply_until_done(service: str, applier: EventApplier,
                           records: Sequence[InboundRecord], halt_on_error: bool) -> None:
    """Apply records, retrying transient failures and stalled consent records with back-off
    from the record that stopped them (those before it are done)."""
    backoff = 0.5
    while records:
        try:
            await asyncio.to_thread(applier.process_batch, records)
        except BatchInterrupted as interrupted:
            records, stopped = records[interrupted.done:], interrupted.record
            if halt_on_error:
                CONSENT_STALLED.labels(service).set(1)
            log.error("record not applied; retrying", extra={
                "topic": stopped.topic, "partition": stopped.partition,
                "offset": stopped.offset, "error": type(interrupted.__cause__).__name__,
                "retry_in_seconds": backoff})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            continue
        break
    if halt_on_error:
        CONSENT_STALLED.labels(service).set(0)
    now = time.time()
    for topic in {record.topic for record in records}:
        LAST_APPLIED.labels(service, topic).set(now)

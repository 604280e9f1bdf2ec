"""``peerlink reporting rebuild``: replay the log from the beginning into an empty read model.

Every business and consent event is applied through the same handlers as the live stream, and
the release rule's memory is kept (or carried over into another database), so the rebuilt
figures are the live ones and cannot move by fewer than K people. Records the live stream
dead-lettered are counted, not dead-lettered again. Stop the reporting workers while
rebuilding their own database, or rebuild into another (``--database-url``) and point them at
it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from services.reporting.adapters import migrations
from services.reporting.adapters.tables import metadata
from services.reporting.bootstrap import SERVICE, ReportingAdapters
from services.reporting.entrypoints.worker import BUSINESS_CONSUMER, BUSINESS_TOPICS
from services.reporting.service_layer import cascade
from services.reporting.service_layer.read_model import (
    business_batch_handlers,
    business_handlers,
    carry_memory,
    clear,
    publish_release,
)
from shared.db import Database
from shared.kafka.client import client_options
from shared.kafka.consumer import EventApplier, InboundRecord, Outcome
from shared.kafka.topics import events_topic
from shared.migrations import upgrade
from shared.settings import PlatformSettings

log = logging.getLogger(__name__)


@dataclass
class SkippedRecords:
    """Counts the records that could not be applied (the live stream dead-lettered them)."""

    reasons: dict[str, int] = field(default_factory=dict)

    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        """Count, instead of dead-lettering twice."""
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass(frozen=True)
class RebuildSummary:
    """What a rebuild read and applied."""

    records: int
    applied: int
    skipped: dict[str, int]


Progress = Callable[[int, int | None], None]
"""Told (records read so far, records to read if the broker says) as a replay goes."""


def replay(bootstrap: str, topics: tuple[str, ...], appliers: dict[str, EventApplier],
           idle_seconds: float = 3.0, progress: Progress | None = None,
           **options: Any) -> tuple[int, int]:
    """Apply every record of ``topics`` from the beginning; returns (read, applied).

    Each partition's batch of a poll is applied in one transaction (``process_batch``), in
    order. It stops once every partition has reached the end offset the broker reported at
    the start and nothing new has arrived for ``idle_seconds``. (The local Tansu broker answers
    "latest offset" with 1 for every partition, so the idle wait is what ends a replay there;
    on Apache Kafka the end offsets are exact.)
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             client_id="peerlink-reporting-rebuild", **options)
    read = applied = 0
    try:
        partitions = [TopicPartition(t, p) for t in topics
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        starts = {tp: consumer.position(tp) for tp in partitions}
        ends = consumer.end_offsets(partitions)
        total = sum(max(0, ends[tp] - starts[tp]) for tp in partitions)
        if total <= len(partitions):
            total = 0  # Tansu's "1" for every partition: no total to show a share of
        last_record = time.monotonic()
        while True:
            batches = consumer.poll(timeout_ms=500, max_records=1000)
            for tp, batch in batches.items():
                read += len(batch)
                outcomes = appliers[tp.topic].process_batch([InboundRecord(
                    topic=tp.topic, partition=tp.partition, offset=message.offset,
                    key=message.key, value=message.value,
                    headers=tuple(message.headers or ())) for message in batch])
                applied += outcomes.count(Outcome.APPLIED)
            if batches:
                last_record = time.monotonic()
                if progress is not None:
                    progress(read, total if total >= read else None)
            caught_up = all(consumer.position(tp) >= ends[tp] for tp in partitions)
            if caught_up and time.monotonic() - last_record >= idle_seconds:
                break
    finally:
        consumer.close()
    if progress is not None:
        progress(read, read)  # the last line drawn says it is done
    return read, applied


def rebuild(settings: PlatformSettings, database_url: str | None = None,
            progress: Progress | None = None) -> RebuildSummary:
    """Empty the read model, replay the log into it, and publish a release. Into another
    database, the release rule's memory is carried over from the live one after the replay,
    just before that release (stop the live workers before pointing them at it)."""
    service = ReportingAdapters(settings)
    live_url = settings.database_url(SERVICE)
    url = database_url or live_url
    upgrade(migrations, url)
    database = Database(url, metadata)
    with database.unit_of_work() as uow:
        clear(uow)
    skipped = SkippedRecords()
    business = EventApplier(SERVICE, BUSINESS_CONSUMER, database, business_handlers(), skipped,
                            many=business_batch_handlers())
    consent = EventApplier(SERVICE, f"{SERVICE}.consent", database,
                           cascade.participant().handlers(), skipped, halt_on_error=True)
    appliers = dict.fromkeys(BUSINESS_TOPICS, business)
    appliers[events_topic("consent")] = consent
    read, applied = replay(settings.kafka_bootstrap, tuple(appliers), appliers,
                           progress=progress, **client_options(settings))
    if url != live_url:  # the live memory as it is now, just before the first release
        upgrade(migrations, live_url)
        live = Database(live_url, metadata)
        carry_memory(live, database)
        live.dispose()
    publish_release(database, service.policy, service.outcome_rules,
                    keep=service.reporting.releases_kept,
                    opt_in=service.reporting.consent_model == "opt-in")
    database.dispose()
    return RebuildSummary(read, applied, skipped.reasons)

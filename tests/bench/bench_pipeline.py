"""Throughput of the delivery pipeline on this machine: ``make bench``.

Measures (1) the outbox relay publishing events to a Kafka-protocol broker with acks=all and
idempotence, (2) a consumer applying records exactly once (inbox row plus effect per record),
and (3) a release (everyone in every row of every table, grouping and period, the release
rule and its memory) from a large read model. Figures go to
docs/benchmarks.md with the machine they ran on; no test asserts a time.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

from ops.broker import LocalBroker, free_port
from ops.migrations import migrate
from services.reporting.adapters.tables import metadata as reporting_metadata
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules
from services.reporting.service_layer.read_model import business_handlers, publish_release
from shared.db import Database, service_metadata
from shared.events.envelope import CloudEvent
from shared.events.screening import ScreeningCompleted
from shared.identity import new_subject_reference
from shared.kafka.consumer import EventApplier, InboundRecord
from shared.kafka.outbox import kafka_relay
from shared.kafka.producer import create_topics
from shared.kafka.topics import TopicSpec
from tests.bench.bench_platform import commit

EVENTS = int(os.environ.get("PEERLINK_BENCH_EVENTS", "5000"))
TEAMS = [f"team-{i}" for i in range(40)]


def screening(i: int) -> tuple[CloudEvent, ScreeningCompleted]:
    payload = ScreeningCompleted(
        screening_id=f"scr-{i}", org="trust", team=TEAMS[i % len(TEAMS)], borough="camden",
        gender="female", age_band="25-34", asked_on=date(2026, 1 + i % 12, 1),
        asked_by_role="nurse", training_level=2, private=True, hark_score=i % 2,
        current_abuse=bool(i % 2), past_abuse="no", disclosed=bool(i % 2))
    return CloudEvent.wrap(payload, source="/bench", subject=new_subject_reference()), payload


class NoDeadLetters:
    """Every benchmark record is valid: a dead letter would be a bug."""

    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        raise AssertionError(f"a benchmark record was dead-lettered: {reason}")


def bench_relay(bootstrap: str, folder: Path) -> float:
    db = Database(f"sqlite:///{folder / 'relay.db'}", service_metadata())
    db.metadata.create_all(db.engine)
    create_topics(bootstrap, [TopicSpec("bench.events", "bench", "bench")], partitions=6)
    with db.unit_of_work() as uow:
        for i in range(EVENTS):
            uow.publish(screening(i)[0], "bench.events", aggregate_type="bench")
    relay = kafka_relay("bench", db, bootstrap)
    started = time.perf_counter()
    sent = relay.drain()
    elapsed = time.perf_counter() - started
    relay.close()
    assert sent == EVENTS
    return EVENTS / elapsed


def bench_apply(folder: Path) -> tuple[float, Database]:
    url = f"sqlite:///{folder / 'reporting.db'}"
    migrate("reporting", url)
    db = Database(url, reporting_metadata)
    applier = EventApplier("reporting", "bench", db, business_handlers(), NoDeadLetters())
    records = [InboundRecord("screening.events", 0, i, None, screening(i)[0].to_bytes())
               for i in range(EVENTS)]
    started = time.perf_counter()
    for record in records:
        applier.process(record)
    return EVENTS / (time.perf_counter() - started), db


def bench_figures(db: Database) -> list[float]:
    """A release (people in every row, the release rule, storing its memory): the first from
    an empty memory, one with nothing new (served again), and one after one more event (every
    row is worked out again)."""
    applier = EventApplier("reporting", "bench", db, business_handlers(), NoDeadLetters())
    timings = []
    for step in range(3):
        if step == 2:
            event = screening(EVENTS)[0]
            applier.process(InboundRecord("screening.events", 0, EVENTS, None,
                                          event.to_bytes()))
        started = time.perf_counter()
        publish_release(db, DisclosurePolicy(), OutcomeRules())
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, LocalBroker(free_port()) as broker:
        folder = Path(tmp)
        relay = bench_relay(broker.bootstrap, folder)
        applied, db = bench_apply(folder)
        first, idle, one_more = bench_figures(db)
        db.dispose()
    machine = (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, {platform.platform()}")
    print(machine)
    print(f"outbox relay to Tansu, acks=all, idempotent: {relay:,.0f} events/s ({EVENTS} events)")
    print(f"apply once (inbox + contributions, SQLite): {applied:,.0f} events/s")
    print(f"release from {EVENTS} people's contributions: first {first * 1000:.0f} ms, "
          f"nothing new {idle * 1000:.0f} ms, one more event {one_more * 1000:.0f} ms")
    out = os.environ.get("PEERLINK_BENCH_OUT")
    if out:
        rows = [("pipeline", f"outbox relay to Tansu, acks=all, idempotent, {EVENTS:,} events",
                 f"{relay:,.0f} events/s"),
                ("pipeline", f"exactly-once apply one record at a time, SQLite, {EVENTS:,} events",
                 f"{applied:,.0f} events/s"),
                ("pipeline", f"a release from {EVENTS:,} people: first, nothing new, one more "
                 "event", f"{first * 1000:,.0f} ms, {idle * 1000:,.0f} ms, "
                 f"{one_more * 1000:,.0f} ms")]
        Path(out).write_text(json.dumps({
            "rows": [{"id": i, "what": w, "figure": f, "target": "", "met": ""}
                     for i, w, f in rows],
            "machine": machine, "commit": commit()}, indent=2))


if __name__ == "__main__":
    main()

"""The outbox relay: publishes a service's committed events in order, then marks them sent."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select, update

from shared.db import Database, utcnow
from shared.kafka.producer import EventProducer
from shared.metrics import EVENTS_PUBLISHED, OUTBOX_OLDEST_AGE, OUTBOX_PENDING

log = logging.getLogger(__name__)


class OutboxRelay:
    """Moves events from a service's outbox table to Kafka (at least once, in order).

    Rows are locked while being published so that two relays of one service serialise
    instead of interleaving; a row is marked sent only after the broker acknowledged it.
    """

    def __init__(self, service: str, database: Database, producer: EventProducer,
                 batch_size: int = 500) -> None:
        self._service = service
        self._db = database
        self._producer = producer
        self._batch = batch_size
        self._outbox = database.metadata.tables["outbox"]

    def relay_once(self) -> int:
        """Publish one batch; returns how many events were sent."""
        outbox = self._outbox
        with self._db.unit_of_work() as uow:
            rows = uow.session.execute(
                select(outbox.c.seq, outbox.c.topic, outbox.c.aggregate_id, outbox.c.payload,
                       outbox.c.event_type)
                .where(outbox.c.sent_at.is_(None)).order_by(outbox.c.seq)
                .limit(self._batch).with_for_update()
            ).all()
            if not rows:
                return 0
            deliveries = [
                (row.seq, row.topic, self._producer.send(
                    row.topic, row.aggregate_id.encode() if row.aggregate_id else None,
                    row.payload, [("ce_type", row.event_type.encode())]))
                for row in rows
            ]
            self._producer.flush(timeout=30)
            sent: list[int] = []
            for seq, topic, delivery in deliveries:
                try:
                    delivery.get(timeout=30)
                except Exception:
                    log.exception("outbox publish failed; will retry", extra={"seq": seq})
                    break
                sent.append(seq)
                EVENTS_PUBLISHED.labels(self._service, topic).inc()
            if sent:
                uow.session.execute(
                    update(outbox).where(outbox.c.seq.in_(sent)).values(sent_at=utcnow()))
        return len(sent)

    def drain(self) -> int:
        """Publish until the outbox is empty; returns how many were sent."""
        total = 0
        while (sent := self.relay_once()) > 0:
            total += sent
        self.observe()
        return total

    def observe(self) -> tuple[int, float]:
        """Update and return the backlog gauges: pending count and oldest age in seconds."""
        outbox = self._outbox
        with self._db.read() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(outbox.c.created_at))
                .where(outbox.c.sent_at.is_(None))).one()
        age = _age_seconds(oldest)
        OUTBOX_PENDING.labels(self._service).set(count)
        OUTBOX_OLDEST_AGE.labels(self._service).set(age)
        return int(count), age


def _age_seconds(oldest: datetime | None) -> float:
    if oldest is None:
        return 0.0
    return max(0.0, (utcnow() - oldest).total_seconds())

"""The consent worker: publishes the outbox, tracks every withdrawal's and erasure request's
acknowledgements, raises the alarm when a withdrawal, an erasure or a subject access request is
overdue, and publishes the audit chain's head while it moves."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from services.consent.bootstrap import SERVICE, ConsentAdapters
from services.consent.domain.tracker import CascadeStatus
from services.consent.service_layer import access_requests, consents, erasure
from services.consent.service_layer.audit import HeadPublisher
from shared.db import UnitOfWork, utcnow
from shared.events.envelope import CloudEvent
from shared.kafka.consumer import EventApplier, RejectedEvent
from shared.kafka.topics import CASCADE_ACKS
from shared.metrics import (
    ACCESS_REQUESTS_OPEN,
    ACCESS_REQUESTS_OVERDUE,
    ERASURE_REQUESTS_AWAITING,
    ERASURE_REQUESTS_OVERDUE,
    WITHDRAWALS_OVERDUE,
    WITHDRAWALS_PENDING,
)
from shared.runtime import service_worker
from shared.settings import PlatformSettings
from shared.stream import StreamWorker

log = logging.getLogger(__name__)
DEADLINE_CHECK_SECONDS = 1.0


def request_gauges(adapters: ConsentAdapters) -> None:
    """Set the gauges of withdrawals and of requests waiting for an answer (one read)."""
    now = utcnow()
    with adapters.database.read() as session:
        WITHDRAWALS_OVERDUE.set(consents.count_with_status(session, CascadeStatus.OVERDUE))
        WITHDRAWALS_PENDING.set(consents.count_with_status(session, CascadeStatus.PENDING))
        ERASURE_REQUESTS_AWAITING.set(erasure.count_awaiting(session))
        ERASURE_REQUESTS_OVERDUE.set(erasure.count_overdue(session, now))
        ACCESS_REQUESTS_OPEN.set(access_requests.count_open(session))
        ACCESS_REQUESTS_OVERDUE.set(access_requests.count_overdue(session, now))


def build_worker(settings: PlatformSettings) -> StreamWorker:
    """The consent worker wired to real adapters."""
    adapters = ConsentAdapters(settings)
    worker, plumbing = service_worker(SERVICE, adapters.database, settings)

    def acknowledge(uow: UnitOfWork, event: CloudEvent, ack: Any) -> None:
        try:
            consents.acknowledge(uow, event, ack)
        except consents.WithdrawalNotFound:
            raise RejectedEvent("withdrawal_id: no withdrawal has this id") from None
        except consents.ForeignAcknowledgement:
            raise RejectedEvent("source: an acknowledgement must come from the service it "
                                "names") from None
        if event.type == "erasure-applied":
            erasure.acknowledged(uow, ack.withdrawal_id)

    tracker = EventApplier(SERVICE, "consent.tracker", adapters.database,
                           {"withdrawal-applied": acknowledge, "erasure-applied": acknowledge},
                           plumbing.deadletters)
    worker.consume("tracker", [CASCADE_ACKS], tracker)

    def check_deadlines() -> None:
        with adapters.database.unit_of_work() as uow:
            consents.mark_overdue(uow, utcnow())
        request_gauges(adapters)

    async def deadlines() -> None:
        try:
            await asyncio.to_thread(check_deadlines)
        except Exception:
            log.exception("deadline check failed; will retry")

    worker.app.timer(DEADLINE_CHECK_SECONDS, name="consent.deadlines")(deadlines)

    heads = HeadPublisher(adapters.database, adapters.trail,
                          lambda head: adapters.heads.publish(plumbing.producer, head))

    async def publish_head() -> None:
        try:
            await asyncio.to_thread(heads.publish_if_moved)
        except Exception:
            log.exception("publishing the audit head failed; will retry")

    worker.app.timer(adapters.audit_settings.audit_head_seconds,
                     name="consent.audit-head")(publish_head)
    return worker

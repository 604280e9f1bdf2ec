"""The reporting stream: consumes business events into per-person contributions and
publishes a release on a fixed cadence."""

from __future__ import annotations

import asyncio
import logging

from services.reporting.bootstrap import SERVICE, ReportingAdapters
from services.reporting.domain.people import Remembered
from services.reporting.service_layer import cascade
from services.reporting.service_layer.read_model import (
    business_batch_handlers,
    business_handlers,
    publish_release,
)
from shared.kafka.consumer import EventApplier
from shared.kafka.topics import events_topic
from shared.metrics import REPORTING_LAST_RELEASE, REPORTING_RELEASES
from shared.runtime import service_worker
from shared.settings import PlatformSettings
from shared.stream import StreamWorker

log = logging.getLogger(__name__)
BUSINESS_CONSUMER = "reporting.business"
BUSINESS_TOPICS = (events_topic("screening"), events_topic("mentoring"))


def build_worker(settings: PlatformSettings) -> StreamWorker:
    """The reporting worker wired to real adapters."""
    adapters = ReportingAdapters(settings)
    worker, plumbing = service_worker(SERVICE, adapters.database, settings)
    applier = EventApplier(SERVICE, BUSINESS_CONSUMER, adapters.database, business_handlers(),
                           plumbing.deadletters, many=business_batch_handlers())
    worker.consume("business_events", BUSINESS_TOPICS, applier, batch=True)
    worker.join_cascade(cascade.participant(), adapters.database, plumbing.deadletters)

    cadence = adapters.reporting.release_seconds
    remembered = Remembered()  # the people worked out at the last release

    async def release() -> None:
        """One release per cadence, however many reporting workers run the timer."""
        try:
            released_at = await asyncio.to_thread(
                publish_release, adapters.database, adapters.policy, adapters.outcome_rules,
                None, adapters.reporting.releases_kept,
                adapters.reporting.consent_model == "opt-in", 0.9 * cadence, remembered)
            if released_at is None:
                return
            REPORTING_RELEASES.inc()
            REPORTING_LAST_RELEASE.set(released_at.timestamp())
        except Exception:
            log.exception("release failed; the API keeps serving the previous one")

    worker.app.timer(cadence, name="reporting.release")(release)
    return worker

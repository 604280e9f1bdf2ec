"""The reporting stream: consumes business events into per-person contributions and
publishes a release on a fixed cadence."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

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
from shared.metrics import (
    REPORTING_LAST_RELEASE,
    REPORTING_RELEASE_SECONDS,
    REPORTING_RELEASES,
)
from shared.runtime import service_worker
from shared.settings import PlatformSettings
from shared.stream import StreamWorker

log = logging.getLogger(__name__)
BUSINESS_CONSUMER = "reporting.business"
BUSINESS_TOPICS = (events_topic("screening"), events_topic("mentoring"))
RELEASE_SHARE = 1 / 3
"""The most of a worker's time releases may take; the rest is for applying events."""


@dataclass
class ReleaseSpacing:
    """When the next release may start: a release that took ``d`` seconds is followed by
    ``d * (1 / share - 1)`` seconds without one, so however large the read model grows,
    releasing takes at most ``share`` of the worker and events keep being applied (the
    cadence is a floor, not a promise, once a release takes longer than its share of it)."""

    share: float = RELEASE_SHARE
    not_before: float = float("-inf")

    def due(self, now: float) -> bool:
        """Whether a release may start at ``now`` (monotonic seconds)."""
        return now >= self.not_before

    def took(self, seconds: float, ended: float) -> None:
        """A release took ``seconds`` and ended at ``ended``."""
        self.not_before = ended + seconds * (1 / self.share - 1)


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
    spacing = ReleaseSpacing()

    async def release() -> None:
        """One release per cadence, however many reporting workers run the timer, and never
        more than a third of this worker's time."""
        if not spacing.due(time.monotonic()):
            return
        started = time.monotonic()
        try:
            released_at = await asyncio.to_thread(
                publish_release, adapters.database, adapters.policy, adapters.outcome_rules,
                None, adapters.reporting.releases_kept,
                adapters.reporting.consent_model == "opt-in", 0.9 * cadence, remembered)
            if released_at is not None:
                REPORTING_RELEASES.inc()
                REPORTING_LAST_RELEASE.set(released_at.timestamp())
        except Exception:
            log.exception("release failed; the API keeps serving the previous one")
        finally:
            ended = time.monotonic()
            spacing.took(ended - started, ended)
            REPORTING_RELEASE_SECONDS.observe(ended - started)

    worker.app.timer(cadence, name="reporting.release")(release)
    return worker

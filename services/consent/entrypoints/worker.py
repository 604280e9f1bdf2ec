"""The consent service's stream worker: publishes its outbox."""

from __future__ import annotations

from services.consent.bootstrap import SERVICE, ConsentService
from shared.runtime import WorkerPlumbing
from shared.settings import PlatformSettings
from shared.stream import StreamWorker, faust_app


def build_worker(settings: PlatformSettings) -> StreamWorker:
    """The consent worker wired to real adapters."""
    service = ConsentService(settings)
    plumbing = WorkerPlumbing(SERVICE, service.database, settings)
    worker = StreamWorker(SERVICE, faust_app("peerlink-consent", SERVICE, settings),
                          readiness=[service.database.ping])
    worker.relay(plumbing.relay, settings.outbox_poll_seconds)
    return worker

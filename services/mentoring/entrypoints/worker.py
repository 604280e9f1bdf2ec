"""The mentoring worker: publishes its outbox."""

from __future__ import annotations

from services.mentoring.bootstrap import SERVICE, MentoringService
from services.mentoring.service_layer import cascade
from shared.cascade import CascadeParticipant
from shared.runtime import WorkerPlumbing
from shared.settings import PlatformSettings
from shared.stream import StreamWorker, faust_app


def build_worker(settings: PlatformSettings) -> StreamWorker:
    """The mentoring worker wired to real adapters."""
    service = MentoringService(settings)
    plumbing = WorkerPlumbing(SERVICE, service.database, settings)
    worker = StreamWorker(SERVICE, faust_app("peerlink-mentoring", SERVICE, settings),
                          readiness=[service.database.ping])
    worker.relay(plumbing.relay, settings.outbox_poll_seconds)
    worker.join_cascade(CascadeParticipant(
        service=SERVICE, purposes=frozenset({"peer-mentoring", "partner-sharing"}),
        on_withdrawal=cascade.withdrawn, on_erasure=cascade.erase,
    ), service.database, plumbing.deadletters)
    return worker

"""The screening worker: publishes the outbox, adopts the Trust's CloudEvents, and applies
consent events (the cascade, relationships and partner sharing)."""

from __future__ import annotations

from typing import Any

from services.screening.bootstrap import SERVICE, ScreeningService
from services.screening.service_layer import cascade
from services.screening.service_layer.commands import RecordScreening
from services.screening.service_layer.screenings import record_screening
from shared.crypto import KeyShredded, UnknownSubject
from shared.db import UnitOfWork
from shared.events.envelope import CloudEvent
from shared.kafka.consumer import EventApplier, RejectedEvent
from shared.kafka.topics import partner_inbound_topic
from shared.runtime import service_worker
from shared.settings import PlatformSettings
from shared.stream import StreamWorker

TRUST_ORG = "trust"


def decode_partner_screening(event: CloudEvent) -> RecordScreening:
    """Validate a partner's screening-completed exactly like the API's request body."""
    return RecordScreening.model_validate(event.data)


def build_worker(settings: PlatformSettings) -> StreamWorker:
    """The screening worker wired to real adapters."""
    service = ScreeningService(settings)
    worker, plumbing = service_worker(SERVICE, service.database, settings)

    def adopt_screening(uow: UnitOfWork, _event: CloudEvent, command: Any) -> None:
        if command.org != TRUST_ORG:
            raise RejectedEvent("org: the Trust's record system may record only for the Trust")
        try:
            subject_id = service.resolve_subject(command.nhs_number, command.subject_id)
        except (UnknownSubject, KeyShredded):
            raise RejectedEvent("subject_id: no registered person has this reference") from None
        record_screening(uow, service.cipher, command, subject_id, TRUST_ORG)

    inbound = EventApplier(
        SERVICE, "screening.partner-inbound", service.database,
        {"screening-completed": adopt_screening}, plumbing.deadletters,
        decode=decode_partner_screening, reject_unhandled=True)
    worker.consume("partner_inbound", [partner_inbound_topic(TRUST_ORG)], inbound)
    worker.join_cascade(cascade.participant(service.keys.evict, service.cipher,
                                            service.records), service.database,
                        plumbing.deadletters)
    return worker

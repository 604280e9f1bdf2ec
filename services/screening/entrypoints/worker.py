"""The screening worker: publishes the outbox, adopts the Trust's CloudEvents, and applies
consent events (the cascade, relationships and partner sharing)."""

from __future__ import annotations

import re
from typing import Any

from services.screening.bootstrap import SERVICE, ScreeningAdapters
from services.screening.service_layer import cascade
from services.screening.service_layer.commands import RecordScreening
from services.screening.service_layer.screenings import store_screening
from shared.consent_client import resolve_subject
from shared.crypto import KeyShredded, UnknownSubject
from shared.db import UnitOfWork
from shared.events.envelope import CloudEvent
from shared.identity import SUBJECT_PATTERN
from shared.kafka.consumer import EventApplier, RejectedEvent, check_partner_source
from shared.kafka.topics import partner_inbound_topic
from shared.runtime import service_worker
from shared.settings import PlatformSettings
from shared.stream import StreamWorker

TRUST_ORG = "trust"


def decode_partner_screening(event: CloudEvent) -> RecordScreening:
    """Validate a partner's screening-completed exactly like the API's request body. The
    person is ``data.subject_id`` or ``data.nhs_number`` as there, or else the CloudEvents
    ``subject`` attribute; a ``subject`` that names someone else is refused."""
    check_partner_source(event)
    data = dict(event.data)
    if event.subject is not None:
        if re.fullmatch(SUBJECT_PATTERN, event.subject) is None:
            raise RejectedEvent("subject: not a subject reference")
        if data.get("nhs_number") is not None:
            # checked before anyone is registered: comparing afterwards would register the
            # number, and the two reasons would tell whether it names that reference
            raise RejectedEvent("subject: name the person by the subject attribute or by "
                                "data.nhs_number, not both")
        if data.get("subject_id") is None:
            data["subject_id"] = event.subject
        elif data["subject_id"] != event.subject:
            raise RejectedEvent("subject: differs from data.subject_id")
    return RecordScreening.model_validate(data)


def build_worker(settings: PlatformSettings) -> StreamWorker:
    """The screening worker wired to real adapters."""
    adapters = ScreeningAdapters(settings)
    worker, plumbing = service_worker(SERVICE, adapters.database, settings)

    def adopt_screening(uow: UnitOfWork, event: CloudEvent, command: Any) -> None:
        if command.org != TRUST_ORG:
            raise RejectedEvent("org: the Trust's record system may record only for the Trust")
        try:
            subject_id = resolve_subject(adapters.registry, adapters.keys, command.nhs_number,
                                         command.subject_id, None)
        except (UnknownSubject, KeyShredded):
            raise RejectedEvent("subject_id: no registered person has this reference") from None
        store_screening(uow, adapters.cipher, command, subject_id, TRUST_ORG)

    inbound = EventApplier(
        SERVICE, "screening.partner-inbound", adapters.database,
        {"screening-completed": adopt_screening}, plumbing.deadletters,
        decode=decode_partner_screening, reject_unhandled=True)
    worker.consume("partner_inbound", [partner_inbound_topic(TRUST_ORG)], inbound)
    worker.join_cascade(cascade.participant(adapters.keys.evict, adapters.cipher,
                                            adapters.records), adapters.database,
                        plumbing.deadletters)
    return worker

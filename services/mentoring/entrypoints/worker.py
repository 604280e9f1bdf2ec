"""The mentoring worker: publishes the outbox, takes part in the consent cascade and adopts
DVA partners' case-system events (session-logged, outcome-recorded) from their own topics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from services.mentoring.bootstrap import SERVICE, MentoringService
from services.mentoring.service_layer import mentoring as use
from services.mentoring.service_layer.cascade import MentoringCascade
from services.mentoring.service_layer.commands import LogSession, RecordOutcome
from shared.cascade import CascadeParticipant
from shared.db import UnitOfWork
from shared.events.consent import ConsentWithdrawn
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import Purpose
from shared.kafka.consumer import EventApplier, RejectedEvent
from shared.kafka.topics import partner_inbound_topic
from shared.runtime import service_worker
from shared.settings import PlatformSettings
from shared.stream import StreamWorker


class HolderCascadeParticipant(CascadeParticipant):
    """Mentoring's part in the cascade, applied with the withdrawing holder organisation and
    the recipients it names: consents are per holder, so a withdrawal reaches only what
    rested on that holder's consent (``CascadeParticipant`` passes neither to its effect)."""

    def __init__(self, cascade: MentoringCascade, keys_evict: Callable[[str], None]) -> None:
        super().__init__(service=SERVICE,
                         purposes=frozenset({"peer-mentoring", "partner-sharing"}),
                         on_withdrawal=cascade.withdrawn, on_erasure=cascade.erase,
                         on_key_shredded=keys_evict)
        self._cascade = cascade

    def _withdrawn(self, uow: UnitOfWork, event: CloudEvent,
                   withdrawn: ConsentWithdrawn) -> None:
        def by_holder(uow: UnitOfWork, subject_id: str, purposes: tuple[Purpose, ...]) -> None:
            self._cascade.withdrawn(uow, subject_id, purposes, withdrawn.org,
                                    tuple(withdrawn.recipients))

        # the shared handler applies the effect and acknowledges in the same transaction
        shared = CascadeParticipant(service=self.service, purposes=self.purposes,
                                    on_withdrawal=by_holder, on_erasure=self.on_erasure)
        shared.handlers()["consent-withdrawn"](uow, event, withdrawn)


PARTNER_COMMANDS: dict[str, type[LogSession] | type[RecordOutcome]] = {
    "session-logged": LogSession,
    "outcome-recorded": RecordOutcome,
}


def decode_partner_event(event: CloudEvent) -> LogSession | RecordOutcome:
    """Validate a partner's event exactly like the API's request body."""
    command = PARTNER_COMMANDS.get(event.type)
    if command is None:
        raise RejectedEvent(f"type: {event.type!r} is not accepted from partners")
    return command.model_validate(event.data)


def build_worker(settings: PlatformSettings) -> StreamWorker:
    """The mentoring worker wired to real adapters."""
    service = MentoringService(settings)
    worker, plumbing = service_worker(SERVICE, service.database, settings)
    cascade = MentoringCascade(service.cipher, service.rules)
    worker.join_cascade(HolderCascadeParticipant(cascade, service.keys.evict),
                        service.database, plumbing.deadletters)

    partners = [org for org, o in settings.organisations.items() if o.kind == "dva-partner"]
    for org in partners:
        def adopt(uow: UnitOfWork, _event: CloudEvent, command: Any, org: str = org) -> None:
            try:
                if isinstance(command, LogSession):
                    use.log_session(uow, service.cipher, service.records, command, org)
                else:
                    use.record_outcome(uow, command, org, date.today())
            except use.NotFound:
                raise RejectedEvent(f"match_id: no match of {org} has this id") from None
            except use.NotActive as exc:
                raise RejectedEvent(f"match_id: {exc}") from None

        applier = EventApplier(SERVICE, f"mentoring.partner-inbound.{org}", service.database,
                               dict.fromkeys(PARTNER_COMMANDS, adopt), plumbing.deadletters,
                               decode=decode_partner_event, reject_unhandled=True)
        worker.consume(f"partner_inbound_{org.replace('-', '_')}",
                       [partner_inbound_topic(org)], applier)
    return worker

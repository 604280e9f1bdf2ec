"""The mentoring worker: publishes the outbox, takes part in the consent cascade (with the
DPO's erasure decisions and safe-contact updates), projects screening's MARAC referrals for
the repeat flag, adopts DVA partners' case-system events (session-logged, outcome-recorded)
from their own topics, and keeps the safeguarding queue's age gauge current."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date
from typing import Any, Final

from prometheus_client import Gauge

from services.mentoring.bootstrap import SERVICE, MentoringAdapters
from services.mentoring.service_layer import mentoring, safeguarding
from services.mentoring.service_layer.cascade import MentoringCascade
from services.mentoring.service_layer.commands import LogSession, RecordOutcome
from services.mentoring.service_layer.errors import NotActive, NotFound
from shared.cascade import CascadeParticipant
from shared.crypto import KeyShredded, PersonalDataCipher, RecordCipher
from shared.db import Database, UnitOfWork, utcnow
from shared.events.cascade import ErasureApplied
from shared.events.consent import ConsentWithdrawn, ErasureRequested, SafeContactUpdated
from shared.events.envelope import CloudEvent
from shared.events.screening import MaracReferralRequired
from shared.events.vocabulary import Purpose
from shared.kafka.consumer import EventApplier, Handler, RejectedEvent, check_partner_source
from shared.kafka.topics import CASCADE_ACKS, events_topic, partner_inbound_topic
from shared.runtime import service_worker
from shared.settings import PlatformSettings
from shared.stream import StreamWorker

log = logging.getLogger(__name__)
CONCERN_GAUGE_SECONDS: Final = 15.0
OLDEST_OPEN_CONCERN = Gauge(
    "peerlink_safeguarding_concern_oldest_open_age_seconds",
    "Age of the oldest safeguarding concern not yet acknowledged by the safeguarding lead "
    "(0 when none is open)")


class HolderCascadeParticipant(CascadeParticipant):
    """Mentoring's part in the cascade, applied with the withdrawing holder organisation and
    the recipients it names: consents are per holder, so a withdrawal reaches only what
    rested on that holder's consent. Erasure follows the DPO's decision (scope, retained
    kinds); a safe-contact update is the copy of the organisation it names, and replaces it
    only on the referrals that organisation made or received and the concerns it raised."""

    def __init__(self, cascade: MentoringCascade, keys_evict: Callable[[str], None],
                 cipher: PersonalDataCipher, records: RecordCipher) -> None:
        def by_holder(uow: UnitOfWork, subject_id: str, purposes: tuple[Purpose, ...],
                      withdrawal: ConsentWithdrawn) -> None:
            cascade.withdrawn(uow, subject_id, purposes, withdrawal.org,
                              tuple(withdrawal.recipients))

        super().__init__(service=SERVICE, on_withdrawal=by_holder, on_erasure=cascade.erase,
                         on_key_shredded=keys_evict)
        self._cascade = cascade
        self._cipher = cipher
        self._records = records

    def handlers(self) -> dict[str, Handler]:
        """The shared handlers, with erasure as decided and safe-contact updates."""
        return {**super().handlers(), "erasure-requested": self._erasure_decided,
                "safe-contact-updated": self._safe_contact_updated}

    def _erasure_decided(self, uow: UnitOfWork, event: CloudEvent,
                         request: ErasureRequested) -> None:
        if event.subject is None:
            return
        retained = self._cascade.erasure_requested(uow, event.subject, request)
        ack = ErasureApplied(service=self.service, withdrawal_id=request.withdrawal_id,
                             purposes=request.purposes, applied_at=utcnow(),
                             retained_records=retained)
        uow.publish(CloudEvent.wrap(ack, source=self.source, subject=event.subject),
                    CASCADE_ACKS, aggregate_type="cascade")

    def _safe_contact_updated(self, uow: UnitOfWork, event: CloudEvent,
                              updated: SafeContactUpdated) -> None:
        if event.subject is None or updated.personal is None:
            return
        opened = self._cipher.open(event.subject, SafeContactUpdated.event_type,
                                   updated.personal)
        if isinstance(opened, dict):  # an erased person's update opens to nothing
            safeguarding.replace_contact(uow, self._records, event.subject, updated.org,
                                         opened["safe_contact"])


PARTNER_COMMANDS: dict[str, type[LogSession] | type[RecordOutcome]] = {
    "session-logged": LogSession,
    "outcome-recorded": RecordOutcome,
}


def decode_partner_event(event: CloudEvent) -> LogSession | RecordOutcome:
    """Validate a partner's event exactly like the API's request body."""
    check_partner_source(event)
    command = PARTNER_COMMANDS.get(event.type)
    if command is None:
        raise RejectedEvent(f"type: {event.type!r} is not accepted from partners")
    return command.model_validate(event.data)


def marac_referral_handlers() -> dict[str, Handler]:
    """Screening's MARAC referrals, projected for the repeat flag."""
    def projected(uow: UnitOfWork, event: CloudEvent, referral: MaracReferralRequired) -> None:
        safeguarding.marac_referral_projected(uow, referral.referral_id, event.subject,
                                              referral.safeguarding_pseudonym,
                                              referral.raised_on)

    return {"marac-referral-required": projected}


def refresh_concern_gauge(database: Database) -> float:
    """Set the safeguarding queue's gauge from the database; returns the age set."""
    with database.read() as session:
        age = safeguarding.oldest_open_age_seconds(session, utcnow())
    OLDEST_OPEN_CONCERN.set(age)
    return age


def build_worker(settings: PlatformSettings) -> StreamWorker:
    """The mentoring worker wired to real adapters."""
    adapters = MentoringAdapters(settings)
    worker, plumbing = service_worker(SERVICE, adapters.database, settings)
    cascade = MentoringCascade(adapters.cipher, adapters.records, adapters.rules)
    worker.join_cascade(HolderCascadeParticipant(cascade, adapters.keys.evict, adapters.cipher,
                                                 adapters.records),
                        adapters.database, plumbing.deadletters)
    worker.consume("screening_events", [events_topic("screening")], EventApplier(
        SERVICE, "mentoring.screening", adapters.database, marac_referral_handlers(),
        plumbing.deadletters), batch=True)

    OLDEST_OPEN_CONCERN.set(0)

    async def concern_gauge() -> None:
        try:
            await asyncio.to_thread(refresh_concern_gauge, adapters.database)
        except Exception:
            log.exception("safeguarding queue gauge failed; will retry")

    worker.app.timer(CONCERN_GAUGE_SECONDS, name="mentoring.concern-gauge")(concern_gauge)

    for org in adapters.partners:
        def adopt(uow: UnitOfWork, event: CloudEvent, command: Any, org: str = org) -> None:
            try:
                mentoring.adopt_partner_record(uow, adapters.keys, adapters.cipher,
                                               adapters.records, adapters.consent, command, org,
                                               event.subject, date.today())
            except NotFound:
                raise RejectedEvent(f"match_id: no match of {org} has this id") from None
            except mentoring.NotTheMentee as exc:
                raise RejectedEvent(str(exc)) from None
            except NotActive as exc:
                raise RejectedEvent(f"match_id: {exc}") from None
            except KeyShredded:
                raise RejectedEvent("match_id: the mentee was erased; nothing more is "
                                    "recorded about them") from None

        applier = EventApplier(SERVICE, f"mentoring.partner-inbound.{org}", adapters.database,
                               dict.fromkeys(PARTNER_COMMANDS, adopt), plumbing.deadletters,
                               decode=decode_partner_event, reject_unhandled=True)
        worker.consume(f"partner_inbound_{org.replace('-', '_')}",
                       [partner_inbound_topic(org)], applier)
    return worker

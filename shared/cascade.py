"""Taking part in the consent cascade: each service's reactions to consent events, and the
acknowledgements that prove them.

A service names itself and gives its effects (the purposes it acts on are the event
vocabulary's ``ACKNOWLEDGED_BY``); this module turns them into
consent-event handlers that apply the effect and write ``withdrawal-applied`` or
``erasure-applied`` in the same transaction. Redelivery changes nothing (the inbox).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.db import UnitOfWork, utcnow
from shared.events.cascade import ErasureApplied, WithdrawalApplied
from shared.events.consent import (
    ConsentGranted,
    ConsentWithdrawn,
    ErasureRequested,
    SubjectKeyShredded,
)
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import Purpose, ServiceName, purposes_acknowledged_by
from shared.kafka.consumer import Handler
from shared.kafka.topics import CASCADE_ACKS

WithdrawalEffect = Callable[[UnitOfWork, str, tuple[Purpose, ...], ConsentWithdrawn], None]
"""What a service does with a withdrawal of its purposes (the payload says which holder
withdrew, and which recipients lost access)."""
ErasureEffect = Callable[[UnitOfWork, str], int]
DecidedErasureEffect = Callable[[UnitOfWork, str, ErasureRequested], int]
"""An erasure effect that needs the DPO's decision (``scope``, ``org``, ``retained``)."""
GrantEffect = Callable[[UnitOfWork, CloudEvent, ConsentGranted], None]
"""What a service does with a consent granted (to any purpose: it picks those it needs)."""


def _no_grant_effect(_uow: UnitOfWork, _event: CloudEvent, _granted: ConsentGranted) -> None:
    return None


@dataclass
class CascadeParticipant:
    """One service's part in the cascade."""

    service: ServiceName
    on_withdrawal: WithdrawalEffect
    on_erasure: ErasureEffect
    on_grant: GrantEffect = _no_grant_effect
    on_key_shredded: Callable[[str], None] = field(default=lambda _subject: None)
    on_decided_erasure: DecidedErasureEffect | None = None
    """When given, applied instead of ``on_erasure``, with the ``erasure-requested`` payload."""

    @property
    def purposes(self) -> frozenset[Purpose]:
        """The purposes whose withdrawal this service acts on and acknowledges."""
        return purposes_acknowledged_by(self.service)

    @property
    def source(self) -> str:
        """The CloudEvents source of this service's acknowledgements."""
        return f"/peerlink/{self.service}"

    def handlers(self) -> dict[str, Handler]:
        """Handlers for the consent events, keyed by event type."""
        return {
            "consent-granted": self._granted,
            "consent-withdrawn": self._withdrawn,
            "erasure-requested": self._erasure,
            "subject-key-shredded": self._shredded,
        }

    def _granted(self, uow: UnitOfWork, event: CloudEvent, granted: ConsentGranted) -> None:
        if event.subject:
            self.on_grant(uow, event, granted)

    def _withdrawn(self, uow: UnitOfWork, event: CloudEvent,
                   withdrawn: ConsentWithdrawn) -> None:
        mine = tuple(p for p in withdrawn.purposes if p in self.purposes)
        if not mine or event.subject is None:
            return
        self.on_withdrawal(uow, event.subject, mine, withdrawn)
        ack = WithdrawalApplied(service=self.service, withdrawal_id=withdrawn.withdrawal_id,
                                purposes=withdrawn.purposes, applied_at=utcnow())
        uow.publish(CloudEvent.wrap(ack, source=self.source, subject=event.subject),
                    CASCADE_ACKS, aggregate_type="cascade")

    def _erasure(self, uow: UnitOfWork, event: CloudEvent, request: ErasureRequested) -> None:
        if event.subject is None:
            return
        if self.on_decided_erasure is not None:
            retained = self.on_decided_erasure(uow, event.subject, request)
        else:
            retained = self.on_erasure(uow, event.subject)
        ack = ErasureApplied(service=self.service, withdrawal_id=request.withdrawal_id,
                             purposes=request.purposes, applied_at=utcnow(),
                             retained_records=retained)
        uow.publish(CloudEvent.wrap(ack, source=self.source, subject=event.subject),
                    CASCADE_ACKS, aggregate_type="cascade")

    def _shredded(self, _uow: UnitOfWork, event: CloudEvent,
                  _shredded: SubjectKeyShredded) -> None:
        if event.subject is not None:
            self.on_key_shredded(event.subject)

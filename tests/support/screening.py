"""Screening test helpers: callers the role policy refuses, and consent events as the consent
service publishes them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from unittest import mock

from services.screening.service_layer import cascade
from shared.crypto import KnownKeys, PersonalDataCipher, RecordCipher
from shared.db import Database
from shared.events.consent import ConsentGranted, ConsentWithdrawn, RelationshipEstablished
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import ConsentMethod, Purpose, RelationshipBasis
from shared.issuer import development_issuer
from shared.kafka.consumer import EventApplier, InboundRecord, Outcome
from shared.kafka.topics import events_topic
from shared.settings import PlatformSettings

CONSENT_SOURCE = "/peerlink/consent"


def policy_refused_bearer(settings: PlatformSettings, org: str, *roles: str) -> dict[str, str]:
    """A correctly signed token for a role its organisation may not hold (a partner's
    "clinician"): the issuer refuses to mint one, so policy is set aside for the minting only,
    as a forger with the signing key (or a misconfigured issuer) would."""
    with mock.patch("shared.auth.role_refusal", return_value=None):
        token = development_issuer(settings).mint(org, list(roles))
    return {"Authorization": f"Bearer {token}"}


def relationship(subject_id: str, org: str, basis: RelationshipBasis = "registered"
                 ) -> CloudEvent:
    """``relationship-established`` for ``org``."""
    return CloudEvent.wrap(RelationshipEstablished(org=org, basis=basis),
                           source=CONSENT_SOURCE, subject=subject_id)


def sharing_granted(subject_id: str, holder: str, recipients: Sequence[str],
                    consent_id: str = "con_" + "1" * 32) -> CloudEvent:
    """``consent-granted`` for partner-sharing, recorded by ``holder``, naming ``recipients``."""
    method: ConsentMethod = "verbal"
    return CloudEvent.wrap(ConsentGranted(consent_id=consent_id, purpose="partner-sharing",
                                          method=method, org=holder,
                                          recipients=tuple(recipients)),
                           source=CONSENT_SOURCE, subject=subject_id)


def sharing_withdrawn(subject_id: str, holder: str, recipients: Sequence[str],
                      purposes: Sequence[Purpose] = ("partner-sharing",),
                      withdrawal_id: str = "wd_" + "2" * 32) -> CloudEvent:
    """``consent-withdrawn`` of ``purposes`` by ``holder``, naming who lost access."""
    return CloudEvent.wrap(ConsentWithdrawn(withdrawal_id=withdrawal_id,
                                            purposes=tuple(purposes), erasure=False,
                                            method="verbal", org=holder,
                                            recipients=tuple(recipients)),
                           source=CONSENT_SOURCE, subject=subject_id)


class _NoDeadLetters:
    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        raise AssertionError(f"a consent event was dead-lettered: {reason}: {message}")


def consent_applier(database: Database, cipher: PersonalDataCipher | None = None,
                    records: RecordCipher | None = None) -> EventApplier:
    """The screening worker's consent-events applier (same handlers, same inbox), without the
    broker: for tests that only need the projection's state. Give the service's ciphers when
    safe-contact-updated events are applied (by default no data key opens and the records key
    is a throwaway)."""
    participant = cascade.participant(
        lambda _subject: None, cipher or PersonalDataCipher(KnownKeys({})),
        records or RecordCipher(os.urandom(32)))
    return EventApplier("screening", "screening.consent", database, participant.handlers(),
                        _NoDeadLetters(), halt_on_error=True)


def apply_consent_events(database: Database, *events: CloudEvent,
                         cipher: PersonalDataCipher | None = None,
                         records: RecordCipher | None = None) -> list[Outcome]:
    """Apply consent events as the screening worker would, in order."""
    applier = consent_applier(database, cipher, records)
    return [applier.process(InboundRecord(events_topic("consent"), 0, offset,
                                          (event.subject or "").encode(), event.to_bytes()))
            for offset, event in enumerate(events)]

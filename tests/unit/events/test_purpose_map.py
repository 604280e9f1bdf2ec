"""One home for which services acknowledge each purpose: the consent tracker waits for exactly
the services whose workers act on and acknowledge a withdrawal of that purpose."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData

from services.consent.domain.purposes import required_services
from services.mentoring.adapters.tables import metadata as mentoring_tables
from services.mentoring.domain.matching import EligibilityRules
from services.mentoring.entrypoints.worker import HolderCascadeParticipant
from services.mentoring.service_layer.cascade import MentoringCascade
from services.reporting.adapters.tables import metadata as reporting_tables
from services.reporting.service_layer.cascade import participant as reporting_participant
from services.screening.adapters.tables import metadata as screening_tables
from services.screening.service_layer.cascade import participant as screening_participant
from shared.cascade import CascadeParticipant
from shared.crypto import KEY_BYTES, CachingKeyStore, PersonalDataCipher, RecordCipher
from shared.events.cascade import WithdrawalApplied
from shared.events.consent import ConsentWithdrawn
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import (
    ACKNOWLEDGED_BY,
    PURPOSES,
    Purpose,
    purposes_acknowledged_by,
)
from shared.kafka.topics import SERVICES
from tests.support.fakes import FakeConsent, memory_database, published


def _ciphers() -> tuple[PersonalDataCipher, RecordCipher]:
    return (PersonalDataCipher(CachingKeyStore(FakeConsent())),
            RecordCipher(os.urandom(KEY_BYTES)))


def _screening() -> CascadeParticipant:
    return screening_participant(lambda _subject: None, *_ciphers())


def _mentoring() -> CascadeParticipant:
    cipher, records = _ciphers()
    return HolderCascadeParticipant(MentoringCascade(cipher, records, EligibilityRules()),
                                    lambda _subject: None, cipher, records)


WORKERS: dict[str, tuple[Callable[[], CascadeParticipant], MetaData]] = {
    "screening": (_screening, screening_tables),
    "mentoring": (_mentoring, mentoring_tables),
    "reporting": (reporting_participant, reporting_tables),
}


def test_every_purpose_is_acknowledged_by_known_services_and_consent_acknowledges_none() -> None:
    assert set(ACKNOWLEDGED_BY) == set(PURPOSES)
    assert all(services and services <= set(SERVICES) for services in ACKNOWLEDGED_BY.values())
    assert purposes_acknowledged_by("consent") == frozenset()
    assert set(WORKERS) == set(SERVICES) - {"consent"}


@pytest.mark.parametrize("purpose", PURPOSES)
def test_the_tracker_waits_for_exactly_the_workers_that_acknowledge(purpose: Purpose) -> None:
    """A withdrawal of ``purpose`` through each worker's own cascade participant: the ones that
    answer withdrawal-applied are the ones the consent tracker requires."""
    acknowledged = set()
    for service, (build, tables) in WORKERS.items():
        database = memory_database(tables)
        withdrawn = ConsentWithdrawn(withdrawal_id="wd_1", purposes=(purpose,), erasure=False,
                                     method="verbal", org="trust")
        event = CloudEvent.wrap(withdrawn, source="/peerlink/consent",
                                subject="sub_" + "0" * 32,
                                time=datetime(2026, 11, 2, tzinfo=UTC))
        with database.unit_of_work() as uow:
            build().handlers()["consent-withdrawn"](uow, event, withdrawn)
        acks = published(database, WithdrawalApplied.event_type)
        assert all(ack.data["service"] == service for ack in acks)
        if acks:
            acknowledged.add(service)
    assert acknowledged == required_services((purpose,))

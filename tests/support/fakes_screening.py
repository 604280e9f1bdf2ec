"""Screening's use cases over fakes: its tables in memory (``memory_database``), the consent
service in memory (``FakeConsent``, which also answers as the key store's inner store, the
registry, the safeguarding registry and the audit trail), and a throwaway records key; with
callers, the requests the API accepts, and the projection of relationships and sharing set
as the consent events would set it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.screening.adapters.tables import metadata
from services.screening.service_layer import cascade
from services.screening.service_layer.commands import (
    RecordEnquiryDue,
    RecordExternalReferral,
    RecordJudgementReferral,
    RecordRiskAssessment,
    RecordScreening,
)
from shared.auth import ROLE_POLICY, Principal
from shared.crypto import CachingKeyStore, PersonalDataCipher, RecordCipher
from shared.db import Database
from shared.events.consent import SafeContact
from tests.support.fakes import FakeConsent, memory_database

NHS_NUMBER = "943 476 5919"
HIGH: list[Any] = ["yes"] * 14 + ["no"] * 10
"""A DASH checklist at visible high risk (14 "yes")."""
LOW: list[Any] = ["no"] * 24
SAFE = SafeContact(phone="07700 900123", times="weekdays 10:00-12:00",
                   may_leave_message=False)


@dataclass
class RegisteringConsent(FakeConsent):
    """``FakeConsent`` that also keeps the NHS numbers it was asked to register, so a test can
    show that a refused caller registered nobody."""

    registered: list[str] = field(default_factory=list)

    def register(self, nhs_number: str, caller: Principal | None = None) -> str:
        """As the fake, noting the number."""
        self.registered.append(nhs_number)
        return super().register(nhs_number, caller)


@dataclass
class ScreeningFakes:
    """The adapters the use cases take, each a fake or in memory."""

    consent: RegisteringConsent = field(default_factory=RegisteringConsent)
    database: Database = field(default_factory=lambda: memory_database(metadata))
    records: RecordCipher = field(default_factory=lambda: RecordCipher(os.urandom(32)))
    keys: CachingKeyStore = field(init=False)
    cipher: PersonalDataCipher = field(init=False)

    def __post_init__(self) -> None:
        self.keys = CachingKeyStore(self.consent)
        self.cipher = PersonalDataCipher(self.keys)

    def recording(self) -> dict[str, Any]:
        """The collaborators of a use case that records a screening or an enquiry due."""
        return {"database": self.database, "cipher": self.cipher,
                "registry": self.consent, "keys": self.keys}

    def safeguarding(self) -> dict[str, Any]:
        """The collaborators of a use case that records a risk assessment or a referral."""
        return {"database": self.database, "records": self.records,
                "registry": self.consent, "keys": self.keys, "safeguarding": self.consent}

    def reading(self) -> dict[str, Any]:
        """The collaborators of a use case that reads, audited."""
        return {"database": self.database, "cipher": self.cipher, "records": self.records,
                "audit": self.consent}

    def person(self, nhs_number: str = NHS_NUMBER, org: str = "trust") -> str:
        """A person registered by ``org`` (with the relationship consent would publish)."""
        role = "clinician" if org == "trust" else "partner-staff"
        subject_id = self.consent.register(nhs_number, caller(org, role))
        self.relate(subject_id, org)
        return subject_id

    def relate(self, subject_id: str, org: str) -> None:
        """``org`` has a relationship with the person (``relationship-established``)."""
        with self.database.unit_of_work() as uow:
            cascade.relationship_established(uow, subject_id, org, "registered")

    def share(self, subject_id: str, holder: str, *recipients: str) -> None:
        """``holder``'s records of the person are shared with ``recipients``."""
        with self.database.unit_of_work() as uow:
            cascade.sharing_granted(uow, subject_id, holder, recipients)

    def audited(self, action: str) -> list[tuple[str | None, str | None]]:
        """(subject, caller's organisation) of each audit entry of ``action``."""
        return [(entry.subject_id, entry.org) for entry in self.consent.audited
                if entry.action == action]


def caller(org: str = "trust", role: str = "clinician", subject: str = "clin-1") -> Principal:
    """A person of ``org`` with ``role``."""
    kind = "nhs-trust" if org == "trust" else "dva-partner"
    assert kind in ROLE_POLICY[role], f"{role} is not a role at {kind}"
    return Principal(subject=subject, org=org, roles=frozenset({role}), org_kind=kind)


def screening_asked(org: str = "trust", **change: Any) -> RecordScreening:
    """A routine enquiry in which the person was asked, with one "yes" and notes."""
    return RecordScreening.model_validate({
        "nhs_number": NHS_NUMBER, "org": org, "team": "north-cmht", "borough": "camden",
        "gender": "female", "age_band": "25-34", "asked_on": "2026-11-20",
        "asked_by_role": "care-coordinator", "training_level": 2, "private": True,
        "outcome": "asked", "past_abuse": "no", "notes": "lives with her sister",
        "hark": {"humiliated": True, "afraid": False, "raped": False, "kicked": False},
        **change})


def enquiry_due(org: str = "trust", **change: Any) -> RecordEnquiryDue:
    """Someone of ``org``'s team should be asked."""
    return RecordEnquiryDue.model_validate({"nhs_number": NHS_NUMBER, "org": org,
                                            "team": "north-cmht", "due_on": "2026-11-19",
                                            **change})


def dash(subject_id: str, answers: list[Any], on: date = date(2026, 11, 20),
         **change: Any) -> RecordRiskAssessment:
    """A DASH checklist for the person."""
    return RecordRiskAssessment.model_validate({
        "subject_id": subject_id, "answers": answers, "incidents_last_12_months": 0,
        "assessed_on": on.isoformat(), **change})


def judgement(subject_id: str, **change: Any) -> RecordJudgementReferral:
    """A referral on professional judgement, the DASH not completed."""
    return RecordJudgementReferral.model_validate({
        "subject_id": subject_id, "reasons": "she fears for her life",
        "incidents_last_12_months": 1, "partial_answers": ["yes", "no"],
        "not_completed_reason": "the interview was interrupted",
        "referred_on": "2026-11-20", **change})


def external(subject_id: str, **change: Any) -> RecordExternalReferral:
    """A referral the police made outside Peerlink."""
    return RecordExternalReferral.model_validate({
        "subject_id": subject_id, "referred_on": "2026-11-20", "referring_agency": "police",
        **change})

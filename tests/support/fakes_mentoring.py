"""Mentoring's use cases' collaborators in memory, and the commands and callers their unit
tests repeat.

``MentoringWorld()`` builds the unit of work over in-memory SQLite (no migrations), the fake
consent service with a key store and ciphers over it, a random records key and the
eligibility rules; its helpers make people, mentors, referrals and matches through the use
cases themselves.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from ops.demo import fake_nhs_numbers
from services.mentoring.adapters.tables import metadata
from services.mentoring.domain.intervention import Intervention
from services.mentoring.domain.matching import EligibilityRules
from services.mentoring.service_layer import mentoring
from services.mentoring.service_layer.commands import LogSession, ReferMentee, RegisterMentor
from shared.auth import Principal
from shared.crypto import CachingKeyStore, PersonalDataCipher, RecordCipher
from shared.db import Database
from shared.events.consent import SafeContact
from tests.support.fakes import FakeConsent, memory_database

TODAY = date(2026, 6, 15)
PHONE = "07700 900418"
SAFE_CONTACT = SafeContact(phone=PHONE, times="weekday mornings", may_leave_message=False)
PARTNERS = ("partner-a", "partner-b")


def caller(org: str, *roles: str, subject: str | None = None) -> Principal:
    """Someone of ``org`` (a DVA partner when its name says so, else the Trust) with roles."""
    kind = "dva-partner" if org.startswith("partner") else "nhs-trust"
    return Principal(subject=subject or f"{roles[0]}-of-{org}", org=org,
                     roles=frozenset(roles), org_kind=kind)


COORDINATOR = caller("partner-a", "mentor-coordinator")
PARTNER_STAFF = caller("partner-a", "partner-staff")
CLINICIAN = caller("trust", "clinician")
LEAD = caller("trust", "safeguarding-lead")
TRUST_DPO = caller("trust", "dpo")


def mentor_command(org: str = "partner-a", **changes: Any) -> RegisterMentor:
    """An active, trained, checked and supervised mentor of ``org``: matchable on TODAY."""
    return RegisterMentor.model_validate({
        "org": org, "display_name": "Robin Achterberg", "gender": "female",
        "languages": ["en"], "borough": "camden", "modes": ["in-person", "phone", "video"],
        "capacity": 1, "training_completed_on": TODAY - timedelta(days=90),
        "check_level": "enhanced", "check_completed_on": TODAY - timedelta(days=90),
        "supervision_held_on": TODAY - timedelta(days=3), "status": "active", **changes})


def referral_command(subject_id: str, to_org: str = "partner-a", org: str = "trust",
                     **preferences: Any) -> ReferMentee:
    """A referral of the person by ``org`` to ``to_org``'s intake."""
    return ReferMentee(subject_id=subject_id, referred_by_org=org, to_org=to_org,
                       preferences=preferences, safe_contact=SAFE_CONTACT)


def session_command(match_id: str, **changes: Any) -> LogSession:
    """An attended phone session on TODAY."""
    return LogSession.model_validate({
        "match_id": match_id, "held_on": TODAY, "duration_minutes": 60, "mode": "phone",
        "attendance": "attended", **changes})


@dataclass
class MentoringWorld:
    """What mentoring's use cases are handed, in memory, and how to set a scene with them."""

    database: Database = field(default_factory=lambda: memory_database(metadata))
    consent: FakeConsent = field(default_factory=FakeConsent)
    records: RecordCipher = field(default_factory=lambda: RecordCipher(os.urandom(32)))
    rules: EligibilityRules = field(default_factory=EligibilityRules)
    intervention: Intervention = field(default_factory=Intervention)
    partners: tuple[str, ...] = PARTNERS
    numbers: Iterator[str] = field(default_factory=lambda: fake_nhs_numbers(random.Random(7)))
    keys: CachingKeyStore = field(init=False)
    cipher: PersonalDataCipher = field(init=False)

    def __post_init__(self) -> None:
        self.keys = CachingKeyStore(self.consent)
        self.cipher = PersonalDataCipher(self.keys)

    def person(self, org: str = "trust", *, peer_mentoring: bool = True,
               sharing_with: tuple[str, ...] = ("partner-a",)) -> str:
        """A person registered with ``org``, with its peer-mentoring consent (unless told
        not) and its partner-sharing naming ``sharing_with``."""
        subject_id = self.consent.register(next(self.numbers), caller(org, "clinician"))
        if peer_mentoring:
            self.consent.grant(subject_id, org, "peer-mentoring")
        if sharing_with:
            self.consent.grant(subject_id, org, "partner-sharing", frozenset(sharing_with))
        return subject_id

    def mentor(self, org: str = "partner-a", **changes: Any) -> str:
        """A registered mentor of ``org`` (matchable unless the changes say otherwise)."""
        with self.database.unit_of_work() as uow:
            view = mentoring.register_mentor(uow, mentor_command(org, **changes), org, TODAY,
                                             self.rules)
        return str(view["id"])

    def refer(self, subject_id: str, to_org: str = "partner-a", by: Principal = CLINICIAN,
              **preferences: Any) -> str:
        """A referral of the person by ``by``'s organisation to ``to_org``."""
        view = mentoring.refer(self.database, self.consent, self.keys, self.cipher,
                               self.records, self.partners,
                               referral_command(subject_id, to_org, by.org, **preferences),
                               by, TODAY)
        return str(view["id"])

    def match(self, referral_id: str, by: Principal = COORDINATOR) -> dict[str, Any]:
        """Matched (or waitlisted) by the receiving coordinator."""
        with self.database.unit_of_work() as uow:
            return mentoring.match_referral(uow, referral_id, by, TODAY, self.rules)

    def matched(self) -> tuple[str, str, str]:
        """A person referred by the Trust to partner-a and matched there with a new mentor;
        (subject_id, referral_id, match_id)."""
        self.mentor()
        subject_id = self.person()
        referral_id = self.refer(subject_id)
        matched = self.match(referral_id)
        assert matched["status"] == "matched", matched
        return subject_id, referral_id, str(matched["match_id"])

    def rows(self, table: str) -> list[Any]:
        """Every row of one of mentoring's tables."""
        with self.database.read() as session:
            return list(session.execute(select(metadata.tables[table])))

    def row(self, table: str, **where: Any) -> Any:
        """The one row of ``table`` whose columns equal ``where``."""
        [found] = [r for r in self.rows(table)
                   if all(getattr(r, k) == v for k, v in where.items())]
        return found

"""Safeguarding records in screening (issue 11): kept and linked through erasure, repeats as
SafeLives defines them, safe contact travelling with referrals, and subject access.

A real consent API is served on a port (with the safeguarding routes consent does not serve
yet, from ``tests.support.screening_consent``); what consent publishes is applied by the
screening worker's own handlers. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Table, select

from services.consent.adapters.tables import audit_log
from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.screening.adapters.tables import (
    marac_referrals,
    partner_sharing,
    relationships,
    risk_assessments,
    safe_contacts,
    screenings,
)
from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from services.screening.service_layer import risk
from services.screening.service_layer.commands import RecordRiskAssessment, RecordScreening
from services.screening.service_layer.screenings import store_screening
from shared.events.consent import ErasureRequested, SafeContact, SafeContactUpdated
from shared.events.envelope import CloudEvent
from shared.events.screening import MaracReferralRequired
from shared.events.vocabulary import ErasureScope, RetainedKind
from shared.issuer import development_issuer
from shared.kafka.consumer import EventApplier
from tests.support.http import serving
from tests.support.screening import (
    CONSENT_SOURCE,
    apply_consent_events,
    consent_applier,
    relationship,
    sharing_granted,
)
from tests.support.screening_consent import pseudonym_in
from tests.support.services import approve_erasure, issuing, relay_consent_events, settings_for

NHS_NUMBER = "943 476 5919"
SAFE = {"phone": "07700 900123", "times": "weekdays 10:00-12:00", "may_leave_message": False,
        "safe_to_call": True, "instructions": "Wombat-4471: say it is the pharmacy"}
NEWER = {"phone": "07700 900456", "times": "Tuesdays after 14:00", "may_leave_message": True,
         "safe_to_call": True, "instructions": None}
ABUSER = {"phone": "07700 900666", "times": "any time", "may_leave_message": True,
          "safe_to_call": True, "instructions": None}
REASONS = "Wombat-4471 reasons: he has a new address near her"
HIGH = ["yes"] * 14 + ["no"] * 10
NONE = ["no"] * 24


@dataclass
class Programme:
    consent: ConsentAdapters
    consent_app: FastAPI
    consent_url: str
    service: ScreeningAdapters
    client: TestClient
    applier: EventApplier
    seq: int = 0
    made: list[ScreeningAdapters] = field(default_factory=list)

    def as_(self, role: str, org: str = "trust") -> dict[str, str]:
        """One person per role and organisation (the clinician who raised sees their own)."""
        token = development_issuer(self.service.settings).mint(org, [role],
                                                               subject=f"{org}-{role}")
        return {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: dict[str, Any], role: str = "clinician",
             status: int = 201) -> dict[str, Any]:
        response = self.client.post(path, json=body, headers=self.as_(role))
        assert response.status_code == status, response.text
        answered: dict[str, Any] = response.json()
        return answered

    def dash(self, person: dict[str, str], answers: list[str], on: str,
             **more: Any) -> dict[str, Any]:
        return self.post("/v1/risk-assessments", {
            **person, "answers": answers, "incidents_last_12_months": 0, "assessed_on": on,
            **more})

    def project(self) -> None:
        """Apply what consent published since last time, as the worker would."""
        self.seq = relay_consent_events(self.consent, self.applier, self.seq)

    def queue(self, role: str, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/v1/marac-referrals", params=params,
                                   headers=self.as_(role))
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["referrals"]
        return entries

    def erase_in_consent(self, subject_id: str) -> None:
        """The person asks for erasure and the Trust's DPO approves it; the Trust holds them
        alone, so consent erases them everywhere."""
        with httpx.Client(base_url=self.consent_url, timeout=10) as http:
            response = http.post(f"/v1/subjects/{subject_id}/withdrawals", json={
                "purposes": ["all"], "erasure": True, "method": "verbal"},
                headers=self.as_("clinician"))
            assert response.status_code == 202, response.text
            decided = approve_erasure(http, self.service.settings,
                                      response.json()["erasure_request_id"], "trust")
        assert decided["scope"] == "subject"
        self.project()

    def consent_safe_contact(self, subject_id: str) -> dict[str, Any] | None:
        """The safe contact consent now holds for every holder (as a safeguarding lead)."""
        with httpx.Client(base_url=self.consent_url, timeout=10) as http:
            response = http.get(f"/v1/subjects/{subject_id}/safe-contact",
                                headers=self.as_("safeguarding-lead"))
        assert response.status_code == 200, response.text
        contact: dict[str, Any] | None = response.json()["safe_contact"]
        return contact

    def audited(self, action: str, subject_id: str) -> int:
        with self.consent.database.read() as session:
            return len(session.execute(select(audit_log.c.seq).where(
                audit_log.c.action == action, audit_log.c.subject_id == subject_id)).all())

    def rows(self, table: Table, **where: Any) -> list[Any]:
        with self.service.database.read() as session:
            return list(session.execute(select(table).where(
                *(table.c[k] == v for k, v in where.items()))))

    def published(self) -> list[MaracReferralRequired]:
        outbox = self.service.database.metadata.tables["outbox"]
        with self.service.database.read() as session:
            rows = session.execute(select(outbox.c.payload).where(
                outbox.c.event_type == "marac-referral-required").order_by(outbox.c.seq))
            return [MaracReferralRequired.model_validate(CloudEvent.from_bytes(p).data)
                    for p in rows.scalars()]


@pytest.fixture
def programme(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[Programme]:
    monkeypatch.delenv("PEERLINK_MARAC_ESCALATION_INCIDENTS", raising=False)
    consent_db = f"sqlite:///{tmp_path / 'consent.db'}"
    settings = settings_for(monkeypatch, tmp_path,
                            {"consent": consent_db, "screening": database_url})
    with issuing(settings) as settings:
        consent = ConsentAdapters(settings)
        app = consent_api(consent)
        with serving(app) as consent_url:
            service = ScreeningAdapters(settings.model_copy(update={"consent_url": consent_url}))
            applier = consent_applier(service.database, service.cipher, service.records)
            try:
                yield Programme(consent, app, consent_url, service,
                                TestClient(screening_api(service)), applier)
            finally:
                service.database.dispose()  # the PostgreSQL server's connections are shared
                consent.database.dispose()


def test_a_kept_referral_survives_erasure_and_a_re_registration_meets_repeat(
        programme: Programme) -> None:
    first = programme.dash({"nhs_number": NHS_NUMBER}, HIGH, "2026-06-01",
                           professional_judgement={"referral": True, "reasons": REASONS},
                           incidents_last_12_months=1, safe_contact=SAFE)
    old_subject = first["subject_id"]
    assert first["criteria_met"] == ["visible-high-risk", "professional-judgement"]
    assert first["repeat"] is False
    # the safe contact given went to consent, as the Trust's copy
    assert programme.consent_safe_contact(old_subject) == \
        SafeContact.model_validate(SAFE).model_dump()
    pseudonym = pseudonym_in(programme.consent, old_subject)
    programme.project()

    programme.erase_in_consent(old_subject)

    [kept] = programme.queue("safeguarding-lead")
    assert (kept["id"], kept["flagged_for_dpo"]) == (first["marac_referral_id"], True)
    assert kept["safe_contact"] == SAFE
    assessment = kept["assessment"]
    assert (assessment["answers"], assessment["professional_judgement"]["reasons"],
            assessment["incidents_last_12_months"]) == (HIGH, REASONS, 1)
    assert "Article 9(2)(g)" in kept["lawful_basis"]
    [listed] = programme.queue("dpo", flagged_for_dpo="true")
    assert listed["id"] == kept["id"] and listed["lawful_basis"] == kept["lawful_basis"]
    assert "safe_contact" not in listed and "assessment" not in listed
    assert "Wombat" not in str(listed)
    assert programme.audited("marac-safe-contact-read", old_subject) == 1
    # not behind a referral: nothing; behind one: de-identified by subject, sealed answers kept
    [row] = programme.rows(risk_assessments, assessment_id=first["id"])
    assert row.subject_id is None and row.record_sealed is not None
    assert row.safeguarding_pseudonym == pseudonym

    again = programme.dash({"nhs_number": NHS_NUMBER}, NONE, "2026-11-20")

    assert again["subject_id"] != old_subject
    assert again["criteria_met"] == ["repeat"] and again["repeat"] is True
    new_referral = programme.published()[-1]
    assert new_referral.referral_id == again["marac_referral_id"]
    assert (new_referral.source, new_referral.safeguarding_pseudonym) == ("dash", pseudonym)
    entries = {e["id"]: e for e in programme.queue("safeguarding-lead")}
    assert entries[again["marac_referral_id"]]["repeat"] is True


def test_a_judgement_referral_with_a_partial_dash(programme: Programme) -> None:
    body = {"nhs_number": NHS_NUMBER, "reasons": REASONS, "incidents_last_12_months": 0,
            "partial_answers": ["yes", "yes", "no", "dont-know", "yes"],
            "not_completed_reason": "Wombat-4471 had to leave when he arrived",
            "referred_on": "2026-11-20", "safe_contact": SAFE}

    made = programme.post("/v1/marac-referrals", body)

    assert made["criteria_met"] == ["professional-judgement"]
    assert made["score"] == 3 and made["marac_referral_id"]
    [entry] = programme.queue("safeguarding-lead")
    assert (entry["source"], entry["safe_contact"]) == ("judgement", SAFE)
    assert entry["assessment"]["checklist"] == "partial"
    assert entry["assessment"]["answers"] == body["partial_answers"]
    assert entry["assessment"]["not_completed_reason"] == body["not_completed_reason"]
    assert programme.published()[-1].source == "judgement"
    missing = programme.client.post("/v1/marac-referrals", headers=programme.as_("clinician"),
                                    json={k: v for k, v in body.items()
                                          if k != "not_completed_reason"})
    assert missing.status_code == 422
    assert "not_completed_reason" in missing.text and "Wombat" not in missing.text
    lead = programme.client.post("/v1/marac-referrals", json=body,
                                 headers=programme.as_("safeguarding-lead"))
    assert lead.status_code == 403


def test_an_external_referral_makes_the_next_dash_a_repeat(programme: Programme) -> None:
    subject_id = programme.dash({"nhs_number": NHS_NUMBER}, NONE, "2026-02-01")["subject_id"]

    external = programme.post("/v1/marac-referrals/external", {
        "subject_id": subject_id, "referred_on": "2026-03-01", "referring_agency": "police"},
        role="safeguarding-lead")

    assert (external["status"], external["source"], external["repeat"]) == (
        "sent", "external", False)
    [published] = programme.published()
    assert (published.source, published.assessment_id) == ("external", None)
    assert published.safeguarding_pseudonym == pseudonym_in(programme.consent, subject_id)
    within = programme.dash({"subject_id": subject_id}, NONE, "2026-11-20")
    assert within["criteria_met"] == ["repeat"] and within["repeat"] is True
    future = programme.client.post("/v1/marac-referrals/external", json={
        "subject_id": subject_id, "referred_on": "2999-01-01", "referring_agency": "police"},
        headers=programme.as_("safeguarding-lead"))
    assert future.status_code == 422 and "referred_on" in future.text


def _erasure(subject_id: str, org: str, scope: ErasureScope,
             retained: tuple[RetainedKind, ...] = ()) -> CloudEvent:
    return CloudEvent.wrap(ErasureRequested(
        withdrawal_id=f"wd_{uuid.uuid4().hex}", purposes=("partner-sharing",),
        method="verbal", org=org, erasure_request_id=f"er_{uuid.uuid4().hex}", scope=scope,
        retained=retained), source=CONSENT_SOURCE, subject=subject_id)


def _contact_updated(service: ScreeningAdapters, subject_id: str, org: str,
                     contact: dict[str, Any]) -> CloudEvent:
    """``safe-contact-updated`` as consent publishes it: ``org``'s copy changed."""
    return CloudEvent.wrap(SafeContactUpdated(org=org, personal=service.cipher.seal(
        subject_id, SafeContactUpdated.event_type, {"safe_contact": contact})),
        source=CONSENT_SOURCE, subject=subject_id)


def test_organisation_scope_erases_only_that_organisations_records(
        programme: Programme) -> None:
    trust_screening = programme.post("/v1/screenings", {
        "nhs_number": NHS_NUMBER, "org": "trust", "team": "north-cmht", "borough": "camden",
        "gender": "female", "age_band": "25-34", "asked_on": "2026-11-20",
        "asked_by_role": "nurse", "training_level": 2, "private": True, "outcome": "asked",
        "past_abuse": "no", "notes": "trust notes",
        "hark": {"humiliated": True, "afraid": False, "raped": False, "kicked": False}})
    subject_id = trust_screening["subject_id"]
    with programme.service.database.unit_of_work() as uow:
        store_screening(uow, programme.service.cipher, RecordScreening.model_validate({
            "subject_id": subject_id, "org": "partner-a", "team": "outreach",
            "borough": "camden", "gender": "female", "age_band": "25-34",
            "asked_on": "2026-11-21", "asked_by_role": "idva", "training_level": 3,
            "private": True, "outcome": "declined", "notes": "partner notes"}),
            subject_id, "partner-a")
    plain = programme.dash({"subject_id": subject_id}, NONE, "2026-11-10")  # no referral
    referral = programme.dash({"subject_id": subject_id}, HIGH, "2026-11-20")
    service = programme.service
    apply_consent_events(service.database, relationship(subject_id, "trust"),
                         relationship(subject_id, "partner-a", "referral"),
                         sharing_granted(subject_id, "trust", ["partner-a"]),
                         _contact_updated(service, subject_id, "partner-a", NEWER),
                         cipher=service.cipher, records=service.records)

    apply_consent_events(programme.service.database,
                         _erasure(subject_id, "partner-a", "organisation"))

    by_org = {row.org: row for row in programme.rows(screenings)}
    assert by_org["partner-a"].subject_id is None and by_org["partner-a"].notes_sealed is None
    assert by_org["trust"].subject_id == subject_id and by_org["trust"].notes_sealed
    assert [r.org for r in programme.rows(relationships)] == ["trust"]
    assert programme.rows(partner_sharing) == []
    assert [r.flagged_for_dpo_at for r in programme.rows(marac_referrals)] == [None]
    assert programme.rows(safe_contacts) == []  # partner-a's copy went with its records

    # the Trust's DPO keeps screenings; its risk assessment not behind a referral goes
    apply_consent_events(programme.service.database,
                         _erasure(subject_id, "trust", "organisation", ("screenings",)))

    by_org = {row.org: row for row in programme.rows(screenings)}
    assert by_org["trust"].subject_id == subject_id and by_org["trust"].notes_sealed
    [gone] = programme.rows(risk_assessments, assessment_id=plain["id"])
    assert (gone.subject_id, gone.record_sealed, gone.safeguarding_pseudonym) == (
        None, None, None)
    [behind] = programme.rows(risk_assessments, assessment_id=referral["id"])
    assert behind.record_sealed is not None
    [flagged] = programme.rows(marac_referrals)
    assert flagged.flagged_for_dpo_at is not None


def test_safe_contact_updated_from_the_trust_replaces_it_on_its_referrals_and_new_ones(
        programme: Programme) -> None:
    first = programme.dash({"nhs_number": NHS_NUMBER}, HIGH, "2026-11-01", safe_contact=SAFE)
    subject_id = first["subject_id"]
    service = programme.service

    apply_consent_events(service.database, _contact_updated(service, subject_id, "trust", NEWER),
                         cipher=service.cipher, records=service.records)

    [entry] = programme.queue("safeguarding-lead")
    assert entry["safe_contact"] == NEWER
    assert "07700 900456" not in str(programme.rows(marac_referrals))
    assert "07700 900456" not in str(programme.rows(safe_contacts))
    external = programme.post("/v1/marac-referrals/external", {
        "subject_id": subject_id, "referred_on": "2026-11-15", "referring_agency": "police"})
    assert external["repeat"] is True
    entries = {e["id"]: e for e in programme.queue("safeguarding-lead", status="sent")}
    assert entries[external["id"]]["safe_contact"] == NEWER
    # the clinician who raised them sees them too; every read is audited
    mine = programme.queue("clinician") + programme.queue("clinician", status="sent")
    assert {e["id"] for e in mine} == {first["marac_referral_id"], external["id"]}
    assert programme.audited("marac-safe-contact-read", subject_id) == 4


@pytest.mark.parametrize("trust_gave", [SAFE, None], ids=["trust-gave-one", "trust-gave-none"])
def test_safe_contact_updated_from_a_partner_never_reaches_the_trusts_referrals(
        programme: Programme, trust_gave: dict[str, Any] | None) -> None:
    """An abuser working at a partner registers the victim's NHS number (a relationship is
    free) and records their own number as her safe contact: the Trust's referrals, and the
    Trust's next one, keep the Trust's (or none), so the IDVA never calls the abuser."""
    first = programme.dash({"nhs_number": NHS_NUMBER}, HIGH, "2026-11-01",
                           **({"safe_contact": trust_gave} if trust_gave else {}))
    subject_id = first["subject_id"]
    service = programme.service

    apply_consent_events(service.database, relationship(subject_id, "partner-a"),
                         _contact_updated(service, subject_id, "partner-a", ABUSER),
                         cipher=service.cipher, records=service.records)

    [entry] = programme.queue("safeguarding-lead")
    assert entry["safe_contact"] == trust_gave
    external = programme.post("/v1/marac-referrals/external", {
        "subject_id": subject_id, "referred_on": "2026-11-15", "referring_agency": "police"})
    [recorded] = programme.queue("safeguarding-lead", status="sent")
    assert recorded["id"] == external["id"] and recorded["safe_contact"] == trust_gave
    judged = programme.post("/v1/marac-referrals", {
        "subject_id": subject_id, "reasons": REASONS, "incidents_last_12_months": 0,
        "not_completed_reason": "she had to leave", "referred_on": "2026-11-16"})
    everything = programme.queue("safeguarding-lead") + programme.queue(
        "safeguarding-lead", status="sent")
    assert {e["id"] for e in everything} == {
        first["marac_referral_id"], external["id"], judged["marac_referral_id"]}
    assert ABUSER["phone"] not in str(everything)
    assert all(e["safe_contact"] == trust_gave for e in everything)
    # partner-a's copy is kept as partner-a's alone
    assert sorted(row.org for row in programme.rows(safe_contacts, subject_id=subject_id)) == (
        ["partner-a", "trust"] if trust_gave else ["partner-a"])


def test_a_partner_registering_the_person_and_changing_the_safe_contact_at_consent(
        programme: Programme) -> None:
    """The same, end to end: partner staff register her NHS number with consent and PUT their
    own number; what consent publishes leaves the Trust's referral alone."""
    first = programme.dash({"nhs_number": NHS_NUMBER}, HIGH, "2026-11-01", safe_contact=SAFE)
    subject_id = first["subject_id"]
    partner = programme.as_("partner-staff", "partner-a")
    with httpx.Client(base_url=programme.consent_url, timeout=10) as http:
        registered = http.post("/v1/subjects", json={"nhs_number": NHS_NUMBER},
                               headers=partner)
        assert registered.status_code == 201, registered.text
        assert registered.json()["subject_id"] == subject_id
        changed = http.put(f"/v1/subjects/{subject_id}/safe-contact", json=ABUSER,
                           headers=partner)
        assert changed.status_code == 200, changed.text

    programme.project()

    [entry] = programme.queue("safeguarding-lead")
    assert entry["safe_contact"] == SAFE
    again = programme.post("/v1/marac-referrals/external", {
        "subject_id": subject_id, "referred_on": "2026-11-15", "referring_agency": "police"})
    [recorded] = programme.queue("safeguarding-lead", status="sent")
    assert (recorded["id"], recorded["safe_contact"]) == (again["id"], SAFE)


def test_subject_access_export_for_the_dpo_with_a_relationship(programme: Programme) -> None:
    assessed = programme.dash({"nhs_number": NHS_NUMBER}, HIGH, "2026-11-01",
                              safe_contact=SAFE,
                              professional_judgement={"referral": True, "reasons": REASONS})
    subject_id = assessed["subject_id"]
    programme.project()

    response = programme.client.get(f"/v1/subjects/{subject_id}/export",
                                    headers=programme.as_("dpo"))

    assert response.status_code == 200, response.text
    exported = response.json()
    [assessment] = exported["risk_assessments"]
    assert assessment["answers"] == HIGH
    assert assessment["professional_judgement"]["reasons"] == REASONS
    [referral] = exported["marac_referrals"]
    assert referral["safe_contact"] == SAFE
    assert programme.audited("screening-subject-exported", subject_id) == 1
    for role, org, status in (("dpo", "partner-a", 404), ("clinician", "trust", 403)):
        refused = programme.client.get(f"/v1/subjects/{subject_id}/export",
                                       headers=programme.as_(role, org))
        assert refused.status_code == status, (role, org)
        assert "Wombat" not in refused.text


def _raise_together(service: ScreeningAdapters, command: RecordRiskAssessment,
                    person: risk.Person) -> list[dict[str, Any]]:
    """Two writers, each in its own transaction, released together by a barrier."""
    barrier = threading.Barrier(2)
    outcomes: list[dict[str, Any]] = []

    def raise_one() -> None:
        barrier.wait()
        with service.database.unit_of_work() as uow:
            outcomes.append(risk.store_risk_assessment(
                uow, service.cipher, service.records, command, person,
                risk.Raised("trust", "trust-clinician"), 3))

    threads = [threading.Thread(target=raise_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_writers_raising_referrals_for_one_person_at_once(programme: Programme) -> None:
    """The second sees the first (same day: a repeat), on both backends; repeated, since a
    race passes by luck."""
    for trial in range(4):
        subject_id = programme.dash({"nhs_number": _nhs(trial)}, NONE,
                                    "2026-11-01")["subject_id"]
        person = risk.Person(subject_id, pseudonym_in(programme.consent, subject_id))
        command = RecordRiskAssessment.model_validate({
            "subject_id": subject_id, "answers": HIGH, "incidents_last_12_months": 0,
            "assessed_on": "2026-11-20"})

        outcomes = _raise_together(programme.service, command, person)

        assert sorted(o["repeat"] for o in outcomes) == [False, True]
        assert len(programme.rows(marac_referrals, subject_id=subject_id)) == 2


def _nhs(index: int) -> str:
    """A valid NHS number from the range reserved for testing."""
    body = 999_000_100 + index * 7
    while True:
        digits = f"{body:09d}"
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            return digits + str(0 if check == 11 else check)
        body += 1


def test_an_assessment_sealed_under_the_data_key_before_0005_stays_readable(
        programme: Programme) -> None:
    assessed = programme.dash({"nhs_number": NHS_NUMBER}, NONE, "2026-11-01")
    subject_id = assessed["subject_id"]
    service = programme.service
    legacy = service.cipher.seal(subject_id, risk.SEALED_CONTEXT,
                                 {"answers": HIGH, "reasons": REASONS})
    with service.database.unit_of_work() as uow:
        uow.session.execute(risk_assessments.update().where(
            risk_assessments.c.assessment_id == assessed["id"]).values(
            sealed=legacy.model_dump_json().encode(), record_sealed=None))

    response = programme.client.get(f"/v1/subjects/{subject_id}/results",
                                    headers=programme.as_("clinician"))

    assert response.status_code == 200, response.text
    [shown] = response.json()["risk_assessments"]
    assert (shown["answers"], shown["professional_judgement"]["reasons"]) == (HIGH, REASONS)

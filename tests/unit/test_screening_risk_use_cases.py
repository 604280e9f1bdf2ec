"""Screening's risk and MARAC use cases over fakes (tables in memory, consent in memory): the
assessment and the referral they raise, stored, sealed and published; the repeat rule across
re-registration; the queue each role sees, audited; marking a referral sent."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Table, select

from services.screening.adapters.tables import marac_referrals, risk_assessments, safe_contacts
from services.screening.service_layer import risk
from shared.auth import NotPermitted, Principal
from shared.crypto import KeyShredded, UnknownSubject
from shared.db import Database, utcnow
from tests.support.fakes import published
from tests.support.fakes_screening import (
    HIGH,
    LOW,
    SAFE,
    ScreeningFakes,
    caller,
    dash,
    external,
    judgement,
)


@pytest.fixture
def fakes() -> ScreeningFakes:
    return ScreeningFakes()


def rows(database: Database, table: Table) -> list[Any]:
    with database.read() as session:
        return list(session.execute(select(table)))


def assess(fakes: ScreeningFakes, subject_id: str, answers: list[Any], who: Principal | None = None,
           **change: Any) -> dict[str, Any]:
    return risk.record_risk_assessment(who or caller(), dash(subject_id, answers, **change),
                                       cipher=fakes.cipher, escalation_incidents=3,
                                       **fakes.safeguarding())


def queue(fakes: ScreeningFakes, who: Principal, status: str | None = "open",
          flagged: bool | None = None) -> list[dict[str, Any]]:
    return risk.marac_queue(who, status, flagged, **fakes.reading())


# --- record_risk_assessment ------------------------------------------------------------------

def test_an_assessment_below_every_criterion_raises_no_referral(fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()

    outcome = assess(fakes, subject_id, LOW, safe_contact=SAFE)

    assert (outcome["score"], outcome["criteria_met"], outcome["marac_referral_id"]) \
        == (0, [], None)
    [row] = rows(fakes.database, risk_assessments)
    assert (row.assessment_id, row.checklist, row.marac_referral_required) \
        == (outcome["id"], "complete", False)
    assert rows(fakes.database, marac_referrals) == []
    assert [e.type for e in published(fakes.database)] == ["risk-assessed"]
    assert len(rows(fakes.database, safe_contacts)) == 1  # kept as the Trust's latest
    assert fakes.consent.safe_contacts == {subject_id: SAFE}


def test_a_visible_high_risk_raises_a_referral_at_once(fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()

    outcome = assess(fakes, subject_id, HIGH, safe_contact=SAFE)

    assert outcome["criteria_met"] == ["visible-high-risk"] and outcome["idva_referral_required"]
    [referral] = rows(fakes.database, marac_referrals)
    assert (referral.referral_id, referral.status, referral.source, referral.raised_by) \
        == (outcome["marac_referral_id"], "open", "dash", "clin-1")
    assert referral.safeguarding_pseudonym == fakes.consent.safeguarding_pseudonym(subject_id)
    assessed, required = published(fakes.database)
    assert (assessed.type, assessed.data["dash_score"]) == ("risk-assessed", 14)
    assert assessed.data["personal"] is not None
    assert (required.type, required.data["referral_id"], required.data["criteria_met"]) \
        == ("marac-referral-required", referral.referral_id, ["visible-high-risk"])


def test_a_second_referral_within_12_months_is_a_repeat_after_re_registration(
        fakes: ScreeningFakes) -> None:
    first = fakes.person()
    again = fakes.person("401 023 2137")  # the same person, registered again
    pseudonym = fakes.consent.safeguarding_pseudonym(first)
    with fakes.database.unit_of_work() as uow:
        risk.store_risk_assessment(uow, fakes.cipher, fakes.records, dash(first, HIGH),
                                   risk.Person(first, pseudonym), risk.Raised("trust", "c"), 3)
    with fakes.database.unit_of_work() as uow:
        outcome = risk.store_risk_assessment(
            uow, fakes.cipher, fakes.records, dash(again, LOW, on=date(2027, 11, 20)),
            risk.Person(again, pseudonym), risk.Raised("partner-a", "p"), 3)

    assert outcome["criteria_met"] == ["repeat"] and outcome["repeat"]
    assert len(rows(fakes.database, marac_referrals)) == 2


def test_only_a_clinician_assesses_risk(fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()

    with pytest.raises(NotPermitted):
        assess(fakes, subject_id, HIGH, who=caller("trust", "safeguarding-lead"))
    assert rows(fakes.database, risk_assessments) == [] and published(fakes.database) == []


def test_an_erased_person_has_no_safeguarding_pseudonym_and_is_unknown(
        fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    fakes.consent.shred(subject_id)

    with pytest.raises(UnknownSubject):
        risk.safeguarded(fakes.consent, subject_id, caller(), SAFE)
    with pytest.raises(KeyShredded):  # the write is refused before: no live key
        assess(fakes, subject_id, HIGH)
    assert fakes.consent.safe_contacts == {}


# --- record_judgement_referral, record_external_referral ---------------------------------------

def test_a_referral_on_judgement_keeps_the_partial_checklist_behind_it(
        fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()

    outcome = risk.record_judgement_referral(caller(), judgement(subject_id),
                                             escalation_incidents=3, **fakes.safeguarding())

    assert outcome["criteria_met"] == ["professional-judgement"] and outcome["score"] == 1
    [assessment] = rows(fakes.database, risk_assessments)
    [referral] = rows(fakes.database, marac_referrals)
    assert (assessment.checklist, referral.assessment_id, referral.source) \
        == ("partial", assessment.assessment_id, "judgement")
    sealed = fakes.records.open(risk.assessment_context(assessment.assessment_id),
                                assessment.record_sealed)
    assert sealed["not_completed_reason"] == "the interview was interrupted"
    [event] = published(fakes.database, "marac-referral-required")
    assert event.data["source"] == "judgement"


def test_an_external_referral_is_recorded_sent_and_makes_the_next_a_repeat(
        fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()

    recorded = risk.record_external_referral(caller(), external(subject_id),
                                             **fakes.safeguarding())
    outcome = assess(fakes, subject_id, LOW, on=date(2026, 12, 1))

    assert (recorded["status"], recorded["source"], recorded["referring_agency"]) \
        == ("sent", "external", "police")
    [referral] = [r for r in rows(fakes.database, marac_referrals)
                  if r.referral_id == recorded["id"]]
    assert referral.status == "sent" and referral.sent_at is not None
    assert outcome["criteria_met"] == ["repeat"]


def test_a_partner_records_no_external_referral(fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()

    with pytest.raises(NotPermitted):
        risk.record_external_referral(caller("partner-a", "partner-staff"),
                                      external(subject_id), **fakes.safeguarding())
    assert rows(fakes.database, marac_referrals) == []


# --- marac_queue -----------------------------------------------------------------------------

def test_the_safeguarding_lead_sees_every_referral_with_its_safe_contact_audited(
        fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    raised = assess(fakes, subject_id, HIGH, safe_contact=SAFE)

    [entry] = queue(fakes, caller("trust", "safeguarding-lead", "lead"))

    assert (entry["id"], entry["safe_contact"]) == (raised["marac_referral_id"], SAFE.model_dump())
    assert entry["assessment"]["answers"] == HIGH
    assert fakes.audited(risk.QUEUE_ENTRY_READ) == [(subject_id, "trust")]
    assert fakes.audited(risk.SAFE_CONTACT_READ) == [(subject_id, "trust")]


def test_a_clinician_sees_only_the_referrals_they_raised(fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    assess(fakes, subject_id, HIGH, who=caller(subject="clin-1"))

    assert len(queue(fakes, caller(subject="clin-1"))) == 1
    assert queue(fakes, caller(subject="clin-2")) == []


def test_the_dpo_sees_flagged_referrals_without_details(fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    assess(fakes, subject_id, HIGH, safe_contact=SAFE)
    dpo = caller("trust", "dpo")
    assert queue(fakes, dpo) == []
    with fakes.database.unit_of_work() as uow:
        uow.session.execute(marac_referrals.update().values(flagged_for_dpo_at=utcnow()))

    [entry] = queue(fakes, dpo)

    assert entry["flagged_for_dpo"] and entry["lawful_basis"] == risk.LAWFUL_BASIS
    assert "safe_contact" not in entry and "assessment" not in entry
    assert fakes.audited(risk.SAFE_CONTACT_READ) == []


def test_a_role_without_a_view_of_the_queue_is_refused_and_audited(
        fakes: ScreeningFakes) -> None:
    with pytest.raises(NotPermitted):
        queue(fakes, caller("partner-a", "partner-staff"))
    assert fakes.audited(risk.QUEUE_REFUSED) == [(None, "partner-a")]


# --- mark_sent -------------------------------------------------------------------------------

def test_marking_a_referral_sent_is_idempotent_and_audited(fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    referral_id = assess(fakes, subject_id, HIGH)["marac_referral_id"]
    lead = caller("trust", "safeguarding-lead", "lead")

    sent = risk.mark_sent(lead, referral_id, database=fakes.database, audit=fakes.consent)
    again = risk.mark_sent(lead, referral_id, database=fakes.database, audit=fakes.consent)

    assert sent["status"] == "sent" and again["sent_at"] == sent["sent_at"]
    assert queue(fakes, lead) == [] and len(queue(fakes, lead, "sent")) == 1
    assert fakes.audited(risk.REFERRAL_SENT) == [(subject_id, "trust")] * 2


def test_an_unknown_referral_is_not_found(fakes: ScreeningFakes) -> None:
    with pytest.raises(risk.ReferralNotFound, match="no MARAC referral with this id"):
        risk.mark_sent(caller("trust", "safeguarding-lead"), "marac_unknown",
                       database=fakes.database, audit=fakes.consent)
    assert fakes.audited(risk.REFERRAL_SENT) == []

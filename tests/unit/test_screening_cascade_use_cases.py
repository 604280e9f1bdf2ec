"""Screening's part in the consent cascade over fakes (tables in memory, consent in memory):
the projection of relationships and per-recipient sharing that reads are decided on, erasure
as the DPO decided it, and a safe contact replaced on the organisation's own referrals only;
through the worker's consent-event handlers where an event carries it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, select

from services.screening.adapters.tables import (
    enquiries_due,
    marac_referrals,
    partner_sharing,
    referral_locks,
    relationships,
    risk_assessments,
    safe_contacts,
    screenings,
)
from services.screening.service_layer import cascade, risk
from services.screening.service_layer import screenings as screening_cases
from services.screening.service_layer.permissions import readable_orgs
from shared.db import Database
from shared.events.consent import ErasureRequested, SafeContactUpdated
from shared.events.envelope import CloudEvent
from tests.support.fakes_screening import (
    HIGH,
    LOW,
    SAFE,
    ScreeningFakes,
    caller,
    dash,
    enquiry_due,
    external,
    screening_asked,
)
from tests.support.screening import (
    CONSENT_SOURCE,
    apply_consent_events,
    relationship,
    sharing_granted,
    sharing_withdrawn,
)

NEW_SAFE = {"phone": "07700 900456", "times": "evenings", "may_leave_message": True,
            "safe_to_call": None, "instructions": None}


@pytest.fixture
def fakes() -> ScreeningFakes:
    return ScreeningFakes()


def rows(database: Database, table: Table) -> list[Any]:
    with database.read() as session:
        return list(session.execute(select(table)))


def sharing(fakes: ScreeningFakes) -> set[tuple[str, str, str]]:
    return {(r.holder_org, r.recipient_org, r.state) for r in rows(fakes.database,
                                                                   partner_sharing)}


def readable(fakes: ScreeningFakes, subject_id: str, org: str) -> frozenset[str]:
    with fakes.database.unit_of_work() as uow:
        return readable_orgs(uow, caller(org, "partner-staff" if org != "trust" else
                                         "clinician"), subject_id,
                             frozenset({"trust", "partner-a", "partner-b"}))


# --- the projection --------------------------------------------------------------------------

def test_the_first_basis_of_a_relationship_is_kept(fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    apply_consent_events(fakes.database, relationship(subject_id, "partner-a", "referral"),
                         relationship(subject_id, "partner-a", "registered"))

    assert {(r.org, r.basis) for r in rows(fakes.database, relationships)} \
        == {("trust", "registered"), ("partner-a", "referral")}


def test_a_grant_adds_recipients_and_a_withdrawal_removes_those_it_names(
        fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    apply_consent_events(fakes.database, relationship(subject_id, "partner-a"),
                         sharing_granted(subject_id, "trust", ["partner-a", "trust"]),
                         sharing_granted(subject_id, "trust", ["partner-b"], "con_" + "3" * 32))
    assert sharing(fakes) == {("trust", "partner-a", "granted"),
                              ("trust", "partner-b", "granted")}
    assert readable(fakes, subject_id, "partner-a") == {"trust", "partner-a"}

    apply_consent_events(fakes.database, sharing_withdrawn(subject_id, "trust", ["partner-a"]))

    assert sharing(fakes) == {("trust", "partner-a", "withdrawn"),
                              ("trust", "partner-b", "granted")}
    assert readable(fakes, subject_id, "partner-a") == {"partner-a"}


def test_a_withdrawal_naming_nobody_leaves_the_holder_sharing_with_nobody(
        fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    with fakes.database.unit_of_work() as uow:
        cascade.sharing_granted(uow, subject_id, "trust", ["partner-a", "partner-b"])
        cascade.sharing_withdrawn(uow, subject_id, "trust", [])

    assert sharing(fakes) == {("trust", "partner-a", "withdrawn"),
                              ("trust", "partner-b", "withdrawn")}


def test_sharing_without_a_relationship_opens_nothing(fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    fakes.share(subject_id, "trust", "partner-a")

    assert readable(fakes, subject_id, "partner-a") == {"partner-a"}


# --- erase -----------------------------------------------------------------------------------

def everything(fakes: ScreeningFakes) -> tuple[str, str, str]:
    """A person with a screening, an enquiry due, an assessment with no referral and one with
    a referral (and safe contact), a relationship and sharing; returns the subject and the two
    assessments' ids (without, with a referral)."""
    subject_id = fakes.person()
    fakes.share(subject_id, "trust", "partner-a")
    screening_cases.record_screening(caller(), screening_asked(nhs_number=None,
                                                               subject_id=subject_id),
                                     **fakes.recording())
    screening_cases.record_enquiry_due(
        caller(), enquiry_due(nhs_number=None, subject_id=subject_id),
        database=fakes.database, registry=fakes.consent, keys=fakes.keys)
    assessments = [risk.record_risk_assessment(
        caller(), dash(subject_id, answers, safe_contact=SAFE), cipher=fakes.cipher,
        escalation_incidents=3, **fakes.safeguarding())["id"] for answers in (LOW, HIGH)]
    return subject_id, assessments[0], assessments[1]


def test_erasure_removes_identifiers_and_keeps_the_safeguarding_records_flagged(
        fakes: ScreeningFakes) -> None:
    subject_id, plain, behind_referral = everything(fakes)

    with fakes.database.unit_of_work() as uow:
        kept = cascade.erase(uow, subject_id)

    assert kept == 2  # the referral and the assessment behind it
    [screening] = rows(fakes.database, screenings)
    assert (screening.subject_id, screening.notes_sealed, screening.hark_score) == (None, None, 1)
    assert [r.subject_id for r in rows(fakes.database, enquiries_due)] == [None]
    assessments = {r.assessment_id: r for r in rows(fakes.database, risk_assessments)}
    assert (assessments[plain].subject_id, assessments[plain].record_sealed,
            assessments[plain].safeguarding_pseudonym) == (None, None, None)
    assert assessments[behind_referral].subject_id is None
    assert assessments[behind_referral].record_sealed is not None
    [referral] = rows(fakes.database, marac_referrals)
    assert referral.subject_id == subject_id and referral.flagged_for_dpo_at is not None
    for table in (relationships, partner_sharing, safe_contacts, referral_locks):
        assert rows(fakes.database, table) == [], table.name


def test_an_organisations_erasure_keeps_what_the_dpo_retained_and_others_records(
        fakes: ScreeningFakes) -> None:
    subject_id, *_ = everything(fakes)
    fakes.relate(subject_id, "partner-a")
    decision = ErasureRequested(withdrawal_id="wd_1", purposes=("partner-sharing",),
                                method="verbal", org="trust", scope="organisation",
                                retained=("screenings",))

    with fakes.database.unit_of_work() as uow:
        kept = cascade.erase(uow, subject_id, decision)

    assert kept == 3  # the screening retained, the referral and its assessment
    assert [r.subject_id for r in rows(fakes.database, screenings)] == [subject_id]
    assert [r.org for r in rows(fakes.database, relationships)] == ["partner-a"]
    assert rows(fakes.database, partner_sharing) == []
    assert len(rows(fakes.database, referral_locks)) == 1  # the person is still held elsewhere


def test_erasing_someone_with_no_records_keeps_nothing(fakes: ScreeningFakes) -> None:
    with fakes.database.unit_of_work() as uow:
        assert cascade.erase(uow, "sub_" + "e" * 32) == 0


# --- safe_contact_updated --------------------------------------------------------------------

def contact_updated(fakes: ScreeningFakes, subject_id: str, org: str) -> CloudEvent:
    sealed = fakes.cipher.seal(subject_id, SafeContactUpdated.event_type,
                               {"safe_contact": NEW_SAFE})
    return CloudEvent.wrap(SafeContactUpdated(org=org, personal=sealed),
                           source=CONSENT_SOURCE, subject=subject_id)


def referral_contacts(fakes: ScreeningFakes) -> dict[str, Any]:
    return {r.org: fakes.records.open(risk.referral_context(r.referral_id),
                                      r.record_sealed)["safe_contact"]
            for r in rows(fakes.database, marac_referrals)}


def test_a_new_safe_contact_reaches_only_that_organisations_referrals(
        fakes: ScreeningFakes) -> None:
    subject_id, *_ = everything(fakes)
    with fakes.database.unit_of_work() as uow:
        risk.store_external_referral(uow, fakes.records, external(subject_id),
                                     risk.Person(subject_id, None), risk.Raised("partner-a", "p"))

    apply_consent_events(fakes.database, contact_updated(fakes, subject_id, "partner-a"),
                         cipher=fakes.cipher, records=fakes.records)

    contacts = referral_contacts(fakes)
    assert contacts["partner-a"] == NEW_SAFE
    assert contacts["trust"] == SAFE.model_dump()


def test_a_safe_contact_update_for_an_erased_person_changes_nothing(
        fakes: ScreeningFakes) -> None:
    subject_id, *_ = everything(fakes)
    event = contact_updated(fakes, subject_id, "trust")
    fakes.consent.shred(subject_id)
    fakes.keys.evict(subject_id)

    with fakes.database.unit_of_work() as uow:
        cascade.safe_contact_updated(uow, fakes.cipher, fakes.records, subject_id,
                                     SafeContactUpdated.model_validate(event.data))

    assert referral_contacts(fakes) == {"trust": SAFE.model_dump()}

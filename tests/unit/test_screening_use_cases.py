"""Screening's routine-enquiry and subject use cases over fakes (tables in memory, consent in
memory): what each stores and publishes, who it refuses before anyone is registered, what
each read shows and audits."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, select

from services.screening.adapters.tables import enquiries_due, screenings
from services.screening.service_layer import risk, subjects
from services.screening.service_layer.commands import RecordTeamTraining
from services.screening.service_layer.screenings import (
    RESULTS_READ,
    RESULTS_REFUSED,
    ScreeningNotFound,
    open_enquiries_due,
    read_screening,
    record_enquiry_due,
    record_screening,
    record_team_training,
    store_screening,
    team_training_of,
)
from shared.auth import NotPermitted, Principal
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.db import Database
from shared.events.screening import EnquiryAcceptability, EnquiryNotAsked, ScreeningCompleted
from tests.support.fakes import consent_down, published
from tests.support.fakes_screening import (
    HIGH,
    SAFE,
    ScreeningFakes,
    caller,
    dash,
    enquiry_due,
    screening_asked,
)

UNKNOWN = "sub_" + "f" * 32


@pytest.fixture
def fakes() -> ScreeningFakes:
    return ScreeningFakes()


def rows(database: Database, table: Table) -> list[dict[str, object]]:
    with database.read() as session:
        return [dict(row._mapping) for row in session.execute(select(table))]


def screened(fakes: ScreeningFakes, org: str = "trust") -> dict[str, object]:
    """A screening the Trust's clinician recorded for the person (registered by ``org``)."""
    subject_id = fakes.person(org=org)
    return record_screening(caller(), screening_asked(nhs_number=None, subject_id=subject_id),
                            **fakes.recording())


# --- record_screening ------------------------------------------------------------------------

def test_a_screening_is_scored_stored_sealed_and_published(fakes: ScreeningFakes) -> None:
    shown = record_screening(caller(), screening_asked(), **fakes.recording())

    assert (shown["hark_score"], shown["current_abuse"], shown["disclosed"]) == (1, True, True)
    assert shown["notes"] == "lives with her sister" and shown["flags"] == []
    [row] = rows(fakes.database, screenings)
    assert row["subject_id"] == shown["subject_id"] and row["recorded_by_org"] == "trust"
    assert b"sister" not in row["notes_sealed"]  # type: ignore[operator]
    [event] = published(fakes.database)
    assert (event.type, event.subject) == ("screening-completed", shown["subject_id"])
    payload = ScreeningCompleted.model_validate(event.data)
    assert (payload.org, payload.hark_score, payload.disclosed) == ("trust", 1, True)
    assert payload.personal is not None and "sister" not in event.to_bytes().decode()


def test_a_declined_enquiry_publishes_its_outcome_without_findings(
        fakes: ScreeningFakes) -> None:
    shown = record_screening(caller(), screening_asked(
        outcome="declined", hark=None, past_abuse=None, notes=None), **fakes.recording())

    assert shown["hark"] is None and shown["hark_score"] is None
    [event] = published(fakes.database)
    assert event.type == "screening-declined" and event.data["org"] == "trust"


@pytest.mark.parametrize("who", [caller("trust", "safeguarding-lead"),
                                 caller("partner-a", "partner-staff")])
def test_a_caller_who_may_not_record_registers_nobody(fakes: ScreeningFakes,
                                                      who: Principal) -> None:
    with pytest.raises(NotPermitted):
        record_screening(who, screening_asked(org="trust"), **fakes.recording())

    assert fakes.consent.registered == []
    assert rows(fakes.database, screenings) == [] and published(fakes.database) == []


def test_a_clinician_records_only_for_their_own_organisation(fakes: ScreeningFakes) -> None:
    with pytest.raises(NotPermitted, match="only for your own organisation"):
        record_screening(caller(), screening_asked(org="partner-a"), **fakes.recording())
    assert fakes.consent.registered == []


def test_nothing_is_recorded_about_an_erased_or_unknown_person(fakes: ScreeningFakes) -> None:
    erased = fakes.person()
    fakes.consent.shred(erased)

    with pytest.raises(KeyShredded):
        record_screening(caller(), screening_asked(nhs_number=None, subject_id=erased),
                         **fakes.recording())
    with pytest.raises(UnknownSubject):
        record_screening(caller(), screening_asked(nhs_number=None, subject_id=UNKNOWN),
                         **fakes.recording())
    assert rows(fakes.database, screenings) == [] and published(fakes.database) == []


def test_nothing_is_recorded_while_consent_is_down(fakes: ScreeningFakes) -> None:
    with consent_down(fakes.consent), pytest.raises(KeyStoreUnavailable):
        record_screening(caller(), screening_asked(), **fakes.recording())
    assert rows(fakes.database, screenings) == [] and published(fakes.database) == []


def test_a_screening_adopted_from_the_trusts_system_is_recorded_by_the_trust(
        fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()
    with fakes.database.unit_of_work() as uow:
        screening_id = store_screening(uow, fakes.cipher, screening_asked(notes=None),
                                       subject_id, "trust")

    [row] = rows(fakes.database, screenings)
    assert (row["screening_id"], row["recorded_by_org"], row["notes_sealed"]) \
        == (screening_id, "trust", None)
    assert [e.data["screening_id"] for e in published(fakes.database)] == [screening_id]


def test_an_enquiry_not_asked_publishes_its_coded_reason_and_no_findings(
        fakes: ScreeningFakes) -> None:
    shown = record_screening(caller(), screening_asked(
        outcome="not-asked", not_asked_reason="no-private-space", hark=None, past_abuse=None,
        private=False, notes=None), **fakes.recording())

    assert (shown["outcome"], shown["not_asked_reason"]) == ("not-asked", "no-private-space")
    assert shown["hark"] is None and shown["acceptability"] is None
    [row] = rows(fakes.database, screenings)
    assert row["not_asked_reason"] == "no-private-space"
    [event] = published(fakes.database)
    payload = EnquiryNotAsked.model_validate(event.data)
    assert (event.type, payload.reason, payload.team) == (
        "enquiry-not-asked", "no-private-space", "north-cmht")


@pytest.mark.parametrize("outcome", ["asked", "declined"])
def test_the_persons_view_of_being_asked_is_stored_and_published_beside_the_outcome(
        fakes: ScreeningFakes, outcome: str) -> None:
    change: dict[str, Any] = {"acceptability": {"acceptable": "unsure", "comfort": 2}}
    if outcome == "declined":
        change.update(outcome="declined", hark=None, past_abuse=None)
    shown = record_screening(caller(), screening_asked(**change), **fakes.recording())

    assert shown["acceptability"] == {"acceptable": "unsure", "comfort": 2}
    [row] = rows(fakes.database, screenings)
    assert (row["acceptable"], row["comfort"]) == ("unsure", 2)
    [answer] = published(fakes.database, "enquiry-acceptability-recorded")
    payload = EnquiryAcceptability.model_validate(answer.data)
    assert answer.subject == shown["subject_id"]
    assert (payload.screening_id, payload.acceptable, payload.comfort) == (
        shown["id"], "unsure", 2)
    assert len(published(fakes.database)) == 2  # the outcome, then the answer


# --- team training ---------------------------------------------------------------------------

def training(org: str = "trust", **change: object) -> RecordTeamTraining:
    return RecordTeamTraining.model_validate({"org": org, "team": "north-cmht",
                                              "as_of": "2026-11-01", "staff": 12,
                                              "trained": 9, **change})


@pytest.mark.parametrize("role", ["clinician", "safeguarding-lead"])
def test_staff_training_is_stored_and_published_about_nobody(fakes: ScreeningFakes,
                                                             role: str) -> None:
    shown = record_team_training(caller("trust", role), training(), database=fakes.database)

    assert (shown["team"], shown["staff"], shown["trained"]) == ("north-cmht", 12, 9)
    [event] = published(fakes.database, "team-training-recorded")
    assert event.subject is None and event.data["as_of"] == "2026-11-01"
    assert fakes.consent.registered == []


def test_a_teams_newest_training_record_is_the_one_listed(fakes: ScreeningFakes) -> None:
    record_team_training(caller(), training(as_of="2026-10-01", trained=3),
                         database=fakes.database)
    record_team_training(caller(), training(as_of="2026-11-01", trained=9),
                         database=fakes.database)
    record_team_training(caller(), training(team="south-cmht", trained=1),
                         database=fakes.database)

    listed = {r["team"]: r["trained"] for r in team_training_of(caller(),
                                                                database=fakes.database)}
    assert listed == {"north-cmht": 9, "south-cmht": 1}


@pytest.mark.parametrize("who", [caller("trust", "dpo"), caller("partner-a", "partner-staff")])
def test_staff_training_is_recorded_by_the_teams_own_clinicians_and_lead(
        fakes: ScreeningFakes, who: Principal) -> None:
    with pytest.raises(NotPermitted):
        record_team_training(who, training(), database=fakes.database)
    with pytest.raises(NotPermitted):
        record_team_training(caller(), training(org="partner-a"), database=fakes.database)
    assert published(fakes.database) == []


# --- record_enquiry_due ----------------------------------------------------------------------

def test_an_enquiry_due_is_stored_and_published(fakes: ScreeningFakes) -> None:
    shown = record_enquiry_due(caller(), enquiry_due(), database=fakes.database,
                               registry=fakes.consent, keys=fakes.keys)

    assert (shown["org"], shown["team"], shown["due_on"]) == ("trust", "north-cmht",
                                                               "2026-11-19")
    [row] = rows(fakes.database, enquiries_due)
    assert (row["enquiry_id"], row["subject_id"]) == (shown["id"], shown["subject_id"])
    [event] = published(fakes.database, "enquiry-due")
    assert event.subject == shown["subject_id"]
    assert (event.data["org"], event.data["due_on"]) == ("trust", "2026-11-19")


def test_an_enquiry_due_for_another_organisation_is_refused(fakes: ScreeningFakes) -> None:
    with pytest.raises(NotPermitted):
        record_enquiry_due(caller(), enquiry_due(org="partner-a"), database=fakes.database,
                           registry=fakes.consent, keys=fakes.keys)
    assert fakes.consent.registered == [] and rows(fakes.database, enquiries_due) == []


def test_a_clinicians_open_enquiries_due_are_those_no_enquiry_answered_since(
        fakes: ScreeningFakes) -> None:
    asked = record_enquiry_due(caller(), enquiry_due(due_on="2026-11-10"),
                               database=fakes.database, registry=fakes.consent, keys=fakes.keys)
    record_screening(caller(), screening_asked(nhs_number=None,
                                               subject_id=asked["subject_id"]),
                     **fakes.recording())  # asked on 2026-11-20, after it fell due
    waiting = record_enquiry_due(caller(), enquiry_due(nhs_number="9434765870",
                                                       due_on="2026-11-12"),
                                 database=fakes.database, registry=fakes.consent,
                                 keys=fakes.keys)
    elsewhere = record_enquiry_due(caller(), enquiry_due(nhs_number="9434765889",
                                                         team="south-cmht",
                                                         due_on="2026-11-01"),
                                   database=fakes.database, registry=fakes.consent,
                                   keys=fakes.keys)

    listed = open_enquiries_due(caller(), None, database=fakes.database, audit=fakes.consent)
    north = open_enquiries_due(caller(), "north-cmht", database=fakes.database,
                               audit=fakes.consent)

    assert [e["id"] for e in listed] == [elsewhere["id"], waiting["id"]]  # oldest first
    assert [e["id"] for e in north] == [waiting["id"]]
    assert [(a.action, a.subject_id, a.detail) for a in fakes.consent.audited[-2:]] == [
        ("screening-enquiries-due-listed", None, {"listed": 2}),
        ("screening-enquiries-due-listed", None, {"listed": 1})]
    with pytest.raises(NotPermitted):
        open_enquiries_due(caller("trust", "dpo"), None, database=fakes.database,
                           audit=fakes.consent)


# --- read_screening --------------------------------------------------------------------------

def read(fakes: ScreeningFakes, who: Principal, screening_id: object) -> dict[str, object]:
    return read_screening(who, str(screening_id), database=fakes.database,
                          cipher=fakes.cipher, audit=fakes.consent)


def test_the_holders_staff_read_a_screening_audited(fakes: ScreeningFakes) -> None:
    recorded = screened(fakes)

    shown = read(fakes, caller("trust", "safeguarding-lead"), recorded["id"])

    assert shown["notes"] == "lives with her sister"
    assert fakes.audited(RESULTS_READ) == [(recorded["subject_id"], "trust")]


def test_another_organisation_reads_only_with_a_relationship_and_sharing(
        fakes: ScreeningFakes) -> None:
    recorded = screened(fakes)
    subject_id = str(recorded["subject_id"])
    partner = caller("partner-a", "partner-staff")

    fakes.relate(subject_id, "partner-a")
    with pytest.raises(ScreeningNotFound, match="no screening with this id"):
        read(fakes, partner, recorded["id"])
    assert fakes.audited(RESULTS_REFUSED) == [(None, "partner-a")]  # names nobody

    fakes.share(subject_id, "trust", "partner-a")
    assert read(fakes, partner, recorded["id"])["notes"] == "lives with her sister"
    assert fakes.audited(RESULTS_READ) == [(subject_id, "partner-a")]


def test_an_unknown_screening_is_the_same_answer_as_a_hidden_one(
        fakes: ScreeningFakes) -> None:
    with pytest.raises(ScreeningNotFound):
        read(fakes, caller(), "scr_unknown")
    assert fakes.audited(RESULTS_REFUSED) == [(None, "trust")]


def test_a_role_that_reads_no_results_is_refused_and_audited(fakes: ScreeningFakes) -> None:
    recorded = screened(fakes)

    with pytest.raises(NotPermitted):
        read(fakes, caller("trust", "dpo"), recorded["id"])
    assert fakes.audited(RESULTS_REFUSED) == [(None, "trust")]


# --- subjects.results ------------------------------------------------------------------------

def assessed(fakes: ScreeningFakes, subject_id: str) -> dict[str, object]:
    return risk.record_risk_assessment(caller(), dash(subject_id, HIGH, safe_contact=SAFE),
                                       cipher=fakes.cipher, escalation_incidents=3,
                                       **fakes.safeguarding())


def test_results_show_what_the_caller_may_see_and_the_read_is_audited_alike(
        fakes: ScreeningFakes) -> None:
    subject_id = str(screened(fakes)["subject_id"])
    assessed(fakes, subject_id)
    fakes.relate(subject_id, "partner-a")

    own = subjects.results(caller(), subject_id, **fakes.reading())
    partner = subjects.results(caller("partner-a", "partner-staff"), subject_id,
                               **fakes.reading())

    assert [s["notes"] for s in own["screenings"]] == ["lives with her sister"]
    assert [a["answers"] for a in own["risk_assessments"]] == [HIGH]
    assert partner == {"subject_id": subject_id, "screenings": [], "risk_assessments": []}
    assert fakes.audited(RESULTS_READ) == [(subject_id, "trust"), (subject_id, "partner-a")]


def test_results_refuse_a_role_that_reads_none_naming_the_person(
        fakes: ScreeningFakes) -> None:
    subject_id = fakes.person()

    with pytest.raises(NotPermitted):
        subjects.results(caller("trust", "ops-viewer"), subject_id, **fakes.reading())
    assert fakes.audited(RESULTS_REFUSED) == [(subject_id, "trust")]


# --- subjects.export -------------------------------------------------------------------------

def test_the_dpo_exports_their_organisations_records_opened(fakes: ScreeningFakes) -> None:
    subject_id = str(screened(fakes)["subject_id"])
    assessed(fakes, subject_id)

    exported = subjects.export(caller("trust", "dpo"), subject_id, **fakes.reading())

    assert (exported["subject_id"], exported["org"]) == (subject_id, "trust")
    assert [s["notes"] for s in exported["screenings"]] == ["lives with her sister"]
    assert [a["answers"] for a in exported["risk_assessments"]] == [HIGH]
    [referral] = exported["marac_referrals"]
    assert referral["safe_contact"] == SAFE.model_dump()
    assert fakes.audited(subjects.EXPORTED) == [(subject_id, "trust")]


def test_without_a_relationship_nothing_is_held_for_the_dpo(fakes: ScreeningFakes) -> None:
    subject_id = str(screened(fakes)["subject_id"])

    with pytest.raises(subjects.NothingHeld, match="nothing held about this person"):
        subjects.export(caller("partner-a", "dpo"), subject_id, **fakes.reading())
    assert fakes.audited(subjects.EXPORT_REFUSED) == [(subject_id, "partner-a")]
    assert fakes.audited(subjects.EXPORTED) == []


def test_only_the_dpo_exports(fakes: ScreeningFakes) -> None:
    subject_id = str(screened(fakes)["subject_id"])

    with pytest.raises(NotPermitted):
        subjects.export(caller(), subject_id, **fakes.reading())
    assert fakes.audited(subjects.EXPORT_REFUSED) == [(subject_id, "trust")]


"""Consent's erasure and subject access request use cases (service_layer/erasure.py and
access_requests.py) with their collaborators faked: filed with a withdrawal, decided once by
the holding organisation's DPO, erased to the right scope, tracked to completion; access
requests filed, read, completed and exported. Every read is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.consent.domain import requests
from services.consent.domain.requests import AccessRequestStatus, ErasureStatus
from services.consent.service_layer import access_requests, consents, erasure
from shared.auth import Principal
from shared.db import utcnow
from shared.events.cascade import ErasureApplied
from shared.events.envelope import CloudEvent
from tests.support.fakes import published
from tests.support.fakes_consent import (
    NHS_NUMBER,
    ConsentFakes,
    actions,
    audited,
    consent_fakes,
    person,
    registered,
    rows,
)

DPO = person("trust", "dpo", subject="dpo-1")
REASON = "kept for the coroner's inquest"


@pytest.fixture
def fakes() -> ConsentFakes:
    return consent_fakes()


def file_erasure(fakes: ConsentFakes, subject_id: str, org: str = "trust"
                 ) -> erasure.Filed:
    with fakes.database.unit_of_work() as uow:
        return erasure.request_erasure(uow, subject_id, ["all"], "written", person(org), 60.0,
                                       trail=fakes.trail)


def decide(fakes: ConsentFakes, request_id: str, decision: str = "approve",
           reason: str | None = None, retained: tuple[str, ...] | None = None,
           dpo: Principal = DPO) -> erasure.Decided:
    with fakes.database.unit_of_work() as uow:
        return erasure.decide(uow, fakes.keys, fakes.records, request_id,
                              decision, reason, retained, dpo,  # type: ignore[arg-type]
                              trail=fakes.trail)


# --- erasure requests -------------------------------------------------------------------------

def test_filing_withdraws_everything_at_once_and_awaits_the_dpo(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)

    filed = file_erasure(fakes, subject_id)

    [withdrawn] = published(fakes.database, "consent-withdrawn")
    assert withdrawn.data["withdrawal_id"] == filed.withdrawal_id
    assert withdrawn.data["erasure"] is True
    [row] = rows(fakes.database, "erasure_requests")
    assert (row.erasure_request_id, row.status) == (filed.erasure_request_id,
                                                    "awaiting-dpo-decision")
    assert row.due_at == requests.due_at(row.requested_at)
    assert published(fakes.database, "erasure-requested") == []
    assert actions(fakes.database)[-2:] == ["consent-withdrawn", "erasure-requested"]


def test_approval_of_a_person_nobody_else_holds_erases_them_everywhere(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    filed = file_erasure(fakes, subject_id)
    key_id = fakes.keys.data_key(subject_id).key_id

    decided = decide(fakes, filed.erasure_request_id)

    assert decided.view["status"] == "in-progress" and decided.view["scope"] == "subject"
    assert set(decided.scrub) == {"data_keys", "subjects", "safe_contacts"}
    assert subject_id in fakes.keys.shredded
    [row] = rows(fakes.database, "subjects")
    assert row.erased_at is not None and row.nhs_lookup is None
    [requested] = published(fakes.database, "erasure-requested")
    assert (requested.data["scope"], requested.data["erasure_request_id"]) == (
        "subject", filed.erasure_request_id)
    [shredded] = published(fakes.database, "subject-key-shredded")
    assert shredded.data == {"key_id": key_id, "withdrawal_id": filed.withdrawal_id}
    [applied] = published(fakes.database, "erasure-applied")
    assert applied.data["service"] == "consent" and applied.source == "/peerlink/consent"
    assert actions(fakes.database)[-2:] == ["erasure-decided", "subject-erased"]


def test_approval_of_a_person_another_organisation_holds_erases_one_relationship(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    registered(fakes, person("partner-a", "partner-staff"))
    filed = file_erasure(fakes, subject_id)

    decided = decide(fakes, filed.erasure_request_id)

    assert decided.view["scope"] == "organisation"
    assert subject_id not in fakes.keys.shredded
    assert [r.org for r in rows(fakes.database, "subject_orgs")] == ["partner-a"]
    assert rows(fakes.database, "subjects")[0].erased_at is None
    assert published(fakes.database, "subject-key-shredded") == []


def test_a_refusal_changes_nothing_but_the_request_and_is_made_once(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    filed = file_erasure(fakes, subject_id)

    refused = decide(fakes, filed.erasure_request_id, "refuse", REASON)

    assert (refused.view["status"], refused.view["reason"], refused.scrub) == (
        "refused", REASON, ())
    assert REASON.encode() not in rows(fakes.database, "erasure_requests")[0] \
        .decision_reason_sealed
    assert published(fakes.database, "erasure-requested") == []
    with pytest.raises(requests.AlreadyDecided):
        decide(fakes, filed.erasure_request_id)
    with pytest.raises(erasure.ErasureRequestNotFound):
        decide(fakes, filed.erasure_request_id, dpo=person("partner-a", "dpo"))


def test_an_approval_except_retained_records_needs_a_reason(fakes: ConsentFakes) -> None:
    filed = file_erasure(fakes, registered(fakes))
    with pytest.raises(requests.RequestRuleBroken):
        decide(fakes, filed.erasure_request_id, "approve-except-retained",
               retained=("screenings",))
    kept = decide(fakes, filed.erasure_request_id, "approve-except-retained", REASON,
                  ("screenings",))
    assert kept.view["retained"] == ["screenings"]
    [requested] = published(fakes.database, "erasure-requested")
    assert requested.data["retained"] == ["screenings"]


def test_the_deadline_is_extended_once_with_a_reason(fakes: ConsentFakes) -> None:
    filed = file_erasure(fakes, registered(fakes))
    due = rows(fakes.database, "erasure_requests")[0].due_at

    with fakes.database.unit_of_work() as uow:
        view = erasure.extend(uow, fakes.records, filed.erasure_request_id, 2, REASON, DPO,
                              trail=fakes.trail)

    assert view["extension"] == {"months": 2, "reason": REASON}
    assert rows(fakes.database, "erasure_requests")[0].due_at == requests.add_months(due, 2)
    assert audited(fakes.database)[-1][3] == {"erasure_request_id": filed.erasure_request_id,
                                              "months": 2}
    with pytest.raises(requests.AlreadyExtended), fakes.database.unit_of_work() as uow:
        erasure.extend(uow, fakes.records, filed.erasure_request_id, 1, REASON, DPO,
                       trail=fakes.trail)


def test_the_request_completes_when_every_service_has_erased(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    filed = file_erasure(fakes, subject_id)
    decide(fakes, filed.erasure_request_id)
    completed = []
    for name in ("screening", "mentoring", "reporting"):
        ack = ErasureApplied(service=name, withdrawal_id=filed.withdrawal_id,
                             purposes=("peer-mentoring",), applied_at=utcnow(),
                             retained_records=0)
        with fakes.database.unit_of_work() as uow:
            consents.acknowledge(uow, CloudEvent.wrap(ack, source=f"/peerlink/{name}",
                                                      subject=subject_id), ack)
            completed.append(erasure.acknowledged(uow, filed.withdrawal_id))

    assert completed == [False, False, True]
    [row] = rows(fakes.database, "erasure_requests")
    assert row.status == "complete" and row.completed_at is not None


def test_the_dpo_reads_and_lists_requests_and_each_read_is_audited(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    filed = file_erasure(fakes, subject_id)

    with fakes.database.unit_of_work() as uow:
        listed = erasure.listed(uow, fakes.records, DPO, ErasureStatus.AWAITING,
                                trail=fakes.trail)
    with fakes.database.unit_of_work() as uow:
        read = erasure.read(uow, fakes.records, filed.erasure_request_id, DPO,
                            trail=fakes.trail)
    with fakes.database.read() as session:
        assert erasure.count_awaiting(session) == 1
        assert erasure.count_overdue(session, utcnow() + timedelta(days=40)) == 1
        [about] = erasure.about(session, fakes.records, subject_id, "trust")
        with pytest.raises(erasure.ErasureRequestNotFound):
            erasure.view(session, fakes.records, filed.erasure_request_id, "partner-a")

    assert [r["erasure_request_id"] for r in listed] == [filed.erasure_request_id]
    assert read == listed[0] and "scope" in read and "scope" not in about
    assert audited(fakes.database)[-2:] == [
        ("dpo-1", "erasure-requests-listed", None,
         {"status": "awaiting-dpo-decision", "listed": 1}),
        ("dpo-1", "erasure-request-read", subject_id,
         {"erasure_request_id": filed.erasure_request_id})]


# --- subject access requests ------------------------------------------------------------------

def file_access(fakes: ConsentFakes, subject_id: str) -> dict[str, object]:
    with fakes.database.unit_of_work() as uow:
        return access_requests.file(uow, subject_id, person(), trail=fakes.trail)


def test_an_access_request_is_due_in_a_month_and_completed_once(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    filed = file_access(fakes, subject_id)
    request_id = str(filed["request_id"])

    with fakes.database.unit_of_work() as uow:
        done = access_requests.complete(uow, request_id, DPO, trail=fakes.trail)

    assert (filed["status"], done["status"]) == ("open", "complete")
    assert done["completed_at"] is not None
    assert actions(fakes.database)[-2:] == ["subject-access-requested",
                                            "subject-access-completed"]
    with pytest.raises(access_requests.AccessRequestComplete), \
            fakes.database.unit_of_work() as uow:
        access_requests.complete(uow, request_id, DPO, trail=fakes.trail)
    with pytest.raises(access_requests.AccessRequestNotFound), \
            fakes.database.unit_of_work() as uow:
        access_requests.complete(uow, request_id, person("partner-a", "dpo"),
                                 trail=fakes.trail)


def test_an_access_request_about_an_erased_person_is_refused(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    decide(fakes, file_erasure(fakes, subject_id).erasure_request_id)
    with pytest.raises(consents.SubjectErased):
        file_access(fakes, subject_id)
    assert rows(fakes.database, "subject_access_requests") == []


def test_the_dpo_reads_and_lists_access_requests_audited(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    request_id = str(file_access(fakes, subject_id)["request_id"])

    with fakes.database.unit_of_work() as uow:
        listed = access_requests.listed(uow, DPO, AccessRequestStatus.OPEN, trail=fakes.trail)
    with fakes.database.unit_of_work() as uow:
        read = access_requests.read(uow, request_id, DPO, trail=fakes.trail)
    with fakes.database.read() as session:
        assert access_requests.count_open(session) == 1
        assert access_requests.count_overdue(session, utcnow() + timedelta(days=40)) == 1
        assert access_requests.count_overdue(session, utcnow()) == 0

    assert listed == [read] and read["request_id"] == request_id
    assert audited(fakes.database)[-2:] == [
        ("dpo-1", "subject-access-requests-listed", None, {"status": "open", "listed": 1}),
        ("dpo-1", "subject-access-request-read", subject_id, {"request_id": request_id})]


def test_the_export_opens_what_consent_holds_for_the_organisation_and_shows_itself(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    file_access(fakes, subject_id)

    exported = access_requests.export_subject(fakes.database, fakes.keys, fakes.records,
                                              subject_id, DPO, trail=fakes.trail)

    assert (exported["nhs_number"], exported["org"]) == (NHS_NUMBER, "trust")
    assert len(exported["subject_access_requests"]) == 1
    assert exported["audit"][-1]["action"] == "subject-exported"
    with pytest.raises(consents.SubjectNotFound):
        access_requests.export_subject(fakes.database, fakes.keys, fakes.records, subject_id,
                                       person("partner-a", "dpo"), trail=fakes.trail)

"""Erasure and subject access requests on the consent API: filed with an immediate
withdrawal, decided once by the holding organisation's DPO, tracked to completion, and nothing
of an erased person left on disk. SQLite and PostgreSQL unless a test says otherwise."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.requests import add_months
from services.consent.entrypoints.worker import request_gauges
from services.consent.service_layer import consents, erasure
from services.consent.service_layer.subjects import others_hold_independently
from shared.db import utcnow
from shared.events.cascade import ErasureApplied, WithdrawalApplied
from shared.events.envelope import CloudEvent
from tests.support.consent import consent_on, running_consent
from tests.support.services import approve_erasure, bearer, settings_for

NHS_NUMBER = "9434765919"
REASON = "Kept for the coroner's inquest into the death of a named relative"
SNAPSHOT = ("subjects", "data_keys", "subject_orgs", "consent_changes", "withdrawals",
            "withdrawal_acks", "outbox")


@dataclass
class Requests:
    """The consent service and its API for one test database."""

    service: ConsentAdapters
    client: TestClient

    def headers(self, org: str, *roles: str) -> dict[str, str]:
        return bearer(self.service.settings, org, *roles)

    def subject(self, nhs_number: str = NHS_NUMBER, org: str = "trust",
                role: str = "clinician") -> str:
        response = self.client.post("/v1/subjects", json={"nhs_number": nhs_number},
                                    headers=self.headers(org, role))
        assert response.status_code == 201, response.text
        return str(response.json()["subject_id"])

    def file(self, subject_id: str, org: str = "trust", role: str = "clinician"
             ) -> dict[str, Any]:
        response = self.client.post("/v1/erasure-requests", json={
            "subject_id": subject_id, "method": "written", "recorded_by": "Nurse Adebayo"},
            headers=self.headers(org, role))
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def request(self, request_id: str, org: str = "trust") -> httpx.Response:
        response: httpx.Response = self.client.get(f"/v1/erasure-requests/{request_id}",
                                                   headers=self.headers(org, "dpo"))
        return response

    def decide(self, request_id: str, body: dict[str, Any], org: str = "trust"
               ) -> httpx.Response:
        response: httpx.Response = self.client.post(
            f"/v1/erasure-requests/{request_id}/decision", json=body,
            headers=self.headers(org, "dpo"))
        return response

    def table(self, name: str) -> Any:
        return self.service.database.metadata.tables[name]

    def rows(self, name: str) -> list[dict[str, Any]]:
        table = self.table(name)
        with self.service.database.read() as session:
            return [dict(r._mapping) for r in session.execute(
                select(table).order_by(*table.primary_key.columns))]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {name: self.rows(name) for name in SNAPSHOT}

    def acknowledge(self, kind: type[ErasureApplied] | type[WithdrawalApplied],
                    withdrawal_id: str, subject_id: str, *services: str) -> None:
        """Each service's acknowledgement, recorded as the consent worker's tracker does."""
        for name in services:
            fields: dict[str, Any] = {"service": name, "withdrawal_id": withdrawal_id,
                                      "purposes": ("peer-mentoring", "partner-sharing",
                                                   "evaluation"), "applied_at": utcnow()}
            if kind is ErasureApplied:
                fields["retained_records"] = 2 if name == "screening" else 0
            ack = kind(**fields)
            event = CloudEvent.wrap(ack, source=f"/peerlink/{name}", subject=subject_id)
            with self.service.database.unit_of_work() as uow:
                consents.acknowledge(uow, event, ack)
                if event.type == "erasure-applied":
                    erasure.acknowledged(uow, withdrawal_id)


@pytest.fixture
def requests_api(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[Requests]:
    with consent_on(database_url, tmp_path, monkeypatch) as running:
        yield Requests(running.adapters, running.client)


def test_an_erasure_request_from_filing_to_complete(requests_api: Requests) -> None:
    api = requests_api
    subject_id = api.subject()
    filed = api.file(subject_id)
    request_id = filed["erasure_request_id"]

    assert filed["erasure_request_status"] == "awaiting-dpo-decision"
    assert api.client.get(f"/internal/v1/data-keys/{subject_id}",
                          headers=api.headers("service", "screening")).status_code == 200
    listed = api.client.get("/v1/erasure-requests", headers=api.headers("trust", "dpo")).json()
    assert [r["erasure_request_id"] for r in listed["erasure_requests"]] == [request_id]
    waiting = api.request(request_id).json()
    assert waiting["status"] == "awaiting-dpo-decision"
    assert waiting["decision"] is None and waiting["scope"] is None
    requested = datetime.fromisoformat(waiting["requested_at"])
    assert datetime.fromisoformat(waiting["due_at"]) == add_months(requested, 1)
    # the withdrawal was immediate, and completes on withdrawal-applied alone
    api.acknowledge(WithdrawalApplied, filed["withdrawal_id"], subject_id,
                    "screening", "mentoring", "reporting")
    assert api.client.get(f"/v1/withdrawals/{filed['withdrawal_id']}",
                          headers=api.headers("trust", "clinician")).json()["status"] == \
        "complete"

    extended = api.client.post(f"/v1/erasure-requests/{request_id}/extension",
                               json={"months": 2, "reason": REASON},
                               headers=api.headers("trust", "dpo"))
    assert extended.status_code == 200, extended.text
    assert extended.json()["extended"] is True
    assert extended.json()["extension"] == {"months": 2, "reason": REASON}
    again = api.client.post(f"/v1/erasure-requests/{request_id}/extension",
                            json={"months": 1, "reason": "more"},
                            headers=api.headers("trust", "dpo"))
    assert again.status_code == 409
    decided = approve_erasure(api.client, api.service.settings, request_id, "trust",
                              decision="approve-except-retained", reason=REASON,
                              retained=["screenings"])
    assert decided["status"] == "in-progress"
    assert decided["scope"] == "subject"
    assert decided["retained"] == ["screenings"]
    assert [r["kind"] for r in decided["what_was_retained"]] == ["safeguarding-records",
                                                                 "screenings"]
    assert all(r["lawful_basis"] for r in decided["what_was_retained"])
    assert decided["services"]["consent"]["status"] == "applied"
    assert api.client.get(f"/internal/v1/data-keys/{subject_id}",
                          headers=api.headers("service", "screening")).status_code == 410

    api.acknowledge(ErasureApplied, filed["withdrawal_id"], subject_id, "screening",
                    "mentoring")
    assert api.request(request_id).json()["status"] == "in-progress"
    api.acknowledge(ErasureApplied, filed["withdrawal_id"], subject_id, "reporting")

    done = api.request(request_id).json()
    assert done["status"] == "complete"
    assert done["completed_at"] is not None
    assert done["services"]["screening"] == {
        "status": "applied", "applied_at": done["services"]["screening"]["applied_at"],
        "retained_records": 2}
    audit = {e["action"] for e in api.client.get(
        "/v1/audit", params={"subject_id": subject_id},
        headers=api.headers("trust", "dpo")).json()["entries"]}
    assert {"erasure-requested", "erasure-request-read", "erasure-extended", "erasure-decided",
            "subject-erased"} <= audit
    sealed = b"".join(bytes(r["payload"]) for r in api.rows("outbox")) + str(
        api.rows("audit_log")).encode() + str(api.rows("erasure_requests")).encode()
    assert REASON.encode() not in sealed, "the reason is sealed wherever it rests"
    [published] = [CloudEvent.from_bytes(bytes(r["payload"])) for r in api.rows("outbox")
                   if r["event_type"] == "erasure-requested"]
    assert published.data["erasure_request_id"] == request_id
    assert (published.data["scope"], published.data["retained"]) == ("subject", ["screenings"])


def test_a_refusal_changes_nothing_and_says_why(requests_api: Requests) -> None:
    api = requests_api
    subject_id = api.subject()
    request_id = api.file(subject_id)["erasure_request_id"]
    before = api.snapshot()

    refused = api.decide(request_id, {"decision": "refuse", "reason": REASON})

    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "refused"
    assert refused.json()["reason"] == REASON, "the person must be told why"
    assert refused.json()["scope"] is None
    assert api.snapshot() == before
    assert api.client.get(f"/internal/v1/data-keys/{subject_id}",
                          headers=api.headers("service", "screening")).status_code == 200
    assert api.decide(request_id, {"decision": "approve"}).status_code == 409
    listed = api.client.get("/v1/erasure-requests", params={"status": "refused"},
                            headers=api.headers("trust", "dpo")).json()["erasure_requests"]
    assert [r["reason"] for r in listed] == [REASON]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"decision": "approve-except-retained", "reason": REASON}, "retained",
                     id="except-retained-names-no-kinds"),
        pytest.param({"decision": "approve-except-retained", "reason": REASON,
                      "retained": []}, "retained", id="except-retained-empty"),
        pytest.param({"decision": "approve-except-retained", "retained": ["screenings"]},
                     "reason", id="except-retained-without-reason"),
        pytest.param({"decision": "approve", "retained": ["screenings"]}, "retained",
                     id="approve-with-retained"),
        pytest.param({"decision": "refuse"}, "reason", id="refusal-without-reason"),
        pytest.param({"decision": "approve-except-retained", "reason": REASON,
                      "retained": ["marac-referrals"]}, "retained", id="unknown-kind"),
        pytest.param({"decision": "approve-except-retained", "reason": REASON,
                      "retained": ["screenings", "screenings"]}, "retained",
                     id="kinds-twice"),
        pytest.param({"decision": "erase-everything"}, "decision", id="unknown-decision"),
        pytest.param({"decision": "approve", "scope": "subject"}, "scope",
                     id="scope-is-not-the-dpos-to-choose"),
    ],
)
def test_a_decision_the_rules_refuse_names_the_field(requests_api: Requests,
                                                     body: dict[str, Any], field: str) -> None:
    api = requests_api
    subject_id = api.subject()
    request_id = api.file(subject_id)["erasure_request_id"]
    before = api.snapshot()

    response = api.decide(request_id, body)

    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "validation-failed"
    assert field in [d["field"].split(".")[0] for d in error["details"]]  # retained.0: the item
    assert field in error["message"]
    assert api.snapshot() == before
    assert api.request(request_id).json()["status"] == "awaiting-dpo-decision"


def test_only_the_holding_organisations_dpo_sees_or_decides(requests_api: Requests) -> None:
    api = requests_api
    subject_id = api.subject()
    api.subject(org="partner-a", role="partner-staff")  # partner-a knows the person too
    request_id = api.file(subject_id)["erasure_request_id"]
    partner_dpo = api.headers("partner-a", "dpo")

    for response in (
            api.request(request_id, org="partner-a"),
            api.decide(request_id, {"decision": "approve"}, org="partner-a"),
            api.client.post(f"/v1/erasure-requests/{request_id}/extension",
                            json={"months": 1, "reason": "x"}, headers=partner_dpo)):
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "unknown-erasure-request"
    assert api.client.get("/v1/erasure-requests", headers=partner_dpo
                          ).json()["erasure_requests"] == []
    assert api.client.get(f"/v1/erasure-requests/{request_id}",
                          headers=api.headers("trust", "clinician")).status_code == 403
    unknown = api.request("er_" + "0" * 32)
    assert unknown.status_code == 404
    assert unknown.json() == api.request(request_id, org="partner-a").json()
    assert api.request(request_id).json()["status"] == "awaiting-dpo-decision"


def test_two_dpos_deciding_at_once_make_exactly_one_decision(requests_api: Requests) -> None:
    api = requests_api
    subject_id = api.subject()
    request_id = api.file(subject_id)["erasure_request_id"]
    bodies = [{"decision": "approve"}, {"decision": "refuse", "reason": REASON}]
    answers: list[httpx.Response] = []
    start = threading.Barrier(2)

    def decide(body: dict[str, Any]) -> None:
        client = TestClient(api.client.app)
        start.wait()
        answers.append(client.post(f"/v1/erasure-requests/{request_id}/decision", json=body,
                                   headers=api.headers("trust", "dpo")))

    threads = [threading.Thread(target=decide, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    [won] = [a.json() for a in answers if a.status_code == 200]
    [lost] = [a.json() for a in answers if a.status_code == 409]
    assert lost["error"] == "already-decided"
    assert api.request(request_id).json()["decision"] == won["decision"]
    published = [r for r in api.rows("outbox") if r["event_type"] == "erasure-requested"]
    assert len(published) == (1 if won["decision"] == "approve" else 0)
    decided = [r for r in api.rows("audit_log") if r["action"] == "erasure-decided"]
    assert len(decided) == 1


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


def test_the_worker_counts_requests_awaiting_and_overdue(requests_api: Requests) -> None:
    api = requests_api
    late, on_time = api.subject(), api.subject("4010232137")
    late_request = api.file(late)["erasure_request_id"]
    api.file(on_time)
    access = api.client.post("/v1/subject-access-requests", json={"subject_id": late},
                             headers=api.headers("trust", "clinician")).json()["request_id"]
    past = utcnow() - timedelta(days=1)
    with api.service.database.unit_of_work() as uow:
        uow.session.execute(update(api.table("erasure_requests")).where(
            api.table("erasure_requests").c.erasure_request_id == late_request)
            .values(due_at=past))
        uow.session.execute(update(api.table("subject_access_requests")).where(
            api.table("subject_access_requests").c.request_id == access).values(due_at=past))

    request_gauges(api.service)

    assert gauge("peerlink_erasure_requests_awaiting_decision") == 2
    assert gauge("peerlink_erasure_requests_overdue") == 1
    assert gauge("peerlink_subject_access_requests_open") == 1
    assert gauge("peerlink_subject_access_requests_overdue") == 1
    overdue = api.client.get("/v1/erasure-requests", headers=api.headers("trust", "dpo")
                             ).json()["erasure_requests"]
    assert [r["overdue"] for r in overdue] == [True, False]
    api.decide(late_request, {"decision": "refuse", "reason": REASON})
    api.client.post(f"/v1/subject-access-requests/{access}/complete",
                    headers=api.headers("trust", "dpo"))

    request_gauges(api.service)

    assert gauge("peerlink_erasure_requests_overdue") == 0
    assert gauge("peerlink_erasure_requests_awaiting_decision") == 1
    assert gauge("peerlink_subject_access_requests_overdue") == 0


def test_an_erased_person_answers_410_to_new_requests(requests_api: Requests) -> None:
    api = requests_api
    subject_id = api.subject()
    approve_erasure(api.client, api.service.settings,
                    api.file(subject_id)["erasure_request_id"], "trust")

    for path, body in (("/v1/erasure-requests", {"subject_id": subject_id, "method": "verbal"}),
                       ("/v1/subject-access-requests", {"subject_id": subject_id})):
        response = api.client.post(path, json=body, headers=api.headers("trust", "clinician"))
        assert response.status_code == 410, path
        assert response.json()["error"] == "erased"
        assert subject_id not in response.text


def test_a_subject_access_request_and_the_export(requests_api: Requests) -> None:
    api = requests_api
    subject_id = api.subject(org="partner-a", role="partner-staff")
    staff, dpo = api.headers("partner-a", "partner-staff"), api.headers("partner-a", "dpo")
    api.client.post(f"/v1/subjects/{subject_id}/consents", headers=staff, json={
        "purpose": "peer-mentoring", "method": "verbal", "recorded_by": "Advocate Okafor"})
    api.subject(org="trust")  # the Trust's own relationship is not partner-a's to export

    filed = api.client.post("/v1/subject-access-requests", json={"subject_id": subject_id},
                            headers=staff)

    assert filed.status_code == 201, filed.text
    request_id = filed.json()["request_id"]
    assert filed.json()["status"] == "open"
    assert api.client.get("/v1/subject-access-requests", headers=dpo
                          ).json()["subject_access_requests"][0]["request_id"] == request_id
    assert api.client.get("/v1/subject-access-requests",
                          headers=api.headers("trust", "dpo")
                          ).json()["subject_access_requests"] == []
    assert api.client.get(f"/v1/subject-access-requests/{request_id}",
                          headers=api.headers("trust", "dpo")).status_code == 404
    assert api.client.get("/v1/subject-access-requests", headers=staff).status_code == 403
    exported = api.client.get(f"/v1/subjects/{subject_id}/export", headers=dpo)
    assert exported.status_code == 200, exported.text
    bundle = exported.json()
    assert bundle["nhs_number"] == NHS_NUMBER
    assert bundle["consents"]["purposes"]["peer-mentoring"] == "granted"
    assert bundle["consents"]["history"][0]["recorded_by"] == "Advocate Okafor"
    assert [r["request_id"] for r in bundle["subject_access_requests"]] == [request_id]
    erasure_filed = api.file(subject_id, org="partner-a", role="partner-staff")
    approve_erasure(api.client, api.service.settings, erasure_filed["erasure_request_id"],
                    "partner-a", decision="refuse", reason=REASON)
    [exported_request] = api.client.get(f"/v1/subjects/{subject_id}/export", headers=dpo
                                        ).json()["erasure_requests"]
    assert exported_request["reason"] == REASON
    assert "scope" not in exported_request, "the person's copy says nothing of other holders"
    assert {"subject-registered", "consent-granted", "subject-access-requested",
            "subject-exported"} <= {e["action"] for e in bundle["audit"]}
    assert {e["actor_org"] for e in bundle["audit"]} == {"partner-a"}
    completed = api.client.post(f"/v1/subject-access-requests/{request_id}/complete",
                                headers=dpo)
    assert completed.json()["status"] == "complete"
    assert api.client.post(f"/v1/subject-access-requests/{request_id}/complete",
                           headers=dpo).status_code == 409
    unknown = api.client.post("/v1/subject-access-requests",
                              json={"subject_id": "sub_" + "0" * 32}, headers=staff)
    assert unknown.status_code == 404
    assert unknown.json()["details"][0]["field"] == "subject_id"


def test_nothing_of_the_key_or_the_nhs_number_is_left_on_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: after the decision commits, neither the wrapped data key nor the NHS number
    occurs anywhere in the database, its write-ahead log or its shared memory file."""
    database = tmp_path / "db" / "consent.db"
    settings = settings_for(monkeypatch, tmp_path, {"consent": f"sqlite:///{database}"})
    with running_consent(settings) as running:
        api = Requests(running.adapters, running.client)
        subject_id = api.subject()
        for number in ("4010232137", "9434765870"):
            api.subject(number)  # neighbours on the same pages
        [wrapped] = [r["wrapped_key"] for r in api.rows("data_keys")
                     if r["subject_id"] == subject_id]
        request_id = api.file(subject_id)["erasure_request_id"]

        def on_disk() -> bytes:
            return b"".join(p.read_bytes() for p in sorted(database.parent.iterdir())
                            if p.is_file())

        assert wrapped in on_disk(), "the check can see the key before the decision"
        approve_erasure(api.client, settings, request_id, "trust")

        files = {p.name for p in database.parent.iterdir()}
        assert "consent.db" in files
        everything = on_disk()
        assert wrapped not in everything
        assert NHS_NUMBER.encode() not in everything
        assert len(wrapped) >= 32


CONTACT = {"phone": "07700 900123", "times": "weekday mornings", "may_leave_message": False}


def test_two_organisations_dpos_approving_at_once_leave_no_key_behind(
        requests_api: Requests) -> None:
    """Two holders' DPOs decide at once: each must not see the other's relationship as still
    there, or both choose ``organisation`` and the key of a person nobody holds survives."""
    api = requests_api
    for n, number in enumerate(("9434765919", "4010232137", "9990000018")):
        subject_id = api.subject(number)
        assert api.subject(number, org="partner-a", role="partner-staff") == subject_id
        filed = {org: api.file(subject_id, org=org, role=role)["erasure_request_id"]
                 for org, role in (("trust", "clinician"), ("partner-a", "partner-staff"))}
        start = threading.Barrier(2)
        answers: list[httpx.Response] = []

        def decide(org: str, together: threading.Barrier = start, ids: dict[str, str] = filed,
                   answered: list[httpx.Response] = answers) -> None:
            client = TestClient(api.client.app)
            together.wait()
            answered.append(client.post(f"/v1/erasure-requests/{ids[org]}/decision",
                                        json={"decision": "approve"},
                                        headers=api.headers(org, "dpo")))

        threads = [threading.Thread(target=decide, args=(org,)) for org in filed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        [key] = [r for r in api.rows("data_keys") if r["subject_id"] == subject_id]
        assert key["wrapped_key"] is None, f"round {n}: the key survived both erasures"
        [row] = [r for r in api.rows("subjects") if r["subject_id"] == subject_id]
        assert row["erased_at"] is not None and row["nhs_lookup"] is None
        shredded = [r for r in api.rows("outbox") if r["event_type"] == "subject-key-shredded"]
        assert len(shredded) == n + 1, "the key is shredded once"


def test_an_organisation_scope_erasure_with_no_holder_left_shreds_the_key(
        requests_api: Requests, monkeypatch: pytest.MonkeyPatch) -> None:
    """Belt and braces: when an organisation-scope erasure removes the last relationship (the
    other holder's went meanwhile), the person is erased as for scope subject."""
    api = requests_api
    subject_id = api.subject()
    api.subject(org="partner-a", role="partner-staff")
    request_id = api.file(subject_id)["erasure_request_id"]
    real = others_hold_independently
    calls: list[str] = []

    def then_gone(session: Any, subject: str, org: str) -> bool:
        answer = real(session, subject, org)
        session.execute(api.table("subject_orgs").delete().where(
            api.table("subject_orgs").c.org == "partner-a"))
        calls.append(org)
        return answer

    monkeypatch.setattr(erasure, "others_hold_independently", then_gone)
    decided = approve_erasure(api.client, api.service.settings, request_id, "trust")

    assert calls == ["trust"] and decided["scope"] == "organisation"
    [key] = api.rows("data_keys")
    assert key["wrapped_key"] is None
    [row] = api.rows("subjects")
    assert row["erased_at"] is not None


def test_erasure_forgets_the_local_identifier_and_every_safe_contact(
        requests_api: Requests) -> None:
    api = requests_api
    staff = api.headers("partner-a", "partner-staff")
    subject_id = api.client.post("/v1/subjects", json={"local_id": "CL-40"},
                                 headers=staff).json()["subject_id"]
    assert api.client.put(f"/v1/subjects/{subject_id}/safe-contact", json=CONTACT,
                          headers=staff).status_code == 200
    [before] = api.rows("subjects")
    assert before["local_id_sealed"] is not None and api.rows("safe_contacts")

    request_id = api.file(subject_id, org="partner-a", role="partner-staff")[
        "erasure_request_id"]
    approve_erasure(api.client, api.service.settings, request_id, "partner-a")

    [row] = api.rows("subjects")
    forgotten = ("nhs_lookup", "nhs_number_sealed", "local_lookup", "local_id_sealed",
                 "safeguarding_pseudonym")
    assert {name: row[name] for name in forgotten} == dict.fromkeys(forgotten)
    assert api.rows("safe_contacts") == []


def test_an_organisation_scope_erasure_removes_only_its_own_safe_contact(
        requests_api: Requests) -> None:
    api = requests_api
    subject_id = api.subject()
    api.subject(org="partner-a", role="partner-staff")
    for org, role in (("trust", "clinician"), ("partner-a", "partner-staff")):
        api.client.put(f"/v1/subjects/{subject_id}/safe-contact", json=CONTACT,
                       headers=api.headers(org, role))
    request_id = api.file(subject_id, org="partner-a", role="partner-staff")[
        "erasure_request_id"]

    decided = approve_erasure(api.client, api.service.settings, request_id, "partner-a")

    assert decided["scope"] == "organisation"
    assert [r["org"] for r in api.rows("safe_contacts")] == ["trust"]


def test_the_export_says_when_the_own_relationship_began_and_only_its_own_safe_contact(
        requests_api: Requests) -> None:
    """The export must not tell the partner's DPO that the Trust knew the person first, nor
    show the Trust's safe number."""
    api = requests_api
    subject_id = api.subject()
    api.client.put(f"/v1/subjects/{subject_id}/safe-contact", json=CONTACT,
                   headers=api.headers("trust", "clinician"))
    registered_at = api.rows("subjects")[0]["registered_at"]
    staff = api.headers("partner-a", "partner-staff")
    api.subject(org="partner-a", role="partner-staff")
    [established] = [r["established_at"] for r in api.rows("subject_orgs")
                     if r["org"] == "partner-a"]

    bundle = api.client.get(f"/v1/subjects/{subject_id}/export",
                            headers=api.headers("partner-a", "dpo")).json()
    assert "registered_at" not in bundle and "registered_by_org" not in bundle
    assert bundle["relationship_established_at"] == established.isoformat()
    assert established > registered_at
    assert bundle["safe_contact"] is None
    assert "07700" not in str(bundle) and "trust" not in str(bundle)
    own = {**CONTACT, "phone": "07700 900999"}
    api.client.put(f"/v1/subjects/{subject_id}/safe-contact", json=own, headers=staff)
    bundle = api.client.get(f"/v1/subjects/{subject_id}/export",
                            headers=api.headers("partner-a", "dpo")).json()
    assert bundle["safe_contact"]["safe_contact"]["phone"] == "07700 900999"
    assert "900123" not in str(bundle)

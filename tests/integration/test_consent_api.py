"""The consent API: consents per purpose, withdrawals and their cascade, erasure, the audit
trail, and bad input refused with nothing half-written. Every test runs on SQLite and on
PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from services.consent.bootstrap import ConsentAdapters
from services.consent.service_layer import consents
from services.consent.service_layer.subjects import register_keyed
from shared.auth import ON_BEHALF_OF, Principal
from shared.db import utcnow
from shared.events.cascade import ErasureApplied, WithdrawalApplied
from shared.events.envelope import CloudEvent
from shared.kafka.producer import create_topics
from shared.kafka.topics import TopicSpec
from tests.support.consent import consent_on
from tests.support.services import approve_erasure, bearer

NHS_NUMBER = "9434765919"
NHS_FORMS = ("9434765919", "943 476 5919")
WRITTEN_BY = {"purpose": "evaluation", "method": "written", "recorded_by": "Nurse Adebayo"}
UNKNOWN_SUBJECT = "sub_" + "0" * 32
CHANGE_TABLES = ("subjects", "consent_changes", "withdrawals", "withdrawal_acks", "outbox",
                 "audit_log")



@dataclass
class Consent:
    """The consent service, its API client and helpers for one test database."""

    service: ConsentAdapters
    client: TestClient
    backend: str

    def headers(self, org: str, *roles: str) -> dict[str, str]:
        return bearer(self.service.settings, org, *roles)

    def register(self, nhs_number: str = NHS_NUMBER, org: str = "trust",
                 role: str = "clinician") -> httpx.Response:
        response: httpx.Response = self.client.post(
            "/v1/subjects", json={"nhs_number": nhs_number}, headers=self.headers(org, role))
        return response

    def subject(self, nhs_number: str = NHS_NUMBER, org: str = "trust",
                role: str = "clinician") -> str:
        response = self.register(nhs_number, org, role)
        assert response.status_code in (200, 201), response.text
        return str(response.json()["subject_id"])

    def grant(self, subject_id: str, purpose: str = "evaluation", method: str = "written",
              recorded_by: str = "Nurse Adebayo", org: str = "trust",
              role: str = "clinician", recipients: tuple[str, ...] | None = None
              ) -> httpx.Response:
        body: dict[str, Any] = {"purpose": purpose, "method": method,
                                "recorded_by": recorded_by}
        if purpose == "partner-sharing":
            body["recipients"] = list(recipients or ("partner-a",))
        response: httpx.Response = self.client.post(
            f"/v1/subjects/{subject_id}/consents", json=body, headers=self.headers(org, role))
        return response

    def withdraw(self, subject_id: str, purposes: list[str], erasure: bool = False,
                 method: str = "verbal", org: str = "trust",
                 role: str = "clinician") -> httpx.Response:
        response: httpx.Response = self.client.post(
            f"/v1/subjects/{subject_id}/withdrawals",
            json={"purposes": purposes, "erasure": erasure, "method": method},
            headers=self.headers(org, role))
        return response

    def withdrawal_id(self, subject_id: str, purposes: list[str], erasure: bool = False,
                      org: str = "trust", role: str = "clinician") -> str:
        response = self.withdraw(subject_id, purposes, erasure, org=org, role=role)
        assert response.status_code == 202, response.text
        return str(response.json()["withdrawal_id"])

    def erase(self, subject_id: str, org: str = "trust", role: str = "clinician",
              purposes: tuple[str, ...] = ("all",)) -> tuple[str, dict[str, Any]]:
        """Withdraw with erasure, and the organisation's DPO approves the request; returns
        the withdrawal id and the request as the DPO then sees it."""
        response = self.withdraw(subject_id, list(purposes), erasure=True, org=org, role=role)
        assert response.status_code == 202, response.text
        body = response.json()
        return body["withdrawal_id"], approve_erasure(
            self.client, self.service.settings, body["erasure_request_id"], org)

    def state(self, subject_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/subjects/{subject_id}/consents",
                                   headers=self.headers("trust", "clinician"))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def withdrawal(self, withdrawal_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/withdrawals/{withdrawal_id}",
                                   headers=self.headers("trust", "clinician"))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def verify(self) -> dict[str, Any]:
        response = self.client.get("/v1/audit/verify", headers=self.headers("trust", "dpo"))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def table(self, name: str) -> Any:
        return self.service.database.metadata.tables[name]

    def counts(self) -> dict[str, int]:
        """Rows in every table a change writes, and data keys not shredded."""
        keys = self.table("data_keys")
        with self.service.database.read() as session:
            counted = {name: session.execute(select(func.count()).select_from(
                self.table(name))).scalar_one() for name in CHANGE_TABLES}
            counted["live_data_keys"] = session.execute(
                select(func.count()).select_from(keys).where(
                    keys.c.wrapped_key.is_not(None))).scalar_one()
        return counted

    def outbox(self, after_seq: int = 0) -> list[Any]:
        outbox = self.table("outbox")
        with self.service.database.read() as session:
            return list(session.execute(select(outbox).where(outbox.c.seq > after_seq)
                                        .order_by(outbox.c.seq)).all())

    def last_outbox_seq(self) -> int:
        rows = self.outbox()
        return int(rows[-1].seq) if rows else 0

    def table_value(self, table: str, column: str) -> Any:
        """The one value ``column`` holds in ``table`` (a test that made one row)."""
        with self.service.database.read() as session:
            return session.execute(select(self.table(table).c[column])).scalar_one()

    def sql(self, statement: str) -> None:
        with self.service.database.engine.begin() as connection:
            connection.execute(text(statement))


@pytest.fixture
def open_consent(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[Callable[..., Consent]]:
    """Opens the consent service on the test database, with settings ``overrides``."""
    with contextlib.ExitStack() as opened:
        def open_(**overrides: object) -> Consent:
            running = opened.enter_context(consent_on(database_url, tmp_path, monkeypatch,
                                                      **overrides))
            return Consent(running.adapters, running.client, running.backend)

        yield open_


@pytest.fixture
def consent(open_consent: Callable[..., Consent]) -> Consent:
    return open_consent()


@pytest.fixture
def audited(open_consent: Callable[..., Consent], kafka_bootstrap: str,
            monkeypatch: pytest.MonkeyPatch) -> Consent:
    """The consent service with a heads topic of its own, so verification can read it."""
    topic = f"audit.heads.test-{uuid.uuid4().hex[:12]}"
    create_topics(kafka_bootstrap, [TopicSpec(topic, "consent", "test audit heads")], 3)
    monkeypatch.setenv("PEERLINK_CONSENT_AUDIT_HEADS_TOPIC", topic)
    return open_consent(kafka_bootstrap=kafka_bootstrap)


def payload(row: Any) -> dict[str, Any]:
    return dict(json.loads(bytes(row.payload)))


def aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0), f"{value} is not UTC with an offset"
    return parsed


# --- consents ---------------------------------------------------------------------------


def test_granting_consent_returns_the_record(consent: Consent) -> None:
    registered = consent.register()
    assert registered.status_code == 201
    subject_id = registered.json()["subject_id"]
    before = utcnow()

    response = consent.grant(subject_id, "partner-sharing", "verbal", "Nurse Adebayo")

    assert response.status_code == 201, response.text
    record = response.json()
    assert record["change_id"].startswith("cc_")
    assert {k: record[k] for k in ("subject_id", "purpose", "action", "method",
                                   "recorded_by", "org", "withdrawal_id")} == {
        "subject_id": subject_id, "purpose": "partner-sharing", "action": "granted",
        "method": "verbal", "recorded_by": "Nurse Adebayo", "org": "trust",
        "withdrawal_id": None}
    assert before - timedelta(seconds=5) <= aware(record["at"]) <= utcnow()
    granted = [r for r in consent.outbox() if r.event_type == "consent-granted"]
    assert len(granted) == 1
    assert granted[0].aggregate_id == subject_id
    assert "Nurse Adebayo" not in bytes(granted[0].payload).decode()


ALL = ("peer-mentoring", "partner-sharing", "evaluation", "research")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param([], dict.fromkeys(ALL, "not-recorded"), id="nothing-recorded"),
        pytest.param([("grant", "evaluation")],
                     {"peer-mentoring": "not-recorded", "partner-sharing": "not-recorded",
                      "evaluation": "granted", "research": "not-recorded"}, id="one-granted"),
        pytest.param([("grant", "peer-mentoring"), ("withdraw", "peer-mentoring")],
                     {"peer-mentoring": "withdrawn", "partner-sharing": "not-recorded",
                      "evaluation": "not-recorded", "research": "not-recorded"},
                     id="granted-then-withdrawn"),
        pytest.param([("grant", "peer-mentoring"), ("withdraw", "peer-mentoring"),
                      ("grant", "peer-mentoring")],
                     {"peer-mentoring": "granted", "partner-sharing": "not-recorded",
                      "evaluation": "not-recorded", "research": "not-recorded"},
                     id="consent-given-again"),
        pytest.param([("grant", "evaluation"), ("grant", "partner-sharing"),
                      ("withdraw", "all")],
                     dict.fromkeys(ALL, "withdrawn"), id="all-withdrawn"),
        pytest.param([("withdraw", "evaluation")],
                     {"peer-mentoring": "not-recorded", "partner-sharing": "not-recorded",
                      "evaluation": "withdrawn", "research": "not-recorded"},
                     id="withdrawn-without-a-grant"),
    ],
)
def test_current_state_per_purpose(consent: Consent, given: list[tuple[str, str]],
                                   expected: dict[str, str]) -> None:
    subject_id = consent.subject()
    for action, purpose in given:
        response = (consent.grant(subject_id, purpose) if action == "grant"
                    else consent.withdraw(subject_id, [purpose]))
        assert response.status_code in (201, 202), response.text

    state = consent.state(subject_id)

    assert state["subject_id"] == subject_id
    assert state["purposes"] == expected


def test_consent_to_a_purpose_not_offered_names_the_field(
        open_consent: Callable[..., Consent], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERLINK_CONSENT_PURPOSES", "peer-mentoring,partner-sharing,evaluation")
    consent = open_consent()
    subject_id = consent.subject()

    refused = consent.grant(subject_id, "research")
    assert refused.status_code == 422, refused.text
    [detail] = refused.json()["details"]
    assert detail["field"] == "purpose"
    assert "'research' is not offered" in detail["problem"]
    assert consent.grant(subject_id, "evaluation").status_code == 201
    assert consent.withdraw(subject_id, ["research"]).status_code == 202  # always possible


def test_research_is_consented_apart_from_the_service(consent: Consent) -> None:
    subject_id = consent.subject()
    assert consent.grant(subject_id, "peer-mentoring").status_code == 201
    assert consent.grant(subject_id, "research").status_code == 201
    assert consent.withdraw(subject_id, ["research"]).status_code == 202

    assert consent.state(subject_id)["purposes"] == {
        "peer-mentoring": "granted", "partner-sharing": "not-recorded",
        "evaluation": "not-recorded", "research": "withdrawn"}


def test_history_says_who_when_and_how(consent: Consent) -> None:
    subject_id = consent.subject()
    consent.subject(org="partner-a", role="partner-staff")
    assert consent.grant(subject_id, "peer-mentoring", "verbal", "Nurse Adebayo").is_success
    assert consent.grant(subject_id, "partner-sharing", "written", "Nurse Adebayo",
                         recipients=("partner-b",)).is_success
    assert consent.grant(subject_id, "evaluation", "written", "Advocate Okafor",
                         org="partner-a", role="partner-staff").is_success
    withdrawal_id = consent.withdrawal_id(subject_id, ["peer-mentoring"])

    history = consent.state(subject_id)["history"]

    assert [(h["purpose"], h["action"], h["method"], h["recorded_by"], h["org"],
             h["withdrawal_id"], h["recipient"]) for h in history] == [
        ("peer-mentoring", "granted", "verbal", "Nurse Adebayo", "trust", None, None),
        ("partner-sharing", "granted", "written", "Nurse Adebayo", "trust", None, "partner-b"),
        ("peer-mentoring", "withdrawn", "verbal", None, "trust", withdrawal_id, None),
    ], "partner-a's own consent is not in the Trust's view"
    times = [datetime.fromisoformat(h["at"].replace("Z", "+00:00")).replace(tzinfo=None)
             for h in history]
    assert times == sorted(times)
    assert all(h["subject_id"] == subject_id for h in history)


def test_a_withdrawal_records_who_took_it_when_given(consent: Consent) -> None:
    subject_id = consent.subject()
    response = consent.client.post(
        f"/v1/subjects/{subject_id}/withdrawals",
        json={"purposes": ["evaluation"], "method": "written", "recorded_by": "Nurse Adebayo"},
        headers=consent.headers("trust", "clinician"))
    assert response.status_code == 202

    [change] = consent.state(subject_id)["history"]
    assert (change["action"], change["recorded_by"]) == ("withdrawn", "Nurse Adebayo")


def test_history_times_carry_their_utc_offset(consent: Consent) -> None:
    """The same instant, with its offset, whichever endpoint shows it (SQLite gives back
    naive datetimes unless the column type makes them aware)."""
    subject_id = consent.subject()
    granted = consent.grant(subject_id).json()

    history = consent.state(subject_id)["history"]

    assert aware(history[0]["at"]) == aware(granted["at"])


# --- withdrawals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("purposes", "erasure", "services"),
    [
        pytest.param(["peer-mentoring"], False, {"mentoring"}, id="peer-mentoring"),
        pytest.param(["partner-sharing"], False, {"screening", "mentoring"},
                     id="partner-sharing"),
        pytest.param(["evaluation"], False, {"reporting"}, id="evaluation"),
        pytest.param(["all"], False, {"screening", "mentoring", "reporting"}, id="all"),
        pytest.param(["evaluation"], True, {"reporting"}, id="with-erasure-asked"),
    ],
)
def test_a_withdrawal_is_pending_on_its_required_services(
        consent: Consent, purposes: list[str], erasure: bool, services: set[str]) -> None:
    subject_id = consent.subject()

    response = consent.withdraw(subject_id, purposes, erasure)

    assert response.status_code == 202, response.text
    body = response.json()
    erasure_fields = {"erasure_request_id", "erasure_request_status"} if erasure else set()
    assert set(body) == {"withdrawal_id", "status"} | erasure_fields
    assert body["status"] == "pending"
    if erasure:
        assert body["erasure_request_status"] == "awaiting-dpo-decision"
    view = consent.withdrawal(body["withdrawal_id"])
    assert view["status"] == "pending"
    assert view["completed_at"] is None
    assert view["erasure"] is erasure
    # the withdrawal waits for its purposes' services only, erasure asked or not: erasure
    # is the DPO's decision, tracked by the request
    assert {s: v["status"] for s, v in view["services"].items()} == dict.fromkeys(
        services, "pending")
    assert all((v["applied_at"] is None) == (v["status"] == "pending")
               for v in view["services"].values())
    assert list(view["services"]) == sorted(services)
    requested = aware(view["requested_at"])
    assert aware(view["deadline_at"]) - requested == timedelta(
        seconds=consent.service.settings.cascade_deadline_seconds)


def test_withdrawing_peer_mentoring(consent: Consent) -> None:
    subject_id = consent.subject()
    consent.grant(subject_id, "peer-mentoring")
    seq = consent.last_outbox_seq()

    response = consent.withdraw(subject_id, ["peer-mentoring"])

    assert response.status_code == 202
    withdrawal_id = response.json()["withdrawal_id"]
    assert response.json() == {"withdrawal_id": withdrawal_id, "status": "pending"}
    view = consent.withdrawal(withdrawal_id)
    assert view["status"] == "pending"
    assert view["services"] == {"mentoring": {"status": "pending", "applied_at": None}}
    assert view["purposes"] == ["peer-mentoring"]
    events = consent.outbox(seq)
    assert [(r.event_type, r.topic, r.aggregate_id) for r in events] == [
        ("consent-withdrawn", "consent.events", subject_id)]
    assert payload(events[0])["data"]["withdrawal_id"] == withdrawal_id


def test_acknowledgements_complete_the_withdrawal_and_redelivery_changes_nothing(
        consent: Consent) -> None:
    subject_id = consent.subject()
    withdrawal_id = consent.withdrawal_id(subject_id, ["partner-sharing"])
    applied = {"screening": utcnow() - timedelta(seconds=2),
               "mentoring": utcnow() - timedelta(seconds=1)}
    events = {
        service: CloudEvent.wrap(WithdrawalApplied(
            service=service, withdrawal_id=withdrawal_id, purposes=("partner-sharing",),
            applied_at=applied[service]), source=f"/peerlink/{service}", subject=subject_id)
        for service in ("screening", "mentoring")}

    def deliver(service: str) -> None:
        event = events[service]
        with consent.service.database.unit_of_work() as uow:
            consents.acknowledge(uow, event, WithdrawalApplied.model_validate(event.data))

    deliver("mentoring")
    assert consent.withdrawal(withdrawal_id)["status"] == "pending"
    deliver("screening")
    deliver("screening")
    deliver("mentoring")

    view = consent.withdrawal(withdrawal_id)
    assert view["status"] == "complete"
    assert aware(view["completed_at"]) == applied["mentoring"]
    assert {s: (v["status"], aware(v["applied_at"])) for s, v in view["services"].items()} \
        == {s: ("applied", applied[s]) for s in ("mentoring", "screening")}
    completed = [r for r in consent.outbox() if r.event_type == "withdrawal-completed"]
    assert len(completed) == 1
    assert completed[0].aggregate_id == subject_id


@pytest.mark.parametrize("source", ["/peerlink/reporting", "/partner-a/case-system", ""])
def test_an_acknowledgement_from_another_source_than_the_service_it_names_is_refused(
        consent: Consent, source: str) -> None:
    """Regression (adversarial review): acknowledgements were not checked against their
    sender, so one service (or a partner able to write the topic) could complete another's
    part of a cascade."""
    subject_id = consent.subject()
    withdrawal_id = consent.withdrawal_id(subject_id, ["peer-mentoring"])
    ack = WithdrawalApplied(service="mentoring", withdrawal_id=withdrawal_id,
                            purposes=("peer-mentoring",), applied_at=utcnow())
    event = CloudEvent.wrap(ack, source=source or "/", subject=subject_id)

    with (pytest.raises(consents.ForeignAcknowledgement),
          consent.service.database.unit_of_work() as uow):
        consents.acknowledge(uow, event, ack)

    view = consent.withdrawal(withdrawal_id)
    assert view["status"] == "pending"
    assert view["services"]["mentoring"]["status"] == "pending"


def test_erasure_writes_its_events_in_order_and_no_nhs_number(consent: Consent) -> None:
    subject_id = consent.subject()
    consent.grant(subject_id, "evaluation")
    seq = consent.last_outbox_seq()

    withdrawal_id = consent.withdrawal_id(subject_id, ["all"], erasure=True)
    assert [r.event_type for r in consent.outbox(seq)] == ["consent-withdrawn"], \
        "filing the request erases nothing before the DPO decides"
    approve_erasure(consent.client, consent.service.settings,
                    consent.table_value("erasure_requests", "erasure_request_id"), "trust")

    view = consent.withdrawal(withdrawal_id)
    assert set(view["services"]) == {"screening", "mentoring", "reporting"}
    assert view["purposes"] == list(ALL)
    events = consent.outbox(seq)
    assert [(r.event_type, r.topic) for r in events] == [
        ("consent-withdrawn", "consent.events"),
        ("erasure-requested", "consent.events"),
        ("subject-key-shredded", "consent.events"),
        ("erasure-applied", "cascade.acks"),
    ]
    assert all(r.aggregate_id == subject_id for r in events)
    assert all(payload(r)["subject"] == subject_id for r in events)
    assert {payload(r)["data"]["withdrawal_id"] for r in events} == {withdrawal_id}
    ack = payload(events[-1])["data"]
    assert ack["service"] == "consent"
    assert ack["retained_records"] == 0
    everything = b"".join(bytes(r.payload) for r in consent.outbox())
    assert not any(form.encode() in everything for form in NHS_FORMS)


def test_consent_acknowledges_its_own_erasure_through_the_cascade_topic(
        consent: Consent) -> None:
    subject_id = consent.subject()
    withdrawal_id, request = consent.erase(subject_id)
    [row] = [r for r in consent.outbox() if r.topic == "cascade.acks"]
    event = CloudEvent.from_bytes(bytes(row.payload))

    with consent.service.database.unit_of_work() as uow:
        consents.acknowledge(uow, event, ErasureApplied.model_validate(event.data))

    assert request["services"]["consent"]["status"] == "applied"
    assert {s: v["status"] for s, v in request["services"].items() if s != "consent"} == \
        dict.fromkeys(("mentoring", "reporting", "screening"), "pending")
    services = consent.withdrawal(withdrawal_id)["services"]
    assert "consent" not in services, "an erasure-applied does not count for the withdrawal"
    assert all(v["status"] == "pending" for v in services.values())


def test_after_erasure_the_key_is_gone_and_the_person_is_new_again(consent: Consent) -> None:
    subject_id = consent.subject()
    key_url = f"/internal/v1/data-keys/{subject_id}"
    service_headers = consent.headers("service", "screening")
    assert consent.client.get(key_url, headers=service_headers).status_code == 200

    consent.erase(subject_id)

    gone = consent.client.get(key_url, headers=service_headers)
    assert gone.status_code == 410
    assert gone.json()["error"] == "key-shredded"
    subjects = consent.table("subjects")
    with consent.service.database.read() as session:
        row = session.execute(select(subjects).where(
            subjects.c.subject_id == subject_id)).one()
    assert row.nhs_lookup is None
    assert row.nhs_number_sealed is None
    assert row.erased_at is not None
    again = consent.register()
    assert again.status_code == 201
    assert again.json()["subject_id"] != subject_id
    assert consent.client.get(f"/internal/v1/data-keys/{again.json()['subject_id']}",
                              headers=service_headers).status_code == 200


@pytest.mark.parametrize("attempt", ["withdraw", "withdraw-with-erasure", "grant"])
def test_nothing_more_is_recorded_about_an_erased_person(consent: Consent,
                                                         attempt: str) -> None:
    subject_id = consent.subject()
    consent.erase(subject_id)
    before = consent.counts()

    response = (consent.grant(subject_id) if attempt == "grant"
                else consent.withdraw(subject_id, ["evaluation"],
                                      erasure=attempt == "withdraw-with-erasure"))

    assert response.status_code == 410
    assert response.json()["error"] == "erased"
    assert "erased" in response.json()["message"]
    assert consent.counts() == before


# --- bad input --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A request that must be refused."""

    endpoint: str  # "consents" or "withdrawals"
    body: dict[str, Any] | bytes
    caller: tuple[str, ...] | None = ("trust", "clinician")
    subject: str | None = None  # None: the registered person
    status: int = 422
    field: str | None = None
    mentions: tuple[str, ...] = ()


GRANT = WRITTEN_BY
WITHDRAW = {"purposes": ["evaluation"], "erasure": True, "method": "verbal"}

BAD = [
    pytest.param(Bad("consents", {**GRANT, "purpose": "marketing"}, field="purpose"),
                 id="consent-unknown-purpose"),
    pytest.param(Bad("consents", {"method": "written", "recorded_by": "N"}, field="purpose"),
                 id="consent-without-purpose"),
    pytest.param(Bad("consents", {**GRANT, "purpose": "all"}, field="purpose"),
                 id="consent-to-all-is-not-a-purpose"),
    pytest.param(Bad("consents", {**GRANT, "method": "telepathy"}, field="method"),
                 id="consent-unknown-method"),
    pytest.param(Bad("consents", {**GRANT, "recorded_by": ""}, field="recorded_by"),
                 id="consent-recorded-by-nobody"),
    pytest.param(Bad("withdrawals", {**WITHDRAW, "purposes": ["evaluation", "marketing"]},
                     field="purposes", mentions=("marketing",)),
                 id="withdrawal-unknown-purpose"),
    pytest.param(Bad("withdrawals", {**WITHDRAW, "purposes": ["all", "evaluation"]},
                     field="purposes", mentions=('\\"all\\"',)),
                 id="withdrawal-all-with-another"),
    pytest.param(Bad("withdrawals", {**WITHDRAW, "purposes": []}, field="purposes"),
                 id="withdrawal-no-purposes"),
    pytest.param(Bad("withdrawals", {**WITHDRAW, "purposes": "all"}, field="purposes"),
                 id="withdrawal-purposes-not-a-list"),
    pytest.param(Bad("withdrawals", {"purposes": ["all"], "erasure": True}, field="method"),
                 id="withdrawal-without-method"),
    pytest.param(Bad("consents", GRANT, subject=UNKNOWN_SUBJECT, status=404,
                     field="subject_id"), id="consent-unknown-subject"),
    pytest.param(Bad("withdrawals", WITHDRAW, subject=UNKNOWN_SUBJECT, status=404,
                     field="subject_id"), id="withdrawal-unknown-subject"),
    pytest.param(Bad("withdrawals", WITHDRAW, subject="sub_NOT-A-REFERENCE",
                     field="subject_id"), id="withdrawal-malformed-subject"),
    pytest.param(Bad("consents", b'{"purpose": "evaluation", "method": ', field="body",
                     mentions=("JSON",)), id="consent-malformed-json"),
    pytest.param(Bad("withdrawals", b'{"purposes": ["all"]', field="body",
                     mentions=("JSON",)), id="withdrawal-malformed-json"),
    pytest.param(Bad("consents", GRANT, caller=None, status=401, mentions=("bearer",)),
                 id="consent-missing-token"),
    pytest.param(Bad("withdrawals", WITHDRAW, caller=None, status=401, mentions=("bearer",)),
                 id="withdrawal-missing-token"),
    pytest.param(Bad("consents", GRANT, caller=("trust", "ops-viewer"), status=403,
                     mentions=("roles",)), id="consent-by-ops-viewer"),
    pytest.param(Bad("withdrawals", WITHDRAW, caller=("trust", "ops-viewer"), status=403,
                     mentions=("roles",)), id="withdrawal-by-ops-viewer"),
    pytest.param(Bad("consents", GRANT, caller=("partner-a", "mentor-coordinator"),
                     status=403, mentions=("roles",)), id="consent-by-mentor-coordinator"),
    pytest.param(Bad("withdrawals", WITHDRAW, caller=("partner-a", "mentor-coordinator"),
                     status=403, mentions=("roles",)), id="withdrawal-by-mentor-coordinator"),
    pytest.param(Bad("withdrawals", WITHDRAW, caller=("service", "mentoring"), status=403,
                     mentions=("roles",)), id="withdrawal-by-a-service"),
    pytest.param(Bad("consents", GRANT, caller=("partner-a", "partner-staff"), status=404,
                     field="subject_id"), id="consent-for-another-organisations-subject"),
    pytest.param(Bad("withdrawals", WITHDRAW, caller=("partner-a", "partner-staff"),
                     status=404, field="subject_id"),
                 id="withdrawal-for-another-organisations-subject"),
    pytest.param(Bad("withdrawals", WITHDRAW, caller=("partner-b", "dpo"), status=404,
                     field="subject_id"), id="withdrawal-by-a-third-organisations-dpo"),
    pytest.param(Bad("consents", {**GRANT, "purpose": "partner-sharing"}, field="recipients",
                     mentions=("recipients",)), id="sharing-without-recipients"),
    pytest.param(Bad("consents", {**GRANT, "recipients": ["partner-a"]}, field="recipients"),
                 id="recipients-for-another-purpose"),
    pytest.param(Bad("consents", {**GRANT, "purpose": "partner-sharing",
                                  "recipients": ["trust"]}, field="recipients"),
                 id="sharing-with-the-holder-itself"),
    pytest.param(Bad("consents", {**GRANT, "purpose": "partner-sharing",
                                  "recipients": ["partner-z"]}, field="recipients"),
                 id="sharing-with-an-unknown-organisation"),
    pytest.param(Bad("consents", {**GRANT, "purpose": "partner-sharing",
                                  "recipients": ["partner-a", "partner-a"]},
                     field="recipients"), id="sharing-with-a-recipient-twice"),
]


@pytest.mark.parametrize("bad", BAD)
def test_bad_input_is_refused_clearly_with_nothing_half_written(consent: Consent,
                                                                bad: Bad) -> None:
    subject_id = bad.subject or consent.subject()
    consent.subject("4010232137")  # someone else, so the counts are not all ones
    headers = consent.headers(*bad.caller) if bad.caller else {}
    url = f"/v1/subjects/{subject_id}/{bad.endpoint}"
    before = consent.counts()

    if isinstance(bad.body, bytes):
        response = consent.client.post(url, content=bad.body,
                                       headers={**headers, "Content-Type": "application/json"})
    else:
        response = consent.client.post(url, json=bad.body, headers=headers)

    assert response.status_code == bad.status, response.text
    body = response.json()
    assert isinstance(body["error"], str)
    assert body["error"]
    assert isinstance(body["message"], str)
    assert len(body["message"]) > 10
    if bad.field is not None:
        assert bad.field in [d["field"] for d in body["details"]]
    if bad.status == 422:
        assert bad.field is not None
        assert bad.field in body["message"]
    for mention in bad.mentions:
        assert mention.lower() in response.text.lower()
    assert consent.counts() == before


def test_another_organisation_registering_the_person_acts_only_on_its_own_consents(
        consent: Consent) -> None:
    subject_id = consent.subject(org="trust")
    assert consent.grant(subject_id, "peer-mentoring").status_code == 201
    assert consent.grant(subject_id, org="partner-a", role="partner-staff"
                         ).status_code == 404

    again = consent.register(org="partner-a", role="partner-staff")

    assert again.status_code == 201, "registering a known person looks like a new one"
    assert again.json() == {"subject_id": subject_id}
    own = consent.client.get(f"/v1/subjects/{subject_id}/consents",
                             headers=consent.headers("partner-a", "partner-staff")).json()
    assert own["purposes"]["peer-mentoring"] == "not-recorded"
    assert own["history"] == []
    assert "trust" not in json.dumps(own)
    granted = consent.grant(subject_id, "peer-mentoring", org="partner-a",
                            role="partner-staff")
    assert granted.status_code == 201
    assert granted.json()["org"] == "partner-a"
    withdrawn = consent.withdraw(subject_id, ["peer-mentoring"], org="partner-a",
                                 role="partner-staff")
    assert withdrawn.status_code == 202
    assert consent.state(subject_id)["purposes"]["peer-mentoring"] == "granted", \
        "partner-a's withdrawal is of its own consent, not the Trust's"
    assert consent.grant(subject_id, org="partner-b", role="partner-staff"
                         ).status_code == 404


@pytest.mark.parametrize("first", ["trust", "partner-b"])
def test_filing_erasure_answers_the_same_whoever_else_holds_the_person(
        consent: Consent, first: str) -> None:
    """Review finding (issue 10): a 403 told the caller another organisation held the person.
    Now filing always answers 202 with a request awaiting the DPO; only the DPO's decision
    shows ``scope``: organisation while another holds the person independently."""
    roles = {"trust": "clinician", "partner-b": "partner-staff"}
    second = "partner-b" if first == "trust" else "trust"
    shared = consent.subject(org=first, role=roles[first])
    consent.subject(org=second, role=roles[second])
    alone = consent.subject("4010232137", org=first, role=roles[first])

    answers = [consent.withdraw(subject_id, ["all"], erasure=True, org=first,
                                role=roles[first]) for subject_id in (shared, alone)]

    assert [a.status_code for a in answers] == [202, 202]
    assert [set(a.json()) for a in answers] == [
        {"withdrawal_id", "status", "erasure_request_id", "erasure_request_status"}] * 2
    assert {a.json()["erasure_request_status"] for a in answers} == {"awaiting-dpo-decision"}
    decided = [approve_erasure(consent.client, consent.service.settings,
                               a.json()["erasure_request_id"], first) for a in answers]
    assert [d["scope"] for d in decided] == ["organisation", "subject"]
    seen = [{k: v for k, v in d.items() if k not in VARYING}
            | {"services": {s: v["status"] for s, v in d["services"].items()}}
            for d in decided]
    assert seen[0] == seen[1], "apart from scope (and ids and times) the DPO's view is the same"
    # the other organisation keeps the person, key and all
    assert consent.client.get(f"/internal/v1/data-keys/{shared}",
                              headers=consent.headers("service", "screening")
                              ).status_code == 200
    assert consent.grant(shared, org=second, role=roles[second]).status_code == 201
    assert consent.grant(shared, org=first, role=roles[first]).status_code == 404, \
        "the deciding organisation's relationship is gone"


def test_an_erasure_decided_while_a_keyed_registration_is_open_waits_for_it(
        consent: Consent) -> None:
    """Review finding (issue 15): the keyed registration read the person and their key with
    plain SELECTs, so on PostgreSQL a DPO's erasure could commit between that read and the
    registration's commit, which then answered with the shredded key. Now the registration
    holds the person's row: the erasure waits for it to commit, then erases (on SQLite, write
    transactions are serial anyway). The key served is the one erased after it."""
    subject_id = consent.subject()
    filed = consent.withdraw(subject_id, ["all"], erasure=True)
    assert filed.status_code == 202, filed.text
    service = consent.service
    screening = Principal(subject="svc-screening", org="trust", roles=frozenset(),
                          org_kind="nhs-trust", service="screening")
    registered, commit = threading.Event(), threading.Event()
    served: list[tuple[str, Any]] = []

    def register_and_hold() -> None:
        with service.database.unit_of_work() as uow:
            served.append(register_keyed(uow, service.keys, service.identifiers, screening,
                                         NHS_NUMBER, trail=service.trail))
            registered.set()
            commit.wait(timeout=30)

    registering = threading.Thread(target=register_and_hold)
    registering.start()
    decided: list[dict[str, Any]] = []
    deciding = threading.Thread(target=lambda: decided.append(approve_erasure(
        consent.client, service.settings, filed.json()["erasure_request_id"], "trust")))
    try:
        assert registered.wait(timeout=30)
        deciding.start()
        deciding.join(timeout=1.0)
        erased_during_the_registration = bool(decided)
    finally:
        commit.set()
        registering.join(timeout=30)
        if deciding.ident is not None:
            deciding.join(timeout=30)

    assert not erased_during_the_registration
    assert [d["scope"] for d in decided] == ["subject"]
    [(registered_as, key)] = served
    assert registered_as == subject_id and key.key_id
    log = consent.table("audit_log")
    with service.database.read() as session:
        actions = [(r.action, r.subject_id) for r in session.execute(
            select(log.c.action, log.c.subject_id).order_by(log.c.seq))]
    assert actions.index(("data-key-served", subject_id)) < actions.index(
        ("subject-erased", subject_id))
    assert consent.client.get(f"/internal/v1/data-keys/{subject_id}", headers=consent.headers(
        "service", "screening")).status_code == 410
    assert consent.subject() != subject_id  # registering them again makes a new person


VARYING = frozenset({"erasure_request_id", "subject_id", "withdrawal_id", "requested_at",
                     "due_at", "decided_by", "decided_at", "scope", "services"})


def test_an_organisation_may_erase_a_person_it_referred_onwards(consent: Consent) -> None:
    """The receiving partner's relationship came from the Trust's own referral, so the Trust's
    erasure is of the person (the cascade reaches the receiver); had partner-a registered the
    person itself, it would be of the Trust's relationship only (the test above)."""
    subject_id = consent.subject(org="trust")
    consent.grant(subject_id, "partner-sharing", recipients=("partner-a",))
    referred = consent.client.post(
        f"/internal/v1/subjects/{subject_id}/relationships", json={"org": "partner-a"},
        headers={**consent.headers("service", "mentoring"),
                 ON_BEHALF_OF: consent.headers("trust", "clinician")["Authorization"]
                 .removeprefix("Bearer ")})
    assert referred.status_code == 201, referred.text

    _, trust = consent.erase(subject_id)

    assert trust["scope"] == "subject"
    assert consent.grant(subject_id, org="partner-a", role="partner-staff"
                         ).status_code == 410


def test_services_may_read_a_holders_consent_state_but_not_withdrawals(
        consent: Consent) -> None:
    """Mentoring checks the referrer's consents before a referral, as a service alone; no
    other service may, and mentoring may not read people's own consent views."""
    subject_id = consent.subject(org="trust")
    consent.grant(subject_id, "peer-mentoring")
    consent.grant(subject_id, "partner-sharing", recipients=("partner-a", "partner-b"))
    withdrawal_id = consent.withdrawal_id(subject_id, ["evaluation"])
    person = consent.headers("trust", "clinician")["Authorization"].removeprefix("Bearer ")
    headers = consent.headers("service", "mentoring")
    for_person = {**headers, "Peerlink-On-Behalf-Of": person}

    state = consent.client.get(f"/internal/v1/subjects/{subject_id}/consents",
                               params={"org": "trust"}, headers=headers)
    partner = consent.client.get(f"/internal/v1/subjects/{subject_id}/consents",
                                 params={"org": "partner-a"}, headers=headers)

    assert state.status_code == 200
    assert state.json()["purposes"]["peer-mentoring"] == "granted"
    assert state.json()["sharing_recipients"] == ["partner-a", "partner-b"]
    assert partner.json()["purposes"]["peer-mentoring"] == "not-recorded"
    for refused in (headers, for_person):
        assert consent.client.get(f"/v1/withdrawals/{withdrawal_id}", headers=refused
                                  ).status_code == 403
        assert consent.client.get(f"/v1/subjects/{subject_id}/consents", headers=refused
                                  ).status_code == 403
    assert consent.client.get(f"/internal/v1/subjects/{subject_id}/consents",
                              params={"org": "trust"}, headers=for_person).status_code == 403
    assert consent.client.get(f"/internal/v1/subjects/{subject_id}/consents",
                              params={"org": "trust"},
                              headers=consent.headers("service", "screening")
                              ).status_code == 403


def test_partner_sharing_is_withdrawn_per_recipient(consent: Consent) -> None:
    subject_id = consent.subject(org="trust")
    consent.grant(subject_id, "partner-sharing", recipients=("partner-a", "partner-b"))
    start = consent.last_outbox_seq()

    response = consent.client.post(
        f"/v1/subjects/{subject_id}/withdrawals",
        json={"purposes": ["partner-sharing"], "method": "verbal", "recipients": ["partner-b"]},
        headers=consent.headers("trust", "clinician"))

    assert response.status_code == 202, response.text
    state = consent.state(subject_id)
    assert state["sharing_recipients"] == ["partner-a"]
    assert state["purposes"]["partner-sharing"] == "granted"
    [withdrawn] = [r for r in consent.outbox(start) if r.event_type == "consent-withdrawn"]
    assert payload(withdrawn)["data"]["recipients"] == ["partner-b"]
    consent.withdrawal_id(subject_id, ["partner-sharing"])
    assert consent.state(subject_id)["sharing_recipients"] == []
    assert consent.state(subject_id)["purposes"]["partner-sharing"] == "withdrawn"


def test_a_referral_opens_a_relationship_only_where_sharing_names_the_receiver(
        consent: Consent) -> None:
    """Mentoring makes a referral on behalf of the referrer, whose organisation is the holder
    whose partner-sharing must name the receiver."""
    subject_id = consent.subject(org="trust")
    referrer = consent.headers("trust", "clinician")["Authorization"].removeprefix("Bearer ")
    alone = consent.headers("service", "mentoring")
    service = {**alone, "Peerlink-On-Behalf-Of": referrer}
    url = f"/internal/v1/subjects/{subject_id}/relationships"
    refused = consent.client.post(url, json={"org": "partner-a"}, headers=service)
    assert refused.status_code == 409
    assert refused.json()["error"] == "sharing-required"
    consent.grant(subject_id, "partner-sharing", recipients=("partner-a",))
    start = consent.last_outbox_seq()

    accepted = consent.client.post(url, json={"org": "partner-a"}, headers=service)

    assert accepted.status_code == 201, accepted.text
    [event] = [r for r in consent.outbox(start) if r.event_type == "relationship-established"]
    assert payload(event)["data"] == {"org": "partner-a", "basis": "referral"}
    assert consent.grant(subject_id, "evaluation", org="partner-a",
                         role="partner-staff").status_code == 201
    for body in ({"org": "trust"}, {"org": "partner-z"},
                 {"org": "partner-a", "holder": "trust"}):
        assert consent.client.post(url, json=body, headers=service).status_code == 422
    screening = {**consent.headers("service", "screening"), "Peerlink-On-Behalf-Of": referrer}
    for not_a_referral in (alone, screening, consent.headers("trust", "clinician")):
        assert consent.client.post(url, json={"org": "partner-a"}, headers=not_a_referral
                                   ).status_code == 403
    entries = consent.client.get("/v1/audit", params={"subject_id": subject_id},
                                 headers=consent.headers("trust", "dpo")).json()["entries"]
    [entry] = [e for e in entries if e["action"] == "referral-made"]
    assert entry["actor"].endswith("(via svc-mentoring)")
    assert entry["actor_org"] == "trust"
    again = consent.client.post(url, json={"org": "partner-a"}, headers=service)
    assert again.status_code == 201
    entries = consent.client.get("/v1/audit", params={"subject_id": subject_id},
                                 headers=consent.headers("trust", "dpo")).json()["entries"]
    assert [e["detail"] for e in entries if e["action"] == "referral-made"] == \
        [{"org": "partner-a"}] * 2, "a second referral reads exactly as the first (review "\
        "finding: a missing entry told the referrer's DPO the receiver knew the person)"


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        pytest.param(("trust", "clinician"), 200, id="registering-org-clinician"),
        pytest.param(("trust", "dpo"), 200, id="registering-org-dpo"),
        pytest.param(("partner-a", "dpo"), 404, id="another-orgs-dpo"),
        pytest.param(("partner-b", "dpo"), 404, id="a-third-orgs-dpo"),
        pytest.param(("partner-a", "partner-staff"), 404, id="another-orgs-partner-staff"),
        pytest.param(("trust", "ops-viewer"), 403, id="ops-viewer"),
        pytest.param(("partner-a", "mentor-coordinator"), 403, id="mentor-coordinator"),
        pytest.param(None, 401, id="no-token"),
    ],
)
def test_who_may_read_consents_and_withdrawals(
        consent: Consent, caller: tuple[str, ...] | None, status: int) -> None:
    subject_id = consent.subject(org="trust")
    consent.grant(subject_id)
    withdrawal_id = consent.withdrawal_id(subject_id, ["evaluation"])
    headers = consent.headers(*caller) if caller else {}

    state = consent.client.get(f"/v1/subjects/{subject_id}/consents", headers=headers)
    withdrawal = consent.client.get(f"/v1/withdrawals/{withdrawal_id}", headers=headers)

    assert (state.status_code, withdrawal.status_code) == (status, status)
    if status == 200:
        assert state.json()["purposes"]["evaluation"] == "withdrawn"
        assert withdrawal.json()["withdrawal_id"] == withdrawal_id
    else:
        assert state.json()["message"]
        assert "evaluation" not in state.text


def test_an_unknown_withdrawal_is_a_404(consent: Consent) -> None:
    response = consent.client.get("/v1/withdrawals/wd_" + "0" * 32,
                                  headers=consent.headers("trust", "clinician"))
    assert response.status_code == 404
    assert response.json()["details"][0]["field"] == "withdrawal_id"


# --- audit ------------------------------------------------------------------------------


def test_the_audit_trail_lists_a_persons_entries_and_audits_reading_it(
        consent: Consent) -> None:
    subject_id = consent.subject()
    other = consent.subject("4010232137")
    consent.grant(subject_id, "evaluation")
    consent.grant(other, "evaluation")
    withdrawal_id = consent.withdrawal_id(subject_id, ["evaluation"])
    dpo = consent.headers("trust", "dpo")

    first = consent.client.get("/v1/audit", params={"subject_id": subject_id}, headers=dpo)

    assert first.status_code == 200, first.text
    entries = first.json()["entries"]
    assert all(e["subject_id"] == subject_id for e in entries)
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["subject-registered", "consent-granted", "consent-withdrawn"]
    assert entries[1]["detail"] == {"purpose": "evaluation", "method": "written",
                                    "recipients": None}
    assert entries[2]["detail"]["withdrawal_id"] == withdrawal_id
    assert entries[2]["actor_org"] == "trust"
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    assert not {"seq", "hash"} & set(entries[0]), "the chain's position would show others' acts"

    later = consent.client.get("/v1/audit", params={"subject_id": subject_id}, headers=dpo)

    reads = [e for e in later.json()["entries"] if e["action"] == "audit-read"]
    assert len(reads) == actions.count("audit-read") + 1 >= 2
    assert {e["actor_org"] for e in reads} == {"trust"}
    everything = consent.client.get("/v1/audit", headers=dpo).json()["entries"]
    assert {e["subject_id"] for e in everything} >= {subject_id, other}
    assert not any(form in later.text for form in NHS_FORMS)
    partner_dpo = consent.client.get("/v1/audit", headers=consent.headers("partner-a", "dpo"))
    assert partner_dpo.status_code == 200
    assert {e["actor_org"] for e in partner_dpo.json()["entries"]} == {"partner-a"}, \
        "another organisation's DPO sees only their own organisation's entries"


@pytest.mark.parametrize("path", ["/v1/audit", "/v1/audit/verify"])
@pytest.mark.parametrize(
    "caller",
    [("trust", "clinician"), ("partner-a", "partner-staff"), ("trust", "ops-viewer"),
     ("partner-a", "mentor-coordinator"), ("service", "mentoring"), ("service", "screening")],
    ids="-".join,
)
def test_only_a_dpo_reads_the_audit_trail(consent: Consent, path: str,
                                          caller: tuple[str, str]) -> None:
    consent.subject()
    before = consent.counts()

    response = consent.client.get(path, headers=consent.headers(*caller))

    assert response.status_code == 403
    assert "dpo" in response.json()["message"]
    assert consent.counts() == before


def test_an_untouched_audit_trail_verifies(audited: Consent) -> None:
    consent = audited
    subject_id = consent.subject()
    consent.grant(subject_id)
    consent.erase(subject_id)

    first = consent.verify()
    second = consent.verify()

    assert first == {"valid": True, "entries": first["entries"], "first_broken_seq": None,
                     "problem": None, "heads_checked": 0, "newest_head": None}
    assert first["entries"] >= 4
    assert second["valid"] is True
    assert second["entries"] == first["entries"] + 1  # the first verification was audited


def test_two_writers_appending_at_once_leave_a_valid_chain(consent: Consent) -> None:
    """Each append reads the head and writes the next entry: two threads at once must
    serialise, not both take the same seq (on SQLite, 98 of 200 such appends used to fail)."""
    clerk = Principal(subject="clerk@trust", org="trust", roles=frozenset({"clinician"}))
    failures: list[str] = []
    each = 100

    def write() -> None:
        for _ in range(each):
            try:
                with consent.service.database.unit_of_work() as uow:
                    consent.service.trail.record(uow, clerk, "audit-read", note="concurrent")
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}"[:200])

    writers = [threading.Thread(target=write) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    assert failures == []
    log = consent.table("audit_log")
    with consent.service.database.read() as session:
        check = consent.service.trail.verify(session)
        seqs = session.execute(select(log.c.seq).order_by(log.c.seq)).scalars().all()
    assert seqs == list(range(1, 2 * each + 1))
    assert check.valid, check
    assert check.entries == 2 * each


def _drop_append_only_triggers(consent: Consent) -> None:
    if consent.backend == "postgresql":
        consent.sql("DROP TRIGGER audit_log_append_only ON audit_log")
    else:
        consent.sql("DROP TRIGGER audit_log_no_update")
        consent.sql("DROP TRIGGER audit_log_no_delete")


def _aimed(consent: Consent, tamper: str) -> tuple[str, dict[str, int]]:
    """The tampering statement aimed at the current entries, and their seqs."""
    log = consent.table("audit_log")
    with consent.service.database.read() as session:
        rows = session.execute(select(log.c.seq, log.c.action).order_by(log.c.seq)).all()
    seqs = {"granted": next(r.seq for r in rows if r.action == "consent-granted"),
            "withdrawn": next(r.seq for r in rows if r.action == "consent-withdrawn"),
            "last": rows[-1].seq}
    for name, seq in seqs.items():
        tamper = tamper.replace("{" + name + "}", str(seq))
    return tamper, seqs


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        pytest.param("UPDATE audit_log SET detail = '{\"method\": \"verbal\", "
                     "\"purpose\": \"peer-mentoring\"}' WHERE seq = {granted}", "granted",
                     id="detail-altered"),
        pytest.param("UPDATE audit_log SET actor_org = 'partner-a' WHERE seq = {withdrawn}",
                     "withdrawn", id="actor-org-altered"),
        pytest.param("UPDATE audit_log SET action = 'consent-granted' WHERE seq = {withdrawn}",
                     "withdrawn", id="action-altered"),
        pytest.param("DELETE FROM audit_log WHERE seq = {granted}", "granted",
                     id="middle-entry-deleted"),
        pytest.param("DELETE FROM audit_log WHERE seq = {last}", "last",
                     id="last-entry-deleted"),
    ],
)
def test_the_database_refuses_tampering_and_verify_finds_it(
        audited: Consent, tamper: str, broken: str) -> None:
    consent = audited
    subject_id = consent.subject()
    consent.grant(subject_id)
    consent.withdrawal_id(subject_id, ["evaluation"])
    assert consent.verify()["valid"] is True

    with pytest.raises(DBAPIError, match="append-only"):
        consent.sql(_aimed(consent, tamper)[0])
    assert consent.verify()["valid"] is True

    statement, seqs = _aimed(consent, tamper)
    _drop_append_only_triggers(consent)
    consent.sql(statement)
    check = consent.verify()

    assert check["valid"] is False
    assert check["first_broken_seq"] == seqs[broken]
    assert check["problem"]
    # the chain stays broken however many entries are appended after it
    consent.grant(subject_id, "peer-mentoring")
    assert consent.verify()["first_broken_seq"] == seqs[broken]


# --- overdue ----------------------------------------------------------------------------


def test_an_overdue_withdrawal_is_listed_and_announced(
        open_consent: Callable[..., Consent]) -> None:
    consent = open_consent(cascade_deadline_seconds=0.001)
    subject_id = consent.subject()
    withdrawal_id = consent.withdrawal_id(subject_id, ["peer-mentoring"])
    trust = consent.headers("trust", "clinician")
    assert consent.client.get("/v1/withdrawals", params={"status": "overdue"},
                              headers=trust).json()["withdrawals"] == []

    with consent.service.database.unit_of_work() as uow:
        consents.mark_overdue(uow, utcnow() + timedelta(seconds=1))
    with consent.service.database.unit_of_work() as uow:
        consents.mark_overdue(uow, utcnow() + timedelta(seconds=2))

    listed = consent.client.get("/v1/withdrawals", params={"status": "overdue"},
                                headers=trust)
    assert listed.status_code == 200
    assert listed.json()["status"] == "overdue"
    [overdue] = listed.json()["withdrawals"]
    assert overdue["withdrawal_id"] == withdrawal_id
    assert overdue["status"] == "overdue"
    assert overdue["services"] == {"mentoring": {"status": "pending", "applied_at": None}}
    assert consent.withdrawal(withdrawal_id)["status"] == "overdue"
    announced = [r for r in consent.outbox() if r.event_type == "withdrawal-overdue"]
    assert len(announced) == 1
    assert announced[0].aggregate_id == subject_id
    assert announced[0].topic == "consent.events"
    data = payload(announced[0])["data"]
    assert data["withdrawal_id"] == withdrawal_id
    assert data["pending_services"] == ["mentoring"]
    assert consent.client.get("/v1/withdrawals", params={"status": "pending"},
                              headers=trust).json()["withdrawals"] == []
    for org, role, seen in [("trust", "dpo", True), ("partner-a", "dpo", False),
                            ("partner-a", "partner-staff", False)]:
        rows = consent.client.get("/v1/withdrawals", params={"status": "overdue"},
                                  headers=consent.headers(org, role)).json()["withdrawals"]
        assert [r["withdrawal_id"] for r in rows] == ([withdrawal_id] if seen else [])


def test_marking_overdue_leaves_withdrawals_within_their_deadline(consent: Consent) -> None:
    subject_id = consent.subject()
    withdrawal_id = consent.withdrawal_id(subject_id, ["peer-mentoring"])

    with consent.service.database.unit_of_work() as uow:
        consents.mark_overdue(uow, utcnow())

    assert consent.withdrawal(withdrawal_id)["status"] == "pending"
    assert not [r for r in consent.outbox() if r.event_type == "withdrawal-overdue"]


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        pytest.param(("trust", "ops-viewer"), 403, id="ops-viewer"),
        pytest.param(("partner-a", "mentor-coordinator"), 403, id="mentor-coordinator"),
        pytest.param(("service", "mentoring"), 403, id="service"),
        pytest.param(None, 401, id="no-token"),
        pytest.param(("trust", "clinician"), 200, id="clinician"),
        pytest.param(("trust", "dpo"), 200, id="dpo"),
    ],
)
def test_who_may_list_withdrawals(consent: Consent, caller: tuple[str, ...] | None,
                                  status: int) -> None:
    consent.withdrawal_id(consent.subject(), ["evaluation"])
    headers = consent.headers(*caller) if caller else {}

    response = consent.client.get("/v1/withdrawals", params={"status": "pending"},
                                  headers=headers)

    assert response.status_code == status
    if status == 200:
        assert len(response.json()["withdrawals"]) == 1
    else:
        assert "withdrawals" not in response.json()


def test_listing_an_unknown_status_is_a_422(consent: Consent) -> None:
    response = consent.client.get("/v1/withdrawals", params={"status": "lost"},
                                  headers=consent.headers("trust", "dpo"))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "status"

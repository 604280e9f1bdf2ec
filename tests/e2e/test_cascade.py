"""The consent withdrawal cascade over the real broker, each service's worker its own process.

A withdrawal completes when every required service has acknowledged; a service that is down
makes it overdue and, once back, completes it with nobody acting; a redelivered withdrawal is
acknowledged once; an erasure waits for the DPO's approval and completes on every service's
erasure-applied; after it nothing about the person reads in clear on any topic.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from shared.consent_client import ConsentClient
from shared.crypto import REDACTED, CachingKeyStore, PersonalDataCipher
from shared.events.catalogue import parse_payload
from shared.events.envelope import CloudEvent, EncryptedBlock
from shared.kafka.topics import CASCADE_ACKS, events_topic, partner_inbound_topic
from shared.runtime import service_credentials
from tests.support.kafka import read_topic
from tests.support.platform import RunningPlatform, running_platform, wait_for
from tests.support.services import approve_erasure

pytestmark = pytest.mark.kafka
DEADLINE_SECONDS = 6


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("cascade"), request.param,
                          cascade_deadline_seconds=str(DEADLINE_SECONDS)) as running:
        yield running


def screened_person(platform: RunningPlatform, team: str) -> tuple[str, dict[str, Any]]:
    """A person screened through the API; returns their subject reference and the record."""
    record = platform.screening(team, notes=f"note-{uuid.uuid4().hex}")
    response = httpx.post(platform.url("screening", "/v1/screenings"), json=record,
                          headers=platform.headers("trust", "clinician"), timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["subject_id"]), record


def withdraw(platform: RunningPlatform, subject_id: str, purposes: list[str],
             erasure: bool) -> str:
    return str(withdrawal(platform, subject_id, purposes, erasure)["withdrawal_id"])


def withdrawal(platform: RunningPlatform, subject_id: str, purposes: list[str],
               erasure: bool) -> dict[str, Any]:
    response = httpx.post(platform.url("consent", f"/v1/subjects/{subject_id}/withdrawals"),
                          json={"purposes": purposes, "erasure": erasure, "method": "verbal"},
                          headers=platform.headers("trust", "clinician"), timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    body: dict[str, Any] = response.json()
    return body


def erase(platform: RunningPlatform, subject_id: str) -> tuple[str, str]:
    """Withdraw everything with erasure and the Trust's DPO approves the request through the
    API; returns the withdrawal id and the erasure request id."""
    filed = withdrawal(platform, subject_id, ["all"], erasure=True)
    with httpx.Client(timeout=10) as client:
        approve_erasure(client, platform.settings, filed["erasure_request_id"], "trust",
                        base_url=platform.url("consent", ""))
    return filed["withdrawal_id"], filed["erasure_request_id"]


def erasure_request(platform: RunningPlatform, request_id: str) -> dict[str, Any]:
    response = httpx.get(platform.url("consent", f"/v1/erasure-requests/{request_id}"),
                         headers=platform.headers("trust", "dpo"), timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def status_of(platform: RunningPlatform, withdrawal_id: str) -> dict[str, Any]:
    response = httpx.get(platform.url("consent", f"/v1/withdrawals/{withdrawal_id}"),
                         headers=platform.headers("trust", "clinician"), timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def acks_for(platform: RunningPlatform, withdrawal_id: str) -> Counter[tuple[str, str]]:
    records = read_topic(platform.settings.kafka_bootstrap, CASCADE_ACKS, timeout=2)
    acks: Counter[tuple[str, str]] = Counter()
    for record in records:
        event = CloudEvent.from_bytes(record.value)
        if event.data.get("withdrawal_id") == withdrawal_id:
            acks[(event.type, event.data["service"])] += 1
    return acks


def test_withdrawing_everything_with_erasure_completes_with_one_ack_per_service(
        platform: RunningPlatform) -> None:
    """The withdrawal completes at once on withdrawal-applied; nothing is erased until the
    DPO approves, and then the erasure request completes on every service's
    erasure-applied."""
    subject_id, _ = screened_person(platform, f"cascade-{uuid.uuid4().hex[:6]}")
    filed = withdrawal(platform, subject_id, ["all"], erasure=True)
    withdrawal_id, request_id = filed["withdrawal_id"], filed["erasure_request_id"]

    done = wait_for(lambda: (s := status_of(platform, withdrawal_id))["status"] == "complete"
                    and s, timeout=30)
    assert set(done["services"]) == {"screening", "mentoring", "reporting"}
    assert all(s["status"] == "applied" for s in done["services"].values())
    assert done["completed_at"] is not None
    assert not any(k[0] == "erasure-applied" for k in acks_for(platform, withdrawal_id))
    assert erasure_request(platform, request_id)["status"] == "awaiting-dpo-decision"

    with httpx.Client(timeout=10) as client:
        approve_erasure(client, platform.settings, request_id, "trust",
                        base_url=platform.url("consent", ""))

    erased = wait_for(lambda: (r := erasure_request(platform, request_id))["status"]
                      == "complete" and r, timeout=30)
    assert set(erased["services"]) == {"consent", "screening", "mentoring", "reporting"}
    assert all(s["status"] == "applied" for s in erased["services"].values())
    assert erased["scope"] == "subject"
    erasure_acks = {k: n for k, n in acks_for(platform, withdrawal_id).items()
                    if k[0] == "erasure-applied"}
    assert erasure_acks == {("erasure-applied", s): 1
                            for s in ("consent", "screening", "mentoring", "reporting")}


def test_a_service_that_was_down_catches_up_and_the_withdrawal_completes(
        platform: RunningPlatform) -> None:
    subject_id, _ = screened_person(platform, f"cascade-{uuid.uuid4().hex[:6]}")
    platform.processes.stop_process("mentoring-worker")
    try:
        withdrawal_id = withdraw(platform, subject_id, ["peer-mentoring"], erasure=False)
        assert status_of(platform, withdrawal_id)["status"] == "pending"

        overdue = wait_for(lambda: (s := status_of(platform, withdrawal_id))["status"]
                           == "overdue" and s, timeout=DEADLINE_SECONDS + 20)
        assert overdue["services"]["mentoring"]["status"] == "pending"
        listed = httpx.get(platform.url("consent", "/v1/withdrawals"),
                           params={"status": "overdue"},
                           headers=platform.headers("trust", "dpo"), timeout=10).json()
        assert withdrawal_id in {w["withdrawal_id"] for w in listed["withdrawals"]}
        metrics = httpx.get(f"http://127.0.0.1:{platform.settings.worker_port('consent')}"
                            "/metrics", timeout=5).text
        assert "peerlink_withdrawals_overdue 1.0" in metrics
    finally:
        platform.processes.start_process("mentoring-worker")

    done = wait_for(lambda: (s := status_of(platform, withdrawal_id))["status"] == "complete"
                    and s, timeout=60)
    assert done["services"]["mentoring"]["status"] == "applied"


def test_a_redelivered_withdrawal_is_acknowledged_once(platform: RunningPlatform) -> None:
    subject_id, _ = screened_person(platform, f"cascade-{uuid.uuid4().hex[:6]}")
    withdrawal_id = withdraw(platform, subject_id, ["evaluation", "partner-sharing"],
                             erasure=False)
    wait_for(lambda: status_of(platform, withdrawal_id)["status"] == "complete", timeout=30)

    bootstrap = platform.settings.kafka_bootstrap
    [original] = [r for r in read_topic(bootstrap, events_topic("consent"), timeout=3)
                  if CloudEvent.from_bytes(r.value).data.get("withdrawal_id") == withdrawal_id
                  and CloudEvent.from_bytes(r.value).type == "consent-withdrawn"]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(events_topic("consent"), key=original.key, value=original.value,
                  partition=original.partition)
    # a later marker on the same partition shows when the redelivery has been consumed
    marker_subject, _ = screened_person(platform, f"cascade-{uuid.uuid4().hex[:6]}")
    producer.flush()
    producer.close()
    marker = withdraw(platform, marker_subject, ["evaluation"], erasure=False)
    wait_for(lambda: status_of(platform, marker)["status"] == "complete", timeout=30)

    acks = acks_for(platform, withdrawal_id)
    assert acks == {("withdrawal-applied", "screening"): 1,
                    ("withdrawal-applied", "mentoring"): 1,
                    ("withdrawal-applied", "reporting"): 1}
    assert status_of(platform, withdrawal_id)["status"] == "complete"


def test_after_erasure_no_topic_holds_the_person_in_clear(platform: RunningPlatform) -> None:
    subject_id, record = screened_person(platform, f"cascade-{uuid.uuid4().hex[:6]}")
    nhs_number, notes = record["nhs_number"], record["notes"]
    _, request_id = erase(platform, subject_id)
    wait_for(lambda: erasure_request(platform, request_id)["status"] == "complete",
             timeout=30)

    bootstrap = platform.settings.kafka_bootstrap
    topics = [events_topic("consent"), events_topic("screening"), events_topic("mentoring"),
              CASCADE_ACKS, partner_inbound_topic("trust")]
    about_them = [r for t in topics for r in read_topic(bootstrap, t, timeout=2)
                  if r.key == subject_id.encode()]
    assert {CloudEvent.from_bytes(r.value).type for r in about_them} >= {
        "subject-registered", "screening-completed", "consent-withdrawn",
        "erasure-requested", "subject-key-shredded", "erasure-applied"}
    keys = CachingKeyStore(ConsentClient(platform.url("consent", ""),
                                         service_credentials("screening", platform.settings)))
    cipher = PersonalDataCipher(keys)
    sealed = 0
    for raw in about_them:
        assert nhs_number.encode() not in raw.value
        assert nhs_number[:3].encode() + b" " not in raw.value
        assert notes.encode() not in raw.value
        event = CloudEvent.from_bytes(raw.value)
        payload = parse_payload(event)
        for name in type(payload).model_fields:
            block = getattr(payload, name)
            if isinstance(block, EncryptedBlock):
                sealed += 1
                assert cipher.open(subject_id, event.type, block) is REDACTED
    assert sealed >= 2  # the NHS number at registration and the notes at screening


def test_partner_access_follows_partner_sharing_consent(platform: RunningPlatform) -> None:
    subject_id, record = screened_person(platform, f"cascade-{uuid.uuid4().hex[:6]}")
    results = platform.url("screening", f"/v1/subjects/{subject_id}/results")
    partner = platform.headers("partner-a", "partner-staff")
    registered = httpx.post(platform.url("consent", "/v1/subjects"),
                            json={"nhs_number": record["nhs_number"]}, headers=partner,
                            timeout=10)
    assert registered.json()["subject_id"] == subject_id  # partner-a's relationship
    nothing = {"subject_id": subject_id, "screenings": [], "risk_assessments": []}
    refused = httpx.get(results, headers=partner, timeout=10)
    assert (refused.status_code, refused.json()) == (200, nothing)

    granted = httpx.post(platform.url("consent", f"/v1/subjects/{subject_id}/consents"),
                         json={"purpose": "partner-sharing", "method": "written",
                               "recorded_by": "Nurse Adebayo", "recipients": ["partner-a"]},
                         headers=platform.headers("trust", "clinician"), timeout=10)
    assert granted.status_code == 201
    shown = wait_for(lambda: (r := httpx.get(results, headers=partner, timeout=10)
                              ).json()["screenings"] and r.json())
    assert len(shown["screenings"]) == 1

    withdrawal_id = withdraw(platform, subject_id, ["partner-sharing"], erasure=False)
    wait_for(lambda: status_of(platform, withdrawal_id)["status"] == "complete", timeout=30)
    assert httpx.get(results, headers=partner, timeout=10).json() == nothing

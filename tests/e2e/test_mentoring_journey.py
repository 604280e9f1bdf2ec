"""A mentee's journey over the real broker, every service its own process.

A DVA partner's case system logs a session on its own inbound topic and the mentoring worker
applies it as if it came through the API; malformed records are dead-lettered with the error
and where they came from while the worker keeps consuming; a peer-mentoring withdrawal through
the consent API reaches the mentoring worker, which ends the match as unplanned and
acknowledges, so that the withdrawal completes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from shared.events.envelope import CloudEvent
from shared.kafka.topics import (
    CASCADE_ACKS,
    deadletter_topic,
    events_topic,
    partner_inbound_topic,
)
from shared.runtime import deadletter_cipher
from tests.support.kafka import headers_of, read_topic
from tests.support.platform import RunningPlatform, running_platform, wait_for

pytestmark = pytest.mark.kafka
TODAY = date.today()


@pytest.fixture(scope="module")
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("mentoring"), "sqlite") as p:
        yield p


def post(platform: RunningPlatform, service: str, path: str, body: dict[str, Any],
         org: str, role: str, expect: int) -> dict[str, Any]:
    response = httpx.post(platform.url(service, path), json=body,
                          headers=platform.headers(org, role), timeout=10)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def matched_person(platform: RunningPlatform) -> tuple[str, str]:
    """A person with the Trust's peer-mentoring consent and partner-sharing naming partner-a,
    referred by the Trust to partner-a and matched there with a new partner-a mentor through
    the APIs; returns (subject_id, match_id)."""
    mentor = post(platform, "mentoring", "/v1/mentors", {
        "org": "partner-a", "display_name": "Jo", "gender": "female", "languages": ["en"],
        "borough": "camden", "modes": ["phone"], "capacity": 1,
        "training_completed_on": (TODAY - timedelta(days=60)).isoformat(),
        "check_level": "enhanced",
        "check_completed_on": (TODAY - timedelta(days=60)).isoformat(), "status": "active",
    }, "partner-a", "mentor-coordinator", 201)
    post(platform, "mentoring", f"/v1/mentors/{mentor['id']}/supervision",
         {"held_on": TODAY.isoformat()}, "partner-a", "mentor-coordinator", 200)
    subject_id = post(platform, "consent", "/v1/subjects",
                      {"nhs_number": next(platform.numbers)}, "trust", "clinician",
                      201)["subject_id"]
    for purpose, more in (("peer-mentoring", {}),
                          ("partner-sharing", {"recipients": ["partner-a"]})):
        post(platform, "consent", f"/v1/subjects/{subject_id}/consents",
             {"purpose": purpose, "method": "verbal", "recorded_by": "Nurse Adebayo", **more},
             "trust", "clinician", 201)
    referral = post(platform, "mentoring", "/v1/referrals", {
        "subject_id": subject_id, "referred_by_org": "trust", "to_org": "partner-a",
        "safe_contact": {"phone": "07700 900123", "times": "evenings",
                         "may_leave_message": False}}, "trust", "clinician", 201)
    # partner-a's coordinator matches it; the new mentor is the only one with room that was
    # never matched: chosen first
    matched = post(platform, "mentoring", f"/v1/referrals/{referral['id']}/match", {},
                   "partner-a", "mentor-coordinator", 200)
    assert matched["status"] == "matched", matched
    return subject_id, str(matched["match_id"])


def case_system_event(data: dict[str, Any], event_type: str = "session-logged") -> bytes:
    return CloudEvent(id=str(uuid.uuid4()), source="/partner-a/case-system", type=event_type,
                      time=datetime.now(UTC), data=data).to_bytes()


def mentoring_events(platform: RunningPlatform, event_type: str, match_id: str
                     ) -> list[CloudEvent]:
    records = read_topic(platform.settings.kafka_bootstrap, events_topic("mentoring"),
                         timeout=2)
    events = [CloudEvent.from_bytes(r.value) for r in records]
    return [e for e in events if e.type == event_type and e.data.get("match_id") == match_id]


def test_a_partners_session_is_applied_and_malformed_ones_are_dead_lettered(
        platform: RunningPlatform) -> None:
    bootstrap = platform.settings.kafka_bootstrap
    _, match_id = matched_person(platform)
    session = {"match_id": match_id, "held_on": (TODAY - timedelta(days=2)).isoformat(),
               "duration_minutes": 50, "mode": "phone", "attendance": "attended",
               "safeguarding_concern": False}
    later = {**session, "held_on": (TODAY - timedelta(days=1)).isoformat(),
             "attendance": "did-not-attend"}
    topic = partner_inbound_topic("partner-a")
    marker = uuid.uuid4().hex.encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topic, key=marker, value=case_system_event(session)).get(timeout=30)
        not_json = producer.send(topic, key=marker, value=b"{not a CloudEvent").get(timeout=30)
        maybe = producer.send(topic, key=marker, value=case_system_event(
            {**session, "attendance": "maybe"})).get(timeout=30)
        producer.send(topic, key=marker, value=case_system_event(later)).get(timeout=30)
    finally:
        producer.close()

    logged = wait_for(lambda: len(found := mentoring_events(
        platform, "session-logged", match_id)) == 2 and found)
    assert [(e.data["held_on"], e.data["attendance"], e.data["org"]) for e in logged] == [
        (session["held_on"], "attended", "partner-a"),
        (later["held_on"], "did-not-attend", "partner-a")]
    assert all(e.subject is not None and e.subject.startswith("sub_") for e in logged)

    sent_at = [(str(not_json.partition), str(not_json.offset)),
               (str(maybe.partition), str(maybe.offset))]

    def dead_letters() -> list[Any]:
        """Ours, in the order sent: found by where they came from (their keys are sealed)."""
        records = read_topic(bootstrap, deadletter_topic("mentoring"), timeout=2)
        where = {(h["peerlink-original-partition"], h["peerlink-original-offset"]): r
                 for r in records if (h := headers_of(r)).get("peerlink-original-topic")
                 == topic}
        return [where[at] for at in sent_at if at in where]

    dead = wait_for(lambda: len(dead_letters()) == 2 and dead_letters())
    first, second = (headers_of(r) for r in dead)
    for headers, sent in ((first, not_json), (second, maybe)):
        assert headers["peerlink-error-reason"] == "validation"
        assert headers["peerlink-original-topic"] == topic
        assert headers["peerlink-original-partition"] == str(sent.partition)
        assert headers["peerlink-original-offset"] == str(sent.offset)
        assert headers["peerlink-error"]
    assert "attendance" in second["peerlink-error"]
    assert "maybe" not in second["peerlink-error"]
    assert b"maybe" not in dead[1].value and first["peerlink-sealed"] == "aes256gcm/v2"
    cipher = deadletter_cipher("mentoring", platform.settings)  # the worker's development key
    assert marker not in dead[0].key
    assert cipher.open(topic, not_json.partition, not_json.offset, dead[0].key,
                       part="key") == marker
    assert cipher.open(topic, not_json.partition, not_json.offset, dead[0].value) == \
        b"{not a CloudEvent"
    opened = cipher.open(topic, maybe.partition, maybe.offset, dead[1].value)
    assert CloudEvent.from_bytes(opened).data["attendance"] == "maybe"


def test_a_partner_cannot_log_a_session_on_another_partners_match(
        platform: RunningPlatform) -> None:
    bootstrap = platform.settings.kafka_bootstrap
    _, match_id = matched_person(platform)  # a partner-a mentor's match
    marker = uuid.uuid4().hex.encode()
    topic = partner_inbound_topic("partner-b")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        sent = producer.send(topic, key=marker, value=case_system_event({
            "match_id": match_id, "held_on": TODAY.isoformat(), "duration_minutes": 30,
            "mode": "phone", "attendance": "attended"})).get(timeout=30)
    finally:
        producer.close()

    def ours(record: Any) -> bool:
        """Found by where it came from: a dead letter's key is sealed."""
        headers = headers_of(record)
        return (headers.get("peerlink-original-topic"),
                headers.get("peerlink-original-partition"),
                headers.get("peerlink-original-offset")) == (
            topic, str(sent.partition), str(sent.offset))

    [dead] = wait_for(lambda: [r for r in read_topic(bootstrap, deadletter_topic("mentoring"),
                                                     timeout=2) if ours(r)])
    assert dead.key != marker
    headers = headers_of(dead)
    assert headers["peerlink-error-reason"] == "rejected"
    assert "match_id" in headers["peerlink-error"]
    assert headers["peerlink-original-topic"] == topic
    assert mentoring_events(platform, "session-logged", match_id) == []


def test_a_peer_mentoring_withdrawal_ends_the_match_and_completes(
        platform: RunningPlatform) -> None:
    subject_id, match_id = matched_person(platform)

    withdrawal_id = post(platform, "consent", f"/v1/subjects/{subject_id}/withdrawals",
                         {"purposes": ["peer-mentoring"], "erasure": False,
                          "method": "verbal"}, "trust", "clinician", 202)["withdrawal_id"]

    def status() -> dict[str, Any]:
        response = httpx.get(platform.url("consent", f"/v1/withdrawals/{withdrawal_id}"),
                             headers=platform.headers("trust", "clinician"), timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    done = wait_for(lambda: (s := status())["status"] == "complete" and s)
    assert done["services"]["mentoring"]["status"] == "applied"

    [ended] = wait_for(lambda: mentoring_events(platform, "mentoring-ended", match_id))
    assert ended.subject == subject_id
    assert ended.data["planned"] is False
    assert ended.data["org"] == "partner-a"
    acks = [CloudEvent.from_bytes(r.value)
            for r in read_topic(platform.settings.kafka_bootstrap, CASCADE_ACKS, timeout=2)]
    assert [(a.type, a.subject) for a in acks
            if a.data.get("withdrawal_id") == withdrawal_id
            and a.data.get("service") == "mentoring"] == [("withdrawal-applied", subject_id)]


def test_the_full_journey_travels_as_events_in_order(platform: RunningPlatform) -> None:
    subject_id, match_id = matched_person(platform)
    for attendance in ("attended", "did-not-attend"):
        post(platform, "mentoring", "/v1/sessions", {
            "match_id": match_id, "held_on": TODAY.isoformat(), "duration_minutes": 50,
            "mode": "phone", "attendance": attendance}, "partner-a", "mentor-coordinator", 201)
    for timepoint, items in (("intake", [2, 3, 2, 3, 2, 3, 2]), ("exit", [4, 4, 3, 4, 4, 3, 4])):
        post(platform, "mentoring", "/v1/outcomes", {
            "match_id": match_id, "timepoint": timepoint, "instrument": "SWEMWBS",
            "items": items}, "partner-a", "mentor-coordinator", 201)
    post(platform, "mentoring", f"/v1/matches/{match_id}/end",
         {"planned": True, "reason": "goals met"}, "partner-a", "mentor-coordinator", 200)

    expected = ["mentee-referred", "match-made", "session-logged", "session-logged",
                "outcome-recorded", "outcome-recorded", "mentoring-ended"]

    def journey() -> list[CloudEvent]:
        records = read_topic(platform.settings.kafka_bootstrap, events_topic("mentoring"),
                             timeout=2)
        return [CloudEvent.from_bytes(r.value) for r in records
                if r.key == subject_id.encode()]

    events = wait_for(lambda: len(found := journey()) == len(expected) and found)
    assert [e.type for e in events] == expected
    outcomes = [e.data for e in events if e.type == "outcome-recorded"]
    assert [(o["raw_score"], o["metric_score"]) for o in outcomes] == [(17, 16.88), (26, 23.21)]
    assert events[-1].data["planned"] is True
    assert all(b"07700 900123" not in e.to_bytes() for e in events)

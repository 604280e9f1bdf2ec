"""Partners' own Kafka clients, on the real broker and the real workers: librdkafka
(confluent-kafka) sends CloudEvents made with the CloudEvents Python SDK, in binary and
structured mode, with and without ``time``, naming the person by the ``subject`` attribute or
in data; every valid one is applied (the service publishes what it recorded) and an invalid
one is dead-lettered with a reason naming the attribute or field."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from cloudevents.v1 import kafka as legacy_kafka
from cloudevents.v1.http import CloudEvent as LegacyEvent
from confluent_kafka import KafkaError, Message, Producer

from shared.events.envelope import CloudEvent
from shared.kafka.topics import deadletter_topic, events_topic, partner_inbound_topic
from tests.e2e.test_mentoring_journey import matched_person
from tests.support.kafka import dead_letters_of, headers_of, read_topic
from tests.support.platform import RunningPlatform, running_platform, wait_for

pytestmark = pytest.mark.kafka
TODAY = date.today()
Record = tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]
"""A record as a partner's client sends it: key, value, headers."""


@pytest.fixture(scope="module")
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("partners"), "sqlite") as p:
        yield p


def send_with_librdkafka(bootstrap: str, topic: str, records: list[Record]
                         ) -> list[tuple[int, int]]:
    """Send records with confluent-kafka, as a partner would; returns each one's (partition,
    offset)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    delivered: dict[int, tuple[int, int]] = {}
    failed: list[KafkaError] = []

    def report(index: int) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(error: KafkaError | None, message: Message) -> None:
            partition, offset = message.partition(), message.offset()
            if error is not None or partition is None or offset is None:
                failed.append(error or KafkaError(KafkaError.UNKNOWN))
            else:
                delivered[index] = (partition, offset)
        return on_delivery

    for index, (key, value, headers) in enumerate(records):
        producer.produce(topic, value=value, key=key, headers=headers,
                         on_delivery=report(index))
    assert producer.flush(30) == 0
    assert failed == []
    return [delivered[i] for i in range(len(records))]


def _keyed(message: sdk_kafka.KafkaMessage | legacy_kafka.KafkaMessage, key: str) -> Record:
    headers: list[tuple[str, str | bytes | None]] = list(message.headers.items())
    assert isinstance(message.value, bytes)
    return key.encode(), message.value, headers


def sdk_record(mode: str, attributes: dict[str, Any], data: dict[str, Any], key: str
               ) -> Record:
    """A record made with the SDK's Kafka binding (``cloudevents.core``), timed."""
    event = SdkEvent({"time": datetime.now(UTC), **attributes}, data)
    convert = sdk_kafka.to_binary_event if mode == "binary" else sdk_kafka.to_structured_event
    return _keyed(convert(event), key)


def untimed_record(mode: str, attributes: dict[str, Any], data: dict[str, Any], key: str
                   ) -> Record:
    """A record made with the SDK's v1 API (``cloudevents.v1.kafka``), without ``time``."""
    event = LegacyEvent(attributes, data)
    del event["time"]
    convert = legacy_kafka.to_binary if mode == "binary" else legacy_kafka.to_structured
    return _keyed(convert(event), key)


def _attributes(event_type: str, source: str, **more: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "source": source, "type": event_type,
            "datacontenttype": "application/json", **more}


def published(platform: RunningPlatform, service: str, event_type: str,
              match: Callable[[CloudEvent], bool]) -> list[CloudEvent]:
    """The events of ``event_type`` that ``service`` published and ``match`` picks."""
    records = read_topic(platform.settings.kafka_bootstrap, events_topic(service), timeout=2)
    events = (CloudEvent.from_bytes(r.value) for r in records)
    return [e for e in events if e.type == event_type and match(e)]


def dead_letters(platform: RunningPlatform, service: str, topic: str,
                 sent: list[tuple[int, int]]) -> list[dict[str, str]]:
    """The headers of the dead letters of the records sent at ``sent``, once all are there."""
    records = read_topic(platform.settings.kafka_bootstrap, deadletter_topic(service),
                         timeout=2)
    found = dead_letters_of(records, topic, sent)
    return [headers_of(r) for r in found] if len(found) == len(sent) else []


def register(platform: RunningPlatform) -> str:
    """A person the Trust registered; their subject reference."""
    response = httpx.post(platform.url("consent", "/v1/subjects"),
                          json={"nhs_number": next(platform.numbers)},
                          headers=platform.headers("trust", "clinician"), timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["subject_id"])


def test_the_trusts_client_is_applied_in_either_mode_and_an_invalid_event_dead_lettered(
        platform: RunningPlatform) -> None:
    subject_id = register(platform)
    run = uuid.uuid4().hex[:6]
    teams = {case: f"pc-{case}-{run}" for case in ("binary", "structured", "binary-subject",
                                                   "structured-subject")}
    by_number = {case: platform.screening(teams[case]) for case in ("binary", "structured")}
    by_subject = {case: {k: v for k, v in platform.screening(teams[case]).items()
                         if k != "nhs_number"} for case in ("binary-subject",
                                                            "structured-subject")}
    source = "/trust/epr"
    valid = [
        sdk_record("binary", _attributes("screening-completed", source), by_number["binary"],
                   subject_id),
        sdk_record("structured", _attributes("screening-completed", source),
                   by_number["structured"], subject_id),
        untimed_record("binary", _attributes("screening-completed", source,
                                             subject=subject_id),
                       by_subject["binary-subject"], subject_id),
        untimed_record("structured", _attributes("screening-completed", source,
                                                 subject=subject_id),
                       by_subject["structured-subject"], subject_id),
    ]
    undated = {k: v for k, v in platform.screening(f"pc-bad-{run}").items() if k != "asked_on"}
    key, value, headers = sdk_record("binary", _attributes("screening-completed", source),
                                     platform.screening(f"pc-noid-{run}"), subject_id)
    invalid = [
        sdk_record("binary", _attributes("screening-completed", source), undated, subject_id),
        (key, value, [(k, v) for k, v in headers if k != "ce_id"]),
        sdk_record("structured", _attributes("screening-completed", source,
                                             subject="sub_" + "0" * 32),
                   {**by_number["binary"], "team": f"pc-other-{run}", "nhs_number": None,
                    "subject_id": subject_id}, subject_id),
    ]
    topic = partner_inbound_topic("trust")

    sent = send_with_librdkafka(platform.settings.kafka_bootstrap, topic, valid + invalid)

    recorded = wait_for(lambda: len(found := published(
        platform, "screening", "screening-completed",
        lambda e: e.data.get("team") in teams.values())) == len(teams) and found, timeout=90)
    assert {e.data["team"] for e in recorded} == set(teams.values())
    assert all(e.subject == subject_id for e in recorded
               if e.data["team"] in (teams["binary-subject"], teams["structured-subject"]))
    letters = wait_for(lambda: dead_letters(platform, "screening", topic, sent[len(valid):]),
                       timeout=60)
    assert [(h["peerlink-error-reason"], h["peerlink-error"]) for h in letters] == [
        ("validation", "asked_on: Field required"),
        ("validation", "id: Field required"),
        ("rejected", "subject: differs from data.subject_id")]
    assert published(platform, "screening", "screening-completed",
                     lambda e: e.data.get("team", "").startswith(("pc-bad-", "pc-noid-",
                                                                  "pc-other-"))) == []


def test_a_dva_partners_client_is_applied_in_either_mode_and_a_wrong_subject_dead_lettered(
        platform: RunningPlatform) -> None:
    subject_id, match_id = matched_person(platform)
    source = "/partner-a/case-system"

    def session(minutes: int) -> dict[str, Any]:
        return {"match_id": match_id, "held_on": (TODAY - timedelta(days=1)).isoformat(),
                "duration_minutes": minutes, "mode": "phone", "attendance": "attended",
                "safeguarding_concern": False}

    valid = [
        sdk_record("binary", _attributes("session-logged", source, subject=subject_id),
                   session(41), subject_id),
        sdk_record("structured", _attributes("session-logged", source), session(42),
                   subject_id),
        untimed_record("binary", _attributes("session-logged", source), session(43),
                       subject_id),
        untimed_record("structured", _attributes("session-logged", source,
                                                 subject=subject_id), session(44), subject_id),
    ]
    someone_else = "sub_" + uuid.uuid4().hex
    invalid: list[Record] = [
        sdk_record("binary", _attributes("session-logged", source, subject=someone_else),
                   session(45), someone_else),
        sdk_record("binary", _attributes("session-logged", source),
                   {**session(46), "attendance": "late"}, subject_id),
        (subject_id.encode(), json.dumps(session(47)).encode(),
         [("ce_specversion", b"1.0"), ("ce_id", b"case-\xff"),
          ("ce_source", source.encode()), ("ce_type", b"session-logged")]),
    ]
    topic = partner_inbound_topic("partner-a")

    sent = send_with_librdkafka(platform.settings.kafka_bootstrap, topic, valid + invalid)

    logged = wait_for(lambda: len(found := published(
        platform, "mentoring", "session-logged",
        lambda e: e.data["match_id"] == match_id)) >= len(valid) and found, timeout=90)
    assert sorted(e.data["duration_minutes"] for e in logged) == [41, 42, 43, 44]
    assert {(e.subject, e.data["org"]) for e in logged} == {(subject_id, "partner-a")}
    letters = wait_for(lambda: dead_letters(platform, "mentoring", topic, sent[len(valid):]),
                       timeout=60)
    assert [(h["peerlink-error-reason"], h["peerlink-error"]) for h in letters] == [
        ("rejected", "subject: is not the mentee of this match"),
        ("validation", "attendance: Input should be 'attended', 'did-not-attend', "
                       "'cancelled-by-mentee' or 'cancelled-by-mentor'"),
        ("validation", "id: not valid UTF-8")]
    for headers in letters:
        assert someone_else not in " ".join(headers.values())

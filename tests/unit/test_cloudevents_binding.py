"""The CloudEvents Kafka protocol binding, against records the CloudEvents Python SDK produces:
both content modes, with and without ``time``, with a subject and extension attributes; and
the records it refuses (bad header UTF-8, data that is not JSON, batches), each named by the
attribute and never by a value."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from cloudevents.v1 import kafka as legacy_kafka
from cloudevents.v1.http import CloudEvent as LegacyEvent
from pydantic import ValidationError

from services.screening.entrypoints.worker import decode_partner_screening
from shared.db import Database, UnitOfWork, service_metadata
from shared.events.envelope import CloudEvent
from shared.events.screening import EnquiryDue
from shared.kafka.binding import InvalidRecord, UnsupportedRecord, decode_record
from shared.kafka.consumer import (
    EventApplier,
    InboundRecord,
    Outcome,
    RejectedEvent,
    describe_error,
)

SUBJECT = "sub_" + "a" * 32
TIME = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
DATA: dict[str, Any] = {"org": "trust", "team": "north-cmht", "due_on": "2026-11-02"}
SCHEMA = EnquiryDue.dataschema()
SECRET = "Numbat-5521"
"""A value no error may quote."""

Headers = list[tuple[str, bytes | None]]
Message = tuple[bytes | None, Headers]


def _attributes(*, time: bool = True, **more: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {"id": str(uuid.uuid4()), "source": "/trust/epr",
                                  "type": "enquiry-due", "subject": SUBJECT,
                                  "dataschema": SCHEMA, "datacontenttype": "application/json",
                                  **more}
    if time:
        attributes["time"] = TIME
    return attributes


def _sdk(mode: str, attributes: dict[str, Any], data: Any = DATA) -> Message:
    """A record as the SDK's Kafka binding (``cloudevents.core``) makes it."""
    timeless = "time" not in attributes
    event = SdkEvent(dict(attributes), data)
    if timeless:  # the SDK stamps a time on every event it makes: take it off again
        del event.get_attributes()["time"]
    convert = sdk_kafka.to_binary_event if mode == "binary" else sdk_kafka.to_structured_event
    message = convert(event)
    return message.value, list(message.headers.items())


def _legacy(mode: str, attributes: dict[str, Any], data: Any = DATA) -> Message:
    """A record as the SDK's v1 API (``cloudevents.v1.kafka``) makes it."""
    attrs = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in attributes.items()}
    event = LegacyEvent(attrs, data)
    if "time" not in attributes:
        del event["time"]
    convert = legacy_kafka.to_binary if mode == "binary" else legacy_kafka.to_structured
    message = convert(event)
    assert isinstance(message.value, bytes)
    return message.value, list(message.headers.items())


PRODUCERS: dict[str, Callable[[str, dict[str, Any]], Message]] = {
    "sdk": _sdk, "sdk-v1": _legacy}


@pytest.fixture(params=[(p, m) for p in PRODUCERS for m in ("binary", "structured")],
                ids=lambda pm: "-".join(pm))
def produce(request: pytest.FixtureRequest) -> Callable[[dict[str, Any]], Message]:
    """Make a record with one SDK API, in one content mode."""
    producer, mode = request.param
    return lambda attributes: PRODUCERS[producer](mode, attributes)


def test_both_modes_of_both_sdk_apis_decode_to_the_same_event(
        produce: Callable[[dict[str, Any]], Message]) -> None:
    attributes = _attributes()

    event = decode_record(*produce(attributes))

    assert (event.id, event.source, event.type, event.subject, event.dataschema) == (
        attributes["id"], "/trust/epr", "enquiry-due", SUBJECT, SCHEMA)
    assert event.time == TIME
    assert event.data == DATA
    assert event.datacontenttype == "application/json"


def test_time_is_optional_in_both_modes(produce: Callable[[dict[str, Any]], Message]) -> None:
    value, headers = produce(_attributes(time=False))
    assert value is not None and "time" not in json.loads(value)
    assert all(name != "ce_time" for name, _ in headers)

    event = decode_record(value, headers)

    assert event.time is None
    assert event.data == DATA


def test_extension_attributes_are_kept_in_both_modes(
        produce: Callable[[dict[str, Any]], Message]) -> None:
    event = decode_record(*produce(_attributes(comexampletrace="abc123", partition2="p")))
    assert event.model_extra == {"comexampletrace": "abc123", "partition2": "p"}


def test_a_binary_event_may_say_its_json_data_is_a_json_type() -> None:
    value, headers = _sdk("binary", _attributes(
        datacontenttype="application/vnd.trust.screening+json; charset=utf-8"))
    event = decode_record(value, headers)
    assert event.data == DATA
    assert event.datacontenttype.startswith("application/vnd.trust.screening+json")


def test_a_binary_event_without_a_content_type_carries_json() -> None:
    value, headers = _sdk("binary", _attributes())
    headers = [(k, v) for k, v in headers if k != "content-type"]
    assert decode_record(value, headers).data == DATA


def test_our_own_records_still_decode_as_structured() -> None:
    event = CloudEvent.wrap(EnquiryDue(**DATA), source="/peerlink/screening", subject=SUBJECT,
                            time=TIME)
    value = event.to_bytes()
    assert json.loads(value)["time"] == "2026-11-20T09:30:00Z"  # unchanged: time still there

    for headers in ([], [("ce_type", b"enquiry-due")]):  # the outbox adds a lone ce_type
        assert decode_record(value, headers) == event


def _binary_headers(**changes: bytes | None) -> Headers:
    headers: dict[str, bytes | None] = {
        "ce_specversion": b"1.0", "ce_id": b"e1", "ce_source": b"/trust/epr",
        "ce_type": b"enquiry-due", "content-type": b"application/json"}
    headers.update(changes)
    return [(k, v) for k, v in headers.items() if v is not None]


def _refusal(value: bytes | None, headers: Headers) -> tuple[str, str]:
    """What the dead letter would say about a record."""
    with pytest.raises(ValueError) as caught:
        decode_record(value, headers)
    reason, message = describe_error(caught.value)
    assert SECRET not in message
    return reason, message


@pytest.mark.parametrize(("header", "named"), [
    ("ce_id", "id"), ("ce_source", "source"), ("ce_type", "type"), ("ce_time", "time"),
    ("ce_subject", "subject"), ("content-type", "datacontenttype"),
])
def test_invalid_utf8_in_a_header_is_refused_naming_the_attribute(header: str,
                                                                  named: str) -> None:
    value = json.dumps(DATA).encode()
    assert _refusal(value, _binary_headers(**{header: SECRET.encode() + b"\xff\xfe"})) == (
        "validation", f"{named}: not valid UTF-8")


def test_an_extension_is_refused_without_naming_it() -> None:
    headers = _binary_headers(ce_alicesmith=b"\xff" + SECRET.encode())
    reason, message = _refusal(json.dumps(DATA).encode(), headers)
    assert (reason, message) == ("validation", "an extension attribute: not valid UTF-8")

    invented = _binary_headers(**{"ce_Alice Smith": SECRET.encode()})
    reason, message = _refusal(json.dumps(DATA).encode(), invented)
    assert reason == "validation" and "Alice" not in message
    assert message.startswith("an extension attribute: its name is not valid")


@pytest.mark.parametrize("content_type", [b"text/plain", b"application/xml",
                                          b"application/octet-stream", b"text/json"])
def test_binary_data_that_is_not_json_is_refused_naming_datacontenttype(
        content_type: bytes) -> None:
    headers = _binary_headers(**{"content-type": content_type})
    reason, message = _refusal(SECRET.encode(), headers)
    assert reason == "rejected"
    assert message.startswith("datacontenttype: only JSON data is accepted")


def test_a_structured_event_with_another_format_or_binary_data_is_refused() -> None:
    value, _ = _sdk("structured", _attributes())
    assert _refusal(value, [("content-type", b"application/cloudevents+avro")]) == (
        "rejected", "content-type: only the JSON event format (application/cloudevents+json) "
                    "is accepted")
    with_base64 = json.dumps({**_attributes(), "time": "2026-11-20T09:30:00Z",
                              "data_base64": "TnVtYmF0"}).encode()
    reason, message = _refusal(with_base64, [("content-type", b"application/cloudevents+json")])
    assert reason == "rejected" and message.startswith("data_base64: only JSON data")
    wrong_type = json.dumps({**_attributes(), "time": "2026-11-20T09:30:00Z",
                             "datacontenttype": "text/csv"}).encode()
    reason, message = _refusal(wrong_type, [])
    assert reason == "validation"
    assert message.startswith("datacontenttype: Value error, only JSON data is accepted")


def test_a_structured_event_with_parameters_on_its_content_type_is_accepted() -> None:
    value, _ = _sdk("structured", _attributes())
    event = decode_record(value, [("Content-Type", b"application/cloudevents+json; "
                                                   b"charset=UTF-8")])
    assert event.subject == SUBJECT


def test_batch_mode_is_refused() -> None:
    one, _ = _sdk("structured", _attributes())
    assert one is not None
    batch = b"[" + one + b"," + one + b"]"
    assert _refusal(batch, [("content-type", b"application/cloudevents-batch+json")]) == (
        "rejected", "content-type: batch mode is not accepted; send one CloudEvent per record")


def test_missing_attributes_are_named_alike_in_both_modes() -> None:
    binary = _refusal(json.dumps(DATA).encode(), _binary_headers(ce_id=None, ce_source=None))
    structured = _refusal(json.dumps({"specversion": "1.0", "type": "enquiry-due",
                                      "data": DATA}).encode(), [])
    assert binary == structured == ("validation", "id: Field required; source: Field required")


@pytest.mark.parametrize(("changes", "expected"), [
    ({"ce_time": SECRET.encode()}, "time: Value error, time must be an RFC 3339 timestamp"),
    ({"ce_time": b"2026-11-20T09:30:00"}, "time: Value error, time must be an RFC 3339"),
    ({"ce_time": b"1700000000"}, "time: Value error, time must be an RFC 3339"),
    ({"ce_specversion": b"0.3"}, "specversion: Input should be '1.0'"),
    ({"ce_id": b""}, "id: String should have at least 1 character"),
    ({"ce_id": b"x" * 5000}, "id: String should have at most 200 characters"),
    ({"ce_source": b"/trust\x00epr"}, "source: Value error, must not hold control characters"),
    ({"ce_data": SECRET.encode()}, "data: travels in the record value"),
    ({"ce_datacontenttype": b"application/json"}, "datacontenttype: travels in the "
                                                  "content-type header"),
])
def test_a_bad_binary_attribute_is_named_never_quoted(changes: dict[str, bytes],
                                                      expected: str) -> None:
    reason, message = _refusal(json.dumps(DATA).encode(), _binary_headers(**changes))
    assert reason == "validation"
    assert message.startswith(expected)


def test_a_repeated_header_and_bad_json_data_are_refused() -> None:
    repeated = [*_binary_headers(), ("ce_id", b"e2")]
    assert _refusal(json.dumps(DATA).encode(), repeated) == ("validation",
                                                             "id: given more than once")
    for value in (b"{" + SECRET.encode(), b"\xff\xfe", b"[" * 10_000, b'{"a": NaN}'):
        assert _refusal(value, _binary_headers()) == ("validation", "data: not valid JSON")
    assert _refusal(b"[1, 2]", _binary_headers()) == (
        "validation", "data: Input should be a valid dictionary")


def test_binary_attributes_without_specversion_are_not_taken_for_structured() -> None:
    headers = [(k, v) for k, v in _binary_headers() if k != "ce_specversion"]
    assert _refusal(json.dumps(DATA).encode(), headers) == (
        "validation", "specversion: Field required (binary mode: the ce_specversion header)")


def test_the_subject_attribute_names_the_person_when_data_does_not() -> None:
    screening = {"org": "trust", "team": "north-cmht", "borough": "camden",
                 "gender": "female", "age_band": "25-34", "asked_on": "2026-11-20",
                 "asked_by_role": "care-coordinator", "training_level": 2, "private": True,
                 "outcome": "declined"}
    attributes = _attributes(type="screening-completed")
    del attributes["dataschema"]
    for mode in ("binary", "structured"):
        event = decode_record(*_sdk(mode, attributes, screening))
        command = decode_partner_screening(event)
        assert (command.subject_id, command.nhs_number) == (SUBJECT, None)

        same = decode_record(*_sdk(mode, attributes, {**screening, "subject_id": SUBJECT}))
        assert decode_partner_screening(same).subject_id == SUBJECT

        other = "sub_" + "b" * 32
        differs = decode_record(*_sdk(mode, attributes, {**screening, "subject_id": other}))
        with pytest.raises(RejectedEvent) as caught:
            decode_partner_screening(differs)
        assert describe_error(caught.value) == ("rejected",
                                                "subject: differs from data.subject_id")

        # decided before anyone is registered: the number is never looked up or registered
        both = decode_record(*_sdk(mode, attributes, {**screening, "nhs_number": "9434765919"}))
        with pytest.raises(RejectedEvent) as caught:
            decode_partner_screening(both)
        assert describe_error(caught.value) == (
            "rejected", "subject: name the person by the subject attribute or by "
                        "data.nhs_number, not both")

    not_a_reference = decode_record(*_sdk("binary", {**attributes, "subject": "9434765919"},
                                          screening))
    with pytest.raises(RejectedEvent) as refused:
        decode_partner_screening(not_a_reference)
    assert describe_error(refused.value) == ("rejected", "subject: not a subject reference")


def test_a_partner_may_not_claim_a_peerlink_source() -> None:
    event = decode_record(*_sdk("binary", _attributes(source="/peerlink/consent")))
    with pytest.raises(RejectedEvent) as caught:
        decode_partner_screening(event)
    assert describe_error(caught.value) == (
        "rejected", "source: a partner's event may not claim a Peerlink service")


class _Kept:
    """Dead letters kept in memory."""

    def __init__(self) -> None:
        self.letters: list[tuple[str, str]] = []

    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        self.letters.append((reason, message))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    metadata = service_metadata()
    db = Database(f"sqlite:///{tmp_path / 'inbox.db'}", metadata)
    metadata.create_all(db.engine)
    yield db
    db.dispose()


def test_the_applier_applies_binary_records_and_dead_letters_bad_ones_by_attribute(
        database: Database) -> None:
    applied: list[CloudEvent] = []

    def remember(_uow: UnitOfWork, event: CloudEvent, _payload: object) -> None:
        applied.append(event)

    kept = _Kept()
    applier = EventApplier("test", "test.partner-inbound", database,
                           {"enquiry-due": remember}, kept, reject_unhandled=True)
    value, headers = _sdk("binary", _attributes(time=False))
    missing_id = [(k, v) for k, v in headers if k != "ce_id"]

    outcomes = [applier.process(InboundRecord("partner.trust.inbound", 0, offset, None, v, h))
                for offset, (v, h) in enumerate([(value, headers), (value, headers),
                                                 (value, missing_id)])]

    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED]
    assert [(e.subject, e.time, e.data) for e in applied] == [(SUBJECT, None, DATA)]
    assert kept.letters == [("validation", "id: Field required")]


def test_a_naive_time_is_still_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        CloudEvent(id="1", source="/x", type="t", time=datetime(2026, 11, 20, 9, 30))
    assert describe_error(caught.value) == (
        "validation", "time: Value error, time must carry a timezone (RFC 3339)")


def test_the_binding_raises_its_own_errors() -> None:
    with pytest.raises(InvalidRecord, match="specversion: not valid UTF-8"):
        decode_record(b"{}", [("ce_specversion", b"\xff")])
    with pytest.raises(UnsupportedRecord, match="batch mode"):
        decode_record(b"[]", [("content-type", b"application/cloudevents-batch+json")])

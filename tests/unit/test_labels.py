"""Free-text labels (team, borough, role) hold to a safe pattern: a formula-like team is refused
by the event contract and the request model, and a partner's record carrying one is
dead-lettered with the standard headers naming the field."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import MetaData

from ops.demo import BOROUGHS, TEAMS
from services.screening.entrypoints.worker import decode_partner_screening
from services.screening.service_layer.commands import RecordScreening
from shared.db import Database, UnitOfWork
from shared.events.envelope import CloudEvent
from shared.events.screening import EnquiryDue
from shared.events.vocabulary import Label
from shared.kafka.consumer import DeadLetterSink, EventApplier, InboundRecord, Outcome
from shared.kafka.deadletters import DeadLetterCipher

FORMULA = "=cmd|' /C calc'!A0"
KEY = bytes(range(32))
LABEL = TypeAdapter(Label)
ASKED: dict[str, Any] = {
    "nhs_number": "943 476 5919", "org": "trust", "team": "north-cmht", "borough": "camden",
    "gender": "female", "age_band": "25-34", "asked_on": "2026-11-20",
    "asked_by_role": "care-coordinator", "training_level": 2, "private": True,
    "outcome": "asked", "hark": {"humiliated": True, "afraid": False, "raped": False,
                                 "kicked": False},
    "past_abuse": "no", "abuser_relationship": "ex-partner", "affected_mental_health": "yes",
}


@pytest.mark.parametrize("label", [
    *TEAMS, *BOROUGHS, "Camden", "matrix", "unknown", "care-coordinator", "idva", "police",
    "enhanced", "St. Mary's (East)", "A&E / Urgent care", "Police, MASH", "team_1", "3rd floor",
    "x" * 100,
])
def test_labels_in_use_still_pass(label: str) -> None:
    assert LABEL.validate_python(label) == label


@pytest.mark.parametrize("label", [
    FORMULA, "+1", "-1", "@SUM(A1)", "\tnorth", "\rnorth", " north", "north\n", "a;b", "a=b",
    "<b>north</b>", "x" * 101, "",
])
def test_formula_like_and_odd_labels_are_refused(label: str) -> None:
    with pytest.raises(ValidationError):
        LABEL.validate_python(label)


def test_the_event_contract_refuses_a_formula_as_a_team_and_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        EnquiryDue(org="trust", team=FORMULA, due_on="2026-11-02")
    [error] = caught.value.errors()
    assert (error["loc"], error["type"]) == (("team",), "string_pattern_mismatch")


@pytest.mark.parametrize("name", ["team", "borough", "asked_by_role"])
def test_the_request_model_refuses_a_formula_label_and_names_the_field(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RecordScreening.model_validate({**ASKED, name: FORMULA})
    assert [e["loc"] for e in caught.value.errors()] == [(name,)]


@dataclass
class _Sent:
    def get(self, timeout: float | None = None) -> None:
        return None


@dataclass
class _Producer:
    """Keeps what the dead-letter sink sends instead of a broker."""

    records: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = field(
        default_factory=list)

    def send(self, topic: str, key: bytes | None, value: bytes,
             headers: list[tuple[str, bytes]]) -> _Sent:
        self.records.append((topic, key, value, headers))
        return _Sent()

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None


def test_a_partners_formula_team_is_dead_lettered_naming_the_field() -> None:
    producer = _Producer()
    applied: list[Any] = []

    def adopt(_uow: UnitOfWork, _event: CloudEvent, command: Any) -> None:
        applied.append(command)

    inbound = EventApplier(
        "screening", "screening.partner-inbound", Database("sqlite://", MetaData()),
        {"screening-completed": adopt},
        DeadLetterSink("screening", "deadletter.screening", producer, DeadLetterCipher(KEY)),
        decode=decode_partner_screening, reject_unhandled=True)
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/trust/epr",
             "type": "screening-completed", "time": "2026-11-20T09:30:00Z",
             "datacontenttype": "application/json", "data": {**ASKED, "team": FORMULA}}
    value = json.dumps(event).encode()

    outcome = inbound.process(InboundRecord("partner.trust.inbound", 1, 42,
                                            b"sub_" + b"a" * 32, value))

    assert outcome is Outcome.DEAD_LETTERED and applied == []
    [(topic, _key, sealed, header_list)] = producer.records
    headers = dict(header_list)
    assert topic == "deadletter.screening"
    assert headers["peerlink-sealed"] == b"aes256gcm/v2"
    assert headers["peerlink-error-reason"] == b"validation"
    assert headers["peerlink-error"].decode().startswith("team: String should match pattern")
    assert (headers["peerlink-original-topic"], headers["peerlink-original-partition"],
            headers["peerlink-original-offset"]) == (b"partner.trust.inbound", b"1", b"42")
    assert headers["peerlink-consumer"] == b"screening.partner-inbound"
    assert b"cmd|" not in sealed
    assert DeadLetterCipher(KEY).open("partner.trust.inbound", 1, 42, sealed) == value

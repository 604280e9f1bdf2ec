"""Dead-letter errors name only what the schema knows; dead-letter values are sealed to their
position."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.events.catalogue import payload_model
from shared.kafka.consumer import RejectedEvent, describe_error
from shared.kafka.deadletters import DeadLetter, DeadLetterCipher

KEY = bytes(range(32))
INVENTED = "Alice Smith"


class Visit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["visit"]
    minutes: int


class Call(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["call"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match_id: uuid.UUID | None = None
    contact: Annotated[Visit | Call, Field(discriminator="kind")] | None = None
    attendance: Literal["attended", "missed"] = "attended"


def _described(data: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as caught:
        Record.model_validate(data)
    reason, message = describe_error(caught.value)
    assert reason == "validation"
    return message


def test_an_invented_field_is_reported_without_its_name() -> None:
    assert _described({INVENTED: "her sister's address"}) == "record: unexpected field"
    nested = _described({"contact": {"kind": "call", INVENTED: 1}})
    assert nested == "contact.call: unexpected field"


@pytest.mark.parametrize("data", [
    {"match_id": "Alice-Smith-9434765919"},
    {"contact": {"kind": INVENTED}},
])
def test_messages_that_would_quote_the_input_name_only_the_problem(
        data: dict[str, object]) -> None:
    message = _described(data)
    assert "Alice" not in message and "9434765919" not in message
    assert message.split(":")[0] in {"match_id", "contact"}


def test_known_fields_and_their_problems_are_still_named() -> None:
    message = _described({"attendance": "Alice", "contact": {"kind": "visit", "minutes": "x"}})
    assert message == ("contact.visit.minutes: Input should be a valid integer, unable to parse "
                       "string as an integer; attendance: Input should be 'attended' or 'missed'")


def test_an_invented_event_type_is_not_echoed() -> None:
    with pytest.raises(ValueError) as caught:
        payload_model(INVENTED)
    assert describe_error(caught.value) == (
        "rejected", "type: not an event type (or version) this service knows")
    assert describe_error(RejectedEvent("match_id: no match of partner-a has this id")) == (
        "rejected", "match_id: no match of partner-a has this id")
    assert describe_error(KeyError(INVENTED)) == ("unexpected", "KeyError")


def test_a_sealed_value_opens_only_under_its_key_for_its_position() -> None:
    cipher = DeadLetterCipher(KEY)
    sealed = cipher.seal("partner.trust.inbound", 2, 17, b"secret")
    assert b"secret" not in sealed
    assert cipher.open("partner.trust.inbound", 2, 17, sealed) == b"secret"
    with pytest.raises(InvalidTag):
        cipher.open("partner.trust.inbound", 2, 18, sealed)
    with pytest.raises(InvalidTag):
        DeadLetterCipher(bytes(32)).open("partner.trust.inbound", 2, 17, sealed)
    with pytest.raises(ValueError, match="32 bytes"):
        DeadLetterCipher(b"short")


def _letter(value: bytes, **headers: str) -> DeadLetter:
    return DeadLetter("deadletter.screening", 0, 3, b"k", value, {
        "peerlink-original-topic": "partner.trust.inbound", "peerlink-original-partition": "2",
        "peerlink-original-offset": "17", **headers})


def test_original_values_are_unsealed_and_letters_from_before_sealing_kept() -> None:
    cipher = DeadLetterCipher(KEY)
    sealed = _letter(cipher.seal("partner.trust.inbound", 2, 17, b"secret"),
                     **{"peerlink-sealed": "aes256gcm/v1"})
    asked: list[str] = []

    def cipher_for(service: str) -> DeadLetterCipher:
        asked.append(service)
        return cipher

    assert sealed.original_value(cipher_for) == b"secret"
    assert asked == ["screening"]
    assert _letter(b"as it was").original_value(cipher_for) == b"as it was"
    assert asked == ["screening"]
    with pytest.raises(ValueError, match="unknown scheme"):
        _letter(b"x", **{"peerlink-sealed": "rot13/v0"}).original_value(cipher_for)


def test_a_v2_letter_seals_the_key_too_and_a_v1_letter_kept_it_in_clear() -> None:
    cipher = DeadLetterCipher(KEY)
    nhs_key = b"9434765919"
    sealed_key = cipher.seal("partner.trust.inbound", 2, 17, nhs_key, part="key")
    assert nhs_key not in sealed_key
    letter = DeadLetter("deadletter.screening", 0, 3, sealed_key,
                        cipher.seal("partner.trust.inbound", 2, 17, b"secret"), {
                            "peerlink-original-topic": "partner.trust.inbound",
                            "peerlink-original-partition": "2",
                            "peerlink-original-offset": "17",
                            "peerlink-sealed": "aes256gcm/v2"})
    assert letter.original_key(lambda _service: cipher) == nhs_key
    assert letter.original_value(lambda _service: cipher) == b"secret"
    # a sealed key does not open as a value, nor a value as a key
    with pytest.raises(InvalidTag):
        cipher.open("partner.trust.inbound", 2, 17, sealed_key)
    v1 = _letter(cipher.seal("partner.trust.inbound", 2, 17, b"secret"),
                 **{"peerlink-sealed": "aes256gcm/v1"})
    assert v1.original_key(lambda _service: cipher) == b"k"

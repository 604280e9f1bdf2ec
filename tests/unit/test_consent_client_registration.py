"""Registering by NHS number through the consent client: the key that comes back serves
seals only for a second from the asking, and a person erased meanwhile is refused."""

from __future__ import annotations

import time

import httpx
import pytest

from shared.consent_client import ConsentClient, resolve_subject
from shared.crypto import DataKey, KeyShredded

SUBJECT = "sub_" + "1" * 32
NHS_NUMBER = "9434765919"


class Token:
    service = "screening"

    def token(self) -> str:
        return "service-token"


def answering(status: int, body: dict[str, str], handled: list[float]) -> ConsentClient:
    def answer(request: httpx.Request) -> httpx.Response:
        handled.append(time.monotonic())
        return httpx.Response(status, json=body)

    consent = ConsentClient("http://consent.test", Token())
    consent._client = httpx.Client(transport=httpx.MockTransport(answer))
    return consent


class Confirmed:
    """The key cache, as far as ``resolve_subject`` uses it."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, DataKey, float]] = []

    def live_key(self, subject_id: str) -> DataKey:
        raise AssertionError("a registration by NHS number makes no second request")

    def confirmed(self, subject_id: str, key: DataKey, asked_at: float) -> None:
        self.taken.append((subject_id, key, asked_at))


def test_the_key_a_registration_answers_with_is_dated_from_before_the_request() -> None:
    handled: list[float] = []
    consent = answering(201, {"subject_id": SUBJECT, "key_id": "k1", "key": "AAAA"}, handled)
    keys = Confirmed()

    assert resolve_subject(consent, keys, NHS_NUMBER, None, None) == SUBJECT

    [(subject_id, key, asked_at)] = keys.taken
    assert (subject_id, key.key_id) == (SUBJECT, "k1")
    assert asked_at <= handled[0]  # not the moment the (perhaps slow) answer arrived


def test_a_person_erased_while_being_registered_is_refused_as_erased() -> None:
    body = {"type": "erased-meanwhile", "title": "the person was erased"}
    consent = answering(409, body, [])
    keys = Confirmed()

    with pytest.raises(KeyShredded):
        resolve_subject(consent, keys, NHS_NUMBER, None, None)
    assert keys.taken == []

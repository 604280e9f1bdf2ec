"""The consent client never lets a caller's input shape the consent service's URL: a string
that is no subject reference names nobody and is never sent."""

from __future__ import annotations

import httpx
import pytest

from shared.consent_client import ConsentClient
from shared.crypto import UnknownSubject

SUBJECT = "sub_" + "0" * 32


class Token:
    service = "mentoring"

    def token(self) -> str:
        return "service-token"


def client(sent: list[httpx.Request]) -> ConsentClient:
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"relationship": True, "purposes": {},
                                         "sharing_recipients": [], "key_id": "k",
                                         "key": "AAAA", "pseudonym": None})

    consent = ConsentClient("http://consent.test", Token())
    consent._client = httpx.Client(transport=httpx.MockTransport(answer))
    return consent


@pytest.mark.parametrize("subject_id", ["0", "../data-keys/" + SUBJECT, SUBJECT + "/x",
                                        "sub_" + "0" * 31 + "\n", "sub_" + "G" * 32,
                                        SUBJECT + "?org=partner-b", ""])
@pytest.mark.parametrize("call", ["data_key", "consents", "safeguarding_pseudonym"])
def test_what_is_no_subject_reference_is_never_sent(subject_id: str, call: str) -> None:
    sent: list[httpx.Request] = []
    consent = client(sent)
    arguments = (subject_id, "partner-a") if call == "consents" else (subject_id,)
    with pytest.raises(UnknownSubject):
        getattr(consent, call)(*arguments)
    assert sent == []


def test_a_reference_goes_in_the_path_and_the_organisation_in_the_query() -> None:
    sent: list[httpx.Request] = []
    client(sent).consents(SUBJECT, "partner-a&org=trust")
    [request] = sent
    assert request.url.path == f"/internal/v1/subjects/{SUBJECT}/consents"
    assert request.url.params.get_list("org") == ["partner-a&org=trust"]

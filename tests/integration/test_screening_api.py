"""Recording routine enquiries through the screening API, with a real consent service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from shared.events.envelope import CloudEvent
from shared.events.screening import ScreeningCompleted
from tests.support.http import serving
from tests.support.screening import policy_refused_bearer
from tests.support.services import bearer, issuing, settings_for

ASKED: dict[str, Any] = {
    "nhs_number": "943 476 5919", "org": "trust", "team": "north-cmht", "borough": "camden",
    "gender": "female", "age_band": "25-34", "asked_on": "2026-11-20",
    "asked_by_role": "care-coordinator", "training_level": 2, "private": True,
    "outcome": "asked", "hark": {"humiliated": True, "afraid": False, "raped": False,
                                 "kicked": False},
    "past_abuse": "no", "abuser_relationship": "ex-partner", "affected_mental_health": "yes",
    "notes": "lives with her sister since October",
}


@pytest.fixture
def screening(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[tuple[ScreeningAdapters, TestClient]]:
    consent_db = f"sqlite:///{tmp_path / 'consent.db'}"
    settings = settings_for(monkeypatch, tmp_path,
                            {"consent": consent_db, "screening": database_url})
    with issuing(settings) as settings, \
            serving(consent_api(ConsentAdapters(settings))) as consent_url:
        service = ScreeningAdapters(settings.model_copy(update={"consent_url": consent_url}))
        yield service, TestClient(screening_api(service))
        service.database.dispose()  # the PostgreSQL server's connections are shared


def _outbox(service: ScreeningAdapters) -> list[Any]:
    outbox = service.database.metadata.tables["outbox"]
    with service.database.read() as session:
        return list(session.execute(select(outbox).order_by(outbox.c.seq)))


def test_an_enquiry_is_scored_stored_sealed_and_published(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    response = client.post("/v1/screenings", json=ASKED,
                           headers=bearer(service.settings, "trust", "clinician"))

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["hark_score"], body["current_abuse"], body["past_abuse"], body["disclosed"]) \
        == (1, True, "no", True)
    assert body["notes"] == ASKED["notes"]
    assert body["flags"] == []
    [row] = _outbox(service)
    event = CloudEvent.from_bytes(row.payload)
    assert event.type == "screening-completed"
    assert event.subject == body["subject_id"] == row.aggregate_id
    payload = ScreeningCompleted.model_validate(event.data)
    assert payload.personal is not None
    assert b"sister" not in row.payload and b"9434765919" not in row.payload
    fetched = client.get(f"/v1/screenings/{body['id']}",
                         headers=bearer(service.settings, "trust", "clinician"))
    assert fetched.json()["notes"] == ASKED["notes"]


def test_an_enquiry_by_nhs_number_makes_one_request_to_consent(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    """The fast ingest path: registering answers with the data key the notes are sealed
    under, so recording an enquiry is one round trip to consent, not two; an enquiry by
    subject reference still checks the person live first."""
    service, client = screening
    sent: list[str] = []
    service.registry._client.event_hooks["request"] = [
        lambda request: sent.append(f"{request.method} {request.url.path}")]
    first = client.post("/v1/screenings", json=ASKED,
                        headers=bearer(service.settings, "trust", "clinician"))
    assert first.status_code == 201, first.text
    assert sent == ["POST /internal/v1/registrations"]
    subject_id = first.json()["subject_id"]

    sent.clear()
    by_reference = {k: v for k, v in ASKED.items() if k != "nhs_number"}
    again = client.post("/v1/screenings", json={**by_reference, "subject_id": subject_id},
                        headers=bearer(service.settings, "trust", "clinician"))
    assert again.status_code == 201, again.text
    assert sent == [f"GET /internal/v1/data-keys/{subject_id}"]
    assert again.json()["notes"] == ASKED["notes"]


def test_a_non_private_enquiry_is_accepted_but_flagged(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    response = client.post("/v1/screenings", json={**ASKED, "private": False},
                           headers=bearer(service.settings, "trust", "clinician"))
    assert response.status_code == 201
    assert "QS116" in response.json()["flags"][0]


@pytest.mark.parametrize(("change", "field"), [
    ({"outcome": "declined"}, "hark must be absent"),
    ({"hark": None}, "hark is required"),
    ({"nhs_number": "9434765918"}, "nhs_number"),
    ({"age_band": "17-24"}, "age_band"),
    ({"training_level": 4}, "training_level"),
    ({"subject_id": "sub_" + "0" * 32}, "exactly one"),
])
def test_bad_input_is_a_422_naming_the_problem_and_nothing_is_written(
        screening: tuple[ScreeningAdapters, TestClient], change: dict[str, Any],
        field: str) -> None:
    service, client = screening
    body = {k: v for k, v in {**ASKED, **change}.items() if v is not None}
    response = client.post("/v1/screenings", json=body,
                           headers=bearer(service.settings, "trust", "clinician"))
    assert response.status_code == 422
    assert field in response.text
    assert "sister" not in response.text
    assert _outbox(service) == []


def test_an_unknown_subject_reference_is_a_422(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    body = {k: v for k, v in ASKED.items() if k != "nhs_number"}
    response = client.post("/v1/screenings", json={**body, "subject_id": "sub_" + "a" * 32},
                           headers=bearer(service.settings, "trust", "clinician"))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "subject_id"


def test_a_formula_as_a_team_is_a_422_naming_the_field(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    response = client.post("/v1/screenings", json={**ASKED, "team": "=cmd|' /C calc'!A0"},
                           headers=bearer(service.settings, "trust", "clinician"))
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["details"]] == ["team"]
    assert "cmd|" not in response.text
    assert _outbox(service) == []


@pytest.mark.parametrize(("org", "role", "body_org"), [
    pytest.param("trust", "clinician", "partner-a", id="trust-clinician-for-a-partner"),
    pytest.param("partner-a", "partner-staff", "partner-a", id="partner-staff"),
    pytest.param("partner-a", "partner-staff", "trust", id="partner-staff-for-the-trust"),
    pytest.param("service", "screening", "trust", id="a-service-on-its-own"),
    pytest.param("trust", "safeguarding-lead", "trust", id="safeguarding-lead"),
    pytest.param("trust", "ops-viewer", "trust", id="ops-viewer"),
    pytest.param("trust", "dpo", "trust", id="dpo"),
])
def test_who_may_record(screening: tuple[ScreeningAdapters, TestClient], org: str, role: str,
                        body_org: str) -> None:
    service, client = screening
    response = client.post("/v1/screenings", json={**ASKED, "org": body_org},
                           headers=bearer(service.settings, org, role))
    assert response.status_code == 403
    assert response.json()["message"]
    assert _outbox(service) == []


@pytest.mark.parametrize("org", ["partner-a", "partner-b"])
def test_a_partner_clinician_token_is_refused_outright(
        screening: tuple[ScreeningAdapters, TestClient], org: str) -> None:
    """Clinicians exist only at the Trust: a token naming one at a partner is a 401, however
    well signed, before any screening rule is asked."""
    service, client = screening
    headers = policy_refused_bearer(service.settings, org, "clinician")
    response = client.post("/v1/screenings", json={**ASKED, "org": org}, headers=headers)
    assert response.status_code == 401
    assert client.get(f"/v1/subjects/sub_{'a' * 32}/results",
                      headers=headers).status_code == 401
    assert _outbox(service) == []


def test_consent_service_down_is_a_503_and_nothing_is_written(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, _ = screening
    offline = ScreeningAdapters(service.settings.model_copy(
        update={"consent_url": "http://127.0.0.1:9"}))
    response = TestClient(screening_api(offline)).post(
        "/v1/screenings", json=ASKED, headers=bearer(service.settings, "trust", "clinician"))
    offline.database.dispose()
    assert response.status_code == 503
    outbox = service.database.metadata.tables["outbox"]
    with service.database.read() as session:
        assert session.execute(select(func.count()).select_from(outbox)).scalar_one() == 0

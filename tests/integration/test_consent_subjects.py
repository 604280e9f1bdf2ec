"""Registering people and serving their data keys, on both databases."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.consent.bootstrap import ConsentService
from services.consent.entrypoints.api import build_api
from shared.crypto import b64d
from tests.support.services import bearer, settings_for


@pytest.fixture
def consent(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> tuple[ConsentService, TestClient]:
    settings = settings_for(monkeypatch, tmp_path, {"consent": database_url})
    service = ConsentService(settings)
    return service, TestClient(build_api(service))


def test_a_person_is_registered_once(consent: tuple[ConsentService, TestClient]) -> None:
    service, client = consent
    headers = bearer(service.settings, "trust", "clinician")

    first = client.post("/v1/subjects", json={"nhs_number": "943 476 5919"}, headers=headers)
    again = client.post("/v1/subjects", json={"nhs_number": "9434765919"}, headers=headers)

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json()["subject_id"] == first.json()["subject_id"]
    assert first.json()["subject_id"].startswith("sub_")


def test_registering_a_known_person_reveals_nothing_to_another_organisation(
        consent: tuple[ConsentService, TestClient]) -> None:
    """Regression (adversarial review, case 1): partner staff who knew a Trust patient's NHS
    number got 200 "already registered" and then the Trust's consents."""
    service, client = consent
    client.post("/v1/subjects", json={"nhs_number": "943 476 5919"},
                headers=bearer(service.settings, "trust", "clinician"))
    partner = bearer(service.settings, "partner-b", "partner-staff")

    known = client.post("/v1/subjects", json={"nhs_number": "943 476 5919"}, headers=partner)
    unknown = client.post("/v1/subjects", json={"nhs_number": "401 023 2137"}, headers=partner)

    assert (known.status_code, unknown.status_code) == (201, 201)
    assert set(known.json()) == set(unknown.json()) == {"subject_id"}
    assert dict(known.headers).keys() == dict(unknown.headers).keys()
    view = client.get(f"/v1/subjects/{known.json()['subject_id']}/consents", headers=partner)
    assert view.status_code == 200
    assert view.json()["history"] == []
    assert "trust" not in view.text


@pytest.mark.parametrize("nhs_number", ["9434765918", "12345", "94347659190", "abcdefghij"])
def test_an_invalid_nhs_number_is_a_422_naming_the_field(
        consent: tuple[ConsentService, TestClient], nhs_number: str) -> None:
    service, client = consent
    response = client.post("/v1/subjects", json={"nhs_number": nhs_number},
                           headers=bearer(service.settings, "trust", "clinician"))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "nhs_number"
    assert nhs_number not in response.text


def test_data_keys_are_for_services_only_and_gone_after_shredding(
        consent: tuple[ConsentService, TestClient]) -> None:
    service, client = consent
    subject_id = client.post("/v1/subjects", json={"nhs_number": "943 476 5919"},
                             headers=bearer(service.settings, "trust", "clinician")
                             ).json()["subject_id"]
    url = f"/v1/subjects/{subject_id}".replace("/v1/subjects", "/internal/v1/data-keys")

    assert client.get(url, headers=bearer(service.settings, "trust", "clinician")
                      ).status_code == 403
    served = client.get(url, headers=bearer(service.settings, "service", "screening"))
    assert served.status_code == 200
    assert len(b64d(served.json()["key"])) == 32

    with service.database.unit_of_work() as uow:
        assert service.keys.shred(uow.session, subject_id) == served.json()["key_id"]
    gone = client.get(url, headers=bearer(service.settings, "service", "screening"))
    assert gone.status_code == 410
    unknown = client.get("/internal/v1/data-keys/sub_" + "0" * 32,
                         headers=bearer(service.settings, "service", "screening"))
    assert unknown.status_code == 404


def test_the_nhs_number_is_stored_only_sealed(consent: tuple[ConsentService, TestClient]
                                              ) -> None:
    service, client = consent
    client.post("/v1/subjects", json={"nhs_number": "9434765919"},
                headers=bearer(service.settings, "trust", "clinician"))
    with service.database.read() as session:
        dump = [str(row) for t in ("subjects", "outbox")
                for row in session.execute(service.database.metadata.tables[t].select())]
    assert dump
    assert not any("9434765919" in row for row in dump)


def test_two_organisations_registering_one_person_at_once_get_one_reference(
        consent: tuple[ConsentService, TestClient]) -> None:
    """Two writers at once on the NHS-number uniqueness (issue 13's finding: an
    IntegrityError answered 500 in 10 of 10 pairs)."""
    service, client = consent
    callers = [bearer(service.settings, org, role) for org, role in (
        ("trust", "clinician"), ("partner-a", "partner-staff"))] * 3
    for nhs_number in ("9434765919", "4010232137", "9990000018", "9990000026", "9990000034"):
        barrier = threading.Barrier(len(callers))

        def register(headers: dict[str, str], number: str = nhs_number,
                     together: threading.Barrier = barrier) -> tuple[int, str]:
            together.wait()
            response = client.post("/v1/subjects", json={"nhs_number": number},
                                   headers=headers)
            return response.status_code, response.json().get("subject_id", response.text)

        with ThreadPoolExecutor(len(callers)) as pool:
            answers = list(pool.map(register, callers))

        assert {status for status, _ in answers} == {201}, answers
        assert len({subject for _, subject in answers}) == 1, answers
        orgs = service.database.metadata.tables["subject_orgs"]
        with service.database.read() as session:
            linked = session.execute(select(orgs.c.org).where(
                orgs.c.subject_id == answers[0][1])).scalars().all()
        assert sorted(linked) == ["partner-a", "trust"]

"""Every row of tests/access/screening.csv against the real screening API (SQLite), with a
real consent service served on a port and the projection fed the consent events the worker
applies. Each row gets a person of its own, so rows never see each other's state."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.consent.bootstrap import ConsentService
from services.consent.entrypoints.api import build_api as consent_api
from services.screening.bootstrap import ScreeningService
from services.screening.entrypoints.api import build_api as screening_api
from services.screening.service_layer.commands import RecordScreening
from services.screening.service_layer.screenings import record_screening
from shared.demo import fake_nhs_numbers
from shared.issuer import development_issuer
from tests.support.http import serving
from tests.support.screening import (
    apply_consent_events,
    policy_refused_bearer,
    relationship,
    sharing_granted,
    sharing_withdrawn,
)
from tests.support.services import bearer, issuing, settings_for

TABLE = Path(__file__).resolve().parents[1] / "access" / "screening.csv"
COLUMNS = ["endpoint", "role", "caller_org", "record_org", "relationship", "expected", "shows"]
NOTES = "Bilby-3390 only call the work number"
REFERRER = "matrix-referrer"


@dataclass(frozen=True)
class Row:
    endpoint: str
    role: str
    caller_org: str
    record_org: str
    relationship: str
    expected: int
    shows: str


def _rows() -> list[Row]:
    with TABLE.open() as handle:
        reader = csv.DictReader(line for line in handle if not line.startswith("#"))
        assert reader.fieldnames == COLUMNS
        return [Row(r["endpoint"], r["role"], r["caller_org"], r["record_org"],
                    r["relationship"], int(r["expected"]), r["shows"]) for r in reader]


ROWS = _rows()


class World:
    def __init__(self, service: ScreeningService, client: TestClient, consent_url: str) -> None:
        self.service = service
        self.client = client
        self.consent_url = consent_url
        self.numbers = fake_nhs_numbers(random.Random())

    def headers(self, org: str, role: str, subject: str | None = None) -> dict[str, str]:
        if role.startswith("service:"):
            return bearer(self.service.settings, "service", role.removeprefix("service:"))
        if role == "clinician" and org != "trust":
            return policy_refused_bearer(self.service.settings, org, role)
        if subject is not None:
            token = development_issuer(self.service.settings).mint(org, [role], subject)
            return {"Authorization": f"Bearer {token}"}
        return bearer(self.service.settings, org, role)

    def screening_body(self, org: str, **person: str) -> dict[str, Any]:
        return {**(person or {"nhs_number": next(self.numbers)}), "org": org,
                "team": "matrix", "borough": "camden", "gender": "female",
                "age_band": "25-34", "asked_on": "2026-11-20", "asked_by_role": "nurse",
                "training_level": 2, "private": True, "outcome": "asked",
                "hark": {"humiliated": True, "afraid": False, "raped": False,
                         "kicked": False},
                "past_abuse": "no", "notes": NOTES}

    def held_record(self, holder: str) -> tuple[str, str]:
        """A new person with one screening held by ``holder``: (subject_id, screening_id).

        Only the Trust's clinicians record screenings through the API, so a partner's record
        (which the rules must still keep to its holder) is written through the service layer,
        for a person the partner registered."""
        if holder == "trust":
            response = self.client.post("/v1/screenings", json=self.screening_body(holder),
                                        headers=self.headers(holder, "clinician"))
            assert response.status_code == 201, response.text
            return response.json()["subject_id"], response.json()["id"]
        registered = httpx.post(f"{self.consent_url}/v1/subjects",
                                json={"nhs_number": next(self.numbers)},
                                headers=self.headers(holder, "partner-staff"), timeout=10)
        assert registered.status_code == 201, registered.text
        subject_id = str(registered.json()["subject_id"])
        command = RecordScreening.model_validate(
            {**self.screening_body(holder, subject_id=subject_id)})
        with self.service.database.unit_of_work() as uow:
            screening_id = record_screening(uow, self.service.cipher, command, subject_id,
                                            holder)
        return subject_id, screening_id

    def standing(self, subject_id: str, holder: str, org: str, state: str) -> None:
        """Give ``org`` the row's standing with the person and the holder's records. At
        ``none`` the holder's sharing names ``org`` all the same: without a relationship it
        must open nothing."""
        events = []
        if state in {"own", "shared", "withdrawn"}:
            events.append(relationship(subject_id, org, "referral"))
        if state in {"none", "shared", "withdrawn"} and holder != org:
            events.append(sharing_granted(subject_id, holder, [org]))
        if state == "withdrawn":
            events.append(sharing_withdrawn(subject_id, holder, [org]))
        apply_consent_events(self.service.database, *events)

    def referral(self) -> str:
        """A new MARAC referral raised by a Trust clinician who is not the caller."""
        response = self.client.post("/v1/risk-assessments", json={
            "nhs_number": next(self.numbers), "answers": ["yes"] * 14 + ["no"] * 10,
            "incidents_last_12_months": 0, "assessed_on": "2026-11-20"},
            headers=self.headers("trust", "clinician", REFERRER))
        assert response.status_code == 201, response.text
        return str(response.json()["marac_referral_id"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("matrix")
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = settings_for(monkeypatch, tmp, {
            "consent": f"sqlite:///{tmp / 'consent.db'}",
            "screening": f"sqlite:///{tmp / 'screening.db'}"})
        with issuing(settings) as settings, \
                serving(consent_api(ConsentService(settings))) as consent_url:
            service = ScreeningService(settings.model_copy(update={"consent_url": consent_url}))
            yield World(service, TestClient(screening_api(service)), consent_url)


def _call(world: World, row: Row) -> Any:
    """The row's request (after setting up its person, records and standing); its response."""
    headers = world.headers(row.caller_org, row.role)
    method, path = row.endpoint.split(" ", 1)
    if path in {"/v1/screenings/{screening_id}", "/v1/subjects/{subject_id}/results"}:
        subject_id, screening_id = world.held_record(row.record_org)
        world.standing(subject_id, row.record_org, row.caller_org, row.relationship)
        url = path.format(screening_id=screening_id, subject_id=subject_id)
        response = world.client.get(url, headers=headers)
        if response.status_code == 200 and method == "GET":
            listed = response.json().get("screenings", [response.json()])
            shown = [s["id"] for s in listed]
            assert shown == ([screening_id] if row.shows == "records" else []), row
        return response
    if path == "/v1/risk-assessments":
        return world.client.post(path, headers=headers, json={
            "nhs_number": next(world.numbers), "answers": ["no"] * 24,
            "incidents_last_12_months": 0, "assessed_on": "2026-11-20"})
    if path in {"/v1/screenings", "/v1/enquiries/due"}:
        person: dict[str, str] = {}
        if row.relationship != "none":
            subject_id, _ = world.held_record(row.record_org)
            world.standing(subject_id, row.record_org, row.caller_org, row.relationship)
            person = {"subject_id": subject_id}
        body = world.screening_body(row.record_org, **person)
        if path == "/v1/enquiries/due":
            body = {k: body[k] for k in body if k in {"nhs_number", "subject_id", "org"}}
            body.update(team="matrix", due_on="2026-11-20")
        return world.client.post(path, headers=headers, json=body)
    if path == "/v1/marac-referrals":
        world.referral()
        response = world.client.get(path, headers=headers, params={"status": "open"})
        if response.status_code == 200:
            referrals = response.json()["referrals"]
            assert bool(referrals) is (row.shows == "records"), row
        return response
    if path == "/v1/marac-referrals/{referral_id}/sent":
        return world.client.post(path.format(referral_id=world.referral()), headers=headers)
    raise AssertionError(f"no driver for {row.endpoint}")


@pytest.mark.parametrize("row", ROWS, ids=[
    f"{r.endpoint}|{r.role}@{r.caller_org}|{r.record_org}|{r.relationship}" for r in ROWS])
def test_access_matrix(world: World, row: Row) -> None:
    response = _call(world, row)
    assert response.status_code == row.expected, (row, response.text)
    if response.status_code >= 400:
        assert "Bilby" not in response.text


def test_the_table_covers_every_screening_endpoint(world: World) -> None:
    routes = {f"{method} {route.path}" for route in world.client.app.routes  # type: ignore[attr-defined]
              if route.path.startswith("/v1/")
              for method in getattr(route, "methods", ())}
    assert routes == {row.endpoint for row in ROWS}

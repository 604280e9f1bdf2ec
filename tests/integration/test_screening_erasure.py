"""Erasure in the screening service: notes, answers and identifiers go; outcomes stay
de-identified; MARAC referrals and the assessments behind them stay, flagged for the data
protection officer.

Runs on SQLite and PostgreSQL, with a real consent service served on a port.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, select

from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.screening.adapters.tables import (
    enquiries_due,
    marac_referrals,
    partner_sharing,
    relationships,
    risk_assessments,
    screenings,
)
from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from services.screening.service_layer.cascade import erase
from tests.support.http import serving
from tests.support.screening import apply_consent_events, relationship, sharing_granted
from tests.support.services import bearer, issuing, settings_for

NHS_NUMBER = "943 476 5919"
OTHER_NHS_NUMBER = "401 023 2137"
NOTES = "Platypus-9902 moved to her aunt's flat"
ASKED: dict[str, Any] = {
    "nhs_number": NHS_NUMBER, "org": "trust", "team": "north-cmht", "borough": "camden",
    "gender": "female", "age_band": "35-44", "asked_on": "2026-11-20",
    "asked_by_role": "care-coordinator", "training_level": 2, "private": True,
    "outcome": "asked", "hark": {"humiliated": True, "afraid": True, "raped": False,
                                 "kicked": True},
    "past_abuse": "yes", "abuser_relationship": "partner", "affected_mental_health": "yes",
    "notes": NOTES,
}
RISK: dict[str, Any] = {
    "nhs_number": NHS_NUMBER, "answers": ["yes"] * 16 + ["no"] * 8,
    "incidents_last_12_months": 4, "assessed_on": "2026-11-20",
    "professional_judgement": {"referral": True, "reasons": "Platypus reasons"},
}
TABLES = (screenings, enquiries_due, risk_assessments, marac_referrals, partner_sharing,
          relationships)


@dataclass
class World:
    service: ScreeningAdapters
    client: TestClient
    subject_id: str
    screening_id: str
    referral_id: str

    def clinician(self) -> dict[str, str]:
        return bearer(self.service.settings, "trust", "clinician")

    def erase(self, subject_id: str | None = None) -> int:
        with self.service.database.unit_of_work() as uow:
            return erase(uow, subject_id or self.subject_id)

    def rows(self, table: Table) -> list[dict[str, Any]]:
        with self.service.database.read() as session:
            return [dict(row._mapping) for row in session.execute(
                select(table).order_by(*table.primary_key.columns))]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        tables = (*TABLES, self.service.database.metadata.tables["outbox"])
        return {table.name: self.rows(table) for table in tables}

    def dpo_queue(self, **params: Any) -> list[dict[str, Any]]:
        return self.queue("dpo", **params)

    def queue(self, role: str, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/v1/marac-referrals", params=params,
                                   headers=bearer(self.service.settings, "trust", role))
        assert response.status_code == 200, response.text
        referrals: list[dict[str, Any]] = response.json()["referrals"]
        return referrals


def _post(client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str]
          ) -> dict[str, Any]:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[World]:
    monkeypatch.delenv("PEERLINK_MARAC_ESCALATION_INCIDENTS", raising=False)
    consent_db = f"sqlite:///{tmp_path / 'consent.db'}"
    settings = settings_for(monkeypatch, tmp_path,
                            {"consent": consent_db, "screening": database_url})
    with issuing(settings) as settings, \
            serving(consent_api(ConsentAdapters(settings))) as consent_url:
        service = ScreeningAdapters(settings.model_copy(update={"consent_url": consent_url}))
        client = TestClient(screening_api(service))
        trust = bearer(service.settings, "trust", "clinician")
        screening = _post(client, "/v1/screenings", ASKED, trust)
        subject_id = screening["subject_id"]
        _post(client, "/v1/enquiries/due", {"subject_id": subject_id, "org": "trust",
                                            "team": "north-cmht", "due_on": "2026-11-01"},
              trust)
        assessed = _post(client, "/v1/risk-assessments", RISK, trust)
        assert assessed["marac_referral_required"] is True
        apply_consent_events(service.database, relationship(subject_id, "trust"),
                             relationship(subject_id, "partner-a", "referral"),
                             sharing_granted(subject_id, "trust", ["partner-a"]))
        yield World(service, client, subject_id, screening["id"],
                    assessed["marac_referral_id"])
        service.database.dispose()  # the PostgreSQL server's connections are shared


def test_erasure_removes_identifiers_and_personal_data_and_keeps_the_marac_referral(
        world: World) -> None:
    assert len(world.rows(relationships)) == 2 and len(world.rows(partner_sharing)) == 1
    assert world.erase() == 2  # the referral and the assessment behind it

    for table in (screenings, enquiries_due, risk_assessments, partner_sharing, relationships):
        assert [r for r in world.rows(table) if r["subject_id"] == world.subject_id] == [], \
            table.name
    [screening] = world.rows(screenings)
    assert screening["screening_id"] == world.screening_id
    assert screening["subject_id"] is None
    assert screening["notes_sealed"] is None
    assert (screening["outcome"], screening["hark_score"], screening["current_abuse"],
            screening["past_abuse"], screening["disclosed"]) == ("asked", 3, True, "yes", True)
    assert (screening["org"], screening["team"], screening["age_band"]) == \
        ("trust", "north-cmht", "35-44")
    [due] = world.rows(enquiries_due)
    assert due["subject_id"] is None
    assert due["due_on"].isoformat() == "2026-11-01"
    [assessment] = world.rows(risk_assessments)
    assert assessment["subject_id"] is None
    assert assessment["sealed"] is None
    assert assessment["record_sealed"] is not None  # behind the referral: kept, records key
    assert assessment["dash_score"] == 16
    assert world.rows(partner_sharing) == []
    assert world.rows(relationships) == []
    [referral] = world.rows(marac_referrals)
    assert referral["referral_id"] == world.referral_id
    assert referral["subject_id"] == world.subject_id
    assert referral["flagged_for_dpo_at"] is not None
    assert referral["status"] == "open"


def test_the_dpo_sees_the_retained_referral_flagged(world: World) -> None:
    assert world.dpo_queue(flagged_for_dpo="true", status="open") == []

    world.erase()

    [flagged] = world.dpo_queue(flagged_for_dpo="true", status="open")
    assert (flagged["id"], flagged["subject_id"]) == (world.referral_id, world.subject_id)
    assert flagged["flagged_for_dpo"] is True
    assert flagged["criteria_met"] == [
        "visible-high-risk", "professional-judgement", "potential-escalation"]
    assert flagged["idva_referral_required"] is True
    assert world.dpo_queue(flagged_for_dpo="false", status="open") == []
    [on_queue] = world.dpo_queue()
    assert on_queue["id"] == world.referral_id
    assert [r["id"] for r in world.queue("safeguarding-lead")] == [world.referral_id]


def test_erased_records_are_no_longer_readable_by_subject(world: World) -> None:
    world.erase()

    response = world.client.get(f"/v1/screenings/{world.screening_id}",
                                headers=world.clinician())
    assert response.status_code == 404
    results = world.client.get(f"/v1/subjects/{world.subject_id}/results",
                               headers=world.clinician())
    assert results.status_code == 200, results.text
    assert (results.json()["screenings"], results.json()["risk_assessments"]) == ([], [])
    assert "Platypus" not in results.text


def test_erasing_again_keeps_as_many_and_changes_nothing(world: World) -> None:
    assert world.erase() == 2
    after_first = world.snapshot()

    assert world.erase() == 2
    assert world.snapshot() == after_first


def test_erasure_leaves_other_people_alone(world: World) -> None:
    trust = world.clinician()
    other = _post(world.client, "/v1/screenings", {**ASKED, "nhs_number": OTHER_NHS_NUMBER},
                  trust)
    _post(world.client, "/v1/risk-assessments", {**RISK, "nhs_number": OTHER_NHS_NUMBER},
          trust)

    world.erase()

    fetched = world.client.get(f"/v1/screenings/{other['id']}", headers=trust)
    assert fetched.status_code == 200
    assert fetched.json()["notes"] == NOTES
    referrals = {r["subject_id"]: r for r in world.queue("safeguarding-lead")}
    assert referrals[other["subject_id"]]["flagged_for_dpo"] is False
    assert referrals[world.subject_id]["flagged_for_dpo"] is True


def test_erasing_someone_with_no_records_keeps_nothing(world: World) -> None:
    before = world.snapshot()
    assert world.erase("sub_" + "f" * 32) == 0
    assert world.snapshot() == before

"""Partner staff read screening and risk results only while partner-sharing consent is active.

Every attempt, allowed or refused, lands in the consent service's audit trail. The consent
state is set the way the screening worker sets it on ``consent-granted`` and
``consent-withdrawn``: through ``cascade.sharing_granted`` and ``cascade.sharing_withdrawn``.
"""

from __future__ import annotations

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
from services.screening.service_layer.cascade import sharing_granted, sharing_withdrawn
from tests.support.http import serving
from tests.support.services import bearer, issuing, settings_for

NOTES = "stays with a friend on Tuesdays"
REASONS = "Wombat-4412 strangulation reported by the neighbour"
ASKED: dict[str, Any] = {
    "nhs_number": "943 476 5919", "org": "trust", "team": "north-cmht", "borough": "camden",
    "gender": "female", "age_band": "25-34", "asked_on": "2026-11-20",
    "asked_by_role": "care-coordinator", "training_level": 2, "private": True,
    "outcome": "asked", "hark": {"humiliated": True, "afraid": True, "raped": False,
                                 "kicked": False},
    "past_abuse": "yes", "abuser_relationship": "ex-partner", "affected_mental_health": "yes",
    "notes": NOTES,
}
ANSWERS = ["yes"] * 15 + ["dont-know"] * 2 + ["no"] * 7
READ = "screening-results-read"
REFUSED = "screening-results-refused"


@dataclass
class World:
    service: ScreeningService
    client: TestClient
    consent_url: str
    subject_id: str
    screening_id: str

    def headers(self, org: str, role: str) -> dict[str, str]:
        return bearer(self.service.settings, org, role)

    def read_screening(self, org: str, role: str) -> httpx.Response:
        response: httpx.Response = self.client.get(f"/v1/screenings/{self.screening_id}",
                                                   headers=self.headers(org, role))
        return response

    def read_results(self, org: str, role: str) -> httpx.Response:
        response: httpx.Response = self.client.get(f"/v1/subjects/{self.subject_id}/results",
                                                   headers=self.headers(org, role))
        return response

    def audit(self) -> list[dict[str, Any]]:
        """The audit entries about this person on results reads, oldest first."""
        response = httpx.get(f"{self.consent_url}/v1/audit",
                             params={"subject_id": self.subject_id},
                             headers=self.headers("trust", "dpo"))
        assert response.status_code == 200, response.text
        return [e for e in response.json()["entries"] if e["action"] in {READ, REFUSED}]

    def sharing(self, granted: bool) -> None:
        with self.service.database.unit_of_work() as uow:
            if granted:
                sharing_granted(uow, self.subject_id, "partner-sharing")
            else:
                sharing_withdrawn(uow, self.subject_id, ("partner-sharing",))


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[World]:
    consent_db = f"sqlite:///{tmp_path / 'consent.db'}"
    settings = settings_for(monkeypatch, tmp_path,
                            {"consent": consent_db, "screening": database_url})
    with issuing(settings) as settings, \
            serving(consent_api(ConsentService(settings))) as consent_url:
        service = ScreeningService(settings.model_copy(update={"consent_url": consent_url}))
        client = TestClient(screening_api(service))
        trust = bearer(service.settings, "trust", "clinician")
        recorded = client.post("/v1/screenings", json=ASKED, headers=trust)
        assert recorded.status_code == 201, recorded.text
        subject_id = recorded.json()["subject_id"]
        assessed = client.post("/v1/risk-assessments", headers=trust, json={
            "subject_id": subject_id, "answers": ANSWERS, "incidents_last_12_months": 1,
            "assessed_on": "2026-11-20",
            "professional_judgement": {"referral": True, "reasons": REASONS}})
        assert assessed.status_code == 201, assessed.text
        yield World(service, client, consent_url, subject_id, recorded.json()["id"])


def _refused_as_not_consented(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert "not consented" in response.json()["message"]
    assert NOTES not in response.text and "Wombat" not in response.text


def test_partner_staff_are_refused_without_partner_sharing_consent(world: World) -> None:
    _refused_as_not_consented(world.read_screening("partner-a", "partner-staff"))
    _refused_as_not_consented(world.read_results("partner-a", "partner-staff"))

    entries = world.audit()
    assert [e["action"] for e in entries] == [REFUSED, REFUSED]
    assert {e["actor_org"] for e in entries} == {"partner-a"}


def test_partner_staff_read_while_consented_and_are_refused_after_withdrawal(
        world: World) -> None:
    _refused_as_not_consented(world.read_screening("partner-a", "partner-staff"))

    world.sharing(granted=True)
    screening = world.read_screening("partner-a", "partner-staff")
    assert screening.status_code == 200, screening.text
    assert screening.json()["notes"] == NOTES
    assert (screening.json()["hark_score"], screening.json()["disclosed"]) == (2, True)
    results = world.read_results("partner-a", "partner-staff")
    assert results.status_code == 200, results.text
    body = results.json()
    assert body["subject_id"] == world.subject_id
    [listed] = body["screenings"]
    assert (listed["id"], listed["notes"]) == (world.screening_id, NOTES)
    [risk] = body["risk_assessments"]
    assert risk["answers"] == ANSWERS
    assert risk["professional_judgement"] == {"referral": True, "reasons": REASONS}
    assert (risk["score"], risk["marac_referral_required"]) == (15, True)
    assert risk["criteria_met"] == ["visible-high-risk", "professional-judgement"]

    world.sharing(granted=False)
    _refused_as_not_consented(world.read_screening("partner-a", "partner-staff"))
    _refused_as_not_consented(world.read_results("partner-a", "partner-staff"))

    entries = world.audit()
    assert [e["action"] for e in entries] == [REFUSED, READ, READ, REFUSED, REFUSED]
    assert {e["actor_org"] for e in entries} == {"partner-a"}
    assert all(e["subject_id"] == world.subject_id for e in entries)
    assert all("svc-screening" in e["actor"] for e in entries)


def test_consent_granted_again_restores_access(world: World) -> None:
    world.sharing(granted=True)
    world.sharing(granted=False)
    world.sharing(granted=True)
    assert world.read_results("partner-a", "partner-staff").status_code == 200


def test_a_trust_clinician_reads_and_the_read_is_audited(world: World) -> None:
    screening = world.read_screening("trust", "clinician")
    assert screening.status_code == 200
    assert screening.json()["notes"] == NOTES
    results = world.read_results("trust", "clinician")
    assert results.status_code == 200
    [risk] = results.json()["risk_assessments"]
    assert risk["answers"] == ANSWERS

    entries = world.audit()
    assert [(e["action"], e["actor_org"]) for e in entries] == [(READ, "trust"), (READ, "trust")]


def test_a_partner_clinician_cannot_read_the_trusts_record(world: World) -> None:
    world.sharing(granted=True)  # consent to partner staff does not open it to other roles
    screening = world.read_screening("partner-a", "clinician")
    assert screening.status_code == 403
    assert NOTES not in screening.text
    results = world.read_results("partner-a", "clinician")
    assert results.status_code == 403
    assert "Wombat" not in results.text

    entries = world.audit()
    assert [(e["action"], e["actor_org"]) for e in entries] == \
        [(REFUSED, "partner-a"), (REFUSED, "partner-a")]


@pytest.mark.parametrize(("org", "role"), [
    pytest.param("trust", "ops-viewer", id="ops-viewer"),
    pytest.param("service", "screening", id="service"),
])
def test_other_roles_cannot_read_results(world: World, org: str, role: str) -> None:
    world.sharing(granted=True)
    assert world.read_screening(org, role).status_code == 403
    assert world.read_results(org, role).status_code == 403

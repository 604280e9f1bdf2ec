"""Another organisation reads the Trust's screening and risk results only with a relationship
with the person and the Trust's partner-sharing consent naming that organisation.

Nothing shows whether someone else holds records: a screening the caller may not see is a 404
like an unknown one, and a person's results list only what the caller may see (200, possibly
empty). Every attempt, allowed or refused, lands in the consent service's audit trail. The
projection is fed the consent events the screening worker applies (same handlers, same inbox);
tests/integration/test_screening_sharing_broker.py runs the same over the real broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from shared.events.envelope import CloudEvent
from shared.kafka.consumer import Outcome
from tests.support.consent import served_consent
from tests.support.screening import (
    apply_consent_events,
    policy_refused_bearer,
    relationship,
    sharing_granted,
    sharing_withdrawn,
)
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
    service: ScreeningAdapters
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

    def audit(self, org: str = "partner-a") -> list[dict[str, Any]]:
        """The audit entries about this person on results reads by ``org``'s people, oldest
        first (a DPO reads their own organisation's entries)."""
        response = httpx.get(f"{self.consent_url}/v1/audit",
                             params={"subject_id": self.subject_id},
                             headers=self.headers(org, "dpo"))
        assert response.status_code == 200, response.text
        return [e for e in response.json()["entries"] if e["action"] in {READ, REFUSED}]

    def consent(self, *events: CloudEvent) -> list[Outcome]:
        return apply_consent_events(self.service.database, *events)

    def related(self, org: str) -> None:
        self.consent(relationship(self.subject_id, org, "referral"))

    def share(self, *recipients: str) -> None:
        self.consent(sharing_granted(self.subject_id, "trust", recipients))

    def withdraw(self, *recipients: str) -> None:
        self.consent(sharing_withdrawn(self.subject_id, "trust", recipients))


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[World]:
    consent_db = f"sqlite:///{tmp_path / 'consent.db'}"
    settings = settings_for(monkeypatch, tmp_path,
                            {"consent": consent_db, "screening": database_url})
    with issuing(settings) as settings, served_consent(settings) as (_, consent_url):
        service = ScreeningAdapters(settings.model_copy(update={"consent_url": consent_url}))
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
        service.database.dispose()  # the PostgreSQL server's connections are shared


def _sees_nothing(world: World, org: str, role: str = "partner-staff") -> None:
    """What a caller who may not read the Trust's records gets: exactly what they would get
    for a person nobody holds records of."""
    screening = world.read_screening(org, role)
    assert screening.status_code == 404, screening.text
    assert screening.json() == {"error": "not-found", "message": "no screening with this id"}
    results = world.read_results(org, role)
    assert results.status_code == 200, results.text
    assert results.json() == {"subject_id": world.subject_id, "screenings": [],
                              "risk_assessments": []}
    for response in (screening, results):
        assert NOTES not in response.text and "Wombat" not in response.text
        assert "trust" not in response.text


def _sees_the_trusts_records(world: World, org: str, role: str = "partner-staff") -> None:
    screening = world.read_screening(org, role)
    assert screening.status_code == 200, screening.text
    assert screening.json()["notes"] == NOTES
    assert (screening.json()["hark_score"], screening.json()["disclosed"]) == (2, True)
    results = world.read_results(org, role)
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


def test_partner_staff_without_relationship_or_sharing_see_nothing(world: World) -> None:
    _sees_nothing(world, "partner-a")

    entries = world.audit()
    assert [e["action"] for e in entries] == [READ], \
        "the refused screening names no person; the results read looks like any other"
    assert {e["actor_org"] for e in entries} == {"partner-a"}


def test_an_unknown_screening_looks_the_same_as_one_not_shared(world: World) -> None:
    unknown = world.client.get(f"/v1/screenings/scr_{'0' * 32}",
                               headers=world.headers("partner-a", "partner-staff"))
    hidden = world.read_screening("partner-a", "partner-staff")
    assert (unknown.status_code, unknown.json()) == (hidden.status_code, hidden.json())
    nobody = world.client.get(f"/v1/subjects/sub_{'0' * 32}/results",
                              headers=world.headers("partner-a", "partner-staff"))
    assert nobody.json()["screenings"] == nobody.json()["risk_assessments"] == []


def test_partner_staff_read_while_shared_and_see_nothing_after_withdrawal(
        world: World) -> None:
    world.related("partner-a")
    _sees_nothing(world, "partner-a")

    world.share("partner-a")
    _sees_the_trusts_records(world, "partner-a")

    world.withdraw("partner-a")
    _sees_nothing(world, "partner-a")

    entries = world.audit()
    assert [e["action"] for e in entries] == [READ, READ, READ, READ]
    assert {e["actor_org"] for e in entries} == {"partner-a"}
    assert all(e["subject_id"] == world.subject_id for e in entries)
    assert all("svc-screening" in e["actor"] for e in entries)


def test_sharing_with_one_partner_opens_nothing_to_another(world: World) -> None:
    world.related("partner-a")
    world.related("partner-b")
    world.share("partner-a")

    _sees_the_trusts_records(world, "partner-a")
    _sees_nothing(world, "partner-b")


def test_sharing_without_a_relationship_opens_nothing(world: World) -> None:
    world.share("partner-a")
    _sees_nothing(world, "partner-a")
    world.related("partner-a")
    _sees_the_trusts_records(world, "partner-a")


def test_sharing_granted_again_restores_access(world: World) -> None:
    world.related("partner-a")
    world.share("partner-a")
    world.withdraw("partner-a")
    world.share("partner-a")
    _sees_the_trusts_records(world, "partner-a")


def test_a_withdrawal_naming_no_recipient_leaves_the_holder_sharing_with_nobody(
        world: World) -> None:
    world.related("partner-a")
    world.related("partner-b")
    world.share("partner-a", "partner-b")
    world.consent(sharing_withdrawn(world.subject_id, "trust", [],
                                    purposes=("peer-mentoring", "partner-sharing")))
    _sees_nothing(world, "partner-a")
    _sees_nothing(world, "partner-b")


def test_a_withdrawal_by_another_holder_leaves_the_trusts_sharing(world: World) -> None:
    world.related("partner-a")
    world.share("partner-a")
    world.consent(sharing_withdrawn(world.subject_id, "partner-b", []))
    _sees_the_trusts_records(world, "partner-a")


def test_a_later_grant_adds_recipients_and_only_a_withdrawal_removes_one(
        world: World) -> None:
    world.related("partner-a")
    world.related("partner-b")
    world.share("partner-a")
    world.consent(sharing_granted(world.subject_id, "trust", ["partner-b"],
                                  consent_id="con_" + "9" * 32))
    _sees_the_trusts_records(world, "partner-a")
    _sees_the_trusts_records(world, "partner-b")
    world.withdraw("partner-a")
    _sees_nothing(world, "partner-a")
    _sees_the_trusts_records(world, "partner-b")


def test_sharing_recorded_by_another_holder_does_not_open_the_trusts_records(
        world: World) -> None:
    world.related("partner-a")
    world.consent(sharing_granted(world.subject_id, "partner-b", ["partner-a"]))
    _sees_nothing(world, "partner-a")


def test_a_redelivered_consent_event_changes_nothing(world: World) -> None:
    world.related("partner-a")
    grant = sharing_granted(world.subject_id, "trust", ["partner-a"])
    withdrawal = sharing_withdrawn(world.subject_id, "trust", ["partner-a"])
    assert world.consent(grant, withdrawal) == [Outcome.APPLIED, Outcome.APPLIED]
    assert world.consent(grant) == [Outcome.DUPLICATE]
    _sees_nothing(world, "partner-a")


@pytest.mark.parametrize("role", ["clinician", "safeguarding-lead"])
def test_the_trusts_own_staff_read_and_the_read_is_audited(world: World, role: str) -> None:
    _sees_the_trusts_records(world, "trust", role)

    entries = world.audit("trust")
    assert [(e["action"], e["actor_org"]) for e in entries] == [(READ, "trust")] * 2


@pytest.mark.parametrize("org", ["partner-a", "partner-b"])
def test_a_partner_clinician_token_is_refused(world: World, org: str) -> None:
    world.related(org)
    world.share(org)  # sharing with the organisation does not make the token valid
    headers = policy_refused_bearer(world.service.settings, org, "clinician")
    screening = world.client.get(f"/v1/screenings/{world.screening_id}", headers=headers)
    assert screening.status_code == 401
    assert NOTES not in screening.text
    results = world.client.get(f"/v1/subjects/{world.subject_id}/results", headers=headers)
    assert results.status_code == 401
    assert "Wombat" not in results.text


@pytest.mark.parametrize(("org", "role"), [
    pytest.param("trust", "ops-viewer", id="ops-viewer"),
    pytest.param("trust", "dpo", id="dpo"),
    pytest.param("partner-a", "mentor-coordinator", id="mentor-coordinator"),
    pytest.param("partner-a", "dpo", id="partner-dpo"),
])
def test_other_roles_cannot_read_results_and_the_attempt_is_audited(
        world: World, org: str, role: str) -> None:
    world.related("partner-a")
    world.share("partner-a")
    for response in (world.read_screening(org, role), world.read_results(org, role)):
        assert response.status_code == 403
        assert NOTES not in response.text and "Wombat" not in response.text

    entries = world.audit(org)
    assert [(e["action"], e["actor_org"]) for e in entries] == [(REFUSED, org)], \
        "the results refusal is audited with the person; the screening refusal names nobody"


def test_a_service_on_its_own_cannot_read_results(world: World) -> None:
    """A service's own token is no person's: it reads no one's results."""
    world.related("partner-a")
    world.share("partner-a")
    for response in (world.read_screening("service", "screening"),
                     world.read_results("service", "screening")):
        assert response.status_code == 403
        assert NOTES not in response.text and "Wombat" not in response.text

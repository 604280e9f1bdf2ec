"""Enquiries due, DASH risk assessments and the MARAC queue through the screening API.

Each test runs on SQLite and PostgreSQL, with a real consent service served on a port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, func, select, update

from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.screening.adapters.tables import marac_referrals, risk_assessments
from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from shared.db import utcnow
from shared.events.envelope import CloudEvent
from shared.events.screening import EnquiryDue, MaracReferralRequired, RiskAssessed
from shared.issuer import development_issuer
from shared.settings import PlatformSettings
from tests.support.http import serving
from tests.support.screening import policy_refused_bearer
from tests.support.services import bearer, issuing, settings_for

NHS_NUMBER = "943 476 5919"
REASONS = "Quokka-7731 believed threats at the school gate"
DUE: dict[str, Any] = {"nhs_number": NHS_NUMBER, "org": "trust", "team": "north-cmht",
                       "due_on": "2026-12-01"}


def dash(yes: int = 0, dont_know: int = 0, total: int = 24) -> list[str]:
    return ["yes"] * yes + ["dont-know"] * dont_know + ["no"] * (total - yes - dont_know)


def assessment(yes: int = 0, *, dont_know: int = 0, incidents: int = 0,
               assessed_on: str = "2026-12-15", judgement: dict[str, Any] | None = None,
               **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"nhs_number": NHS_NUMBER, "answers": dash(yes, dont_know),
                            "incidents_last_12_months": incidents, "assessed_on": assessed_on}
    if judgement is not None:
        body["professional_judgement"] = judgement
    return {**body, **changes}


Build = Callable[[], tuple[ScreeningAdapters, TestClient]]


@pytest.fixture
def build(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Build]:
    """Builds a screening service (reading the environment now) against a served consent API."""
    monkeypatch.delenv("PEERLINK_MARAC_ESCALATION_INCIDENTS", raising=False)
    consent_db = f"sqlite:///{tmp_path / 'consent.db'}"
    settings = settings_for(monkeypatch, tmp_path,
                            {"consent": consent_db, "screening": database_url})
    with issuing(settings) as settings, \
            serving(consent_api(ConsentAdapters(settings))) as consent_url:
        served: PlatformSettings = settings.model_copy(update={"consent_url": consent_url})
        made: list[ScreeningAdapters] = []

        def make() -> tuple[ScreeningAdapters, TestClient]:
            service = ScreeningAdapters(served)
            made.append(service)
            return service, TestClient(screening_api(service))

        yield make
        for service in made:
            service.database.dispose()  # the PostgreSQL server's connections are shared


@pytest.fixture
def screening(build: Build) -> tuple[ScreeningAdapters, TestClient]:
    return build()


def clinician(service: ScreeningAdapters, org: str = "trust") -> dict[str, str]:
    return bearer(service.settings, org, "clinician")


def safeguarding_lead(service: ScreeningAdapters) -> dict[str, str]:
    return bearer(service.settings, "trust", "safeguarding-lead")


def _outbox(service: ScreeningAdapters) -> list[Any]:
    outbox = service.database.metadata.tables["outbox"]
    with service.database.read() as session:
        return list(session.execute(select(outbox).order_by(outbox.c.seq)))


def _count(service: ScreeningAdapters, table: Table) -> int:
    with service.database.read() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def _queue(service: ScreeningAdapters, client: TestClient, **params: Any) -> list[Any]:
    response = client.get("/v1/marac-referrals", params=params,
                          headers=safeguarding_lead(service))
    assert response.status_code == 200, response.text
    referrals: list[Any] = response.json()["referrals"]
    return referrals


def _assess(service: ScreeningAdapters, client: TestClient, body: dict[str, Any]
            ) -> dict[str, Any]:
    response = client.post("/v1/risk-assessments", json=body, headers=clinician(service))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# --- enquiries due -----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["clinician"])
def test_an_enquiry_due_is_recorded_and_published(
        screening: tuple[ScreeningAdapters, TestClient], role: str) -> None:
    service, client = screening
    response = client.post("/v1/enquiries/due", json=DUE,
                           headers=bearer(service.settings, "trust", role))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["subject_id"].startswith("sub_")
    assert (body["org"], body["team"], body["due_on"]) == ("trust", "north-cmht", "2026-12-01")
    [row] = _outbox(service)
    assert row.event_type == "enquiry-due"
    event = CloudEvent.from_bytes(row.payload)
    assert event.type == "enquiry-due"
    assert event.subject == body["subject_id"] == row.aggregate_id
    payload = EnquiryDue.model_validate(event.data)
    assert (payload.org, payload.team, payload.due_on.isoformat()) == \
        ("trust", "north-cmht", "2026-12-01")
    assert b"9434765919" not in row.payload


@pytest.mark.parametrize(("org", "role", "body_org"), [
    pytest.param("partner-a", "partner-staff", "partner-a", id="partner-staff-for-own-org"),
    pytest.param("partner-a", "partner-staff", "trust", id="partner-staff-for-trust"),
    pytest.param("trust", "clinician", "partner-a", id="trust-clinician-for-partner"),
    pytest.param("service", "screening", "trust", id="a-service-on-its-own"),
    pytest.param("trust", "safeguarding-lead", "trust", id="safeguarding-lead-role"),
    pytest.param("trust", "ops-viewer", "trust", id="ops-viewer-role"),
])
def test_an_enquiry_due_for_another_organisation_or_role_is_refused(
        screening: tuple[ScreeningAdapters, TestClient], org: str, role: str,
        body_org: str) -> None:
    service, client = screening
    response = client.post("/v1/enquiries/due", json={**DUE, "org": body_org},
                           headers=bearer(service.settings, org, role))
    assert response.status_code == 403
    assert response.json()["message"]
    assert _outbox(service) == []


def test_an_enquiry_due_without_a_date_is_a_422(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    response = client.post("/v1/enquiries/due",
                           json={k: v for k, v in DUE.items() if k != "due_on"},
                           headers=clinician(service))
    assert response.status_code == 422
    assert "due_on" in response.text
    assert _outbox(service) == []


# --- risk assessments and the MARAC criteria ---------------------------------------------------

def test_14_yes_is_visible_high_risk_and_raises_a_referral_on_the_queue(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    body = _assess(service, client, assessment(14, dont_know=3))

    assert (body["score"], body["criteria_met"], body["marac_referral_required"]) == \
        (14, ["visible-high-risk"], True)
    assert body["idva_referral_required"] is True
    [referral] = _queue(service, client, status="open")
    assert referral["id"] == body["marac_referral_id"]
    assert referral["subject_id"] == body["subject_id"]
    assert referral["assessment_id"] == body["id"]
    assert referral["criteria_met"] == ["visible-high-risk"]
    assert referral["idva_referral_required"] is True
    assert (referral["status"], referral["raised_on"], referral["org"]) == \
        ("open", "2026-12-15", "trust")
    assert referral["flagged_for_dpo"] is False


def test_13_yes_2_incidents_and_no_judgement_is_no_referral(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    body = _assess(service, client, assessment(
        13, dont_know=11, incidents=2, judgement={"referral": False}))

    assert (body["score"], body["criteria_met"], body["marac_referral_required"]) == \
        (13, [], False)
    assert body["marac_referral_id"] is None
    assert _queue(service, client, status="open") == []
    assert _count(service, marac_referrals) == 0
    assert [row.event_type for row in _outbox(service)] == ["risk-assessed"]


@pytest.mark.parametrize(("yes", "incidents", "judgement", "criteria"), [
    pytest.param(0, 3, None, ["potential-escalation"], id="3-incidents"),
    pytest.param(0, 0, {"referral": True, "reasons": REASONS}, ["professional-judgement"],
                 id="judgement-alone"),
    pytest.param(14, 0, {"referral": False}, ["visible-high-risk"],
                 id="judgement-false-does-not-remove"),
    pytest.param(24, 3, {"referral": True, "reasons": REASONS},
                 ["visible-high-risk", "professional-judgement", "potential-escalation"],
                 id="three-at-once"),
])
def test_each_criterion_raises_a_referral(
        screening: tuple[ScreeningAdapters, TestClient], yes: int, incidents: int,
        judgement: dict[str, Any] | None, criteria: list[str]) -> None:
    service, client = screening
    body = _assess(service, client, assessment(yes, incidents=incidents, judgement=judgement))
    assert (body["score"], body["criteria_met"], body["marac_referral_required"]) == \
        (yes, criteria, True)
    [referral] = _queue(service, client)
    assert referral["criteria_met"] == criteria


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"professional_judgement": {"referral": True}}, "reasons",
                 id="judgement-without-reasons"),
    pytest.param({"professional_judgement": {"referral": True, "reasons": ""}}, "reasons",
                 id="judgement-empty-reasons"),
    pytest.param({"professional_judgement": {"referral": True, "reasons": "   "}}, "reasons",
                 id="judgement-blank-reasons"),
    pytest.param({"answers": dash(14, total=23)}, "answers", id="23-answers"),
    pytest.param({"answers": dash(14, total=25)}, "answers", id="25-answers"),
    pytest.param({"answers": ["maybe", *dash(14, total=23)]}, "answers", id="answer-maybe"),
    pytest.param({"incidents_last_12_months": -1}, "incidents_last_12_months",
                 id="negative-incidents"),
])
def test_bad_risk_assessments_are_a_422_and_nothing_is_written(
        screening: tuple[ScreeningAdapters, TestClient], change: dict[str, Any],
        field: str) -> None:
    service, client = screening
    response = client.post("/v1/risk-assessments", json={**assessment(14), **change},
                           headers=clinician(service))

    assert response.status_code == 422
    assert field in response.text
    assert _count(service, risk_assessments) == 0
    assert _count(service, marac_referrals) == 0
    assert _outbox(service) == []


@pytest.mark.parametrize(("org", "role"), [
    pytest.param("partner-a", "partner-staff", id="partner-staff"),
    pytest.param("trust", "safeguarding-lead", id="safeguarding-lead"),
    pytest.param("trust", "dpo", id="dpo"),
    pytest.param("trust", "ops-viewer", id="ops-viewer"),
    pytest.param("service", "screening", id="service"),
])
def test_who_may_record_a_risk_assessment(
        screening: tuple[ScreeningAdapters, TestClient], org: str, role: str) -> None:
    service, client = screening
    response = client.post("/v1/risk-assessments", json=assessment(14),
                           headers=bearer(service.settings, org, role))
    assert response.status_code == 403
    assert _count(service, risk_assessments) == 0


@pytest.mark.parametrize(("second_on", "repeat"), [
    pytest.param("2026-12-15", True, id="11-months-later"),
    pytest.param("2027-01-15", True, id="exactly-12-months-later"),
    pytest.param("2027-02-15", False, id="13-months-later"),
])
def test_a_referral_within_12_months_makes_the_next_assessment_a_repeat(
        screening: tuple[ScreeningAdapters, TestClient], second_on: str,
        repeat: bool) -> None:
    service, client = screening
    first = _assess(service, client, assessment(14, assessed_on="2026-01-15"))
    second = _assess(service, client, assessment(0, assessed_on=second_on))

    assert first["criteria_met"] == ["visible-high-risk"]
    assert second["subject_id"] == first["subject_id"]
    assert second["criteria_met"] == (["repeat"] if repeat else [])
    assert second["marac_referral_required"] is repeat
    assert len(_queue(service, client)) == (2 if repeat else 1)


def test_no_previous_referral_is_no_repeat(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    first = _assess(service, client, assessment(13, assessed_on="2026-01-15"))
    second = _assess(service, client, assessment(0, assessed_on="2026-12-15"))
    assert first["criteria_met"] == second["criteria_met"] == []


def test_events_go_through_the_outbox_with_answers_and_reasons_sealed(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    answers = dash(14, dont_know=4)
    body = _assess(service, client, assessment(
        14, dont_know=4, judgement={"referral": True, "reasons": REASONS}))

    rows = _outbox(service)
    assert [row.event_type for row in rows] == ["risk-assessed", "marac-referral-required"]
    assert all(row.aggregate_id == body["subject_id"] for row in rows)
    for row in rows:
        assert b"Quokka" not in row.payload
        assert b"school gate" not in row.payload
        assert b"dont-know" not in row.payload
        assert b"answers" not in row.payload
        assert b"9434765919" not in row.payload
    assessed = RiskAssessed.model_validate(CloudEvent.from_bytes(rows[0].payload).data)
    assert (assessed.dash_score, assessed.criteria_met, assessed.marac_referral_required) == \
        (14, ("visible-high-risk", "professional-judgement"), True)
    assert assessed.personal is not None
    opened = service.cipher.open(body["subject_id"], "risk-assessed", assessed.personal)
    assert opened == {"answers": answers, "professional_judgement_reasons": REASONS}
    required = MaracReferralRequired.model_validate(CloudEvent.from_bytes(rows[1].payload).data)
    assert required.referral_id == body["marac_referral_id"]
    assert required.assessment_id == body["id"] == assessed.assessment_id
    assert required.criteria_met == ("visible-high-risk", "professional-judgement")
    assert required.source == "dash"
    assert required.safeguarding_pseudonym is not None
    assert required.safeguarding_pseudonym not in ("9434765919", body["subject_id"])
    with service.database.read() as session:
        stored = session.execute(select(risk_assessments)).one()
    # a safeguarding record: under screening's records key, not the person's data key
    assert stored.sealed is None
    assert b"Quokka" not in stored.record_sealed and b"dont-know" not in stored.record_sealed
    assert service.records.open(f"screening.risk-assessment:{body['id']}",
                                stored.record_sealed)["reasons"] == REASONS


@pytest.mark.parametrize(("setting", "incidents", "escalation"), [
    pytest.param(None, 2, False, id="default-2"),
    pytest.param(None, 3, True, id="default-3"),
    pytest.param("5", 3, False, id="setting-5-3"),
    pytest.param("5", 4, False, id="setting-5-4"),
    pytest.param("5", 5, True, id="setting-5-5"),
    pytest.param("1", 1, True, id="setting-1-1"),
])
def test_the_escalation_threshold_is_a_setting(
        build: Build, monkeypatch: pytest.MonkeyPatch, setting: str | None, incidents: int,
        escalation: bool) -> None:
    if setting is not None:
        monkeypatch.setenv("PEERLINK_MARAC_ESCALATION_INCIDENTS", setting)
    service, client = build()
    body = _assess(service, client, assessment(0, incidents=incidents))
    assert body["criteria_met"] == (["potential-escalation"] if escalation else [])
    assert body["marac_referral_required"] is escalation


# --- the MARAC queue ---------------------------------------------------------------------------

def test_a_referral_marked_sent_stays_sent(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    referral_id = _assess(service, client, assessment(14))["marac_referral_id"]

    first = client.post(f"/v1/marac-referrals/{referral_id}/sent",
                        headers=safeguarding_lead(service))
    assert first.status_code == 200, first.text
    assert (first.json()["id"], first.json()["status"]) == (referral_id, "sent")
    assert first.json()["sent_at"] is not None
    again = client.post(f"/v1/marac-referrals/{referral_id}/sent",
                        headers=safeguarding_lead(service))
    assert again.status_code == 200
    assert again.json()["status"] == "sent"
    assert again.json()["sent_at"] == first.json()["sent_at"]
    assert _queue(service, client, status="open") == []
    assert [r["id"] for r in _queue(service, client, status="sent")] == [referral_id]


def test_an_unknown_referral_is_a_404(screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    response = client.post(f"/v1/marac-referrals/marac_{'0' * 32}/sent",
                           headers=safeguarding_lead(service))
    assert response.status_code == 404
    assert response.json()["error"] == "not-found"


@pytest.mark.parametrize(("org", "role"), [
    pytest.param("partner-a", "partner-staff", id="partner-staff"),
    pytest.param("partner-a", "mentor-coordinator", id="mentor-coordinator"),
    pytest.param("trust", "ops-viewer", id="ops-viewer"),
    pytest.param("partner-a", "ops-viewer", id="partner-ops-viewer"),
    pytest.param("service", "screening", id="service"),
])
def test_only_the_safeguarding_lead_and_those_it_concerns_see_the_queue(
        screening: tuple[ScreeningAdapters, TestClient], org: str, role: str) -> None:
    service, client = screening
    referral_id = _assess(service, client, assessment(14))["marac_referral_id"]
    headers = bearer(service.settings, org, role)

    listed = client.get("/v1/marac-referrals", params={"status": "open"}, headers=headers)
    assert listed.status_code == 403
    assert "Quokka" not in listed.text and referral_id not in listed.text
    sent = client.post(f"/v1/marac-referrals/{referral_id}/sent", headers=headers)
    assert sent.status_code == 403
    [referral] = _queue(service, client)
    assert referral["status"] == "open"


@pytest.mark.parametrize(("org", "role"), [
    pytest.param("trust", "clinician", id="clinician"),
    pytest.param("trust", "dpo", id="trust-dpo"),
    pytest.param("partner-a", "dpo", id="partner-dpo"),
])
def test_only_the_safeguarding_lead_marks_a_referral_sent(
        screening: tuple[ScreeningAdapters, TestClient], org: str, role: str) -> None:
    service, client = screening
    referral_id = _assess(service, client, assessment(14))["marac_referral_id"]
    sent = client.post(f"/v1/marac-referrals/{referral_id}/sent",
                       headers=bearer(service.settings, org, role))
    assert sent.status_code == 403
    assert referral_id not in sent.text
    [referral] = _queue(service, client)
    assert referral["status"] == "open"


def test_a_clinician_sees_only_the_referrals_they_raised(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    authority = development_issuer(service.settings)
    ada = {"Authorization": f"Bearer {authority.mint('trust', ['clinician'], 'ada')}"}
    bo = {"Authorization": f"Bearer {authority.mint('trust', ['clinician'], 'bo')}"}
    raised = client.post("/v1/risk-assessments", json=assessment(14), headers=ada)
    assert raised.status_code == 201, raised.text
    referral_id = raised.json()["marac_referral_id"]

    mine = client.get("/v1/marac-referrals", headers=ada)
    assert mine.status_code == 200
    assert [(r["id"], r["raised_by"]) for r in mine.json()["referrals"]] == \
        [(referral_id, "ada")]
    theirs = client.get("/v1/marac-referrals", headers=bo)
    assert theirs.status_code == 200
    assert theirs.json()["referrals"] == []
    assert referral_id not in theirs.text and raised.json()["subject_id"] not in theirs.text
    [on_queue] = _queue(service, client)
    assert (on_queue["id"], on_queue["raised_by"]) == (referral_id, "ada")


def test_a_dpo_sees_only_their_organisations_referrals_flagged_for_them(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    referral_id = _assess(service, client, assessment(14))["marac_referral_id"]
    for org in ("trust", "partner-a"):
        listed = client.get("/v1/marac-referrals",
                            headers=bearer(service.settings, org, "dpo"))
        assert listed.status_code == 200
        assert listed.json()["referrals"] == []  # not flagged: the DPO has nothing to decide
    with service.database.unit_of_work() as uow:
        uow.session.execute(update(marac_referrals).values(flagged_for_dpo_at=utcnow()))

    trust_dpo = client.get("/v1/marac-referrals", headers=bearer(service.settings, "trust",
                                                                  "dpo"))
    assert [r["id"] for r in trust_dpo.json()["referrals"]] == [referral_id]
    partner_dpo = client.get("/v1/marac-referrals", headers=bearer(service.settings,
                                                                    "partner-a", "dpo"))
    assert partner_dpo.status_code == 200
    assert partner_dpo.json()["referrals"] == []  # the queue is the Trust's


def test_no_marac_referral_is_raised_out_of_sight_of_the_safeguarding_lead(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    response = client.post("/v1/risk-assessments", json=assessment(14),
                           headers=clinician(service))
    assert response.status_code == 201, response.text
    referral_id = response.json()["marac_referral_id"]
    assert referral_id is not None
    assert referral_id in [r["id"] for r in _queue(service, client, status="open")]


def test_a_partner_clinician_token_cannot_assess_risk(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    service, client = screening
    response = client.post("/v1/risk-assessments", json=assessment(14),
                           headers=policy_refused_bearer(service.settings, "partner-b",
                                                         "clinician"))
    assert response.status_code == 401
    assert _count(service, risk_assessments) == 0


# --- OpenAPI -----------------------------------------------------------------------------------

def _enum(prop: dict[str, Any]) -> list[Any]:
    """The allowed values of a property, through ``anyOf`` with null."""
    if "enum" in prop:
        values: list[Any] = prop["enum"]
        return values
    for option in prop.get("anyOf", []):
        if "enum" in option:
            found: list[Any] = option["enum"]
            return found
    raise AssertionError(f"no enum in {prop}")


def test_openapi_documents_the_allowed_values(
        screening: tuple[ScreeningAdapters, TestClient]) -> None:
    _, client = screening
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    schemas = spec["components"]["schemas"]
    screening_schema = schemas["RecordScreening"]["properties"]
    assert set(_enum(screening_schema["outcome"])) == {"asked", "declined", "not-safe-to-ask",
                                                       "not-asked"}
    assert set(_enum(screening_schema["not_asked_reason"])) == {
        "no-private-space", "not-alone", "no-time", "staff-not-trained", "too-unwell", "other"}
    acceptability = schemas["AcceptabilityIn"]["properties"]
    assert set(_enum(acceptability["acceptable"])) == {"yes", "unsure", "no"}
    comfort = next(option for option in acceptability["comfort"]["anyOf"]
                   if option.get("type") == "integer")
    assert (comfort["minimum"], comfort["maximum"]) == (1, 5)
    assert set(_enum(screening_schema["age_band"])) == {
        "18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
    assert set(_enum(screening_schema["gender"])) >= {"female", "male", "not-stated"}
    assert set(_enum(screening_schema["past_abuse"])) == {"yes", "no", "unsure"}
    assert set(_enum(screening_schema["training_level"])) == {1, 2, 3}
    assert set(_enum(screening_schema["abuser_relationship"])) == {
        "partner", "ex-partner", "family-member", "other"}
    risk_schema = schemas["RecordRiskAssessment"]["properties"]
    answers = risk_schema["answers"]
    assert set(_enum(answers["items"])) == {"yes", "no", "dont-know"}
    assert (answers["minItems"], answers["maxItems"]) == (24, 24)
    assert {"/v1/enquiries/due", "/v1/screenings", "/v1/risk-assessments",
            "/v1/marac-referrals", "/v1/marac-referrals/{referral_id}/sent",
            "/v1/team-training"} <= set(spec["paths"])

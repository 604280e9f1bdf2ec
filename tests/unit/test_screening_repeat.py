"""The SafeLives repeat rule for every way a MARAC referral is recorded (issue 11): a DASH,
professional judgement alone with a partial (or no) checklist, and a referral another agency
made outside Peerlink. A repeat is any referral in the 12 months up to the day (boundary
inclusive), whoever made it; it is referred regardless of the other thresholds.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.screening.domain import access
from services.screening.domain.risk import (
    DASH_QUESTIONS,
    DashAnswer,
    IncompleteChecklist,
    external_decision,
    judgement_decision,
)
from services.screening.service_layer.commands import (
    RecordExternalReferral,
    RecordJudgementReferral,
    RecordRiskAssessment,
)
from shared.db import utcnow

SUBJECT = "sub_" + "0123456789abcdef" * 2
ON = date(2026, 12, 15)
BOUNDARIES = [
    pytest.param((date(2025, 12, 15),), True, id="exactly-12-months-before"),
    pytest.param((date(2025, 12, 14),), False, id="12-months-and-a-day-before"),
    pytest.param((date(2026, 12, 15),), True, id="same-day"),
    pytest.param((date(2026, 12, 16),), False, id="after"),
    pytest.param((), False, id="none"),
]


def answers(yes: int, total: int) -> list[DashAnswer]:
    yeses: list[DashAnswer] = ["yes"] * yes
    noes: list[DashAnswer] = ["no"] * (total - yes)
    return yeses + noes


@pytest.mark.parametrize(("previous", "repeat"), BOUNDARIES)
def test_a_judgement_referral_is_a_repeat_within_12_months(
        previous: tuple[date, ...], repeat: bool) -> None:
    decision = judgement_decision([], 0, ON, previous)
    assert decision.criteria_met == (("professional-judgement", "repeat") if repeat
                                     else ("professional-judgement",))
    assert decision.referral_required


@pytest.mark.parametrize(("previous", "repeat"), BOUNDARIES)
def test_an_external_referral_is_a_repeat_within_12_months(
        previous: tuple[date, ...], repeat: bool) -> None:
    decision = external_decision(ON, previous)
    assert ("repeat" in decision.criteria_met) is repeat
    assert decision.criteria_met[0] == "professional-judgement"  # the referring agency's


def test_a_partial_checklist_still_meets_what_it_shows() -> None:
    decision = judgement_decision(answers(14, 20), 3, ON, ())
    assert decision.score == 14
    assert decision.criteria_met == ("visible-high-risk", "professional-judgement",
                                     "potential-escalation")
    assert judgement_decision(answers(13, 23), 2, ON, ()).criteria_met == (
        "professional-judgement",)
    assert judgement_decision(answers(0, 0), 4, ON, (), escalation_incidents=5).score == 0


def test_a_complete_checklist_is_not_a_judgement_referral() -> None:
    with pytest.raises(IncompleteChecklist):
        judgement_decision(answers(0, DASH_QUESTIONS), 0, ON, ())


JUDGEMENT: dict[str, Any] = {
    "subject_id": SUBJECT, "reasons": "she fears for her life", "incidents_last_12_months": 1,
    "partial_answers": ["yes", "no"], "not_completed_reason": "she had to leave",
    "referred_on": "2026-11-20"}


def fields(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in err["loc"]) for err in exc.errors()]


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"reasons": None}, "reasons", id="no-reasons"),
    pytest.param({"reasons": "  "}, "reasons", id="blank-reasons"),
    pytest.param({"not_completed_reason": None}, "not_completed_reason",
                 id="no-not-completed-reason"),
    pytest.param({"partial_answers": ["no"] * DASH_QUESTIONS}, "partial_answers",
                 id="a-complete-checklist"),
    pytest.param({"partial_answers": ["maybe"]}, "partial_answers.0", id="unknown-answer"),
    pytest.param({"referred_on": str(utcnow().date() + timedelta(days=1))}, "referred_on",
                 id="in-the-future"),
    pytest.param({"safe_contact": {"phone": "07700 900123"}}, "safe_contact.times",
                 id="safe-contact-without-times"),
])
def test_a_judgement_referral_names_the_bad_field(change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**JUDGEMENT, **change}.items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        RecordJudgementReferral.model_validate(body)
    assert field in fields(caught.value)


def test_a_judgement_referral_may_have_no_answers_at_all() -> None:
    body = {k: v for k, v in JUDGEMENT.items() if k != "partial_answers"}
    assert RecordJudgementReferral.model_validate(body).partial_answers == []


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"referred_on": str(utcnow().date() + timedelta(days=1))}, "referred_on",
                 id="in-the-future"),
    pytest.param({"referring_agency": ""}, "referring_agency", id="no-agency"),
    pytest.param({"subject_id": "9434765919"}, "subject_id", id="not-a-reference"),
    pytest.param({"nhs_number": "9434765919"}, "nhs_number", id="by-subject-only"),
])
def test_an_external_referral_names_the_bad_field(change: dict[str, Any], field: str) -> None:
    body = {"subject_id": SUBJECT, "referred_on": "2026-11-01", "referring_agency": "police",
            **change}
    with pytest.raises(ValidationError) as caught:
        RecordExternalReferral.model_validate(body)
    assert field in fields(caught.value)


def test_a_dash_may_carry_a_safe_contact() -> None:
    assessed = RecordRiskAssessment.model_validate({
        "subject_id": SUBJECT, "answers": ["no"] * 24, "incidents_last_12_months": 0,
        "assessed_on": "2026-11-20", "safe_contact": {
            "phone": "07700 900123", "times": "weekdays 10-12", "may_leave_message": False}})
    assert assessed.safe_contact is not None and not assessed.safe_contact.may_leave_message


@pytest.mark.parametrize(("action", "roles"), [
    (access.RECORD_JUDGEMENT_REFERRAL, {"clinician"}),
    (access.RECORD_EXTERNAL_REFERRAL, {"clinician", "safeguarding-lead"}),
    (access.EXPORT_SUBJECT, {"dpo"}),
])
def test_who_records_and_exports(action: str, roles: set[str]) -> None:
    assert access.RULES[action].roles == roles


def test_safe_contact_is_for_those_acting_on_the_referral() -> None:
    assert access.sees_safe_contact(access.MaracView.ALL)
    assert access.sees_safe_contact(access.MaracView.RAISED_BY_CALLER)
    assert not access.sees_safe_contact(access.MaracView.FLAGGED_FOR_DPO)


def test_export_needs_the_dpo_and_a_relationship() -> None:
    assert access.may_export({"dpo"}, relationship=True)
    assert not access.may_export({"dpo"}, relationship=False)
    assert not access.may_export({"clinician", "safeguarding-lead"}, relationship=True)

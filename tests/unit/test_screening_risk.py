"""DASH scoring and the MARAC referral criteria, pinned rule by rule at their boundaries.

The rules (DOMAIN.md section 2): the score is the number of "yes" among exactly 24 answers;
a referral is required on any one of visible high risk (14 or more "yes"), professional
judgement (with reasons; it can add a referral, never remove one), potential escalation
(incidents at or above a setting, default 3) and repeat (a referral within the previous
12 months, boundary inclusive).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from services.screening.domain.risk import (
    DASH_QUESTIONS,
    DASH_TOPICS,
    DEFAULT_ESCALATION_INCIDENTS,
    DashAnswer,
    IncompleteChecklist,
    MaracDecision,
    add_months,
    dash_score,
    is_repeat,
    marac_decision,
)
from services.screening.service_layer.commands import (
    ProfessionalJudgement,
    RecordEnquiryDue,
    RecordRiskAssessment,
)

SUBJECT = "sub_" + "0123456789abcdef" * 2
ASSESSED_ON = date(2026, 12, 15)
DROP = object()


def dash(yes: int = 0, dont_know: int = 0, total: int = DASH_QUESTIONS) -> list[DashAnswer]:
    """A checklist of ``total`` answers: ``yes`` yeses, ``dont_know`` don't-knows, rest no."""
    no = total - yes - dont_know
    assert no >= 0
    yeses: list[DashAnswer] = ["yes"] * yes
    dont_knows: list[DashAnswer] = ["dont-know"] * dont_know
    noes: list[DashAnswer] = ["no"] * no
    return yeses + dont_knows + noes


def given(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with changes; a change to ``DROP`` removes the field."""
    body = {**base, **changes}
    return {k: v for k, v in body.items() if v is not DROP}


def locations(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in err["loc"]) for err in exc.errors()]


def decide(yes: int = 0, *, dont_know: int = 0, referral: bool = False, incidents: int = 0,
           previous: tuple[date, ...] = (), **kwargs: Any) -> MaracDecision:
    return marac_decision(dash(yes, dont_know), referral, incidents, ASSESSED_ON, previous,
                          **kwargs)


# --- the checklist and its score ---------------------------------------------------------------

def test_the_checklist_has_24_topics_in_order() -> None:
    assert DASH_QUESTIONS == 24
    assert len(DASH_TOPICS) == 24
    assert len(set(DASH_TOPICS)) == 24
    assert DASH_TOPICS[0] == "injury from the current incident"
    assert DASH_TOPICS[13] == "threats to kill that were believed"
    assert DASH_TOPICS[14] == "strangulation, choking, suffocation or drowning"
    assert DASH_TOPICS[-1] == "the abuser's trouble with the police or criminal history"


@pytest.mark.parametrize(
    ("answers", "score"),
    [
        pytest.param(dash(0), 0, id="all-no"),
        pytest.param(dash(1), 1, id="one-yes"),
        pytest.param(dash(13), 13, id="13-yes"),
        pytest.param(dash(14), 14, id="14-yes"),
        pytest.param(dash(24), 24, id="all-yes"),
        pytest.param(dash(0, dont_know=24), 0, id="all-dont-know-count-nothing"),
        pytest.param(dash(13, dont_know=11), 13, id="dont-know-never-counts"),
        pytest.param(["no", "yes"] * 12, 12, id="order-does-not-matter"),
    ],
)
def test_the_score_is_the_number_of_yes_answers(answers: list[DashAnswer], score: int) -> None:
    assert dash_score(answers) == score


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param(dash(0, total=23), id="23-answers"),
        pytest.param(dash(14, total=23), id="23-answers-14-yes"),
        pytest.param(dash(0, total=25), id="25-answers"),
        pytest.param(dash(24, total=25), id="25-answers-all-yes-but-one"),
        pytest.param([], id="no-answers"),
    ],
)
def test_a_checklist_without_exactly_24_answers_is_incomplete(
        answers: list[DashAnswer]) -> None:
    with pytest.raises(IncompleteChecklist, match="exactly 24"):
        dash_score(answers)
    with pytest.raises(IncompleteChecklist):
        marac_decision(answers, True, 10, ASSESSED_ON, ())


# --- the MARAC criteria, one at a time ---------------------------------------------------------

@pytest.mark.parametrize(
    ("yes", "dont_know", "visible_high_risk"),
    [
        pytest.param(0, 0, False, id="0-yes"),
        pytest.param(13, 0, False, id="13-yes"),
        pytest.param(13, 11, False, id="13-yes-11-dont-know"),
        pytest.param(14, 0, True, id="14-yes"),
        pytest.param(14, 10, True, id="14-yes-10-dont-know"),
        pytest.param(24, 0, True, id="24-yes"),
        pytest.param(0, 24, False, id="all-dont-know"),
    ],
)
def test_visible_high_risk_is_14_or_more_yes(yes: int, dont_know: int,
                                             visible_high_risk: bool) -> None:
    decision = decide(yes, dont_know=dont_know)
    assert decision.score == yes
    assert decision.criteria_met == (("visible-high-risk",) if visible_high_risk else ())
    assert decision.referral_required is visible_high_risk


@pytest.mark.parametrize(
    ("incidents", "threshold", "escalation"),
    [
        pytest.param(0, None, False, id="default-0"),
        pytest.param(2, None, False, id="default-2"),
        pytest.param(3, None, True, id="default-3"),
        pytest.param(12, None, True, id="default-12"),
        pytest.param(2, 3, False, id="explicit-3-2"),
        pytest.param(3, 3, True, id="explicit-3-3"),
        pytest.param(3, 5, False, id="custom-5-3"),
        pytest.param(4, 5, False, id="custom-5-4"),
        pytest.param(5, 5, True, id="custom-5-5"),
        pytest.param(6, 5, True, id="custom-5-6"),
        pytest.param(0, 1, False, id="custom-1-0"),
        pytest.param(1, 1, True, id="custom-1-1"),
    ],
)
def test_potential_escalation_is_incidents_at_or_above_the_threshold(
        incidents: int, threshold: int | None, escalation: bool) -> None:
    kwargs: dict[str, Any] = {} if threshold is None else {"escalation_incidents": threshold}
    decision = decide(0, incidents=incidents, **kwargs)
    assert decision.criteria_met == (("potential-escalation",) if escalation else ())
    assert decision.referral_required is escalation


def test_the_default_escalation_threshold_is_safelives_3() -> None:
    assert DEFAULT_ESCALATION_INCIDENTS == 3


@pytest.mark.parametrize(
    ("yes", "referral", "criteria", "required"),
    [
        pytest.param(0, False, (), False, id="no-judgement-no-risk"),
        pytest.param(0, True, ("professional-judgement",), True, id="judgement-adds-alone"),
        pytest.param(13, True, ("professional-judgement",), True, id="judgement-at-13"),
        pytest.param(14, False, ("visible-high-risk",), True,
                     id="judgement-false-never-removes-14"),
        pytest.param(24, False, ("visible-high-risk",), True,
                     id="judgement-false-never-removes-24"),
        pytest.param(14, True, ("visible-high-risk", "professional-judgement"), True,
                     id="both"),
    ],
)
def test_professional_judgement_adds_a_referral_and_never_removes_one(
        yes: int, referral: bool, criteria: tuple[str, ...], required: bool) -> None:
    decision = decide(yes, referral=referral)
    assert decision.criteria_met == criteria
    assert decision.referral_required is required


def test_professional_judgement_false_never_removes_escalation_or_repeat() -> None:
    decision = decide(0, referral=False, incidents=3, previous=(date(2026, 6, 1),))
    assert decision.criteria_met == ("potential-escalation", "repeat")
    assert decision.referral_required


@pytest.mark.parametrize(
    ("assessed_on", "previous", "repeat"),
    [
        pytest.param(date(2026, 12, 15), (), False, id="no-previous-referral"),
        pytest.param(date(2026, 12, 15), (date(2026, 1, 15),), True, id="11-months-before"),
        pytest.param(date(2026, 12, 15), (date(2026, 11, 15),), True, id="1-month-before"),
        pytest.param(date(2026, 12, 15), (date(2025, 12, 15),), True,
                     id="exactly-12-months-inclusive"),
        pytest.param(date(2026, 12, 15), (date(2025, 12, 14),), False,
                     id="12-months-and-a-day"),
        pytest.param(date(2026, 12, 15), (date(2025, 11, 15),), False, id="13-months-before"),
        pytest.param(date(2026, 12, 15), (date(2020, 1, 1),), False, id="years-before"),
        pytest.param(date(2026, 12, 15), (date(2026, 12, 16),), False,
                     id="referral-after-the-assessment"),
        pytest.param(date(2026, 12, 15), (date(2027, 6, 1),), False,
                     id="referral-months-after-the-assessment"),
        pytest.param(date(2026, 12, 15), (date(2026, 12, 15),), True, id="same-day"),
        pytest.param(date(2026, 12, 15), (date(2025, 11, 15), date(2026, 1, 15)), True,
                     id="one-old-one-recent"),
        pytest.param(date(2026, 12, 15), (date(2025, 11, 15), date(2027, 1, 15)), False,
                     id="one-too-old-one-after"),
        pytest.param(date(2025, 2, 28), (date(2024, 2, 29),), True,
                     id="leap-day-12-months-is-28-feb"),
        pytest.param(date(2025, 3, 1), (date(2024, 2, 29),), False,
                     id="leap-day-12-months-and-a-day"),
        pytest.param(date(2027, 1, 31), (date(2026, 1, 31),), True,
                     id="12-months-across-new-year"),
    ],
)
def test_repeat_is_a_referral_in_the_previous_12_months(
        assessed_on: date, previous: tuple[date, ...], repeat: bool) -> None:
    assert is_repeat(assessed_on, previous) is repeat
    decision = marac_decision(dash(0), False, 0, assessed_on, previous)
    assert decision.criteria_met == (("repeat",) if repeat else ())
    assert decision.referral_required is repeat


def test_previous_referrals_may_be_any_iterable() -> None:
    assert is_repeat(ASSESSED_ON, iter([date(2026, 1, 15)]))
    assert not is_repeat(ASSESSED_ON, iter([]))


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        pytest.param(date(2026, 1, 15), 1, date(2026, 2, 15), id="plain"),
        pytest.param(date(2026, 5, 15), 0, date(2026, 5, 15), id="zero"),
        pytest.param(date(2026, 1, 31), 1, date(2026, 2, 28), id="31-jan-to-28-feb"),
        pytest.param(date(2024, 1, 31), 1, date(2024, 2, 29), id="31-jan-to-29-feb-leap"),
        pytest.param(date(2028, 1, 30), 1, date(2028, 2, 29), id="30-jan-to-29-feb-leap"),
        pytest.param(date(2026, 3, 31), 1, date(2026, 4, 30), id="31-mar-to-30-apr"),
        pytest.param(date(2026, 8, 31), 1, date(2026, 9, 30), id="31-aug-to-30-sep"),
        pytest.param(date(2026, 12, 15), 1, date(2027, 1, 15), id="december-rolls-year"),
        pytest.param(date(2026, 11, 30), 3, date(2027, 2, 28), id="rolls-year-and-clamps"),
        pytest.param(date(2026, 1, 15), 12, date(2027, 1, 15), id="twelve"),
        pytest.param(date(2025, 12, 31), 12, date(2026, 12, 31), id="twelve-from-december"),
        pytest.param(date(2024, 2, 29), 12, date(2025, 2, 28), id="leap-day-plus-year"),
        pytest.param(date(2024, 2, 29), 48, date(2028, 2, 29), id="leap-day-plus-4-years"),
        pytest.param(date(2023, 2, 28), 12, date(2024, 2, 28), id="28-feb-into-leap-year"),
        pytest.param(date(2026, 1, 31), 25, date(2028, 2, 29), id="25-months-to-leap-feb"),
    ],
)
def test_add_months_clamps_to_the_last_day_of_the_month(day: date, months: int,
                                                        expected: date) -> None:
    assert add_months(day, months) == expected


# --- several criteria at once ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("yes", "referral", "incidents", "previous", "criteria"),
    [
        pytest.param(14, True, 3, (date(2026, 6, 1),),
                     ("visible-high-risk", "professional-judgement", "potential-escalation",
                      "repeat"), id="all-four"),
        pytest.param(14, False, 3, (), ("visible-high-risk", "potential-escalation"),
                     id="high-risk-and-escalation"),
        pytest.param(0, True, 0, (date(2026, 6, 1),), ("professional-judgement", "repeat"),
                     id="judgement-and-repeat"),
        pytest.param(20, False, 0, (date(2026, 6, 1),), ("visible-high-risk", "repeat"),
                     id="high-risk-and-repeat"),
        pytest.param(13, True, 5, (), ("professional-judgement", "potential-escalation"),
                     id="judgement-and-escalation"),
        pytest.param(13, False, 2, (date(2025, 11, 15),), (), id="every-criterion-just-missed"),
    ],
)
def test_criteria_are_listed_in_a_fixed_order(yes: int, referral: bool, incidents: int,
                                              previous: tuple[date, ...],
                                              criteria: tuple[str, ...]) -> None:
    decision = decide(yes, referral=referral, incidents=incidents, previous=previous)
    assert decision.criteria_met == criteria
    assert decision.referral_required is bool(criteria)
    assert decision.score == yes


# --- commands: RecordRiskAssessment, ProfessionalJudgement, RecordEnquiryDue -------------------

RISK: dict[str, Any] = {
    "subject_id": SUBJECT, "answers": dash(3, dont_know=2), "incidents_last_12_months": 1,
    "assessed_on": "2026-12-15",
}


@pytest.mark.parametrize(
    ("given_body", "expected"),
    [
        pytest.param(RISK, {"incidents_last_12_months": 1}, id="minimal"),
        pytest.param(given(RISK, professional_judgement={"referral": False}),
                     {"professional_judgement": ProfessionalJudgement(referral=False)},
                     id="referral-false-without-reasons"),
        pytest.param(given(RISK, professional_judgement={"referral": False, "reasons": ""}),
                     {"professional_judgement": ProfessionalJudgement(referral=False,
                                                                      reasons="")},
                     id="referral-false-empty-reasons"),
        pytest.param(given(RISK, professional_judgement={"referral": True,
                                                         "reasons": "threats escalating"}),
                     {"professional_judgement": ProfessionalJudgement(
                         referral=True, reasons="threats escalating")},
                     id="referral-true-with-reasons"),
        pytest.param(given(RISK, answers=dash(0, dont_know=24)), {"answers": dash(0, 24)},
                     id="all-dont-know"),
        pytest.param(given(RISK, answers=dash(24)), {"answers": dash(24)}, id="all-yes"),
        pytest.param(given(RISK, incidents_last_12_months=0), {"incidents_last_12_months": 0},
                     id="zero-incidents"),
        pytest.param(given(RISK, subject_id=DROP, nhs_number="943 476 5919"),
                     {"nhs_number": "9434765919", "subject_id": None}, id="by-nhs-number"),
    ],
)
def test_valid_risk_assessments_are_accepted(given_body: dict[str, Any],
                                             expected: dict[str, Any]) -> None:
    command = RecordRiskAssessment.model_validate(given_body)
    assert command.assessed_on == date(2026, 12, 15)
    assert len(command.answers) == 24
    for field, value in expected.items():
        assert getattr(command, field) == value


def test_professional_judgement_defaults_to_no_referral() -> None:
    command = RecordRiskAssessment.model_validate(RISK)
    assert command.professional_judgement == ProfessionalJudgement(referral=False, reasons=None)


@pytest.mark.parametrize(
    ("given_body", "expected_location", "expected_message"),
    [
        pytest.param(given(RISK, professional_judgement={"referral": True}),
                     "professional_judgement", "reasons", id="referral-reasons-missing"),
        pytest.param(given(RISK, professional_judgement={"referral": True, "reasons": None}),
                     "professional_judgement", "reasons", id="referral-reasons-null"),
        pytest.param(given(RISK, professional_judgement={"referral": True, "reasons": ""}),
                     "professional_judgement", "reasons", id="referral-reasons-empty"),
        pytest.param(given(RISK, professional_judgement={"referral": True, "reasons": "   "}),
                     "professional_judgement", "reasons", id="referral-reasons-spaces"),
        pytest.param(given(RISK, professional_judgement={"referral": True,
                                                         "reasons": "\n\t "}),
                     "professional_judgement", "reasons", id="referral-reasons-whitespace"),
        pytest.param(given(RISK, professional_judgement={"reasons": "x"}),
                     "professional_judgement.referral", "required", id="referral-missing"),
        pytest.param(given(RISK, professional_judgement={"referral": True, "reasons": "x",
                                                         "score": 3}),
                     "professional_judgement.score", "Extra", id="judgement-extra-field"),
        pytest.param(given(RISK, professional_judgement={"referral": True,
                                                         "reasons": "x" * 4001}),
                     "professional_judgement.reasons", "4000", id="reasons-too-long"),
        pytest.param(given(RISK, answers=dash(0, total=23)), "answers", "24",
                     id="23-answers"),
        pytest.param(given(RISK, answers=dash(14, total=25)), "answers", "24",
                     id="25-answers"),
        pytest.param(given(RISK, answers=[]), "answers", "24", id="no-answers"),
        pytest.param(given(RISK, answers=DROP), "answers", "required", id="answers-missing"),
        pytest.param(given(RISK, answers=["maybe", *dash(0, total=23)]), "answers.0", "",
                     id="answer-maybe"),
        pytest.param(given(RISK, answers=[*dash(0, total=23), "unsure"]), "answers.23", "",
                     id="answer-unsure"),
        pytest.param(given(RISK, answers=["Yes", *dash(0, total=23)]), "answers.0", "",
                     id="answer-capitalised"),
        pytest.param(given(RISK, answers=["dont_know", *dash(0, total=23)]), "answers.0", "",
                     id="answer-underscore"),
        pytest.param(given(RISK, answers=[True, *dash(0, total=23)]), "answers.0", "",
                     id="answer-boolean"),
        pytest.param(given(RISK, answers=[None, *dash(0, total=23)]), "answers.0", "",
                     id="answer-null"),
        pytest.param(given(RISK, incidents_last_12_months=-1), "incidents_last_12_months",
                     "greater than or equal to 0", id="negative-incidents"),
        pytest.param(given(RISK, incidents_last_12_months=DROP), "incidents_last_12_months",
                     "required", id="incidents-missing"),
        pytest.param(given(RISK, assessed_on=DROP), "assessed_on", "required",
                     id="assessed-on-missing"),
        pytest.param(given(RISK, assessed_on="15/12/2026"), "assessed_on", "",
                     id="assessed-on-format"),
        pytest.param(given(RISK, nhs_number="9434765919"), "", "exactly one",
                     id="both-identifiers"),
        pytest.param(given(RISK, subject_id=DROP), "", "exactly one", id="no-identifier"),
        pytest.param(given(RISK, score=3), "score", "Extra", id="extra-field"),
    ],
)
def test_invalid_risk_assessments_are_refused(given_body: dict[str, Any],
                                              expected_location: str,
                                              expected_message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RecordRiskAssessment.model_validate(given_body)
    assert expected_location in locations(caught.value)
    assert any(expected_message in err["msg"] for err in caught.value.errors())


@pytest.mark.parametrize(
    ("referral", "reasons", "valid"),
    [
        pytest.param(False, None, True, id="no-referral-no-reasons"),
        pytest.param(False, "  ", True, id="no-referral-blank-reasons"),
        pytest.param(False, "noted", True, id="no-referral-with-reasons"),
        pytest.param(True, "believed threats to kill", True, id="referral-with-reasons"),
        pytest.param(True, None, False, id="referral-no-reasons"),
        pytest.param(True, "", False, id="referral-empty-reasons"),
        pytest.param(True, " \t\n", False, id="referral-whitespace-reasons"),
    ],
)
def test_professional_judgement_needs_reasons_only_to_refer(referral: bool,
                                                            reasons: str | None,
                                                            valid: bool) -> None:
    if valid:
        judgement = ProfessionalJudgement(referral=referral, reasons=reasons)
        assert judgement.referral is referral
        return
    with pytest.raises(ValidationError, match="reasons are required"):
        ProfessionalJudgement(referral=referral, reasons=reasons)


DUE: dict[str, Any] = {"subject_id": SUBJECT, "org": "trust", "team": "north-cmht",
                       "due_on": "2026-12-01"}


@pytest.mark.parametrize(
    ("given_body", "expected"),
    [
        pytest.param(DUE, {"subject_id": SUBJECT, "nhs_number": None}, id="by-subject"),
        pytest.param(given(DUE, subject_id=DROP, nhs_number="943 476 5919"),
                     {"nhs_number": "9434765919", "subject_id": None}, id="by-nhs-number"),
        pytest.param(given(DUE, due_on="2028-02-29"), {"due_on": date(2028, 2, 29)},
                     id="leap-day"),
    ],
)
def test_valid_enquiries_due_are_accepted(given_body: dict[str, Any],
                                          expected: dict[str, Any]) -> None:
    command = RecordEnquiryDue.model_validate(given_body)
    assert isinstance(command.due_on, date)
    for field, value in expected.items():
        assert getattr(command, field) == value


@pytest.mark.parametrize(
    ("given_body", "expected_location", "expected_message"),
    [
        pytest.param(given(DUE, nhs_number="9434765919"), "", "exactly one",
                     id="both-identifiers"),
        pytest.param(given(DUE, subject_id=DROP), "", "exactly one", id="no-identifier"),
        pytest.param(given(DUE, subject_id=None, nhs_number=None), "", "exactly one",
                     id="both-null"),
        pytest.param(given(DUE, subject_id=DROP, nhs_number="9434765918"), "nhs_number",
                     "check digit", id="nhs-number-check-digit"),
        pytest.param(given(DUE, subject_id="sub_123"), "subject_id", "pattern",
                     id="subject-pattern"),
        pytest.param(given(DUE, due_on=DROP), "due_on", "required", id="due-on-missing"),
        pytest.param(given(DUE, due_on="01/12/2026"), "due_on", "", id="due-on-format"),
        pytest.param(given(DUE, due_on="2026-02-30"), "due_on", "", id="due-on-no-such-day"),
        pytest.param(given(DUE, due_on="soon"), "due_on", "", id="due-on-text"),
        pytest.param(given(DUE, org="Partner A"), "org", "pattern", id="org-pattern"),
        pytest.param(given(DUE, team=""), "team", "", id="team-empty"),
        pytest.param(given(DUE, notes="x"), "notes", "Extra", id="extra-field"),
    ],
)
def test_invalid_enquiries_due_are_refused(given_body: dict[str, Any], expected_location: str,
                                           expected_message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RecordEnquiryDue.model_validate(given_body)
    assert expected_location in locations(caught.value)
    assert any(expected_message in err["msg"] for err in caught.value.errors())

"""What each screening event contributes to the de-identified figures, and in which month."""

from __future__ import annotations

from datetime import date
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from services.reporting.adapters.tables import MEASURE_LENGTH, contributions
from services.reporting.domain.contributions import (
    DECLINE_MEASURES,
    FOLLOW_UP_MEASURES,
    NOT_ASKED_MEASURES,
    UNKNOWN,
    Contribution,
    anonymous_subject,
    component_measure,
    contributions_of,
    decline_measure,
    month_of,
)
from shared.events.consent import SubjectKeyShredded
from shared.events.envelope import EventPayload
from shared.events.mentoring import (
    AdverseEventRecorded,
    FollowUpRecorded,
    MenteeFeedbackGiven,
    MentoringOffered,
    SessionComponentsRecorded,
)
from shared.events.screening import (
    EnquiryAcceptability,
    EnquiryDue,
    EnquiryNotAsked,
    RiskAssessed,
    ScreeningCompleted,
    ScreeningDeclined,
    ScreeningNotSafe,
    TeamTrainingRecorded,
)
from shared.events.vocabulary import Component, NotAskedReason

CELL: dict[str, Any] = {"org": "trust", "team": "north-cmht", "borough": "Camden",
                        "gender": "female", "age_band": "25-34"}
ENQUIRY: dict[str, Any] = {**CELL, "screening_id": "s1", "asked_on": date(2026, 1, 31),
                           "asked_by_role": "nurse", "training_level": 2, "private": True}


def completed(hark_score: int, past_abuse: str, *, private: bool = True,
              asked_on: date = date(2026, 1, 31)) -> ScreeningCompleted:
    current = hark_score >= 1
    return ScreeningCompleted(**{**ENQUIRY, "private": private, "asked_on": asked_on},
                              hark_score=hark_score, current_abuse=current,
                              past_abuse=past_abuse,
                              disclosed=current or past_abuse == "yes")


def measures(payload: EventPayload) -> dict[str, int]:
    return {c.measure: c.value for c in contributions_of(payload)}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(date(2026, 1, 31), "2026-01", id="last-day-of-month"),
        pytest.param(date(2025, 12, 1), "2025-12", id="first-day-of-month"),
        pytest.param(date(999, 3, 4), "0999-03", id="zero-padded-year"),
    ],
)
def test_month_of(given: date, expected: str) -> None:
    assert month_of(given) == expected


@pytest.mark.parametrize(
    ("given", "expected_month"),
    [
        pytest.param(completed(0, "no", asked_on=date(2026, 1, 31)), "2026-01",
                     id="completed-asked-on"),
        pytest.param(ScreeningDeclined(**{**ENQUIRY, "asked_on": date(2024, 2, 29)}), "2024-02",
                     id="declined-asked-on"),
        pytest.param(ScreeningNotSafe(**{**ENQUIRY, "asked_on": date(2023, 7, 1)}), "2023-07",
                     id="not-safe-asked-on"),
        pytest.param(EnquiryDue(org="trust", team="north-cmht", due_on=date(2025, 12, 1)),
                     "2025-12", id="due-on"),
    ],
)
def test_contributions_are_bucketed_by_the_events_own_date(given: EventPayload,
                                                           expected_month: str) -> None:
    # given dates in different months, expect each event's own month, not today's
    contributions = contributions_of(given)
    assert contributions
    assert {c.month for c in contributions} == {expected_month}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(completed(0, "no"), {"screened": 1, "current_abuse": 0, "past_abuse": 0,
                                          "either_abuse": 0, "asked_in_private": 1},
                     id="nothing-disclosed"),
        pytest.param(completed(1, "no"), {"screened": 1, "current_abuse": 1, "past_abuse": 0,
                                          "either_abuse": 1, "asked_in_private": 1},
                     id="current-only"),
        pytest.param(completed(0, "yes"), {"screened": 1, "current_abuse": 0, "past_abuse": 1,
                                           "either_abuse": 1, "asked_in_private": 1},
                     id="past-only"),
        pytest.param(completed(4, "yes"), {"screened": 1, "current_abuse": 1, "past_abuse": 1,
                                           "either_abuse": 1, "asked_in_private": 1},
                     id="both"),
        pytest.param(completed(0, "unsure"), {"screened": 1, "current_abuse": 0,
                                              "past_abuse": 0, "either_abuse": 0,
                                              "asked_in_private": 1}, id="past-unsure"),
        pytest.param(completed(2, "no", private=False),
                     {"screened": 1, "current_abuse": 1, "past_abuse": 0, "either_abuse": 1,
                      "asked_in_private": 0}, id="not-private"),
    ],
)
def test_screening_completed_contributions(given: ScreeningCompleted,
                                           expected: dict[str, int]) -> None:
    contributions = contributions_of(given)
    assert len(contributions) == 5
    assert measures(given) == expected


def test_screening_completed_carries_every_dimension() -> None:
    for contribution in contributions_of(completed(1, "yes")):
        assert (contribution.org, contribution.team, contribution.borough, contribution.gender,
                contribution.age_band) == ("trust", "north-cmht", "Camden", "female", "25-34")
        assert contribution.month == "2026-01"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(ScreeningDeclined(**ENQUIRY),
                     [Contribution("declined", 1, ENQUIRY["asked_on"], **CELL)], id="declined"),
        pytest.param(ScreeningNotSafe(**{**ENQUIRY, "private": False}),
                     [Contribution("not_safe_to_ask", 1, ENQUIRY["asked_on"], **CELL)],
                     id="not-safe"),
        pytest.param(EnquiryDue(org="partner-a", team="outreach", due_on=date(2025, 12, 1)),
                     [Contribution("due", 1, date(2025, 12, 1), org="partner-a", team="outreach",
                                   borough=UNKNOWN, gender=UNKNOWN, age_band=UNKNOWN)],
                     id="enquiry-due"),
    ],
)
def test_other_outcomes_contribute_one_measure(given: EventPayload,
                                               expected: list[Contribution]) -> None:
    assert contributions_of(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(RiskAssessed(org="trust", assessment_id="r1", assessed_on=date(2026, 1, 5),
                                  dash_score=3, incidents_last_12_months=0, criteria_met=(),
                                  marac_referral_required=False), id="risk-assessed"),
        pytest.param(SubjectKeyShredded(key_id="k1", withdrawal_id="w1"), id="key-shredded"),
        pytest.param(TeamTrainingRecorded(org="trust", team="north-cmht",
                                          as_of=date(2026, 1, 5), staff=10, trained=4),
                     id="team-training"),
    ],
)
def test_other_events_contribute_nothing(given: EventPayload) -> None:
    assert contributions_of(given) == []


@pytest.mark.parametrize("reason", get_args(NotAskedReason))
def test_not_asked_counts_the_person_and_their_reason(reason: str) -> None:
    given = EnquiryNotAsked(**{**ENQUIRY, "private": False}, reason=reason)
    measure = f"not_asked_{reason.replace('-', '_')}"
    assert measure in NOT_ASKED_MEASURES
    assert contributions_of(given) == [
        Contribution("not_asked", 1, ENQUIRY["asked_on"], **CELL),
        Contribution(measure, 1, ENQUIRY["asked_on"], **CELL)]


def test_every_reason_has_a_measure_of_its_own() -> None:
    assert len(set(NOT_ASKED_MEASURES)) == len(get_args(NotAskedReason)) == 6


@pytest.mark.parametrize(
    ("acceptable", "comfort", "expected"),
    [
        pytest.param("yes", 5, {"found_acceptable": 1, "acceptable_unsure": 0,
                                "not_acceptable": 0, "comfort_rated": 1, "comfortable": 1},
                     id="yes-comfortable"),
        pytest.param("yes", 4, {"found_acceptable": 1, "acceptable_unsure": 0,
                                "not_acceptable": 0, "comfort_rated": 1, "comfortable": 1},
                     id="four-is-comfortable"),
        pytest.param("unsure", 3, {"found_acceptable": 0, "acceptable_unsure": 1,
                                   "not_acceptable": 0, "comfort_rated": 1, "comfortable": 0},
                     id="three-is-not"),
        pytest.param("no", None, {"found_acceptable": 0, "acceptable_unsure": 0,
                                  "not_acceptable": 1}, id="no-comfort-given"),
    ],
)
def test_an_acceptability_answer_contributes_the_answer_and_any_comfort(
        acceptable: str, comfort: int | None, expected: dict[str, int]) -> None:
    given = EnquiryAcceptability(**CELL, screening_id="s1", asked_on=date(2026, 1, 31),
                                 acceptable=acceptable, comfort=comfort)
    assert measures(given) == {"acceptability_answered": 1, **expected}
    assert {c.month for c in contributions_of(given)} == {"2026-01"}


MATCHED: dict[str, Any] = {"match_id": "m1", "org": "partner-a"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(SessionComponentsRecorded(**MATCHED, session_id="s1",
                                               held_on=date(2026, 2, 3),
                                               components=("safety-planning",
                                                           "goals-and-next-steps")),
                     {"components_recorded": 1, "component_safety_planning": 1,
                      "component_goals_and_next_steps": 1}, id="components"),
        pytest.param(MenteeFeedbackGiven(**MATCHED, given_on=date(2026, 2, 3), helped=4,
                                         made_worse="unsure"),
                     {"feedback_given": 1, "helped_a_lot": 1, "made_worse": 0},
                     id="feedback-helped"),
        pytest.param(MenteeFeedbackGiven(**MATCHED, given_on=date(2026, 2, 3), helped=3,
                                         made_worse="yes"),
                     {"feedback_given": 1, "helped_a_lot": 0, "made_worse": 1},
                     id="feedback-worse"),
        pytest.param(AdverseEventRecorded(**MATCHED, adverse_event_id="a1",
                                          occurred_on=date(2026, 2, 3), kind="distress",
                                          serious=True, relatedness="possibly-related"),
                     {"adverse_event": 1, "serious_adverse_event": 1,
                      "related_adverse_event": 1}, id="adverse-serious-related"),
        pytest.param(AdverseEventRecorded(**MATCHED, adverse_event_id="a1",
                                          occurred_on=date(2026, 2, 3), kind="other",
                                          serious=False, relatedness="not-known"),
                     {"adverse_event": 1, "serious_adverse_event": 0,
                      "related_adverse_event": 0}, id="adverse-minor-unknown"),
        pytest.param(FollowUpRecorded(**MATCHED, outcome_id="o1", recorded_on=date(2026, 8, 3),
                                      timepoint="6-months", instrument="SWEMWBS",
                                     items=(3,) * 7, raw_score=21, metric_score=19.25),
                     {"followed_up_6_months": 1}, id="follow-up-6"),
        pytest.param(MentoringOffered(offer_id="off_1", org="trust", team="north",
                                      gender="male", age_band="35-44",
                                      offered_on=date(2026, 2, 3), outcome="declined",
                                      decline_reason="no-time"),
                     {"offered": 1, "offer_accepted": 0, "offer_declined": 1,
                      "offer_undecided": 0, "offer_declined_no_time": 1}, id="offer-declined"),
    ],
)
def test_the_studys_mentoring_records_contribute(given: EventPayload,
                                                 expected: dict[str, int]) -> None:
    assert measures(given) == expected


def test_an_offer_counts_as_itself_and_nothing_else_is_anonymous() -> None:
    offer = MentoringOffered(offer_id="off_1", org="trust", team="north", gender="male",
                             age_band="35-44", offered_on=date(2026, 2, 3), outcome="accepted")
    assert anonymous_subject(offer) == "off_1"
    assert anonymous_subject(completed(0, "no")) is None
    [offered, *_] = contributions_of(offer)
    assert (offered.org, offered.team, offered.gender) == ("trust", "north", "male")


def test_every_measure_name_fits_its_column_even_a_configured_components_longest() -> None:
    codes = TypeAdapter(Component)
    longest = codes.validate_python("a" * 60)
    with pytest.raises(ValidationError):
        codes.validate_python("a" * 61)
    names = [*NOT_ASKED_MEASURES, *DECLINE_MEASURES, *FOLLOW_UP_MEASURES.values(),
             component_measure(longest)]
    assert contributions.c.measure.type.length == MEASURE_LENGTH  # type: ignore[attr-defined]
    assert max(map(len, names)) <= MEASURE_LENGTH
    assert len(decline_measure("prefers-professional-support")) > 40  # the old column's size

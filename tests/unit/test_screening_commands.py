"""RecordScreening: the rules that make a routine enquiry impossible to record wrongly."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from services.screening.service_layer.commands import (
    AcceptabilityIn,
    RecordScreening,
    RecordTeamTraining,
)
from shared.identity import PersonRef

SUBJECT = "sub_" + "0123456789abcdef" * 2
HARK = {"humiliated": False, "afraid": True, "raped": False, "kicked": False}
ASKED: dict[str, Any] = {
    "subject_id": SUBJECT, "org": "trust", "team": "north-cmht", "borough": "Camden",
    "gender": "female", "age_band": "25-34", "asked_on": "2026-01-31",
    "asked_by_role": "mental-health-nurse", "training_level": 2, "private": True,
    "outcome": "asked", "hark": HARK, "past_abuse": "no",
}
DECLINED: dict[str, Any] = {k: v for k, v in ASKED.items() if k not in {"hark", "past_abuse"}}
DECLINED["outcome"] = "declined"
DROP = object()


def given(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with changes; a change to ``DROP`` removes the field."""
    body = {**base, **changes}
    return {k: v for k, v in body.items() if v is not DROP}


def locations(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in err["loc"]) for err in exc.errors()]


@pytest.mark.parametrize(
    ("given_body", "expected"),
    [
        pytest.param(ASKED, {"outcome": "asked", "past_abuse": "no"}, id="asked"),
        pytest.param(DECLINED, {"outcome": "declined", "hark": None}, id="declined"),
        pytest.param(given(DECLINED, outcome="not-safe-to-ask", private=False),
                     {"outcome": "not-safe-to-ask", "private": False}, id="not-safe"),
        pytest.param(given(ASKED, private=False), {"private": False},
                     id="private-false-accepted"),
        pytest.param(given(ASKED, gender="not-stated"), {"gender": "not-stated"},
                     id="gender-not-stated"),
        pytest.param(given(ASKED, age_band="65+"), {"age_band": "65+"}, id="age-65-plus"),
        pytest.param(given(ASKED, age_band="18-24"), {"age_band": "18-24"}, id="age-18-24"),
        pytest.param(given(ASKED, training_level=1), {"training_level": 1}, id="level-1"),
        pytest.param(given(ASKED, training_level=3), {"training_level": 3}, id="level-3"),
        pytest.param(given(ASKED, subject_id=DROP, nhs_number="943 476 5919"),
                     {"nhs_number": "9434765919", "subject_id": None}, id="nhs-number-spaced"),
        pytest.param(given(ASKED, subject_id=DROP, nhs_number="943-476-5919"),
                     {"nhs_number": "9434765919"}, id="nhs-number-hyphens"),
        pytest.param(given(ASKED, past_abuse="yes", abuser_relationship="ex-partner",
                           affected_mental_health="unsure", notes="free text"),
                     {"abuser_relationship": "ex-partner", "affected_mental_health": "unsure"},
                     id="asked-with-details"),
        pytest.param(given(ASKED, past_abuse="unsure"), {"past_abuse": "unsure"},
                     id="past-unsure"),
        pytest.param(given(DECLINED, outcome="not-asked", not_asked_reason="too-unwell"),
                     {"outcome": "not-asked", "not_asked_reason": "too-unwell"},
                     id="not-asked-with-reason"),
        pytest.param(given(ASKED, acceptability={"acceptable": "yes", "comfort": 5}),
                     {"acceptability": AcceptabilityIn(acceptable="yes", comfort=5)},
                     id="asked-acceptable"),
        pytest.param(given(DECLINED, acceptability={"acceptable": "no"}),
                     {"acceptability": AcceptabilityIn(acceptable="no")},
                     id="declined-not-acceptable-no-comfort"),
    ],
)
def test_valid_screenings_are_accepted(given_body: dict[str, Any],
                                       expected: dict[str, Any]) -> None:
    command = RecordScreening.model_validate(given_body)
    assert command.asked_on == date(2026, 1, 31)
    for field, value in expected.items():
        assert getattr(command, field) == value


@pytest.mark.parametrize(
    ("given_body", "expected_location", "expected_message"),
    [
        pytest.param(given(ASKED, hark=DROP), "", "hark is required", id="asked-without-hark"),
        pytest.param(given(DECLINED, hark=HARK), "", "hark must be absent",
                     id="declined-with-hark"),
        pytest.param(given(DECLINED, outcome="not-safe-to-ask", hark=HARK), "",
                     "hark must be absent", id="not-safe-with-hark"),
        pytest.param(given(ASKED, past_abuse=DROP), "", "past_abuse is required",
                     id="asked-without-past-abuse"),
        pytest.param(given(DECLINED, past_abuse="no"), "", "only recorded when",
                     id="declined-with-past-abuse"),
        pytest.param(given(DECLINED, abuser_relationship="partner"), "", "only recorded when",
                     id="declined-with-relationship"),
        pytest.param(given(ASKED, nhs_number="9434765919"), "", "exactly one",
                     id="both-identifiers"),
        pytest.param(given(ASKED, subject_id=DROP), "", "exactly one", id="no-identifier"),
        pytest.param(given(ASKED, subject_id=None, nhs_number=None), "", "exactly one",
                     id="both-null"),
        pytest.param(given(ASKED, subject_id=DROP, nhs_number="9434765918"), "nhs_number",
                     "check digit", id="nhs-number-check-digit"),
        pytest.param(given(ASKED, subject_id=DROP, nhs_number="943476591"), "nhs_number",
                     "10 digits", id="nhs-number-nine-digits"),
        pytest.param(given(ASKED, subject_id=DROP, nhs_number="1234567890"), "nhs_number",
                     "check digit", id="nhs-number-check-10"),
        pytest.param(given(ASKED, subject_id="sub_" + "A" * 32), "subject_id", "pattern",
                     id="subject-uppercase"),
        pytest.param(given(ASKED, subject_id="sub_" + "a" * 31), "subject_id", "pattern",
                     id="subject-too-short"),
        pytest.param(given(ASKED, subject_id="9434765919"), "subject_id", "pattern",
                     id="subject-is-nhs-number"),
        pytest.param(given(ASKED, age_band="17-24"), "age_band", "", id="age-17-24"),
        pytest.param(given(ASKED, age_band="65-74"), "age_band", "", id="age-65-74"),
        pytest.param(given(ASKED, gender="unknown"), "gender", "", id="gender-unknown"),
        pytest.param(given(ASKED, training_level=4), "training_level", "", id="level-4"),
        pytest.param(given(ASKED, training_level=0), "training_level", "", id="level-0"),
        pytest.param(given(ASKED, outcome="disclosed"), "outcome", "", id="outcome-unknown"),
        pytest.param(given(ASKED, past_abuse="maybe"), "past_abuse", "", id="past-maybe"),
        pytest.param(given(ASKED, abuser_relationship="neighbour"), "abuser_relationship", "",
                     id="relationship-unknown"),
        pytest.param(given(ASKED, extra="x"), "extra", "Extra", id="extra-field"),
        pytest.param(given(ASKED, hark={**HARK, "hit": True}), "hark.hit", "Extra",
                     id="extra-hark-field"),
        pytest.param(given(ASKED, hark={k: v for k, v in HARK.items() if k != "raped"}),
                     "hark.raped", "required", id="hark-missing-question"),
        pytest.param(given(ASKED, private=DROP), "private", "required", id="private-missing"),
        pytest.param(given(ASKED, org="Partner A"), "org", "pattern", id="org-pattern"),
        pytest.param(given(ASKED, team=""), "team", "", id="team-empty"),
        pytest.param(given(ASKED, asked_on="31/01/2026"), "asked_on", "", id="date-format"),
        pytest.param(given(ASKED, notes="x" * 4001), "notes", "4000", id="notes-too-long"),
        pytest.param(given(DECLINED, outcome="not-asked"), "", "not_asked_reason is required",
                     id="not-asked-without-reason"),
        pytest.param(given(DECLINED, not_asked_reason="no-time"), "",
                     "not_asked_reason is required", id="reason-without-not-asked"),
        pytest.param(given(DECLINED, outcome="not-asked", not_asked_reason="busy"),
                     "not_asked_reason", "", id="reason-unknown"),
        pytest.param(given(DECLINED, outcome="not-asked", not_asked_reason="other",
                           hark=HARK), "", "hark must be absent", id="not-asked-with-hark"),
        pytest.param(given(DECLINED, outcome="not-safe-to-ask",
                           acceptability={"acceptable": "yes"}), "",
                     "acceptability is only recorded", id="acceptability-not-asked"),
        pytest.param(given(ASKED, acceptability={"acceptable": "yes", "comfort": 6}),
                     "acceptability.comfort", "", id="comfort-six"),
        pytest.param(given(ASKED, acceptability={"acceptable": "yes", "comfort": 0}),
                     "acceptability.comfort", "", id="comfort-zero"),
        pytest.param(given(ASKED, acceptability={"acceptable": "yes", "comfort": True}),
                     "acceptability.comfort", "not true or false", id="comfort-boolean"),
        pytest.param(given(ASKED, acceptability={"acceptable": "fine"}),
                     "acceptability.acceptable", "", id="acceptable-unknown"),
        pytest.param(given(ASKED, acceptability={"acceptable": "yes", "note": "x"}),
                     "acceptability.note", "Extra", id="acceptability-extra-field"),
    ],
)
def test_invalid_screenings_are_refused(given_body: dict[str, Any], expected_location: str,
                                        expected_message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RecordScreening.model_validate(given_body)
    assert expected_location in locations(caught.value)
    assert any(expected_message in err["msg"] for err in caught.value.errors())


@pytest.mark.parametrize(
    "given_nhs_number",
    [pytest.param("9434765918", id="check-digit"), pytest.param("943476591", id="short")],
)
def test_the_nhs_number_error_does_not_repeat_the_number(given_nhs_number: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PersonRef(nhs_number=given_nhs_number)
    for err in caught.value.errors():
        assert given_nhs_number not in err["msg"]
    assert "nhs_number" in locations(caught.value)


TRAINING: dict[str, Any] = {"org": "trust", "team": "north-cmht", "as_of": "2026-01-31",
                            "staff": 12, "trained": 9}


@pytest.mark.parametrize(
    ("given_body", "expected_location", "expected_message"),
    [
        pytest.param(given(TRAINING, trained=13), "", "trained may not exceed staff",
                     id="more-trained-than-staff"),
        pytest.param(given(TRAINING, staff=0), "staff", "greater than or equal to 1",
                     id="no-staff"),
        pytest.param(given(TRAINING, trained=-1), "trained", "", id="negative-trained"),
        pytest.param(given(TRAINING, as_of="2999-01-01"), "as_of", "future", id="future"),
        pytest.param(given(TRAINING, team=DROP), "team", "required", id="no-team"),
        pytest.param(given(TRAINING, names=["a"]), "names", "Extra", id="no-staff-names"),
    ],
)
def test_invalid_training_records_are_refused(given_body: dict[str, Any],
                                              expected_location: str,
                                              expected_message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RecordTeamTraining.model_validate(given_body)
    assert expected_location in locations(caught.value)
    assert any(expected_message in err["msg"] for err in caught.value.errors())


def test_a_training_record_with_everyone_trained_is_accepted() -> None:
    assert RecordTeamTraining.model_validate(given(TRAINING, trained=12)).trained == 12

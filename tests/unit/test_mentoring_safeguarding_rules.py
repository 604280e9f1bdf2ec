"""The safeguarding pseudonym through mentoring's port to consent: an erased or unknown person
has none (their concerns link by subject reference only); consent being down is not hidden.
What a concern and a step of the queue must carry: a recent date, details and notes that are
not blank."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from services.mentoring.service_layer.commands import ConcernNote, LogSession, RaiseConcern
from services.mentoring.service_layer.safeguarding import pseudonym_of
from shared.auth import Principal
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.events.consent import SafeContact


class FakeRegistry:
    """Answers the pseudonym, or raises what consent's client would."""

    def __init__(self, answer: str | None = None, error: Exception | None = None) -> None:
        self.answer = answer
        self.error = error
        self.asked: list[str] = []

    def safeguarding_pseudonym(self, subject_id: str) -> str | None:
        self.asked.append(subject_id)
        if self.error is not None:
            raise self.error
        return self.answer

    def update_safe_contact(self, subject_id: str, contact: SafeContact,
                            caller: Principal) -> None:
        raise AssertionError("not asked here")


def test_the_pseudonym_is_consents() -> None:
    registry = FakeRegistry("psn_" + "b" * 40)
    assert pseudonym_of(registry, "sub_1") == "psn_" + "b" * 40
    assert registry.asked == ["sub_1"]


@pytest.mark.parametrize("error", [KeyShredded(), UnknownSubject()])
def test_an_erased_or_unknown_person_has_none(error: Exception) -> None:
    assert pseudonym_of(FakeRegistry(error=error), "sub_1") is None


def test_consent_being_down_is_not_taken_for_no_pseudonym() -> None:
    with pytest.raises(KeyStoreUnavailable):
        pseudonym_of(FakeRegistry(error=KeyStoreUnavailable("down")), "sub_1")


# --- what a concern and a step of the queue must carry ---------------------------------------

def _concern(**more: object) -> dict[str, object]:
    return {"subject_id": "sub_1", "raised_on": date.today().isoformat(),
            "details": "said he found the address", **more}


def _fields(error: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in error.value.errors()]


@pytest.mark.parametrize("days_ago", [-1, 31, 365])
def test_a_concern_is_raised_on_a_date_in_the_last_30_days(days_ago: int) -> None:
    """Unbounded dates would let repeated concerns narrow down when a MARAC referral was."""
    raised_on = (date.today() - timedelta(days=days_ago)).isoformat()
    with pytest.raises(ValidationError) as refused:
        RaiseConcern.model_validate(_concern(raised_on=raised_on))
    assert _fields(refused) == ["raised_on"]


@pytest.mark.parametrize("days_ago", [0, 30])
def test_today_and_30_days_ago_are_accepted(days_ago: int) -> None:
    raised_on = date.today() - timedelta(days=days_ago)
    assert RaiseConcern.model_validate(_concern(raised_on=raised_on.isoformat())
                                       ).raised_on == raised_on


@pytest.mark.parametrize("blank", [" ", "\n\t  "])
def test_blank_notes_and_concern_details_are_refused_naming_the_field(blank: str) -> None:
    with pytest.raises(ValidationError) as note:
        ConcernNote.model_validate({"note": blank})
    assert _fields(note) == ["note"]
    with pytest.raises(ValidationError) as details:
        RaiseConcern.model_validate(_concern(details=blank))
    assert _fields(details) == ["details"]
    with pytest.raises(ValidationError) as session:
        LogSession.model_validate({
            "match_id": "mat_1", "held_on": date.today().isoformat(), "duration_minutes": 30,
            "mode": "phone", "attendance": "attended", "safeguarding_concern": True,
            "concern_details": blank})
    assert _fields(session) == ["concern_details"]

"""The rules of erasure and subject access requests: deadlines in calendar months, one
extension, one decision, and what each decision needs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.consent.domain.requests import (
    AlreadyDecided,
    AlreadyExtended,
    ErasureStatus,
    RequestRuleBroken,
    add_months,
    check_decision,
    due_at,
    extended_due_at,
    is_overdue,
    status_after_decision,
)


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("requested", "due"),
    [
        pytest.param(at(2026, 12, 1), at(2027, 1, 1), id="across-the-year"),
        pytest.param(at(2027, 1, 31), at(2027, 2, 28), id="no-31-february"),
        pytest.param(at(2028, 1, 31), at(2028, 2, 29), id="leap-year"),
        pytest.param(at(2027, 3, 31), at(2027, 4, 30), id="no-31-april"),
        pytest.param(at(2027, 6, 15, 23), at(2027, 7, 15, 23), id="same-time-of-day"),
    ],
)
def test_a_request_is_due_one_calendar_month_later(requested: datetime, due: datetime
                                                   ) -> None:
    assert due_at(requested) == due


@pytest.mark.parametrize(
    ("months", "expected"),
    [(1, at(2027, 2, 28)), (2, at(2027, 3, 31)), (12, at(2028, 1, 31)), (13, at(2028, 2, 29))],
)
def test_months_are_calendar_months(months: int, expected: datetime) -> None:
    assert add_months(at(2027, 1, 31), months) == expected


DUE = at(2027, 1, 1)
AWAITING = ErasureStatus.AWAITING.value


@pytest.mark.parametrize(
    ("status", "extended", "months", "reason", "outcome"),
    [
        pytest.param(AWAITING, None, 1, "complex", at(2027, 2, 1), id="one-month"),
        pytest.param(AWAITING, None, 2, "complex", at(2027, 3, 1), id="two-months"),
        pytest.param(AWAITING, None, 3, "complex", "months", id="three-is-too-many"),
        pytest.param(AWAITING, None, 0, "complex", "months", id="zero-is-no-extension"),
        pytest.param(AWAITING, None, 1, "  ", "reason", id="a-reason-is-needed"),
        pytest.param(AWAITING, 1, 1, "again", AlreadyExtended, id="once-only"),
        pytest.param("in-progress", None, 1, "late", AlreadyDecided, id="after-the-decision"),
        pytest.param("refused", None, 1, "late", AlreadyDecided, id="after-a-refusal"),
    ],
)
def test_extending_the_deadline(status: str, extended: int | None, months: int, reason: str,
                                outcome: object) -> None:
    if isinstance(outcome, datetime):
        assert extended_due_at(status, DUE, extended, months, reason) == outcome
    elif isinstance(outcome, str):
        with pytest.raises(RequestRuleBroken) as broken:
            extended_due_at(status, DUE, extended, months, reason)
        assert broken.value.field == outcome
        assert str(broken.value).startswith(f"{outcome}:")
    else:
        assert isinstance(outcome, type)
        with pytest.raises(outcome):
            extended_due_at(status, DUE, extended, months, reason)


@pytest.mark.parametrize(
    ("status", "decision", "reason", "retained", "outcome"),
    [
        pytest.param(AWAITING, "approve", None, None, (), id="approve"),
        pytest.param(AWAITING, "approve", "asked twice", None, (), id="approve-with-a-reason"),
        pytest.param(AWAITING, "approve", None, ["screenings"], "retained",
                     id="approve-keeps-nothing"),
        pytest.param(AWAITING, "approve", None, [], "retained", id="approve-names-no-kinds"),
        pytest.param(AWAITING, "approve-except-retained", "legal claim", ["screenings"],
                     ("screenings",), id="approve-except-retained"),
        pytest.param(AWAITING, "approve-except-retained", "legal claim",
                     ["screenings", "mentoring-records"], ("screenings", "mentoring-records"),
                     id="approve-except-several"),
        pytest.param(AWAITING, "approve-except-retained", None, ["screenings"], "reason",
                     id="except-retained-needs-a-reason"),
        pytest.param(AWAITING, "approve-except-retained", "legal claim", None, "retained",
                     id="except-retained-needs-kinds"),
        pytest.param(AWAITING, "approve-except-retained", "legal claim", [], "retained",
                     id="except-retained-needs-a-kind"),
        pytest.param(AWAITING, "refuse", "public health", None, (), id="refuse"),
        pytest.param(AWAITING, "refuse", None, None, "reason", id="refusal-says-why"),
        pytest.param(AWAITING, "refuse", " ", None, "reason", id="a-blank-reason-is-none"),
        pytest.param(AWAITING, "refuse", "public health", ["screenings"], "retained",
                     id="refusal-keeps-everything-anyway"),
        pytest.param("in-progress", "approve", None, None, AlreadyDecided, id="decided-once"),
        pytest.param("refused", "approve", None, None, AlreadyDecided, id="refusal-is-final"),
        pytest.param("complete", "refuse", "late", None, AlreadyDecided, id="after-completion"),
    ],
)
def test_deciding_an_erasure_request(status: str, decision: str, reason: str | None,
                                     retained: list[str] | None, outcome: object) -> None:
    def decide() -> object:
        return check_decision(status, decision, reason, retained)  # type: ignore[arg-type]

    if isinstance(outcome, tuple):
        assert decide() == outcome
    elif isinstance(outcome, str):
        with pytest.raises(RequestRuleBroken) as broken:
            decide()
        assert broken.value.field == outcome
    else:
        assert isinstance(outcome, type)
        with pytest.raises(outcome):
            decide()


@pytest.mark.parametrize(
    ("decision", "status"),
    [("approve", "in-progress"), ("approve-except-retained", "in-progress"),
     ("refuse", "refused")],
)
def test_what_a_decision_leads_to(decision: str, status: str) -> None:
    assert status_after_decision(decision) == status  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "now", "overdue"),
    [
        pytest.param(AWAITING, at(2027, 1, 1), False, id="on-the-day"),
        pytest.param(AWAITING, at(2027, 1, 1, 10), True, id="after-it"),
        pytest.param("open", at(2027, 1, 2), True, id="an-open-access-request"),
        pytest.param("refused", at(2027, 6, 1), False, id="answered-by-refusal"),
        pytest.param("in-progress", at(2027, 6, 1), False, id="decided"),
        pytest.param("complete", at(2027, 6, 1), False, id="answered"),
    ],
)
def test_only_an_unanswered_request_is_overdue(status: str, now: datetime, overdue: bool
                                               ) -> None:
    assert is_overdue(status, DUE, now) is overdue

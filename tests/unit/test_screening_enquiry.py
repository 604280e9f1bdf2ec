"""HARK scoring, disclosure and the presence rule of the HARK answers."""

from __future__ import annotations

import itertools

import pytest

from services.screening.domain.enquiry import (
    EnquiryFindings,
    HarkAnswers,
    check_hark_presence,
    findings,
)

NO = dict.fromkeys(("humiliated", "afraid", "raped", "kicked"), False)


@pytest.mark.parametrize(
    ("given", "expected_score", "expected_positive"),
    [
        pytest.param(HarkAnswers(**NO), 0, False, id="all-no"),
        pytest.param(HarkAnswers(**{**NO, "humiliated": True}), 1, True, id="humiliated"),
        pytest.param(HarkAnswers(**{**NO, "afraid": True}), 1, True, id="afraid"),
        pytest.param(HarkAnswers(**{**NO, "raped": True}), 1, True, id="raped"),
        pytest.param(HarkAnswers(**{**NO, "kicked": True}), 1, True, id="kicked"),
        pytest.param(HarkAnswers(True, True, False, False), 2, True, id="two"),
        pytest.param(HarkAnswers(True, True, True, False), 3, True, id="three"),
        pytest.param(HarkAnswers(True, True, True, True), 4, True, id="all-yes"),
    ],
)
def test_hark_score_and_positive(given: HarkAnswers, expected_score: int,
                                 expected_positive: bool) -> None:
    assert given.score == expected_score
    assert given.positive is expected_positive


def test_hark_score_counts_yes_for_every_combination() -> None:
    for answers in itertools.product((False, True), repeat=4):
        hark = HarkAnswers(*answers)
        assert hark.score == sum(answers)
        assert hark.positive is any(answers)


@pytest.mark.parametrize(
    ("given_hark", "given_past", "expected"),
    [
        pytest.param(HarkAnswers(**NO), "no", EnquiryFindings(0, False, "no", False),
                     id="nothing"),
        pytest.param(HarkAnswers(**NO), "unsure", EnquiryFindings(0, False, "unsure", False),
                     id="unsure-alone-not-disclosed"),
        pytest.param(HarkAnswers(**NO), "yes", EnquiryFindings(0, False, "yes", True),
                     id="past-only"),
        pytest.param(HarkAnswers(**{**NO, "kicked": True}), "no",
                     EnquiryFindings(1, True, "no", True), id="current-only"),
        pytest.param(HarkAnswers(**{**NO, "afraid": True}), "unsure",
                     EnquiryFindings(1, True, "unsure", True), id="current-and-unsure"),
        pytest.param(HarkAnswers(True, True, True, True), "yes",
                     EnquiryFindings(4, True, "yes", True), id="both"),
    ],
)
def test_findings(given_hark: HarkAnswers, given_past: str,
                  expected: EnquiryFindings) -> None:
    assert findings(given_hark, given_past) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given_outcome", "given_has_hark", "expected_problem"),
    [
        pytest.param("asked", True, None, id="asked-with-hark"),
        pytest.param("asked", False, "hark is required", id="asked-without-hark"),
        pytest.param("declined", False, None, id="declined-without-hark"),
        pytest.param("declined", True, "hark must be absent", id="declined-with-hark"),
        pytest.param("not-safe-to-ask", False, None, id="not-safe-without-hark"),
        pytest.param("not-safe-to-ask", True, "hark must be absent", id="not-safe-with-hark"),
    ],
)
def test_check_hark_presence(given_outcome: str, given_has_hark: bool,
                             expected_problem: str | None) -> None:
    problem = check_hark_presence(given_outcome, given_has_hark)  # type: ignore[arg-type]
    if expected_problem is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected_problem in problem

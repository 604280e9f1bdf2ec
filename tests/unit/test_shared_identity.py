"""NHS number validation (Modulus 11) and random subject references."""

from __future__ import annotations

import re

import pytest

from shared.identity import (
    SUBJECT_PREFIX,
    InvalidNhsNumber,
    is_subject_reference,
    new_subject_reference,
    normalise_nhs_number,
)

WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def modulus_11(first_nine: str) -> int:
    """The check digit written out independently: 11 - (weighted sum mod 11)."""
    return 11 - sum(int(d) * w for d, w in zip(first_nine, WEIGHTS, strict=True)) % 11


def test_the_fixture_numbers_compute_as_claimed() -> None:
    # given the numbers the tables below rely on, expect their check sums to be what we say
    assert modulus_11("943476591") == 9
    assert modulus_11("987654321") == 11  # so the check digit is 0
    assert modulus_11("943476508") == 11  # so the check digit is 0
    assert modulus_11("123456789") == 10  # no valid check digit exists
    assert modulus_11("401023217") == 10


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("9434765919", "9434765919", id="ten-digits"),
        pytest.param("943 476 5919", "9434765919", id="spaces"),
        pytest.param("943-476-5919", "9434765919", id="hyphens"),
        pytest.param("9876543210", "9876543210", id="check-11-becomes-0"),
        pytest.param("943 476 5080", "9434765080", id="check-11-becomes-0-spaced"),
    ],
)
def test_valid_nhs_numbers_normalise_to_ten_digits(given: str, expected: str) -> None:
    assert normalise_nhs_number(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("9434765918", id="wrong-check-digit"),
        pytest.param("943 476 5910", id="wrong-check-digit-spaced"),
        pytest.param("9876543211", id="check-11-but-not-0"),
        pytest.param("1234567890", id="check-10-digit-0"),
        pytest.param("1234567891", id="check-10-digit-1"),
        pytest.param("4010232170", id="check-10-other"),
        pytest.param("943476591", id="nine-digits"),
        pytest.param("94347659190", id="eleven-digits"),
        pytest.param("", id="empty"),
        pytest.param("943476591A", id="letter"),
        pytest.param("ABCDEFGHIJ", id="all-letters"),
        pytest.param("943.476.5919", id="dots-are-not-separators"),
        pytest.param("\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669",
                     id="arabic-indic-digits"),
        pytest.param("\uff19\uff14\uff13\uff14\uff17\uff16\uff15\uff19\uff11\uff19",
                     id="fullwidth-digits"),
        pytest.param("943476591\u00b9", id="superscript-one"),
        pytest.param("+943476591", id="sign"),
    ],
)
def test_invalid_nhs_numbers_raise(given: str) -> None:
    with pytest.raises(InvalidNhsNumber):
        normalise_nhs_number(given)


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("9434765918", id="wrong-check-digit"),
        pytest.param("1234567890", id="check-10"),
        pytest.param("943476591", id="nine-digits"),
        pytest.param("94347659190", id="eleven-digits"),
        pytest.param("943 476 591X", id="letter"),
    ],
)
def test_the_error_never_repeats_the_number(given: str) -> None:
    with pytest.raises(InvalidNhsNumber) as caught:
        normalise_nhs_number(given)
    # expect no run of 3 or more digits of the input in the message
    message = str(caught.value)
    digits = re.sub(r"\D", "", given)
    assert message
    assert not any(digits[i:i + 3] in message for i in range(len(digits) - 2))


def test_invalid_nhs_number_is_a_value_error() -> None:
    # given validators that translate ValueError, expect InvalidNhsNumber to be one
    assert issubclass(InvalidNhsNumber, ValueError)


def test_new_subject_reference_has_the_documented_shape() -> None:
    ref = new_subject_reference()
    assert re.fullmatch(r"sub_[0-9a-f]{32}", ref)
    assert ref.startswith(SUBJECT_PREFIX)
    assert is_subject_reference(ref)


def test_a_thousand_subject_references_are_distinct() -> None:
    refs = {new_subject_reference() for _ in range(1000)}
    assert len(refs) == 1000


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("sub_" + "0123456789abcdef" * 2, True, id="valid"),
        pytest.param("sub_" + "a" * 31, False, id="too-short"),
        pytest.param("sub_" + "a" * 33, False, id="too-long"),
        pytest.param("sub_" + "A" * 32, False, id="uppercase-hex"),
        pytest.param("sub_" + "g" * 32, False, id="not-hex"),
        pytest.param("usr_" + "a" * 32, False, id="wrong-prefix"),
        pytest.param("a" * 32, False, id="no-prefix"),
        pytest.param("9434765919", False, id="nhs-number"),
        pytest.param("", False, id="empty"),
    ],
)
def test_is_subject_reference(given: str, expected: bool) -> None:
    assert is_subject_reference(given) is expected

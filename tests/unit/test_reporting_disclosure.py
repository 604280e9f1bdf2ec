"""Disclosure control (NHS England's rule by default) and Wilson 95% intervals."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from services.reporting.domain.disclosure import (
    ControlledCount,
    ControlledRate,
    DisclosurePolicy,
    control_count,
    control_rate,
    round_half_up,
    wilson_interval,
)

DEFAULT = DisclosurePolicy()
Z95 = NormalDist().inv_cdf(0.975)


def wilson_closed_form(k: int, n: int) -> tuple[float, float]:
    """Wilson's interval written out independently.

    bounds = (2k + z^2 -+ z sqrt(z^2 + 4k(n-k)/n)) / 2(n + z^2)
    """
    z2 = Z95 * Z95
    spread = Z95 * math.sqrt(z2 + 4 * k * (n - k) / n)
    return (2 * k + z2 - spread) / (2 * (n + z2)), (2 * k + z2 + spread) / (2 * (n + z2))


def test_default_policy_is_nhs_englands_rule() -> None:
    assert (DEFAULT.suppress_upto, DEFAULT.round_to) == (7, 5)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(0, ControlledCount(0, "0", suppressed=False), id="zero-is-shown"),
        pytest.param(1, ControlledCount(None, "fewer than 8", suppressed=True), id="one"),
        pytest.param(5, ControlledCount(None, "fewer than 8", suppressed=True), id="five"),
        pytest.param(7, ControlledCount(None, "fewer than 8", suppressed=True), id="seven"),
        pytest.param(8, ControlledCount(10, "10", suppressed=False), id="eight-to-10"),
        pytest.param(10, ControlledCount(10, "10", suppressed=False), id="ten"),
        pytest.param(12, ControlledCount(10, "10", suppressed=False), id="twelve-down"),
        pytest.param(13, ControlledCount(15, "15", suppressed=False), id="thirteen-up"),
        pytest.param(17, ControlledCount(15, "15", suppressed=False), id="seventeen-down"),
        pytest.param(18, ControlledCount(20, "20", suppressed=False), id="eighteen-up"),
        pytest.param(1002, ControlledCount(1000, "1000", suppressed=False), id="large"),
    ],
)
def test_control_count_default_policy(given: int, expected: ControlledCount) -> None:
    assert control_count(given, DEFAULT) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(0, ControlledCount(0, "0", suppressed=False), id="zero"),
        pytest.param(1, ControlledCount(None, "fewer than 11", suppressed=True), id="one"),
        pytest.param(10, ControlledCount(None, "fewer than 11", suppressed=True), id="ten"),
        pytest.param(11, ControlledCount(10, "10", suppressed=False), id="eleven-down"),
        pytest.param(14, ControlledCount(10, "10", suppressed=False), id="fourteen-down"),
        pytest.param(15, ControlledCount(20, "20", suppressed=False), id="fifteen-half-up"),
        pytest.param(26, ControlledCount(30, "30", suppressed=False), id="twenty-six-up"),
    ],
)
def test_control_count_custom_policy(given: int, expected: ControlledCount) -> None:
    assert control_count(given, DisclosurePolicy(suppress_upto=10, round_to=10)) == expected


@pytest.mark.parametrize("given", [-1, -8])
def test_control_count_refuses_negative_counts(given: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        control_count(given, DEFAULT)


@pytest.mark.parametrize(
    ("given_value", "given_step", "expected"),
    [
        pytest.param(12, 5, 10, id="down"),
        pytest.param(13, 5, 15, id="up"),
        pytest.param(15, 10, 20, id="half-up"),
        pytest.param(7, 1, 7, id="step-1-unchanged"),
    ],
)
def test_round_half_up(given_value: int, given_step: int, expected: int) -> None:
    assert round_half_up(given_value, given_step) == expected


def test_the_closed_form_matches_the_textbook_values() -> None:
    # given the independent closed form, expect the published reference values first
    assert [round(v, 4) for v in wilson_closed_form(0, 10)] == [0.0, 0.2775]
    assert [round(v, 4) for v in wilson_closed_form(5, 10)] == [0.2366, 0.7634]


@pytest.mark.parametrize(
    ("given_k", "given_n", "expected"),
    [
        pytest.param(0, 10, (0.0, 0.2775), id="0-of-10"),
        pytest.param(5, 10, (0.2366, 0.7634), id="5-of-10"),
        pytest.param(1, 1, (0.2065, 1.0), id="1-of-1"),
        pytest.param(81, 100, (0.7222, 0.8749), id="81-of-100"),
    ],
)
def test_wilson_interval_known_values(given_k: int, given_n: int,
                                      expected: tuple[float, float]) -> None:
    lower, upper = wilson_interval(given_k, given_n)
    independent = wilson_closed_form(given_k, given_n)
    assert (round(independent[0], 4), round(independent[1], 4)) == expected
    assert (round(lower, 4), round(upper, 4)) == expected
    assert lower == pytest.approx(independent[0], abs=1e-6)
    assert upper == pytest.approx(independent[1], abs=1e-6)


@pytest.mark.parametrize(("given_k", "given_n"), [(0, 1), (3, 7), (50, 50), (999, 1000)])
def test_wilson_interval_stays_within_0_and_1_and_contains_the_rate(given_k: int,
                                                                    given_n: int) -> None:
    lower, upper = wilson_interval(given_k, given_n)
    rate = given_k / given_n
    assert 0.0 <= lower <= rate + 1e-12
    assert rate - 1e-12 <= upper <= 1.0


@pytest.mark.parametrize("given_n", [0, -1])
def test_wilson_interval_needs_trials(given_n: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(0, given_n)


WITHHELD = ControlledRate(None, None, None, withheld=True)


@pytest.mark.parametrize(
    ("given_numerator", "given_denominator", "expected"),
    [
        pytest.param(0, 0, WITHHELD, id="denominator-0"),
        pytest.param(3, 7, WITHHELD, id="denominator-7"),
        pytest.param(7, 7, WITHHELD, id="denominator-7-all"),
        pytest.param(3, 100, WITHHELD, id="numerator-suppressed"),
        pytest.param(7, 100, WITHHELD, id="numerator-7-suppressed"),
    ],
)
def test_control_rate_withheld(given_numerator: int, given_denominator: int,
                               expected: ControlledRate) -> None:
    assert control_rate(given_numerator, given_denominator, DEFAULT) == expected


def rounded(k: int, n: int) -> ControlledRate:
    lower, upper = wilson_closed_form(k, n)
    return ControlledRate(round(k / n, 4), round(lower, 4), round(upper, 4), withheld=False)


@pytest.mark.parametrize(
    ("given_numerator", "given_denominator", "expected"),
    [
        pytest.param(50, 100, rounded(50, 100), id="50-of-100"),
        pytest.param(12, 48, rounded(10, 50), id="12-of-48-from-rounded-10-of-50"),
        pytest.param(9, 20, rounded(10, 20), id="9-of-20-from-rounded-10-of-20"),
        pytest.param(0, 8, rounded(0, 10), id="0-of-8-from-rounded-0-of-10"),
        pytest.param(8, 8, rounded(10, 10), id="8-of-8-capped-at-1"),
        pytest.param(0, 100, rounded(0, 100), id="true-zero"),
    ],
)
def test_control_rate_from_rounded_figures(given_numerator: int, given_denominator: int,
                                           expected: ControlledRate) -> None:
    assert control_rate(given_numerator, given_denominator, DEFAULT) == expected


def test_control_rate_50_of_100_pinned() -> None:
    assert control_rate(50, 100, DEFAULT) == ControlledRate(0.5, 0.4038, 0.5962, withheld=False)


def test_control_rate_12_of_48_is_a_fifth() -> None:
    assert control_rate(12, 48, DEFAULT).rate == 0.2


@pytest.mark.parametrize(
    ("given_policy", "expected_fragments"),
    [
        pytest.param(DEFAULT, ["Counts are of people, not events", "1 to 7", "fewer than 8",
                               "0 is shown as 0", "nearest 5", "Wilson 95%", "7 or fewer",
                               "rounded counts", "at least 10 people have entered or left",
                               "marked held", "the step from 0"], id="default"),
        pytest.param(DisclosurePolicy(suppress_upto=10, round_to=10, k=20),
                     ["1 to 10", "fewer than 11", "nearest 10", "10 or fewer",
                      "at least 20 people"], id="custom"),
    ],
)
def test_method_text_states_the_thresholds(given_policy: DisclosurePolicy,
                                           expected_fragments: list[str]) -> None:
    for fragment in expected_fragments:
        assert fragment in given_policy.method

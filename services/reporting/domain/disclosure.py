"""Disclosure control for every published number (NHS England's rule by default).

0 stays 0; 1 to ``suppress_upto`` (7) is shown as "fewer than 8"; every other count is rounded
to the nearest ``round_to`` (5); rates and intervals are computed from the rounded figures and
withheld when the denominator is ``suppress_upto`` or fewer; and a published figure changes only
when at least ``k`` (10) people have entered or left it (``release_rule``). All thresholds are
settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class DisclosurePolicy:
    """The thresholds of disclosure control."""

    suppress_upto: int = 7
    round_to: int = 5
    k: int = 10

    @property
    def method(self) -> str:
        """The method, stated beside every table."""
        return (f"Counts are of people, not events: a person counts once in each cell and "
                f"period. Counts of 1 to {self.suppress_upto} are shown as \"fewer than "
                f"{self.suppress_upto + 1}\"; 0 is shown as 0; other counts are rounded to the "
                f"nearest {self.round_to}. Rates and Wilson 95% intervals are computed from the "
                f"rounded counts and withheld when the denominator is {self.suppress_upto} or "
                f"fewer. {self.held_rule}")

    @property
    def held_rule(self) -> str:
        """The release rule, in words."""
        return (f"A figure changes only when at least {self.k} people have entered or left it "
                f"since it was last published, and a row is looked at again only after {self.k} "
                "people have had any event in it; until then the published value stands, so a "
                f"figure can trail the people in it by up to {self.k - 1}. A row is marked held "
                "once half that many have had events since it was last worked out. This holds "
                "for every grouping, period, median and mean, and for the step from 0.")


@dataclass(frozen=True)
class ControlledCount:
    """A count as published."""

    value: int | None
    display: str
    suppressed: bool


@dataclass(frozen=True)
class ControlledRate:
    """A proportion as published, with its Wilson 95% interval, or withheld."""

    rate: float | None
    lower: float | None
    upper: float | None
    withheld: bool


def round_half_up(value: int, step: int) -> int:
    """Round to the nearest multiple of ``step``, halves upwards."""
    return ((value + step // 2) // step) * step if step > 1 else value


@lru_cache(maxsize=4096)
def control_count(count: int, policy: DisclosurePolicy) -> ControlledCount:
    """Apply disclosure control to one count."""
    if count < 0:
        raise ValueError("a count cannot be negative")
    if count == 0:
        return ControlledCount(0, "0", suppressed=False)
    if count <= policy.suppress_upto:
        return ControlledCount(None, f"fewer than {policy.suppress_upto + 1}", suppressed=True)
    rounded = round_half_up(count, policy.round_to)
    return ControlledCount(rounded, str(rounded), suppressed=False)


def wilson_interval(successes: float, trials: float, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% by default)."""
    if trials <= 0:
        raise ValueError("the number of trials must be positive")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@lru_cache(maxsize=4096)
def control_rate(numerator: int, denominator: int, policy: DisclosurePolicy) -> ControlledRate:
    """A rate from the rounded figures, withheld over small denominators."""
    if denominator <= policy.suppress_upto:
        return ControlledRate(None, None, None, withheld=True)
    top = control_count(numerator, policy)
    bottom = round_half_up(denominator, policy.round_to)
    # A suppressed numerator gives no rounded figure to compute from: withhold the rate too.
    if top.value is None or bottom == 0:
        return ControlledRate(None, None, None, withheld=True)
    numerator_rounded = min(top.value, bottom)
    lower, upper = wilson_interval(numerator_rounded, bottom)
    return ControlledRate(round(numerator_rounded / bottom, 4), round(lower, 4),
                          round(upper, 4), withheld=False)

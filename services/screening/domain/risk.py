"""Risk: the SafeLives DASH risk identification checklist and the MARAC referral criteria.

DASH (non-police agencies) has 24 yes / no / don't know questions; the score is the number of
"yes". A MARAC referral is required when any one criterion is met:
1. visible high risk: 14 or more "yes";
2. professional judgement, with the reasons recorded (it can add a referral, never remove one);
3. potential escalation: incidents in the last 12 months at or above a local threshold
   (SafeLives recommends 3; a setting);
4. repeat: a MARAC referral for the same person within the previous 12 months.
A MARAC referral always goes with a referral to the IDVA service.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from shared.events.vocabulary import MaracCriterion

DashAnswer = Literal["yes", "no", "dont-know"]
DASH_QUESTIONS: Final = 24
VISIBLE_HIGH_RISK_THRESHOLD: Final = 14
DEFAULT_ESCALATION_INCIDENTS: Final = 3
REPEAT_WINDOW_MONTHS: Final = 12

DASH_TOPICS: Final[tuple[str, ...]] = (
    "injury from the current incident",
    "very frightened",
    "what the person fears (further injury or violence, to whom)",
    "isolation from family and friends",
    "depression or suicidal thoughts",
    "separation within the past year",
    "conflict over child contact",
    "constant contact, stalking or harassment",
    "pregnancy or a baby within 18 months",
    "abuse happening more often",
    "abuse getting worse",
    "controlling or excessively jealous behaviour",
    "use of weapons or objects",
    "threats to kill that were believed",
    "strangulation, choking, suffocation or drowning",
    "sexual abuse",
    "another person who threatens them",
    "the abuser hurting anyone else",
    "mistreating an animal",
    "financial issues",
    "the abuser's problems with drugs, alcohol or mental health",
    "the abuser threatening or attempting suicide",
    "breaking bail, an injunction or an agreement",
    "the abuser's trouble with the police or criminal history",
)
"""The checklist's question topics, in order."""


class IncompleteChecklist(ValueError):
    """A DASH checklist without exactly 24 answers."""


def dash_score(answers: Sequence[DashAnswer]) -> int:
    """The number of "yes" answers in a complete checklist."""
    if len(answers) != DASH_QUESTIONS:
        raise IncompleteChecklist(f"the DASH checklist has exactly {DASH_QUESTIONS} answers, "
                                  f"not {len(answers)}")
    return sum(1 for answer in answers if answer == "yes")


def add_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months later (clamped to the month's last day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def is_repeat(assessed_on: date, previous_referrals: Iterable[date]) -> bool:
    """Whether a MARAC referral was raised for the person in the 12 months before this."""
    return any(raised <= assessed_on <= add_months(raised, REPEAT_WINDOW_MONTHS)
               for raised in previous_referrals)


@dataclass(frozen=True)
class MaracDecision:
    """Which criteria a risk assessment met, and so whether a MARAC referral is required."""

    score: int
    criteria_met: tuple[MaracCriterion, ...]

    @property
    def referral_required(self) -> bool:
        """Any one criterion suffices."""
        return bool(self.criteria_met)


def marac_decision(answers: Sequence[DashAnswer], professional_referral: bool,
                   incidents_last_12_months: int, assessed_on: date,
                   previous_referrals: Iterable[date],
                   escalation_incidents: int = DEFAULT_ESCALATION_INCIDENTS) -> MaracDecision:
    """Apply the four MARAC criteria; professional judgement can only add a referral."""
    score = dash_score(answers)
    met: list[MaracCriterion] = []
    if score >= VISIBLE_HIGH_RISK_THRESHOLD:
        met.append("visible-high-risk")
    if professional_referral:
        met.append("professional-judgement")
    if incidents_last_12_months >= escalation_incidents:
        met.append("potential-escalation")
    if is_repeat(assessed_on, previous_referrals):
        met.append("repeat")
    return MaracDecision(score=score, criteria_met=tuple(met))

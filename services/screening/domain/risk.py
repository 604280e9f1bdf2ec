"""Risk: the SafeLives DASH risk identification checklist and the MARAC referral criteria.

DASH (non-police agencies) has 24 yes / no / don't know questions; the score is the number of
"yes". A MARAC referral is required when any one criterion is met:
1. visible high risk: 14 or more "yes";
2. professional judgement, with the reasons recorded (it can add a referral, never remove one);
3. potential escalation: incidents in the last 12 months at or above a local threshold
   (SafeLives recommends 3; a setting);
4. repeat: a MARAC referral for the same person within the previous 12 months, whoever made it
   (any organisation, or an agency outside Peerlink such as the police), found by the person's
   subject reference or by their safeguarding pseudonym (so it survives erasure and
   re-registration); SafeLives refers a repeat regardless of the other thresholds.
A MARAC referral always goes with a referral to the IDVA service. A DASH that cannot be
completed does not stop a referral on professional judgement (``judgement_decision``).
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
    """Whether a MARAC referral was raised for the person in the 12 months up to this day
    (from the same calendar day a year before, inclusive)."""
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


def _criteria(score: int, professional_referral: bool, incidents_last_12_months: int,
              on: date, previous_referrals: Iterable[date],
              escalation_incidents: int) -> MaracDecision:
    met: list[MaracCriterion] = []
    if score >= VISIBLE_HIGH_RISK_THRESHOLD:
        met.append("visible-high-risk")
    if professional_referral:
        met.append("professional-judgement")
    if incidents_last_12_months >= escalation_incidents:
        met.append("potential-escalation")
    if is_repeat(on, previous_referrals):
        met.append("repeat")
    return MaracDecision(score=score, criteria_met=tuple(met))


def marac_decision(answers: Sequence[DashAnswer], professional_referral: bool,
                   incidents_last_12_months: int, assessed_on: date,
                   previous_referrals: Iterable[date],
                   escalation_incidents: int = DEFAULT_ESCALATION_INCIDENTS) -> MaracDecision:
    """Apply the four MARAC criteria; professional judgement can only add a referral."""
    return _criteria(dash_score(answers), professional_referral, incidents_last_12_months,
                     assessed_on, previous_referrals, escalation_incidents)


def judgement_decision(partial_answers: Sequence[DashAnswer], incidents_last_12_months: int,
                       referred_on: date, previous_referrals: Iterable[date],
                       escalation_incidents: int = DEFAULT_ESCALATION_INCIDENTS
                       ) -> MaracDecision:
    """A referral on professional judgement when the DASH could not be completed: the
    criteria the partial checklist (fewer than 24 answers, possibly none) still meets are
    recorded beside it; the score counts the "yes" answers given."""
    if len(partial_answers) >= DASH_QUESTIONS:
        raise IncompleteChecklist(f"a partial checklist has fewer than {DASH_QUESTIONS} "
                                  "answers; a complete one is a DASH risk assessment")
    score = sum(1 for answer in partial_answers if answer == "yes")
    return _criteria(score, True, incidents_last_12_months, referred_on, previous_referrals,
                     escalation_incidents)


def external_decision(referred_on: date, previous_referrals: Iterable[date]) -> MaracDecision:
    """A referral another agency made outside Peerlink: on that agency's professional
    judgement, and a repeat when a referral was made in the 12 months before."""
    met: list[MaracCriterion] = ["professional-judgement"]
    if is_repeat(referred_on, previous_referrals):
        met.append("repeat")
    return MaracDecision(score=0, criteria_met=tuple(met))

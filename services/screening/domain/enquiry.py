"""Routine enquiry for domestic violence and abuse: HARK and lifetime abuse.

HARK (Sohal, Eldridge and Feder, BMC Family Practice 2007;8:49): four yes/no questions about a
partner or ex-partner in the last year; the score is the number of "yes"; one or more is a
positive screen. Past (lifetime) abuse is recorded separately, since HARK covers one year only.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.events.vocabulary import ScreeningOutcome, YesNoUnsure

HARK_POSITIVE_THRESHOLD = 1


@dataclass(frozen=True)
class HarkAnswers:
    """The four HARK answers."""

    humiliated: bool
    afraid: bool
    raped: bool
    kicked: bool

    @property
    def score(self) -> int:
        """Number of "yes" answers, 0 to 4."""
        return sum((self.humiliated, self.afraid, self.raped, self.kicked))

    @property
    def positive(self) -> bool:
        """A positive screen for current abuse: one or more "yes"."""
        return self.score >= HARK_POSITIVE_THRESHOLD


@dataclass(frozen=True)
class EnquiryFindings:
    """What an enquiry in which the person was asked found."""

    hark_score: int
    current_abuse: bool
    past_abuse: YesNoUnsure
    disclosed: bool


def findings(hark: HarkAnswers, past_abuse: YesNoUnsure) -> EnquiryFindings:
    """Score an enquiry: current abuse is a positive HARK; disclosed is current or past abuse."""
    return EnquiryFindings(hark_score=hark.score, current_abuse=hark.positive,
                           past_abuse=past_abuse, disclosed=hark.positive or past_abuse == "yes")


def check_hark_presence(outcome: ScreeningOutcome, has_hark: bool) -> str | None:
    """The problem with the ``hark`` field for this outcome, if any."""
    if outcome == "asked" and not has_hark:
        return "hark is required when the outcome is asked"
    if outcome != "asked" and has_hark:
        return "hark must be absent unless the outcome is asked"
    return None

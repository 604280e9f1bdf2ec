"""What each business event contributes to the de-identified figures.

A contribution is one measure (``screened``, ``current_abuse``...) of one event about one
person, with the event's own date, its cell of the dimensions (organisation, team, borough,
gender, age band, referring organisation) and, for mentoring, the episode (referral) and match
it belongs to. Contributions are kept per person, so a withdrawal or erasure can be subtracted
exactly; who counts in a figure is decided from them at release time (``people``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import get_args

from shared.events.consent import ConsentGranted
from shared.events.envelope import EventPayload
from shared.events.mentoring import (
    AdverseEventRecorded,
    FollowUpRecorded,
    MatchMade,
    MenteeFeedbackGiven,
    MenteeReferred,
    MentoringEnded,
    MentoringOffered,
    OutcomeRecorded,
    SessionComponentsRecorded,
    SessionLogged,
)
from shared.events.screening import (
    EnquiryAcceptability,
    EnquiryDue,
    EnquiryNotAsked,
    MaracReferralRequired,
    ScreeningCompleted,
    ScreeningDeclined,
    ScreeningNotSafe,
)
from shared.events.vocabulary import FOLLOW_UPS, NotAskedReason, OfferDeclineReason

DIMENSIONS: tuple[str, ...] = ("org", "team", "borough", "gender", "age_band", "referred_by")
UNKNOWN = "unknown"
METRIC_SCALE = 100
"""SWEMWBS metric scores are kept as hundredths, so contributions stay whole numbers."""
ATTENDANCE_MEASURES = {"attended": "session_attended", "did-not-attend": "session_missed"}
"""Sessions that count (a cancelled session says nothing about the mentee's engagement)."""
NOT_ASKED_REASONS: tuple[str, ...] = tuple(get_args(NotAskedReason))
COMFORTABLE_FROM = 4
"""A comfort rating of 4 or 5 (of 5) counts as comfortable being asked."""


def not_asked_measure(reason: str) -> str:
    """The measure of people not asked for ``reason`` (``not_asked_no_time``...)."""
    return f"not_asked_{reason.replace('-', '_')}"


NOT_ASKED_MEASURES: tuple[str, ...] = tuple(not_asked_measure(r) for r in NOT_ASKED_REASONS)
COMPONENT_PREFIX = "component_"
"""Measures of an episode's sessions covering one configured component (``component_`` and
the code in snake case): the list is configured, so these are found by their prefix."""
OFFER_MEASURES: tuple[str, ...] = ("offer_accepted", "offer_declined", "offer_undecided")
"""What the person said to an offer (named apart from the enquiry's ``declined``)."""


def decline_measure(reason: str) -> str:
    """The measure of offers declined for ``reason``."""
    return f"offer_declined_{reason.replace('-', '_')}"


DECLINE_MEASURES: tuple[str, ...] = tuple(
    decline_measure(r) for r in get_args(OfferDeclineReason))
FOLLOW_UP_MEASURES: dict[str, str] = {
    timepoint: f"followed_up_{months}_months" for timepoint, months in FOLLOW_UPS.items()}
HELPED_A_LOT_FROM = 4
"""A mentee's "how much it helped" of 4 or 5 (of 5) counts as helped a lot."""
RELATED = frozenset({"related", "possibly-related"})


def component_measure(code: str) -> str:
    """The measure of a configured component's code."""
    return COMPONENT_PREFIX + code.replace("-", "_")


def anonymous_subject(payload: EventPayload) -> str | None:
    """Whom an event about nobody counts as: an offer of mentoring counts once, as itself
    (its id), since the person who declined it gave nothing to link it to."""
    return payload.offer_id if isinstance(payload, MentoringOffered) else None


@dataclass(frozen=True)
class Contribution:
    """One measure of one event about one person, in one cell."""

    measure: str
    value: int
    occurred_on: date
    org: str
    team: str = UNKNOWN
    borough: str = UNKNOWN
    gender: str = UNKNOWN
    age_band: str = UNKNOWN
    referred_by: str = UNKNOWN
    episode: str | None = None
    match_id: str | None = None

    @property
    def month(self) -> str:
        """The calendar month of the event's own date."""
        return month_of(self.occurred_on)


def month_of(day: date) -> str:
    """The calendar month (``YYYY-MM``) of an event's own date."""
    return f"{day.year:04d}-{day.month:02d}"


def consent_contributions(granted: ConsentGranted, on: date) -> list[Contribution]:
    """What a consent contributes: consent to peer mentoring is the feasibility funnel's
    ``consented`` (on the day it was recorded, under the organisation that recorded it)."""
    if granted.purpose != "peer-mentoring":
        return []
    return [Contribution(measure="consented", value=1, occurred_on=on, org=granted.org)]


def contributions_of(payload: EventPayload) -> list[Contribution]:
    """The contributions of one event (none for events that do not count)."""
    if isinstance(payload, ScreeningCompleted):
        screened = Contribution(measure="screened", value=1, occurred_on=payload.asked_on,
                                org=payload.org, team=payload.team, borough=payload.borough,
                                gender=payload.gender, age_band=payload.age_band)
        measures = {
            "screened": 1,
            "current_abuse": int(payload.current_abuse),
            "past_abuse": int(payload.past_abuse == "yes"),
            "either_abuse": int(payload.disclosed),
            "asked_in_private": int(payload.private),
        }
        return [replace(screened, measure=m, value=v) for m, v in measures.items()]
    if isinstance(payload, ScreeningDeclined | ScreeningNotSafe):
        measure = "declined" if isinstance(payload, ScreeningDeclined) else "not_safe_to_ask"
        return [Contribution(measure=measure, value=1, occurred_on=payload.asked_on,
                             org=payload.org, team=payload.team, borough=payload.borough,
                             gender=payload.gender, age_band=payload.age_band)]
    if isinstance(payload, EnquiryNotAsked):
        not_asked = Contribution(measure="not_asked", value=1, occurred_on=payload.asked_on,
                                 org=payload.org, team=payload.team, borough=payload.borough,
                                 gender=payload.gender, age_band=payload.age_band)
        return [not_asked, replace(not_asked, measure=not_asked_measure(payload.reason))]
    if isinstance(payload, EnquiryAcceptability):
        return _acceptability(payload)
    if isinstance(payload, EnquiryDue):
        return [Contribution(measure="due", value=1, occurred_on=payload.due_on,
                             org=payload.org, team=payload.team)]
    if isinstance(payload, MaracReferralRequired):
        return [Contribution(measure="marac_referrals", value=1, occurred_on=payload.raised_on,
                             org=payload.org, team=payload.team or UNKNOWN)]
    return _engagement(payload)


def _acceptability(payload: EnquiryAcceptability) -> list[Contribution]:
    """What a person's view of being asked contributes: their answer, and their comfort
    when they gave it."""
    answered = Contribution(measure="acceptability_answered", value=1,
                            occurred_on=payload.asked_on, org=payload.org, team=payload.team,
                            borough=payload.borough, gender=payload.gender,
                            age_band=payload.age_band)
    measures = {"found_acceptable": int(payload.acceptable == "yes"),
                "acceptable_unsure": int(payload.acceptable == "unsure"),
                "not_acceptable": int(payload.acceptable == "no")}
    if payload.comfort is not None:
        measures.update(comfort_rated=1, comfortable=int(payload.comfort >= COMFORTABLE_FROM))
    return [answered, *(replace(answered, measure=m, value=v) for m, v in measures.items())]


def _engagement(payload: EventPayload) -> list[Contribution]:
    """What the mentoring events contribute, each tied to its episode (the referral) or its
    match; days to match and SWEMWBS scores feed medians and changes, never published raw."""
    if isinstance(payload, MenteeReferred):
        return [Contribution(measure="referred", value=1, occurred_on=payload.referred_on,
                             org=payload.to_org or payload.referred_by_org,
                             referred_by=payload.referred_by_org,
                             borough=payload.borough or UNKNOWN,
                             gender=payload.gender or UNKNOWN,
                             age_band=payload.age_band or UNKNOWN, episode=payload.referral_id)]
    if isinstance(payload, MatchMade):
        matched = Contribution(measure="matched", value=1, occurred_on=payload.matched_on,
                               org=payload.org, episode=payload.referral_id,
                               match_id=payload.match_id)
        return [matched, replace(matched, measure="waitlisted", value=int(payload.waitlisted)),
                replace(matched, measure="days_to_match", value=payload.days_from_referral)]
    if isinstance(payload, SessionLogged):
        measure = ATTENDANCE_MEASURES.get(payload.attendance)
        return [] if measure is None else [
            Contribution(measure=measure, value=1, occurred_on=payload.held_on,
                         org=payload.org, match_id=payload.match_id)]
    if isinstance(payload, MentoringEnded):
        ending = "planned_ending" if payload.planned else "unplanned_ending"
        return [Contribution(measure=ending, value=1, occurred_on=payload.ended_on,
                             org=payload.org, match_id=payload.match_id)]
    if isinstance(payload, FollowUpRecorded):
        return [Contribution(measure=FOLLOW_UP_MEASURES[payload.timepoint], value=1,
                             occurred_on=payload.recorded_on, org=payload.org,
                             match_id=payload.match_id)]
    if isinstance(payload, OutcomeRecorded) and payload.instrument == "SWEMWBS" \
            and payload.timepoint in ("intake", "exit") and payload.metric_score is not None:
        return [Contribution(measure=f"swemwbs_{payload.timepoint}",
                             value=round(payload.metric_score * METRIC_SCALE),
                             occurred_on=payload.recorded_on, org=payload.org,
                             match_id=payload.match_id)]
    return _study(payload)


def _study(payload: EventPayload) -> list[Contribution]:
    """What the study's mentoring records contribute: the components a session covered,
    the mentee's feedback and adverse events (each tied to its match), and offers."""
    if isinstance(payload, SessionComponentsRecorded):
        covered = Contribution(measure="components_recorded", value=1,
                               occurred_on=payload.held_on, org=payload.org,
                               match_id=payload.match_id)
        return [covered, *(replace(covered, measure=component_measure(code))
                           for code in payload.components)]
    if isinstance(payload, MenteeFeedbackGiven):
        given = Contribution(measure="feedback_given", value=1, occurred_on=payload.given_on,
                             org=payload.org, match_id=payload.match_id)
        return [given,
                replace(given, measure="helped_a_lot",
                        value=int(payload.helped >= HELPED_A_LOT_FROM)),
                replace(given, measure="made_worse", value=int(payload.made_worse == "yes"))]
    if isinstance(payload, AdverseEventRecorded):
        harm = Contribution(measure="adverse_event", value=1, occurred_on=payload.occurred_on,
                            org=payload.org, match_id=payload.match_id)
        return [harm, replace(harm, measure="serious_adverse_event", value=int(payload.serious)),
                replace(harm, measure="related_adverse_event",
                        value=int(payload.relatedness in RELATED))]
    if isinstance(payload, MentoringOffered):
        offered = Contribution(measure="offered", value=1, occurred_on=payload.offered_on,
                               org=payload.org, team=payload.team, gender=payload.gender,
                               age_band=payload.age_band)
        measures = {f"offer_{outcome}": int(payload.outcome == outcome)
                    for outcome in ("accepted", "declined", "undecided")}
        if payload.decline_reason is not None:
            measures[decline_measure(payload.decline_reason)] = 1
        return [offered, *(replace(offered, measure=m, value=v) for m, v in measures.items())]
    return []

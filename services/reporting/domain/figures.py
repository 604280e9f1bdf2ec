"""Published figures: the rows of a release, under disclosure control."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.reporting.domain.contributions import (
    COMPONENT_PREFIX,
    DECLINE_MEASURES,
    FOLLOW_UP_MEASURES,
    NOT_ASKED_MEASURES,
    OFFER_MEASURES,
)
from services.reporting.domain.disclosure import DisclosurePolicy, control_count, control_rate
from services.reporting.domain.people import (
    COVERAGE,
    ENGAGEMENT,
    FEASIBILITY,
    FEASIBILITY_LOSSES,
    FEASIBILITY_STAGES,
    OFFERS,
    PREVALENCE,
    WITHIN,
)
from services.reporting.domain.release_rule import Members, Shows, summary

PREVALENCE_MEASURES: tuple[str, ...] = ("current_abuse", "past_abuse", "either_abuse")
ENGAGEMENT_COUNTS: tuple[str, ...] = (
    "referred", "matched", "waitlisted", "attended_session", "missed_session",
    "planned_endings", "unplanned_endings", "active_mentees")
COUNTED: dict[str, tuple[str, ...]] = {
    PREVALENCE: ("screened", *PREVALENCE_MEASURES),
    COVERAGE: ("due", "screened", "declined", "not_safe_to_ask", "not_asked", "marac_referrals",
               "acceptability_answered"),
    ENGAGEMENT: ENGAGEMENT_COUNTS,
    FEASIBILITY: FEASIBILITY_STAGES,
    OFFERS: ("offered",),
}
"""The counts whose being non-zero puts a row in a table."""


@dataclass(frozen=True)
class OutcomeRules:
    """When a SWEMWBS change is shown: meaningful change and the minimum for a mean."""

    meaningful_change: float = 3.0
    min_people_for_mean: int = 30


def _n(row: Mapping[str, Any], measure: str) -> int:
    return int(row["figures"].get(measure, {}).get("n", 0))


def shown_count(n: int, policy: DisclosurePolicy) -> dict[str, Any]:
    """A count as published: rounded, or suppressed."""
    count = control_count(n, policy)
    return {"value": count.value, "display": count.display, "suppressed": count.suppressed}


def shown_rate(numerator: int, denominator: int, policy: DisclosurePolicy) -> dict[str, Any]:
    """A count and its share of ``denominator`` as published, with its Wilson interval."""
    rate = control_rate(numerator, denominator, policy)
    return {**shown_count(numerator, policy), "rate": rate.rate, "lower": rate.lower,
            "upper": rate.upper, "withheld": rate.withheld}


def _prevalence(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    screened = _n(row, "screened")
    shown: dict[str, Any] = {"screened": shown_count(screened, policy)}
    for measure in PREVALENCE_MEASURES:
        shown[measure] = shown_rate(_n(row, measure), screened, policy)
    return shown


def _coverage(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    screened = _n(row, "screened")
    return {
        "due": shown_count(_n(row, "due"), policy),
        "screened": shown_rate(screened, _n(row, "due"), policy),
        "declined": shown_count(_n(row, "declined"), policy),
        "not_safe_to_ask": shown_count(_n(row, "not_safe_to_ask"), policy),
        "asked_in_private": shown_rate(_n(row, "asked_in_private"), screened, policy),
        "marac_referrals": shown_count(_n(row, "marac_referrals"), policy),
        **_not_asked(row, policy),
        **_acceptability(row, policy),
    }


def _not_asked(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    """People an enquiry was due for who were not asked, and for each reason the share of
    them (by their most recent enquiry)."""
    not_asked = _n(row, "not_asked")
    return {"not_asked": shown_count(not_asked, policy),
            **{m: shown_rate(_n(row, m), not_asked, policy) for m in NOT_ASKED_MEASURES}}


def _acceptability(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    """Whether being asked was all right, among the people who answered (by their most recent
    answer), and comfort among those who rated it."""
    answered = _n(row, "acceptability_answered")
    return {"acceptability_answered": shown_count(answered, policy),
            **{m: shown_rate(_n(row, m), answered, policy)
               for m in ("found_acceptable", "acceptable_unsure", "not_acceptable")},
            "comfort_rated": shown_count(_n(row, "comfort_rated"), policy),
            "comfortable": shown_rate(_n(row, "comfortable"), _n(row, "comfort_rated"), policy)}


def _engagement(row: Mapping[str, Any], policy: DisclosurePolicy, rules: OutcomeRules
                ) -> dict[str, Any]:
    shown: dict[str, Any] = {k: shown_count(_n(row, k), policy) for k in ENGAGEMENT_COUNTS}
    days = row["figures"].get("days_to_match", {"n": 0, "median": None})
    shown["median_days_to_match"] = (
        {"value": days["median"], "withheld": False} if days["n"] > policy.suppress_upto
        else {"value": None, "withheld": True})
    change = row["figures"].get("swemwbs_change", {"n": 0, "mean": None, "improved": 0})
    shown["swemwbs_change"] = swemwbs_change(change, policy, rules)
    shown.update(_study(row, policy))
    return shown


def _study(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    """What the study reads of each episode: the share of people matched followed up at 3,
    6 and 12 months, given feedback, with an adverse event; the components their sessions
    covered (each a share of the people whose sessions had components recorded)."""
    matched = _n(row, "matched")
    recorded = _n(row, "components_recorded")
    feedback = _n(row, "feedback_given")
    harmed = _n(row, "adverse_event")
    components = sorted(m for m in row["figures"] if m.startswith(COMPONENT_PREFIX))
    return {
        **{m: shown_rate(_n(row, m), matched, policy) for m in FOLLOW_UP_MEASURES.values()},
        "feedback_given": shown_rate(feedback, matched, policy),
        "helped_a_lot": shown_rate(_n(row, "helped_a_lot"), feedback, policy),
        "made_worse": shown_rate(_n(row, "made_worse"), feedback, policy),
        "adverse_event": shown_rate(harmed, matched, policy),
        "serious_adverse_event": shown_rate(_n(row, "serious_adverse_event"), harmed, policy),
        "related_adverse_event": shown_rate(_n(row, "related_adverse_event"), harmed, policy),
        "components_recorded": shown_rate(recorded, _n(row, "attended_session"), policy),
        "components": {m[len(COMPONENT_PREFIX):]: shown_rate(_n(row, m), recorded, policy)
                       for m in components},
    }


def _feasibility(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    """Each stage of the funnel as a count of people, and as a share of the stage its people
    are always among (disclosed of asked; matched of referred; a session, a planned ending
    and each follow-up of matched); where people are known to have left, how many. People
    may enter at a referral, not only at an enquiry, so referred is no share of disclosed."""
    within = WITHIN[FEASIBILITY]
    shown: dict[str, Any] = {
        stage: shown_rate(_n(row, stage), _n(row, within[stage]), policy) if stage in within
        else shown_count(_n(row, stage), policy) for stage in FEASIBILITY_STAGES}
    shown["lost"] = {m: shown_count(_n(row, m), policy) for m in FEASIBILITY_LOSSES}
    return shown


def _offers(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    """Offers of mentoring and what people said, each a share of the offers; each reason a
    share of the offers declined."""
    offered, declined = _n(row, "offered"), _n(row, "offer_declined")
    return {"offered": shown_count(offered, policy),
            **{m: shown_rate(_n(row, m), offered, policy) for m in OFFER_MEASURES},
            **{m: shown_rate(_n(row, m), declined, policy) for m in DECLINE_MEASURES}}


def swemwbs_change(change: Mapping[str, Any], policy: DisclosurePolicy, rules: OutcomeRules
                   ) -> dict[str, Any]:
    """Mean intake-to-exit change within an episode, with n, and the share with a meaningful
    improvement; the mean is withheld below ``min_people_for_mean`` people."""
    people = int(change["n"])
    enough = people >= rules.min_people_for_mean
    return {
        "n": shown_count(people, policy),
        "mean": change["mean"] if enough else None,
        "withheld_reason": None if enough else (
            f"fewer than {rules.min_people_for_mean} people have both an intake and an exit "
            "score in one mentoring episode: Warwick advises against comparing means below "
            "that"),
        "meaningful_improvement": shown_rate(int(change["improved"]), people, policy),
    }


def staff_trained(staff: int, trained: int, as_of: str, policy: DisclosurePolicy
                  ) -> dict[str, Any]:
    """A team's staff trained in routine enquiry under the same control as every figure:
    about staff, not people in the programme, but a small team's count would still tell who
    is not trained."""
    return {"staff": shown_count(staff, policy), "trained": shown_rate(trained, staff, policy),
            "as_of": as_of}


def shown_as(policy: DisclosurePolicy, rules: OutcomeRules) -> Shows:
    """What a figure shows readers of its members, as its table publishes it: a count its
    controlled display; a median whether it is withheld and its value; a SWEMWBS change all
    it shows. The release rule lets a figure take new members only when this changes."""
    def shows(measure: str, members: Members) -> Hashable:
        figure = summary(measure, members, rules.meaningful_change)
        if measure == "days_to_match":
            shown = figure["n"] > policy.suppress_upto
            return shown, figure["median"] if shown else None
        if measure == "swemwbs_change":
            return repr(swemwbs_change(figure, policy, rules))
        return control_count(figure["n"], policy).display
    return shows


def held_reason(k: int) -> str:
    """Why a row's figures are not all current."""
    return (f"people have had events in this row since its figures were last worked out, "
            f"fewer than the {k} it takes to work them out again, so every figure keeps its "
            "published value")


def rows_of(table: str, group_by: str, published: Iterable[Mapping[str, Any]],
            policy: DisclosurePolicy, rules: OutcomeRules, k: int) -> list[dict[str, Any]]:
    """A table's published rows, controlled, for one grouping and period; rows none of whose
    counts were ever published above 0 are left out (their existence would tell)."""
    rows = []
    for row in sorted(published, key=lambda r: str(r["group"])):
        if not any(_n(row, m) for m in COUNTED[table]):
            continue
        shown: dict[str, Any] = {group_by: row["group"], "changed_at": row["changed_at"],
                                 "held": row["held"],
                                 "held_reason": held_reason(k) if row["held"] else None}
        if table == PREVALENCE:
            shown.update(_prevalence(row, policy))
        elif table == COVERAGE:
            shown.update(_coverage(row, policy))
        elif table == FEASIBILITY:
            shown.update(_feasibility(row, policy))
        elif table == OFFERS:
            shown.update(_offers(row, policy))
        else:
            shown.update(_engagement(row, policy, rules))
        rows.append(shown)
    return rows


WHO_COUNTS: dict[str, str] = {
    PREVALENCE: ("People screened (asked) in the period, each by their most recent screening in "
                 "it; repeat screenings and redelivered events never count twice."),
    COVERAGE: ("People due a routine enquiry in the period, and those of them screened in it "
               "(the rate is over people due); declined, not safe to ask and not asked (each "
               "reason's share is of the people not asked) by each person's most recent "
               "enquiry; people with a MARAC referral. Whether being asked was all right is "
               "of the people who answered, by their most recent answer; comfortable (4 or 5 "
               "of 5) is of the people who rated their comfort."),
    ENGAGEMENT: ("People by their most recent mentoring episode whose referral falls in the "
                 "period, under the organisation that received the referral (or the referring "
                 "organisation, grouped by referred_by); each stage counts people of that "
                 "episode, so the funnel narrows. SWEMWBS change pairs intake and exit within "
                 "one episode."),
    FEASIBILITY: ("People by the month they entered the programme (their first enquiry due, "
                  "enquiry or referral), each once, with every stage they reached since: due, "
                  "asked, disclosed, consented to peer mentoring, referred, matched, attended "
                  "a session, a planned ending, followed up at 3, 6 and 12 months after exit. "
                  "Consented is a count alone (consent may be recorded before or without an "
                  "enquiry). A stage whose people are "
                  "always among another's is also a share of it (disclosed of asked; matched "
                  "of referred; a session, a planned ending and each follow-up of matched); "
                  "lost counts the people known to have left: not asked, declined to answer, "
                  "an unplanned ending. Offers of mentoring hold no personal data, so they are "
                  "counted apart (/v1/mentoring-offers)."),
    OFFERS: ("Offers of peer mentoring in the period, each counted once as one person offered "
             "(an offer carries nothing that identifies or links the person), with what they "
             "said; each reason declined is a share of the offers declined."),
}
"""Who each table counts, stated first in its method."""

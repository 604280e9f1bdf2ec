"""Published figures: the rows of a release, under disclosure control."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.reporting.domain.contributions import NOT_ASKED_MEASURES
from services.reporting.domain.disclosure import DisclosurePolicy, control_count, control_rate
from services.reporting.domain.people import COVERAGE, ENGAGEMENT, PREVALENCE

PREVALENCE_MEASURES: tuple[str, ...] = ("current_abuse", "past_abuse", "either_abuse")
ENGAGEMENT_COUNTS: tuple[str, ...] = (
    "referred", "matched", "waitlisted", "attended_session", "missed_session",
    "planned_endings", "unplanned_endings", "active_mentees")
COUNTED: dict[str, tuple[str, ...]] = {
    PREVALENCE: ("screened", *PREVALENCE_MEASURES),
    COVERAGE: ("due", "screened", "declined", "not_safe_to_ask", "not_asked", "marac_referrals",
               "acceptability_answered"),
    ENGAGEMENT: ENGAGEMENT_COUNTS,
}
"""The counts whose being non-zero puts a row in a table."""


@dataclass(frozen=True)
class OutcomeRules:
    """When a SWEMWBS change is shown: meaningful change and the minimum for a mean."""

    meaningful_change: float = 3.0
    min_people_for_mean: int = 30


def _n(row: Mapping[str, Any], measure: str) -> int:
    return int(row["figures"].get(measure, {}).get("n", 0))


def _count(n: int, policy: DisclosurePolicy) -> dict[str, Any]:
    count = control_count(n, policy)
    return {"value": count.value, "display": count.display, "suppressed": count.suppressed}


def _rate(numerator: int, denominator: int, policy: DisclosurePolicy) -> dict[str, Any]:
    rate = control_rate(numerator, denominator, policy)
    return {**_count(numerator, policy), "rate": rate.rate, "lower": rate.lower,
            "upper": rate.upper, "withheld": rate.withheld}


def _prevalence(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    screened = _n(row, "screened")
    shown: dict[str, Any] = {"screened": _count(screened, policy)}
    for measure in PREVALENCE_MEASURES:
        shown[measure] = _rate(_n(row, measure), screened, policy)
    return shown


def _coverage(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    screened = _n(row, "screened")
    return {
        "due": _count(_n(row, "due"), policy),
        "screened": _rate(screened, _n(row, "due"), policy),
        "declined": _count(_n(row, "declined"), policy),
        "not_safe_to_ask": _count(_n(row, "not_safe_to_ask"), policy),
        "asked_in_private": _rate(_n(row, "asked_in_private"), screened, policy),
        "marac_referrals": _count(_n(row, "marac_referrals"), policy),
        **_not_asked(row, policy),
        **_acceptability(row, policy),
    }


def _not_asked(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    """People an enquiry was due for who were not asked, and for each reason the share of
    them (by their most recent enquiry)."""
    not_asked = _n(row, "not_asked")
    return {"not_asked": _count(not_asked, policy),
            **{m: _rate(_n(row, m), not_asked, policy) for m in NOT_ASKED_MEASURES}}


def _acceptability(row: Mapping[str, Any], policy: DisclosurePolicy) -> dict[str, Any]:
    """Whether being asked was all right, among the people who answered (by their most recent
    answer), and comfort among those who rated it."""
    answered = _n(row, "acceptability_answered")
    return {"acceptability_answered": _count(answered, policy),
            **{m: _rate(_n(row, m), answered, policy)
               for m in ("found_acceptable", "acceptable_unsure", "not_acceptable")},
            "comfort_rated": _count(_n(row, "comfort_rated"), policy),
            "comfortable": _rate(_n(row, "comfortable"), _n(row, "comfort_rated"), policy)}


def _engagement(row: Mapping[str, Any], policy: DisclosurePolicy, rules: OutcomeRules
                ) -> dict[str, Any]:
    shown: dict[str, Any] = {k: _count(_n(row, k), policy) for k in ENGAGEMENT_COUNTS}
    days = row["figures"].get("days_to_match", {"n": 0, "median": None})
    shown["median_days_to_match"] = (
        {"value": days["median"], "withheld": False} if days["n"] > policy.suppress_upto
        else {"value": None, "withheld": True})
    change = row["figures"].get("swemwbs_change", {"n": 0, "mean": None, "improved": 0})
    shown["swemwbs_change"] = swemwbs_change(change, policy, rules)
    return shown


def swemwbs_change(change: Mapping[str, Any], policy: DisclosurePolicy, rules: OutcomeRules
                   ) -> dict[str, Any]:
    """Mean intake-to-exit change within an episode, with n, and the share with a meaningful
    improvement; the mean is withheld below ``min_people_for_mean`` people."""
    people = int(change["n"])
    enough = people >= rules.min_people_for_mean
    return {
        "n": _count(people, policy),
        "mean": change["mean"] if enough else None,
        "withheld_reason": None if enough else (
            f"fewer than {rules.min_people_for_mean} people have both an intake and an exit "
            "score in one mentoring episode: Warwick advises against comparing means below "
            "that"),
        "meaningful_improvement": _rate(int(change["improved"]), people, policy),
    }


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
}
"""Who each table counts, stated first in its method."""

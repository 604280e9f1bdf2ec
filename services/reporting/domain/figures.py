"""Published figures: cells of a release, filtered to a period, grouped and controlled."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from services.reporting.domain.contributions import METRIC_SCALE
from services.reporting.domain.disclosure import DisclosurePolicy, control_count, control_rate

GROUPS: tuple[str, ...] = ("org", "team", "borough", "gender", "age_band", "month")
LAST_12_MONTHS = "last-12-months"
PREVALENCE_MEASURES: tuple[str, ...] = ("current_abuse", "past_abuse", "either_abuse")


def months_in(period: str, today: date) -> set[str] | None:
    """The months a period covers: one ``YYYY-MM``, or the 12 months up to ``today``."""
    if period != LAST_12_MONTHS:
        return {period}
    months = set()
    year, month = today.year, today.month
    for _ in range(12):
        months.add(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


def sum_by_group(cells: Iterable[Mapping[str, Any]], group_by: str,
                 months: set[str] | None) -> dict[str, dict[str, int]]:
    """Totals of every measure per value of ``group_by`` within ``months``."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cell in cells:
        if months is not None and cell["month"] not in months:
            continue
        totals[str(cell[group_by])][str(cell["measure"])] += int(cell["n"])
    return totals


def prevalence_rows(cells: Iterable[Mapping[str, Any]], group_by: str, months: set[str] | None,
                    policy: DisclosurePolicy) -> list[dict[str, Any]]:
    """Prevalence among people screened, per group, with rates and Wilson intervals."""
    rows = []
    for value, measures in sorted(sum_by_group(cells, group_by, months).items()):
        screened = measures.get("screened", 0)
        if screened == 0:
            continue
        row: dict[str, Any] = {group_by: value, "screened": asdict(control_count(screened, policy))}
        for measure in PREVALENCE_MEASURES:
            count = measures.get(measure, 0)
            row[measure] = {**asdict(control_count(count, policy)),
                            **asdict(control_rate(count, screened, policy))}
        rows.append(row)
    return rows


def _count(n: int, policy: DisclosurePolicy) -> dict[str, Any]:
    return asdict(control_count(n, policy))


def _rate(numerator: int, denominator: int, policy: DisclosurePolicy) -> dict[str, Any]:
    return {**_count(numerator, policy), **asdict(control_rate(numerator, denominator, policy))}


def coverage_rows(cells: Iterable[Mapping[str, Any]], group_by: str, months: set[str] | None,
                  policy: DisclosurePolicy) -> list[dict[str, Any]]:
    """Coverage of routine enquiry: screened over due, declined, not safe to ask, privacy,
    MARAC referrals raised."""
    rows = []
    for value, m in sorted(sum_by_group(cells, group_by, months).items()):
        measures = ("due", "screened", "declined", "not_safe_to_ask", "marac_referrals")
        if not any(m.get(k, 0) for k in measures):
            continue
        screened = m.get("screened", 0)
        rows.append({
            group_by: value, "due": _count(m.get("due", 0), policy),
            "screened": _rate(screened, m.get("due", 0), policy),
            "declined": _count(m.get("declined", 0), policy),
            "not_safe_to_ask": _count(m.get("not_safe_to_ask", 0), policy),
            "asked_in_private": _rate(m.get("asked_in_private", 0), screened, policy),
            "marac_referrals": _count(m.get("marac_referrals", 0), policy),
        })
    return rows


@dataclass(frozen=True)
class OutcomeRules:
    """When a SWEMWBS change is shown: meaningful change and the minimum for a mean."""

    meaningful_change: float = 3.0
    min_people_for_mean: int = 30


ENGAGEMENT_COUNTS: tuple[str, ...] = (
    "referred", "matched", "waitlisted", "sessions_attended", "sessions_did_not_attend",
    "sessions_cancelled", "planned_endings", "unplanned_endings")


def _by_group(values: Iterable[Mapping[str, Any]], group_by: str,
              months: set[str] | None) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for cell in values:
        if months is None or cell["month"] in months:
            grouped[str(cell[group_by])].append(int(cell["n"]))
    return grouped


def engagement_rows(snapshot: Mapping[str, Any], group_by: str, months: set[str] | None,
                    policy: DisclosurePolicy, rules: OutcomeRules) -> list[dict[str, Any]]:
    """Engagement: referrals to endings, median days to match, active mentees, SWEMWBS change.

    Active mentees are counted at release time, whatever the period.
    """
    cells = snapshot["cells"]
    totals = sum_by_group(cells, group_by, months)
    active = sum_by_group(cells, group_by, None)
    days = _by_group(snapshot["days_to_match"], group_by, months)
    changes = _by_group(snapshot["swemwbs_changes"], group_by, months)
    rows = []
    for value in sorted(set(totals) | set(changes)):
        m = totals.get(value, {})
        if not any(m.get(k, 0) for k in ENGAGEMENT_COUNTS):
            continue
        row: dict[str, Any] = {group_by: value}
        row.update({k: _count(m.get(k, 0), policy) for k in ENGAGEMENT_COUNTS})
        row["active_mentees"] = _count(max(0, active.get(value, {}).get("active_mentees", 0)),
                                       policy)
        waited = days.get(value, [])
        row["median_days_to_match"] = (
            {"value": float(statistics.median(waited)), "withheld": False}
            if len(waited) > policy.suppress_upto else {"value": None, "withheld": True})
        row["swemwbs_change"] = swemwbs_change(changes.get(value, []), policy, rules)
        rows.append(row)
    return rows


def swemwbs_change(changes: list[int], policy: DisclosurePolicy, rules: OutcomeRules
                   ) -> dict[str, Any]:
    """Mean intake-to-exit change with n, and the share with a meaningful improvement; the mean
    is withheld below ``min_people_for_mean`` people with both time points."""
    people = len(changes)
    improved = sum(1 for c in changes if c / METRIC_SCALE >= rules.meaningful_change)
    enough = people >= rules.min_people_for_mean
    return {
        "n": _count(people, policy),
        "mean": round(statistics.fmean(changes) / METRIC_SCALE, 2) if enough else None,
        "withheld_reason": None if enough else (
            f"fewer than {rules.min_people_for_mean} people have both an intake and an exit "
            "score: Warwick advises against comparing means below that"),
        "meaningful_improvement": _rate(improved, people, policy),
    }

"""Published figures: cells of a release, filtered to a period, grouped and controlled."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import date
from typing import Any

from services.reporting.domain.disclosure import DisclosurePolicy, control_count, control_rate

GROUPS: tuple[str, ...] = ("org", "team", "borough", "gender", "age_band")
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

"""An insider reading every release: does any change between releases come down to one person?

The insider knows who was added or removed at every step and what each person said (the
test's ground truth). Every time a published figure's display changes, they compare who was
truly in the figure when it last changed display with who is in it now: if that is one person
(or none), the change is attributable to that person. Figures are compared across every table,
grouping, group and period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.reporting.domain.people import LAST_12_MONTHS, PREVALENCE, person_reference

ZERO = "0"
FigureKey = tuple[str, str, str, str, str]
"""Table, grouping, group, period and figure."""
Truth = Mapping[FigureKey, Mapping[str, Any]]
"""Each figure's true members (person -> value) after a step."""


@dataclass
class Audit:
    """Every displayed change, and the people truly behind it."""

    steps: int = 0
    changes: list[int] = field(default_factory=list)
    attributable: list[tuple[int, FigureKey]] = field(default_factory=list)
    _shown: dict[FigureKey, Any] = field(default_factory=dict)
    _truth_when_shown: dict[FigureKey, Mapping[str, Any]] = field(default_factory=dict)

    def observe(self, truth: Truth, displayed: Mapping[FigureKey, Any]) -> None:
        """Read one release, made after one more single-person step."""
        self.steps += 1
        for key in displayed.keys() | self._shown.keys():
            # a row not shown reads as zeros: its figures were never published above 0
            shown = displayed.get(key, ZERO)
            if shown == self._shown.get(key, ZERO):
                continue
            before = self._truth_when_shown.get(key, {})
            now = truth.get(key, {})
            movers = sum(1 for p in before.keys() | now.keys() if before.get(p) != now.get(p))
            self.changes.append(movers)
            if movers <= 1:
                self.attributable.append((self.steps, key))
            self._shown[key] = shown
            self._truth_when_shown[key] = dict(now)

    def report(self) -> str:
        """The figures the test reports."""
        fewest = min(self.changes) if self.changes else None
        return (f"{self.steps} single-person steps, {len(self.changes)} displayed changes, "
                f"fewest people behind a change: {fewest}, changes attributable to one person: "
                f"{len(self.attributable)}")


FIGURE_OF = {"median_days_to_match": "days_to_match"}
"""Published names that differ from the figure they show."""


def displayed_figures(table: str, group_by: str, period: str,
                      rows: list[dict[str, Any]]) -> dict[FigureKey, Any]:
    """What a reader sees of one published table, figure by figure. A rate is computed from
    two published counts, so it changes only when one of them does: counts are compared by
    their display; medians and means by everything they show."""
    shown: dict[FigureKey, Any] = {}
    for row in rows:
        group = str(row[group_by])
        for name, value in row.items():
            key = (table, group_by, group, period, FIGURE_OF.get(name, name))
            if isinstance(value, dict) and "display" in value:
                shown[key] = value["display"]
            elif isinstance(value, dict):
                shown[key] = repr({k: (v["display"] if isinstance(v, dict) else v)
                                   for k, v in sorted(value.items()) if k != "withheld_reason"})
    return shown


def overlapping_pairs(audit: Audit) -> set[tuple[FigureKey, FigureKey, Any, Any]]:
    """Pairs of figures in different groupings (same table, period and figure) whose people,
    as last shown, differ by exactly one person while their displays differ: subtracting one
    from the other would point at that person."""
    by_figure: dict[tuple[str, str, str], list[FigureKey]] = {}
    for key, shown in audit._shown.items():
        if shown != ZERO:
            by_figure.setdefault((key[0], key[3], key[4]), []).append(key)
    found: set[tuple[FigureKey, FigureKey, Any, Any]] = set()
    for keys in by_figure.values():
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                if a[1] == b[1] or audit._shown[a] == audit._shown[b]:
                    continue
                people_a, people_b = audit._truth_when_shown[a], audit._truth_when_shown[b]
                if len(people_a.keys() ^ people_b.keys()) == 1:
                    found.add((a, b, audit._shown[a], audit._shown[b]))
    return found


@dataclass
class Screening:
    """What the insider knows of one screening."""

    team: str
    borough: str
    gender: str
    age_band: str
    asked_on: date
    current: bool
    past: bool
    private: bool



def prevalence_truth(people: Mapping[str, list[Screening]], months: Iterable[str]
                     ) -> dict[FigureKey, dict[str, Any]]:
    """Who is truly in each prevalence figure, written apart from the code under test: each
    person's latest screening in the period (by date, then by order given)."""
    truth: dict[FigureKey, dict[str, Any]] = {}
    for period in (LAST_12_MONTHS, *months):
        for subject, screenings in people.items():
            inside = [(s.asked_on, n, s) for n, s in enumerate(screenings)
                      if period == LAST_12_MONTHS or s.asked_on.strftime("%Y-%m") == period]
            if not inside:
                continue
            latest = max(inside, key=lambda t: (t[0], t[1]))[2]
            groups = {"org": "trust", "team": latest.team, "borough": latest.borough,
                      "gender": latest.gender, "age_band": latest.age_band,
                      "month": latest.asked_on.strftime("%Y-%m")}
            said = {"screened": True, "current_abuse": latest.current,
                    "past_abuse": latest.past, "either_abuse": latest.current or latest.past}
            for group_by, group in groups.items():
                for figure, yes in said.items():
                    if yes:
                        truth.setdefault((PREVALENCE, group_by, group, period, figure),
                                         {})[person_reference(subject)] = 1
    return truth


def covering_unions(audit: Audit) -> set[tuple[FigureKey, str, Any]]:
    """Figures that the figures of another grouping cover together (a borough and its teams,
    as last shown) while the people differ by exactly one: adding up the one grouping and
    subtracting the other would point at that person."""
    by_figure: dict[tuple[str, str, str], list[FigureKey]] = {}
    for key, shown in audit._shown.items():
        if shown != ZERO:
            by_figure.setdefault((key[0], key[3], key[4]), []).append(key)
    found: set[tuple[FigureKey, str, Any]] = set()
    for keys in by_figure.values():
        for key in keys:
            people = set(audit._truth_when_shown[key])
            parts: dict[str, list[set[str]]] = {}
            for other in keys:
                theirs = set(audit._truth_when_shown[other])
                if other[1] != key[1] and theirs & people:
                    parts.setdefault(other[1], []).append(theirs)
            for grouping, sets in parts.items():
                if len(sets) > 1 and len(people ^ set().union(*sets)) == 1:
                    found.add((key, grouping, audit._shown[key]))
    return found

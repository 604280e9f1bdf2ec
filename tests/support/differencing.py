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


def _shown_by_figure(audit: Audit) -> dict[tuple[str, str, str], list[FigureKey]]:
    """The figures shown above 0, by table, period and figure."""
    by_figure: dict[tuple[str, str, str], list[FigureKey]] = {}
    for key, shown in audit._shown.items():
        if shown != ZERO:
            by_figure.setdefault((key[0], key[3], key[4]), []).append(key)
    return by_figure


def overlapping_pairs(audit: Audit) -> set[tuple[FigureKey, FigureKey, Any, Any]]:
    """Pairs of figures in different groupings (same table, period and figure) whose people,
    as last shown, differ by exactly one person while their displays differ: subtracting one
    from the other would point at that person."""
    found: set[tuple[FigureKey, FigureKey, Any, Any]] = set()
    for keys in _shown_by_figure(audit).values():
        people = [audit._truth_when_shown[key].keys() for key in keys]
        for i, a in enumerate(keys):
            for j in range(i + 1, len(keys)):
                b = keys[j]
                if abs(len(people[i]) - len(people[j])) != 1 or a[1] == b[1] \
                        or audit._shown[a] == audit._shown[b]:
                    continue  # one person apart means sizes one apart
                if len(people[i] ^ people[j]) == 1:
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



def memberships(screenings: list[Screening], months: Iterable[str]) -> list[FigureKey]:
    """The prevalence figures one person is truly in, written apart from the code under test:
    their latest screening in each period (by date, then by order given)."""
    keys: list[FigureKey] = []
    dated = [(s.asked_on, n, f"{s.asked_on.year:04d}-{s.asked_on.month:02d}", s)
             for n, s in enumerate(screenings)]
    for period in (LAST_12_MONTHS, *months):
        inside = [t for t in dated if period == LAST_12_MONTHS or t[2] == period]
        if not inside:
            continue
        _, _, month, latest = max(inside, key=lambda t: (t[0], t[1]))
        groups = {"org": "trust", "team": latest.team, "borough": latest.borough,
                  "gender": latest.gender, "age_band": latest.age_band, "month": month}
        said = [figure for figure, yes in (
            ("screened", True), ("current_abuse", latest.current),
            ("past_abuse", latest.past), ("either_abuse", latest.current or latest.past))
            if yes]
        keys += [(PREVALENCE, group_by, group, period, figure)
                 for group_by, group in groups.items() for figure in said]
    return keys


def prevalence_truth(people: Mapping[str, list[Screening]], months: Iterable[str]
                     ) -> dict[FigureKey, dict[str, Any]]:
    """Who is truly in each prevalence figure."""
    truth: dict[FigureKey, dict[str, Any]] = {}
    periods = tuple(months)
    for subject, screenings in people.items():
        reference = person_reference(subject)
        for key in memberships(screenings, periods):
            truth.setdefault(key, {})[reference] = 1
    return truth


class PrevalenceTruth:
    """``prevalence_truth`` kept one person at a time, for a programme that changes one
    person per step."""

    def __init__(self, months: Iterable[str]) -> None:
        self.months = tuple(months)
        self.figures: dict[FigureKey, dict[str, Any]] = {}
        self._in: dict[str, list[FigureKey]] = {}

    def update(self, subject: str, screenings: list[Screening] | None) -> None:
        """A person's screenings now (None: they are gone)."""
        reference = person_reference(subject)
        for key in self._in.pop(subject, []):
            members = self.figures[key]
            del members[reference]
            if not members:
                del self.figures[key]
        if screenings:
            self._in[subject] = memberships(screenings, self.months)
            for key in self._in[subject]:
                self.figures.setdefault(key, {})[reference] = 1


def covering_unions(audit: Audit) -> set[tuple[FigureKey, str, Any]]:
    """Figures that the figures of another grouping cover together (a borough and its teams,
    as last shown) while the people differ by exactly one: adding up the one grouping and
    subtracting the other would point at that person."""
    found: set[tuple[FigureKey, str, Any]] = set()
    for keys in _shown_by_figure(audit).values():
        sets = {key: set(audit._truth_when_shown[key]) for key in keys}
        for key in keys:
            people = sets[key]
            parts: dict[str, list[set[str]]] = {}
            for other in keys:
                theirs = sets[other]
                if other[1] != key[1] and not theirs.isdisjoint(people):
                    parts.setdefault(other[1], []).append(theirs)
            for grouping, covering in parts.items():
                if len(covering) > 1 and len(people ^ set().union(*covering)) == 1:
                    found.add((key, grouping, audit._shown[key]))
    return found

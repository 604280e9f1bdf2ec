"""The release rule: a published figure changes only when at least K people moved in it.

A row is one group of one grouping of one table in one period (team "north-cmht" of
prevalence in 2026-11). For each row the rule remembers who was in each figure when it was last
published, and the activity of the row's people (a fingerprint of their events) when the row was
last released.

- **Row trigger.** A row is reconsidered only once at least K people have had any event in it
  (entered, left, or had a new event) since it was last reconsidered. K alone on each figure is
  not enough: the figure would change exactly when its K-th person arrived, so someone who knows
  when that person was screened would learn which figure they entered (that they disclosed
  abuse). The trigger depends only on activity, which the insider knows anyway, never on what
  an event said.
- **Figure rule.** When a row is reconsidered, each figure whose members (people, or people with
  their values for medians and means) differ from its last published members by at least K
  people takes its current value, if what it shows readers changes with it; every other figure
  keeps its published value (and the people it was shown with). A figure whose
  people are always among another's (matched among referred, current abuse among screened)
  takes new members only while they are all among that figure's published members (or its
  people now, when it moved by K but shows the same), so a published funnel narrows as people
  join.
- **Overlap check.** Two published figures of overlapping groups, or a figure and the figures
  of another grouping that together cover it, must be the same people or differ by K.
- **Held.** A row says it is held once at least half of K people have had events in it since
  it was last looked at: never for one person's event, never for what anyone said.

So every published change between two releases is the work of at least K people, in every
grouping and period, including the step from 0; and whether a figure changes at a release never
turns on one person's answer alone.
"""

from __future__ import annotations

import math
import secrets
import statistics
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.reporting.domain.contributions import METRIC_SCALE
from services.reporting.domain.people import VALUE_MEASURES, WITHIN, RowKey, Standing

Members = dict[str, int]
"""A figure's people (short references) with their values (1 for a count)."""


@dataclass
class RowState:
    """What the rule remembers of one row."""

    activity: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Members] = field(default_factory=dict)
    changed_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The state as stored."""
        return {"activity": self.activity, "figures": self.figures,
                "changed_at": self.changed_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RowState:
        """The state as stored, read back."""
        return cls(dict(data["activity"]), {m: dict(v) for m, v in data["figures"].items()},
                   data.get("changed_at"))

    def forgetting(self, person: str) -> RowState:
        """The row with a person's reference replaced by a token used nowhere else: the rule
        still counts them as moving out when the row is next looked at, but nothing links
        the rows they were in, or their answers, to them."""
        token = f"gone-{secrets.token_hex(8)}"

        def swap(members: dict[str, Any]) -> dict[str, Any]:
            return {token if p == person else p: v for p, v in members.items()}

        return RowState(swap(self.activity), {m: swap(v) for m, v in self.figures.items()},
                        self.changed_at)

    @property
    def empty(self) -> bool:
        """Nobody is in the row and nothing of it was ever published."""
        return not self.activity and not any(self.figures.values())


@dataclass(frozen=True)
class Outcome:
    """A row after a release: its state, and whether it is held (not all current)."""

    state: RowState
    held: bool
    reconsidered: bool


def members_of(people: Iterable[Standing]) -> dict[str, Members]:
    """Each figure's current members: people counted (value 1), or people with their value."""
    figures: dict[str, Members] = {}
    for standing in people:
        for measure, value in standing.measures.items():
            members = figures.setdefault(measure, {})
            if measure in VALUE_MEASURES:
                members[standing.person] = value
            elif value:
                members[standing.person] = 1
    return figures


def moved(before: Mapping[str, Hashable], after: Mapping[str, Hashable]) -> int:
    """How many people differ between two memberships (entered, left or changed value): the
    people of the pairs one has and the other lacks."""
    if before == after:
        return 0
    return len({person for person, _ in before.items() ^ after.items()})


Allowed = Callable[[str, Members], bool]
"""Whether a figure may take new members (the check across groupings and periods)."""

Shows = Callable[[str, Members], Hashable]
"""What a figure shows readers of its members (its display, after disclosure control)."""


def _members(_measure: str, members: Members) -> Hashable:
    return frozenset(members.items())


def _anything(_measure: str, _members: Members) -> bool:
    return True


def _depth(measure: str, within: Mapping[str, str]) -> int:
    depth = 0
    while measure in within:
        measure, depth = within[measure], depth + 1
    return depth


def advance(state: RowState, people: list[Standing], k: int, now: str,
            allowed: Allowed = _anything, within: Mapping[str, str] | None = None,
            shows: Shows = _members) -> Outcome:
    """Apply the rule to one row at a release; a figure ``within`` another takes new members
    only while they are all among that figure's published members, and a figure takes new
    members only when what it ``shows`` changes: otherwise it keeps the people it was last
    shown with, so that its next change is measured from what readers saw (five people out
    and five in leave 20 shown as 20; taken silently, three more later would move the display
    with three people behind it)."""
    within = within or {}
    activity = {s.person: s.activity for s in people}
    active = moved(state.activity, activity)
    if active < k:
        return Outcome(state, held=held(active, k), reconsidered=False)
    current = members_of(people)
    figures = dict(state.figures)
    nesting: dict[str, Members] = {}
    """A figure's people its nested figures are checked against, where not its published
    ones: a figure that moved by K but shows the same keeps its published people, and its
    nested figures may follow its people now (their display still cannot pass its own)."""
    changed = False
    for measure in sorted(current.keys() | figures.keys(), key=lambda m: (_depth(m, within), m)):
        candidate = current.get(measure, {})
        published = figures.get(measure, {})
        if moved(published, candidate) < k:
            continue
        parent = within.get(measure)
        if parent is not None and not candidate.keys() <= nesting.get(
                parent, figures.get(parent, {})).keys():
            continue
        if shows(measure, candidate) == shows(measure, published):
            nesting[measure] = candidate
            continue
        if allowed(measure, candidate):
            figures[measure] = candidate
            changed = True
    figures = {m: v for m, v in figures.items() if v}  # a figure at 0 is a figure not kept
    next_state = RowState(activity, figures, now if changed else state.changed_at)
    return Outcome(next_state, held=False, reconsidered=True)


def held(active: int, k: int) -> bool:
    """Whether a row says it is held: at least half of K people (``active``) have had events
    in it since it was last looked at. It turns on activity alone, and never on one person's
    event: a flag that said which figures a look left behind would tell what the last K people
    said."""
    return active >= max(2, math.ceil(k / 2))


def summary(measure: str, members: Members, meaningful_change: float) -> dict[str, Any]:
    """What a published figure says (unrounded; disclosure control comes after)."""
    values = list(members.values())
    if measure == "days_to_match":
        return {"n": len(values),
                "median": float(statistics.median(values)) if values else None}
    if measure == "swemwbs_change":
        improved = sum(1 for v in values if v / METRIC_SCALE >= meaningful_change)
        return {"n": len(values), "improved": improved,
                "mean": round(statistics.fmean(values) / METRIC_SCALE, 2) if values else None}
    return {"n": len(values)}


Released = dict[str, dict[str, dict[str, list[dict[str, Any]]]]]
"""A release: table -> grouping -> period -> rows as published (unrounded)."""


class Overlaps:
    """Every figure as published, by table and figure, so that a figure about to change can be
    checked against every other grouping and period. Two published figures whose people
    overlap must be the same people or differ by at least K (a team that sits almost wholly in
    one borough), and so must a figure and the figures of another grouping that together cover
    it (a borough and the teams in it), either way round; otherwise subtracting one from the
    other would point at fewer than K people.

    Each published figure's people are kept as a set, filed by period too, so a check builds
    no set it already has, and sizes settle most comparisons before any set is combined."""

    def __init__(self, states: dict[RowKey, RowState], k: int) -> None:
        self.k = k
        self.published: dict[tuple[str, str], dict[RowKey, Members]] = {}
        self._people: dict[tuple[str, str, str], dict[RowKey, frozenset[str]]] = {}
        for key, state in states.items():
            for measure, members in state.figures.items():
                if members:
                    self._publish(key, measure, members)

    def _publish(self, key: RowKey, measure: str, members: Members) -> None:
        self.published.setdefault((key[0], measure), {})[key] = members
        self._people.setdefault((key[0], measure, key[3]), {})[key] = frozenset(members)

    def _withdraw(self, key: RowKey, measure: str) -> None:
        self.published.get((key[0], measure), {}).pop(key, None)
        self._people.get((key[0], measure, key[3]), {}).pop(key, None)

    def _apart(self, people: frozenset[str], parts: list[frozenset[str]]) -> bool:
        """``people`` and the union of ``parts`` are the same people, or at least K apart."""
        largest = max(len(part) for part in parts)
        if largest - len(people) >= self.k or \
                len(people) - sum(len(part) for part in parts) >= self.k:
            return True  # the sizes alone put them K apart
        union = parts[0].union(*parts[1:])
        return not 0 < len(people ^ union) < self.k

    def _pairs(self, key: RowKey, members: Members, figures: dict[RowKey, Members]) -> bool:
        for other, published in figures.items():
            if other == key or abs(len(published) - len(members)) >= self.k:
                continue
            if not published.keys().isdisjoint(members.keys()) \
                    and 0 < moved(published, members) < self.k:
                return False
        return True

    def _unions(self, key: RowKey, measure: str, members: Members) -> bool:
        table, group_by, _, period = key
        mine = frozenset(members)
        same_period = [(other, people) for other, people
                       in self._people.get((table, measure, period), {}).items() if other != key]
        siblings = [people for other, people in same_period if other[1] == group_by]
        covering: dict[str, list[frozenset[str]]] = {}
        for other, people in same_period:
            if other[1] != group_by and not people.isdisjoint(mine):
                covering.setdefault(other[1], []).append(people)
                # this figure, with its grouping's others, covering a figure of another grouping
                parts = [mine, *(s for s in siblings if not s.isdisjoint(people))]
                if len(parts) > 1 and not self._apart(people, parts):
                    return False
        # another grouping's figures covering this one
        return all(len(parts) < 2 or self._apart(mine, parts) for parts in covering.values())

    def check(self, key: RowKey) -> Allowed:
        """The check for one row's figures (accepted figures join the published at once)."""
        def allowed(measure: str, members: Members) -> bool:
            figures = self.published.get((key[0], measure), {})
            if members and not (self._pairs(key, members, figures)
                                and self._unions(key, measure, members)):
                return False
            if members:
                self._publish(key, measure, members)
            else:
                self._withdraw(key, measure)
            return True
        return allowed


def release(states: dict[RowKey, RowState], current: dict[RowKey, list[Standing]], k: int,
            meaningful_change: float, now: str, shows: Shows
            ) -> tuple[dict[RowKey, RowState], Released]:
    """Apply the rule to every row, each figure changing only when what it ``shows`` does:
    the states that changed, and the release."""
    writes: dict[RowKey, RowState] = {}
    released: Released = {}
    overlaps = Overlaps(states, k)
    for key in sorted(current.keys() | states.keys()):
        table, group_by, group, period = key
        before = states.get(key, RowState())
        outcome = advance(before, current.get(key, []), k, now, overlaps.check(key),
                          WITHIN[table], shows)
        if outcome.state != before:
            writes[key] = outcome.state
        figures = {m: summary(m, members, meaningful_change)
                   for m, members in outcome.state.figures.items()}
        released.setdefault(table, {}).setdefault(group_by, {}).setdefault(period, []).append(
            {"group": group, "changed_at": outcome.state.changed_at, "held": outcome.held,
             "figures": figures})
    return writes, released

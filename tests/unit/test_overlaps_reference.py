"""The overlap check, kept fast (sets filed by period, sizes first), against the rule read
literally: the same verdict for every figure on random published memories."""

from __future__ import annotations

import random

import pytest

from services.reporting.domain.people import RowKey
from services.reporting.domain.release_rule import Members, Overlaps, RowState, moved

K = 3
GROUPINGS = {"org": 2, "team": 4, "borough": 3}
PERIODS = ("last-12-months", "2026-10", "2026-11")


def literal(states: dict[RowKey, RowState], k: int, key: RowKey, measure: str,
            members: Members) -> bool:
    """The overlap check as the rule states it, with nothing kept between checks."""
    published = {other: state.figures[measure] for other, state in states.items()
                 if other[0] == key[0] and other != key and state.figures.get(measure)}
    mine = set(members)

    def apart(a: set[str], b: set[str]) -> bool:
        return not 0 < len(a ^ b) < k

    for figure in published.values():  # pairs, in every period
        if set(figure) & mine and 0 < moved(figure, members) < k:
            return False
    same = {other: set(f) for other, f in published.items() if other[3] == key[3]}
    siblings = [people for other, people in same.items() if other[1] == key[1]]
    covering: dict[str, list[set[str]]] = {}
    for other, people in same.items():
        if other[1] == key[1] or not people & mine:
            continue
        covering.setdefault(other[1], []).append(people)
        parts = [mine, *(s for s in siblings if s & people)]
        if len(parts) > 1 and not apart(people, set().union(*parts)):
            return False
    return all(len(parts) < 2 or apart(mine, set().union(*parts))
               for parts in covering.values())


def memory(rng: random.Random, people: list[str]) -> dict[RowKey, RowState]:
    """Published figures of random groupings of ``people``, some of them stale."""
    states: dict[RowKey, RowState] = {}
    for period in PERIODS:
        for grouping, groups in GROUPINGS.items():
            for person in rng.sample(people, rng.randrange(len(people) + 1)):
                group = f"{grouping}-{rng.randrange(groups)}"
                key = ("prevalence", grouping, group, period)
                state = states.setdefault(key, RowState())
                state.figures.setdefault("screened", {})[person] = 1
    return states


def verdicts(seed: int) -> list[tuple[bool, bool]]:
    """The fast and the literal verdict for a random figure of every row, in release order."""
    rng = random.Random(seed)
    people = [f"p{i}" for i in range(rng.randrange(4, 30))]
    states = memory(rng, people)
    overlaps = Overlaps(states, K)
    found = []
    for key in [*sorted(states), ("prevalence", "team", "team-new", PERIODS[0])]:
        members = {p: 1 for p in rng.sample(people, rng.randrange(len(people) + 1))}
        expected = literal(states, K, key, "screened", members)
        found.append((overlaps.check(key)("screened", members), expected))
        if expected:  # accepted figures join the published at once, in both
            if members:
                states.setdefault(key, RowState()).figures["screened"] = members
            elif key in states:
                states[key].figures.pop("screened", None)
    return found


@pytest.mark.parametrize("seed", range(60))
def test_the_fast_check_gives_the_literal_verdict(seed: int) -> None:
    found = verdicts(seed)
    assert len(found) > 1
    assert [fast for fast, _ in found] == [literal_ for _, literal_ in found]


def test_the_seeds_exercise_both_verdicts() -> None:
    answers = {literal_ for seed in range(60) for _, literal_ in verdicts(seed)}
    assert answers == {True, False}

"""The release rule: a published figure changes only after K people moved in it, a row is
looked at again only after K people had any event in it, and no change between two releases
comes down to one person, in any grouping or period."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest

from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules, rows_of, shown_as
from services.reporting.domain.people import (
    COVERAGE,
    ENGAGEMENT,
    PREVALENCE,
    TABLE_GROUPS,
    Fact,
    Remembered,
    RowKey,
    Standing,
    rows_now,
)
from services.reporting.domain.release_rule import RowState, advance, release
from shared.events.mentoring import MentoringEnded
from tests.support.differencing import (
    Audit,
    FigureKey,
    PrevalenceTruth,
    Screening,
    covering_unions,
    displayed_figures,
    overlapping_pairs,
)
from tests.unit.test_reporting_people import Log, match, referral, session

K = 10
POLICY = DisclosurePolicy(k=K)
RULES = OutcomeRules()
SHOWS = shown_as(POLICY, RULES)
TODAY = date(2026, 11, 30)


def person(n: int, *, current: bool = False, activity: str = "a") -> Standing:
    return Standing(f"p{n}", {"org": "trust"}, {"screened": 1, "current_abuse": int(current)},
                    f"{activity}{n}")


def test_nine_people_change_nothing_and_the_tenth_publishes() -> None:
    state = RowState()
    for n in range(1, 10):
        outcome = advance(state, [person(i) for i in range(1, n + 1)], K, f"t{n}")
        assert outcome.state.figures == {}, n
        assert outcome.held is (n >= 5), n  # held once half of K had events, never for one
    outcome = advance(state, [person(i) for i in range(1, 11)], K, "t10")
    assert len(outcome.state.figures["screened"]) == 10
    assert outcome.state.changed_at == "t10"
    assert not outcome.held


def test_the_second_person_in_a_fresh_team_moves_no_figure_from_0() -> None:
    """The review's finding: the release right after the second person moved current abuse
    from 0 to "fewer than 8"."""
    first = advance(RowState(), [person(1, current=True)], K, "t1")
    second = advance(first.state, [person(1, current=True), person(2, current=True)], K, "t2")
    assert second.state.figures == {}


def test_a_figure_waits_for_k_of_its_own_people_after_the_row_is_looked_at_again() -> None:
    people = [person(i, current=i <= 3) for i in range(1, 11)]
    outcome = advance(RowState(), people, K, "t1")
    assert len(outcome.state.figures["screened"]) == 10
    assert outcome.state.figures.get("current_abuse", {}) == {}  # 3 < K: still 0
    assert not outcome.held  # a look raises no flag that would tell what the ten said


def test_the_k_th_discloser_does_not_move_the_figure_at_their_own_step() -> None:
    """K alone would publish current abuse exactly when its 10th person arrived, telling an
    insider who knew when that person was screened that they disclosed: the row trigger
    waits for K people with any event, whatever they said."""
    state = advance(RowState(), [person(i) for i in range(1, 11)], K, "t0").state
    people = [person(i) for i in range(1, 11)]
    for n in range(11, 21):  # ten more people, all disclosing, arriving one at a time
        people.append(person(n, current=True))
        outcome = advance(state, people, K, f"t{n}")
        if n < 20:
            assert outcome.state is state, n
    assert len(outcome.state.figures["current_abuse"]) == 10  # only with the 10th of the row


def test_a_new_event_about_someone_already_counted_is_activity_whatever_it_says() -> None:
    people = [person(i) for i in range(1, 11)]
    state = advance(RowState(), people, K, "t0").state
    rescreened_same = [person(1, activity="b"), *people[1:]]
    rescreened_changed = [person(1, current=True, activity="b"), *people[1:]]
    same = advance(state, rescreened_same, K, "t1")
    changed = advance(state, rescreened_changed, K, "t1")
    assert same.held == changed.held  # the flag does not tell the answer
    assert same.state.figures == changed.state.figures == state.figures


@pytest.mark.parametrize("table", [PREVALENCE, COVERAGE])
def test_what_the_last_person_said_changes_nothing_published_at_the_look(table: str) -> None:
    """The review's case: twenty people published, ten more screened, the last one the target.
    Whether the target disclosed (or was referred to MARAC) must not show in anything the
    release says about the row: figures, held, held_reason, changed_at."""
    def outputs(target_says: bool) -> list[Any]:
        measure = "current_abuse" if table == PREVALENCE else "marac_referrals"
        base = "screened" if table == PREVALENCE else "due"

        def someone(n: int, yes: bool) -> Standing:
            return Standing(f"p{n}", {"org": "trust"}, {base: 1, measure: int(yes)}, f"a{n}")

        people = [someone(n, n < 10) for n in range(20)]
        state = advance(RowState(), people, K, "t0").state
        batch = [*people, *(someone(n, False) for n in range(20, 29)),
                 someone(29, target_says)]
        outcome = advance(state, batch, K, "t1")
        [row] = rows_of(table, "org", [{"group": "trust", "changed_at":
                                        outcome.state.changed_at, "held": outcome.held,
                                        "figures": {m: {"n": len(v)} for m, v in
                                                    outcome.state.figures.items()}}],
                        POLICY, RULES, K)
        return [row]

    assert outputs(True) == outputs(False)


def test_a_mean_waits_for_k_people_with_a_changed_value() -> None:
    def mentee(n: int, change: int) -> Standing:
        return Standing(f"p{n}", {}, {"referred": 1, "swemwbs_change": change}, f"a{n}-{change}")

    people = [mentee(i, 300) for i in range(1, 31)]
    state = advance(RowState(), people, K, "t0").state
    one_more = [*people, mentee(31, -412)]
    assert advance(state, one_more, K, "t1").state is state
    nine_changed = [mentee(i, 500) for i in range(1, 10)] + people[9:]
    assert advance(state, nine_changed, K, "t1").state is state


class Programme:
    """People screened one at a time (some again, some withdrawing), released after each step,
    with the ground truth an insider would know."""

    TEAMS = ("north", "south", "east", "west")
    BOROUGHS = ("camden", "islington", "haringey")
    GENDERS = ("female", "male", "non-binary")
    AGES = ("18-24", "25-34", "35-44", "45-54")

    def __init__(self, seed: int, nested: bool = False) -> None:
        self.rng = random.Random(seed)
        self.nested = nested
        self.people: dict[str, list[Screening]] = {}
        self.states: dict[RowKey, RowState] = {}
        self.audit = Audit()
        self.overlaps: set[Any] = set()
        self.unions: set[Any] = set()
        self._stored: dict[tuple[str, int], list[Fact]] = {}
        self.truth = PrevalenceTruth(("2026-10", "2026-11"))
        self.remembered = Remembered()  # as the worker keeps it from release to release

    def screening(self) -> Screening:
        """A random screening; ``nested``: each team sits almost wholly in one borough, the
        case where subtracting a team from its borough could point at one person."""
        rng = self.rng
        team = rng.choice(self.TEAMS)
        borough = rng.choice(self.BOROUGHS)
        if self.nested and rng.random() < 0.9:
            borough = self.BOROUGHS[self.TEAMS.index(team) % len(self.BOROUGHS)]
        return Screening(team, borough,
                         rng.choice(self.GENDERS), rng.choice(self.AGES),
                         date(2026, rng.choice((10, 11)), rng.randrange(1, 29)),
                         rng.random() < 0.35, rng.random() < 0.3, rng.random() < 0.9)

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.75 or len(self.people) < 12:
            first = [self.screening()]  # drawn before the name, as always
            subject = f"person-{len(self.people)}-{self.rng.random()}"
            self.people[subject] = first
        elif roll < 0.93:
            subject = self.rng.choice(list(self.people))
            self.people[subject].append(self.screening())
        else:
            subject = self.rng.choice(list(self.people))
            del self.people[subject]
        self.truth.update(subject, self.people.get(subject))
        self.release()

    def facts(self) -> list[Fact]:
        facts = []
        for subject, screenings in self.people.items():
            for n, s in enumerate(screenings):
                facts += self._facts_of(subject, n, s)
        return facts

    def _facts_of(self, subject: str, n: int, s: Screening) -> list[Fact]:
        """What one screening stores (the same facts at every release)."""
        key = (subject, n)
        if key not in self._stored:
            dims = {"org": "trust", "team": s.team, "borough": s.borough,
                    "gender": s.gender, "age_band": s.age_band, "referred_by": "unknown"}
            values = {"screened": 1, "current_abuse": int(s.current),
                      "past_abuse": int(s.past), "either_abuse": int(s.current or s.past),
                      "asked_in_private": int(s.private)}
            self._stored[key] = [Fact(n, subject, f"{subject}/{n}", m, v, s.asked_on, dims)
                                 for m, v in values.items()]
        return self._stored[key]

    def release(self) -> None:
        current = rows_now(self.facts(), TODAY, self.remembered)
        writes, released = release(self.states, current, K, RULES.meaningful_change,
                                   f"step-{self.audit.steps}", SHOWS)
        self.states.update(writes)
        displayed: dict[FigureKey, Any] = {}
        for group_by in TABLE_GROUPS[PREVALENCE]:
            for period, rows in released.get(PREVALENCE, {}).get(group_by, {}).items():
                shown = rows_of(PREVALENCE, group_by, rows, POLICY, RULES, K)
                displayed.update(displayed_figures(PREVALENCE, group_by, period, shown))
        changes = len(self.audit.changes)
        self.audit.observe(self.truth.figures, displayed)
        if len(self.audit.changes) > changes:  # what is shown changed: look again
            self.overlaps |= overlapping_pairs(self.audit)
            self.unions |= covering_unions(self.audit)


@pytest.mark.parametrize(("seed", "nested"), [(1, False), (2, False), (3, True), (4, True),
                                              (5, True)])
def test_no_change_between_two_releases_comes_down_to_one_person(seed: int,
                                                                 nested: bool) -> None:
    programme = Programme(seed, nested)
    for _ in range(260):
        programme.step()
    audit = programme.audit
    print(f"seed {seed} nested {nested}: {audit.report()}; pairs of figures in two groupings "
          f"that differ by one person and show different values: {len(programme.overlaps)}; "
          f"figures one person from the figures of another grouping covering them: "
          f"{len(programme.unions)}")
    assert audit.steps == 260
    assert len(audit.changes) > 100  # the figures stay live
    assert audit.attributable == []
    assert min(audit.changes) >= K
    assert programme.overlaps == set()
    assert programme.unions == set()


def test_without_the_overlap_check_a_nested_team_can_be_subtracted_from_its_borough(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The check across groupings is what stops it: K alone is not enough (seed 11 found by
    searching 30 seeds, where 2 showed such a pair within 200 steps; each run is
    deterministic)."""
    from services.reporting.domain import release_rule
    monkeypatch.setattr(release_rule.Overlaps, "check",
                        lambda self, key: release_rule._anything)
    programme = Programme(11, nested=True)
    for _ in range(90):
        programme.step()
    assert programme.overlaps


def test_the_published_funnel_narrows_at_every_release() -> None:
    """People go referral, match, session, ending one event at a time; every release's funnel,
    in every grouping and period, has matched within referred and each stage within matched."""
    rng = random.Random(7)
    log = Log()
    stage: dict[str, int] = {}
    states: dict[RowKey, RowState] = {}
    remembered = Remembered()
    releases = stages_seen = 0
    for step in range(400):
        ongoing = [p for p, s in stage.items() if s < 3]
        if not ongoing or rng.random() < 0.3:
            person = f"mentee-{step}"
            stage[person] = 0
            log.add(person, referral(f"r-{person}", date(2026, 11, 2),
                                     to_org=rng.choice(("partner-a", "partner-b"))))
        else:
            person = rng.choice(ongoing)
            stage[person] += 1
            match_id = f"m-r-{person}"
            if stage[person] == 1:
                log.add(person, match(match_id, f"r-{person}", date(2026, 11, 9)))
            elif stage[person] == 2:
                log.add(person, session(match_id, "attended", date(2026, 11, 16)))
            else:
                log.add(person, MentoringEnded(match_id=match_id, org="partner-a",
                                               ended_on=date(2026, 11, 29),
                                               planned=rng.random() < 0.7))
        writes, released = release(states, rows_now(log.facts, TODAY, remembered), K, 3.0,
                                   f"s{step}", SHOWS)
        states.update(writes)
        releases += 1
        for group_by, periods in released.get(ENGAGEMENT, {}).items():
            for rows in periods.values():
                for row in rows_of(ENGAGEMENT, group_by, rows, POLICY, RULES, K):
                    n = {k: v["value"] or 0 for k, v in row.items()
                         if isinstance(v, dict) and "value" in v and "display" in v}
                    assert n["referred"] >= n["matched"], (step, row)
                    for later in ("attended_session", "planned_endings", "unplanned_endings"):
                        assert n["matched"] >= n[later], (step, later, row)
                    stages_seen += n["attended_session"] > 0
    assert releases == 400
    assert stages_seen > 0  # the funnel was published down to sessions


def test_without_the_union_check_a_borough_less_its_teams_can_point_at_one_person(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs alone are not enough either: a borough and the teams in it, each published at a
    different look, can differ by one person (seed 2 found by searching 8 seeds, where 1 showed
    such a case within 260 steps; each run is deterministic)."""
    from services.reporting.domain import release_rule
    monkeypatch.setattr(release_rule.Overlaps, "_unions", lambda self, *_: True)
    programme = Programme(2, nested=True)
    for _ in range(260):
        programme.step()
    assert programme.unions


def published_with_a_neighbour(target_abused: bool) -> dict[FigureKey, Any]:
    """Team north: twenty people in Camden (twelve disclosing current abuse) and one more, the
    target, in Islington; what every prevalence grouping shows after one release."""
    people = [(f"camden-{i}", "camden", i < 12) for i in range(20)]
    people.append(("target", "islington", target_abused))
    facts = [Fact(n, subject, f"{subject}/0", measure, value, date(2026, 11, 2),
                  {"org": "trust", "team": "north", "borough": borough, "gender": "female",
                   "age_band": "25-34", "referred_by": "unknown"})
             for n, (subject, borough, current) in enumerate(people)
             for measure, value in {"screened": 1, "current_abuse": int(current),
                                    "past_abuse": 0, "either_abuse": int(current),
                                    "asked_in_private": 1}.items()]
    _, released = release({}, rows_now(facts, TODAY), K, RULES.meaningful_change, "s1", SHOWS)
    shown: dict[FigureKey, Any] = {}
    for group_by in TABLE_GROUPS[PREVALENCE]:
        rows = released[PREVALENCE].get(group_by, {}).get("2026-11", [])
        shown.update(displayed_figures(PREVALENCE, group_by, "2026-11",
                                       rows_of(PREVALENCE, group_by, rows, POLICY, RULES, K)))
    return shown


def test_whether_a_borough_is_published_never_turns_on_one_neighbours_answer() -> None:
    """Found by review: with people screened exempt from the overlap check, Camden showed 20
    screened and its current abuse as 0 exactly when the one person outside it disclosed.
    An insider who knows only where the target lives must see the same Camden row whichever
    way the target answered."""
    answered_no, answered_yes = published_with_a_neighbour(False), published_with_a_neighbour(True)
    assert answered_no[(PREVALENCE, "team", "north", "2026-11", "screened")] == "20"
    boroughs = {key for key in answered_no.keys() | answered_yes.keys() if key[1] == "borough"}
    assert {k: answered_no.get(k) for k in boroughs} == {k: answered_yes.get(k) for k in boroughs}


def test_a_change_that_shows_nothing_leaves_the_figure_as_last_shown() -> None:
    """Five people out and five in leave a count of 20 shown as 20: the figure keeps the people
    it was shown with, so a later change is measured from what readers saw. Were it to take the
    new people silently, three people joining after the five went back would move the shown
    figure from 20 to 25, three people from what was last shown."""
    shows = SHOWS
    key: RowKey = (PREVALENCE, "org", "trust", "2026-11")

    def screened(people: list[str], step: str) -> dict[RowKey, list[Standing]]:
        return {key: [Standing(p, {"org": "trust"}, {"screened": 1}, f"{p}-{step}")
                      for p in people]}

    first = [f"p{i}" for i in range(1, 21)]
    states, _ = release({}, screened(first, "0"), K, RULES.meaningful_change, "t0", shows)
    swapped = first[5:] + [f"q{i}" for i in range(1, 6)]  # 10 moved, still shown as 20
    writes, _ = release(states, screened(swapped, "1"), K, RULES.meaningful_change, "t1", shows)
    states |= writes
    assert set(states[key].figures["screened"]) == set(first)
    back = [*first, "r1", "r2", "r3"]  # 13 from the swapped people, 3 from those shown
    writes, released = release(states, screened(back, "2"), K, RULES.meaningful_change, "t2",
                               shows)
    states |= writes
    assert set(states[key].figures["screened"]) == set(first)
    row, = rows_of(PREVALENCE, "org", released[PREVALENCE]["org"]["2026-11"], POLICY, RULES, K)
    assert row["screened"]["display"] == "20"


def test_what_a_figure_shows_is_its_display_and_for_a_mean_all_it_shows() -> None:
    shows = SHOWS
    twenty = {f"p{i}": 1 for i in range(20)}
    assert shows("screened", twenty) == shows("screened", {f"q{i}": 1 for i in range(21)})
    assert shows("screened", twenty) != shows("screened", {f"q{i}": 1 for i in range(23)})
    assert shows("screened", {"p": 1}) == shows("screened", {f"q{i}": 1 for i in range(7)})
    assert shows("screened", {}) != shows("screened", {"p": 1})
    days = {f"p{i}": 10 for i in range(9)}
    assert shows("days_to_match", days) != shows("days_to_match", {p: 11 for p in days})
    assert shows("days_to_match", {"p": 3}) == shows("days_to_match", {"q": 30})  # withheld
    change = {f"p{i}": 300 for i in range(30)}
    assert shows("swemwbs_change", change) != shows("swemwbs_change", {**change, "p0": 400})


def test_a_figure_shown_the_same_does_not_hold_back_the_figures_nested_in_it() -> None:
    """Twenty people screened, none disclosing, all replaced by twenty who all disclose:
    screened still shows 20 and keeps its people, and current abuse, nested in it, takes its
    twenty new people (among screened as they are now) instead of staying at 0 for as long as
    screened shows 20."""
    key: RowKey = (PREVALENCE, "org", "trust", "2026-11")

    def screened(people: list[str], disclosed: bool) -> dict[RowKey, list[Standing]]:
        return {key: [Standing(p, {"org": "trust"},
                               {"screened": 1, "current_abuse": int(disclosed)}, f"{p}-0")
                      for p in people]}

    first = [f"a{i}" for i in range(20)]
    states, _ = release({}, screened(first, False), K, RULES.meaningful_change, "t0", SHOWS)
    assert "current_abuse" not in states[key].figures
    replaced = [f"b{i}" for i in range(20)]
    writes, released = release(states, screened(replaced, True), K, RULES.meaningful_change,
                               "t1", SHOWS)
    state = writes[key]
    assert set(state.figures["screened"]) == set(first)  # shown as 20 either way
    assert set(state.figures["current_abuse"]) == set(replaced)
    row, = rows_of(PREVALENCE, "org", released[PREVALENCE]["org"]["2026-11"], POLICY, RULES, K)
    assert (row["screened"]["display"], row["current_abuse"]["display"]) == ("20", "20")

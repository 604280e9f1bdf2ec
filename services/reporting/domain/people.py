"""Who is in each figure: distinct people per table, grouping, group and period.

Every figure counts people, never events. In each table and period a person stands once, in
the cell of one representative record:
- prevalence: their most recent screening in the period;
- coverage: their most recent ``enquiry-due`` (else their most recent enquiry) in the period;
  "screened" counts people due who were screened in the period, over people due; declined, not
  safe to ask and not asked (with its reason) by their most recent enquiry; whether being asked
  was all right by their most recent answer;
- engagement: their most recent mentoring episode (referral) whose referral falls in the period,
  under the organisation that received it; every stage of the funnel is of that episode, so
  referred >= matched >= attended a session, and a SWEMWBS change pairs intake and exit within
  the episode's match.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache, partial
from itertools import chain

from services.reporting.domain.contributions import (
    COMPONENT_PREFIX,
    DECLINE_MEASURES,
    DIMENSIONS,
    FOLLOW_UP_MEASURES,
    NOT_ASKED_MEASURES,
    OFFER_MEASURES,
    UNKNOWN,
)

PREVALENCE, COVERAGE, ENGAGEMENT = "prevalence", "coverage", "engagement"
FEASIBILITY, OFFERS = "feasibility", "offers"
TABLES: tuple[str, ...] = (PREVALENCE, COVERAGE, ENGAGEMENT, FEASIBILITY, OFFERS)
GROUPS: tuple[str, ...] = ("org", "team", "borough", "gender", "age_band", "month")
TABLE_GROUPS: dict[str, tuple[str, ...]] = {
    PREVALENCE: GROUPS, COVERAGE: GROUPS, ENGAGEMENT: (*GROUPS, "referred_by"),
    FEASIBILITY: ("org", "gender", "age_band", "month"),
    OFFERS: ("org", "team", "gender", "age_band", "month")}
LAST_12_MONTHS = "last-12-months"
RowKey = tuple[str, str, str, str]
"""Table, grouping, group and period of one row."""
VALUE_MEASURES: frozenset[str] = frozenset({"days_to_match", "swemwbs_change"})
"""Measures whose members carry a value (medians, means); every other measure is a count."""

class _Nesting(Mapping[str, str]):
    """Figures nested in others: a fixed map, and every measure with ``prefix`` nested in
    ``parent`` (the configured components, found by their prefix)."""

    def __init__(self, fixed: dict[str, str], prefix: str, parent: str) -> None:
        self._fixed, self._prefix, self._parent = fixed, prefix, parent

    def __getitem__(self, measure: str) -> str:
        if measure in self._fixed:
            return self._fixed[measure]
        if measure.startswith(self._prefix):
            return self._parent
        raise KeyError(measure)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fixed)

    def __len__(self) -> int:
        return len(self._fixed)

    def __contains__(self, measure: object) -> bool:
        return isinstance(measure, str) and (
            measure in self._fixed or measure.startswith(self._prefix))


WITHIN: dict[str, Mapping[str, str]] = {
    PREVALENCE: {m: "screened" for m in ("current_abuse", "past_abuse", "either_abuse",
                                         "asked_in_private")},
    COVERAGE: {"screened": "due", "asked_in_private": "screened",
               **dict.fromkeys(NOT_ASKED_MEASURES, "not_asked"),
               **dict.fromkeys(("found_acceptable", "acceptable_unsure", "not_acceptable",
                                "comfort_rated"), "acceptability_answered"),
               "comfortable": "comfort_rated"},
    ENGAGEMENT: _Nesting({
        "matched": "referred",
        **{m: "matched" for m in ("waitlisted", "attended_session", "missed_session",
                                  "planned_endings", "unplanned_endings", "active_mentees",
                                  "days_to_match", "swemwbs_change", "feedback_given",
                                  "adverse_event", *FOLLOW_UP_MEASURES.values())},
        "components_recorded": "attended_session",
        "helped_a_lot": "feedback_given", "made_worse": "feedback_given",
        "serious_adverse_event": "adverse_event", "related_adverse_event": "adverse_event",
    }, COMPONENT_PREFIX, "components_recorded"),
    FEASIBILITY: {"disclosed": "asked", "matched": "referred",
                  **{m: "matched" for m in ("attended_session", "planned_ending",
                                            *FOLLOW_UP_MEASURES.values())}},
    OFFERS: {**dict.fromkeys(OFFER_MEASURES, "offered"),
             **dict.fromkeys(DECLINE_MEASURES, "offer_declined")},
}
"""Figures whose people are always among another figure's (a stage of the funnel among the
people referred): published, they stay among them, so a table never shows more people matched
than referred."""

SCREENING = ("screened", "current_abuse", "past_abuse", "either_abuse", "asked_in_private")
ENQUIRY_OUTCOMES = frozenset({"screened", "declined", "not_safe_to_ask", "not_asked"})
ACCEPTABILITY = ("acceptability_answered", "found_acceptable", "acceptable_unsure",
                 "not_acceptable", "comfort_rated", "comfortable")
COVERAGE_KINDS = ENQUIRY_OUTCOMES | {"due", "marac_referrals", "acceptability_answered"}
ENDINGS = frozenset({"planned_ending", "unplanned_ending"})


@dataclass(frozen=True)
class Fact:
    """One stored contribution, as the release reads it."""

    seq: int
    subject: str
    source_event: str
    measure: str
    value: int
    occurred_on: date
    dims: dict[str, str]
    episode: str | None = None
    match_id: str | None = None

    @property
    def month(self) -> str:
        """The calendar month of the event's own date."""
        return month_of(self.occurred_on)


@dataclass
class Standing:
    """One person in one table and period: their cell and what they count towards."""

    person: str
    dims: dict[str, str]
    measures: dict[str, int]
    activity: str
    rows: dict[str, tuple[RowKey, ...]] = field(default_factory=dict, compare=False,
                                                 repr=False)
    """The rows the standing is in, by period, once ``rows_now`` has grouped it."""


@dataclass
class Event:
    """The contributions of one event, gathered."""

    subject: str
    source_event: str
    occurred_on: date
    seq: int
    dims: dict[str, str]
    measures: dict[str, int] = field(default_factory=dict)
    episode: str | None = None
    match_id: str | None = None
    order: tuple[date, int] = field(init=False)
    """Most recent last: by the event's own date, then by arrival."""
    month: str = field(init=False)
    """The calendar month of the event's own date."""
    content: tuple[object, ...] = field(init=False, default=())
    """Everything a standing can read of the event, set once it is gathered (``gathered``)."""

    def __post_init__(self) -> None:
        self.order = (self.occurred_on, self.seq)
        self.month = month_of(self.occurred_on)

    def gathered(self) -> Event:
        """The event with all its contributions in: its ``content`` is final (names and
        values flattened, one tuple each rather than a tuple a pair, since a worker keeps it
        for every event between releases)."""
        self.content = (self.subject, self.source_event, self.occurred_on, self.seq,
                        tuple(chain.from_iterable(self.dims.items())),
                        tuple(chain.from_iterable(self.measures.items())), self.episode,
                        self.match_id)
        return self


@lru_cache(maxsize=1 << 12)
def month_of(day: date) -> str:
    """The calendar month (``YYYY-MM``) of a date."""
    return f"{day.year:04d}-{day.month:02d}"


@lru_cache(maxsize=1 << 16)
def person_reference(subject: str) -> str:
    """The short reference the release rule keeps for a person (never the subject id)."""
    return hashlib.sha256(subject.encode()).hexdigest()[:20]


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


def events_of(facts: Iterable[Fact]) -> list[Event]:
    """The stored contributions gathered into the events they came from."""
    gathered: dict[str, Event] = {}
    for fact in facts:
        event = gathered.get(fact.source_event)
        if event is None:
            event = gathered[fact.source_event] = Event(
                fact.subject, fact.source_event, fact.occurred_on, fact.seq, dict(fact.dims),
                episode=fact.episode, match_id=fact.match_id)
        event.measures[fact.measure] = fact.value
    return [event.gathered() for event in gathered.values()]


def _activity(events: Iterable[Event]) -> str:
    """A fingerprint of everything a person did in a table and period: any new event about
    them changes it, whatever the event says."""
    keys = sorted(e.source_event for e in events)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def _filled(first: Event, others: Iterable[Event], month: str) -> dict[str, str]:
    """The representative record's cell, with dimensions it does not know taken from the
    person's other records (most recent first)."""
    dims = dict(first.dims)
    rest = [e for e in others if e is not first]  # the first has nothing more to give
    for event in sorted(rest, key=lambda e: e.order, reverse=True):
        for name in DIMENSIONS:
            if dims.get(name, UNKNOWN) == UNKNOWN and event.dims.get(name, UNKNOWN) != UNKNOWN:
                dims[name] = event.dims[name]
    dims["month"] = month
    return dims


def _by_person(events: Iterable[Event]) -> dict[str, list[Event]]:
    people: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        people[event.subject].append(event)
    return people


class Remembered:
    """Standings already worked out, by everything each was worked out from (the table, the
    person and the whole of their events in the period): a person whose events are the same
    in two periods (all in one month of the last 12), or the same as at the last release, is
    worked out once. It keeps one release's standings and no more, so a person who leaves
    the read model (withdrawal, erasure) is gone from it after the next release, or at once
    when another worker made that release (``forget``)."""

    def __init__(self) -> None:
        self._last: dict[tuple[object, ...], Standing] = {}
        self._now: dict[tuple[object, ...], Standing] = {}

    def standing(self, key: tuple[object, ...], work: Callable[[], Standing]) -> Standing:
        """The standing for ``key``, worked out by ``work`` unless already known."""
        known = self._now.get(key)
        if known is None:
            known = self._last.get(key)
            self._now[key] = known = work() if known is None else known
        return known

    def released(self) -> None:
        """A release is done: forget the standings it did not use."""
        self._last, self._now = self._now, {}

    def forget(self) -> None:
        """Forget every standing (another worker released: who left since is not known)."""
        self._last, self._now = {}, {}


def _key(table: str, subject: str, events: Iterable[Event]) -> tuple[object, ...]:
    """What a standing is worked out from: the table, the person and their events."""
    return (table, subject, *(e.content for e in events))


Periods = Mapping[str, set[str] | None]
"""Periods by name, each with the months it covers (None: all time)."""


def _in(months: set[str] | None, events: list[Event]) -> list[Event]:
    """The events in the months of a period."""
    return events if months is None else [e for e in events if e.month in months]


def prevalence(events: list[Event], periods: Periods, remembered: Remembered
               ) -> Iterator[tuple[str, Standing]]:
    """Each person screened in each period, by their most recent screening in it."""
    screenings = [e for e in events if "screened" in e.measures]
    for period, months in periods.items():
        for subject, own in _by_person(_in(months, screenings)).items():
            yield period, remembered.standing(_key(PREVALENCE, subject, own),
                                              partial(_screened, subject, own))


def _screened(subject: str, own: list[Event]) -> Standing:
    """One person's standing in prevalence, from their screenings in the period."""
    latest = max(own, key=lambda e: e.order)
    return Standing(person_reference(subject), _filled(latest, own, latest.month),
                    {m: latest.measures.get(m, 0) for m in SCREENING}, _activity(own))


def coverage(events: list[Event], periods: Periods, remembered: Remembered
             ) -> Iterator[tuple[str, Standing]]:
    """Each person due, asked, declined, not safe to ask or referred to MARAC in each
    period."""
    relevant = [e for e in events if not e.measures.keys().isdisjoint(COVERAGE_KINDS)]
    for period, months in periods.items():
        for subject, own in _by_person(_in(months, relevant)).items():
            yield period, remembered.standing(_key(COVERAGE, subject, own),
                                              partial(_covered, subject, own))


def _covered(subject: str, own: list[Event]) -> Standing:
    """One person's standing in coverage, from their events in the period."""
    dues = [e for e in own if "due" in e.measures]
    enquiries = [e for e in own if not e.measures.keys().isdisjoint(ENQUIRY_OUTCOMES)]
    screenings = [e for e in enquiries if "screened" in e.measures]
    latest_enquiry = max(enquiries, key=lambda e: e.order) if enquiries else None
    anchor = max(dues or enquiries or own, key=lambda e: e.order)
    screened = bool(dues and screenings)
    latest_screening = max(screenings, key=lambda e: e.order) if screenings else None
    measures = {
        "due": int(bool(dues)),
        "screened": int(screened),
        "declined": int(latest_enquiry is not None and "declined" in latest_enquiry.measures),
        "not_safe_to_ask": int(latest_enquiry is not None
                               and "not_safe_to_ask" in latest_enquiry.measures),
        "asked_in_private": int(screened and latest_screening is not None
                                and latest_screening.measures.get("asked_in_private", 0)),
        "marac_referrals": int(any("marac_referrals" in e.measures for e in own)),
        "not_asked": int(latest_enquiry is not None and "not_asked" in latest_enquiry.measures),
    }
    for reason in NOT_ASKED_MEASURES:
        measures[reason] = int(latest_enquiry is not None and reason in latest_enquiry.measures)
    answers = [e for e in own if "acceptability_answered" in e.measures]
    if answers:  # the person's most recent answer in the period
        answer = max(answers, key=lambda e: e.order).measures
        measures.update({m: answer.get(m, 0) for m in ACCEPTABILITY})
    return Standing(person_reference(subject), _filled(anchor, own, anchor.month), measures,
                    _activity(own))


@dataclass(frozen=True)
class _Episode:
    """One mentoring episode: a referral and what followed it."""

    subject: str
    events: list[Event]
    start: Event
    """The referral, or failing that the earliest event seen of the episode."""
    counted: frozenset[str]
    """The measures some event of the episode counts towards."""

    @classmethod
    def of(cls, subject: str, events: list[Event]) -> _Episode:
        """The episode of ``events``, all gathered."""
        referrals = [e for e in events if "referred" in e.measures]
        return cls(subject, events, min(referrals or events, key=lambda e: e.order),
                   frozenset(m for e in events for m, value in e.measures.items() if value))

    def has(self, measure: str) -> bool:
        """Whether any event of the episode counts towards ``measure``."""
        return measure in self.counted

    def latest(self, measure: str) -> int | None:
        """The most recent value of ``measure`` in the episode."""
        values = [e for e in self.events if measure in e.measures]
        return max(values, key=lambda e: e.order).measures[measure] if values else None


def _episodes(events: list[Event]) -> list[_Episode]:
    """Mentoring events grouped by referral; sessions, outcomes and endings join through
    their match."""
    episodes: dict[str, tuple[str, list[Event]]] = {}
    match_episode: dict[str, str] = {}
    for event in sorted(events, key=lambda e: e.order):
        if event.episode is not None:
            episodes.setdefault(event.episode, (event.subject, []))[1].append(event)
            if event.match_id is not None:
                match_episode[event.match_id] = event.episode
    for event in events:
        if event.episode is None and event.match_id is not None:
            key = match_episode.get(event.match_id, f"match:{event.match_id}")
            episodes.setdefault(key, (event.subject, []))[1].append(event)
    return [_Episode.of(subject, own) for subject, own in episodes.values()]


def engagement(events: list[Event], periods: Periods, remembered: Remembered
               ) -> Iterator[tuple[str, Standing]]:
    """Each person whose referral falls in each period, by their most recent such episode."""
    episodes = _episodes([e for e in events if e.episode is not None or e.match_id is not None])
    for period, months in periods.items():
        chosen: dict[str, list[_Episode]] = defaultdict(list)
        for episode in episodes:
            if months is None or episode.start.month in months:
                chosen[episode.subject].append(episode)
        for subject, own in chosen.items():
            # an episode's events are one run in its key: episodes are told apart by them
            key = (ENGAGEMENT, subject, *(tuple(e.content for e in ep.events) for ep in own))
            yield period, remembered.standing(key, partial(_engaged, subject, own))


def _engaged(subject: str, own: list[_Episode]) -> Standing:
    """One person's standing in engagement, from their episodes whose referral falls in the
    period."""
    episode = max(own, key=lambda ep: ep.start.order)
    start = episode.start
    matched = episode.has("matched")
    endings = [e for e in episode.events if e.measures.keys() & ENDINGS]
    ending = max(endings, key=lambda e: e.order) if endings else None
    planned = ending is not None and "planned_ending" in ending.measures
    measures = {
        "referred": 1, "matched": int(matched),
        "waitlisted": int(episode.has("waitlisted")),
        "attended_session": int(episode.has("session_attended")),
        "missed_session": int(episode.has("session_missed")),
        "planned_endings": int(planned),
        "unplanned_endings": int(ending is not None and not planned),
        "active_mentees": int(matched and ending is None),
    }
    measures.update(_study_measures(episode))
    days = episode.latest("days_to_match")
    if matched and days is not None:
        measures["days_to_match"] = days
    intake, leaving = episode.latest("swemwbs_intake"), episode.latest("swemwbs_exit")
    if intake is not None and leaving is not None:
        measures["swemwbs_change"] = leaving - intake
    every = [e for ep in own for e in ep.events]
    return Standing(person_reference(subject), _filled(start, every, start.month), measures,
                    _activity(every))


STUDY_COUNTS: tuple[str, ...] = (
    "components_recorded", "feedback_given", "helped_a_lot", "made_worse", "adverse_event",
    "serious_adverse_event", "related_adverse_event", *FOLLOW_UP_MEASURES.values())
"""What the study counts of an episode beyond the funnel: components, feedback, adverse
events, follow-ups."""


def _study_measures(episode: _Episode) -> dict[str, int]:
    """Whether the episode's sessions covered each component, and whether it had feedback,
    adverse events and each follow-up; feedback is by its most recent answer."""
    measures = {m: int(episode.has(m)) for m in STUDY_COUNTS}
    for worded in ("helped_a_lot", "made_worse"):
        latest = episode.latest(worded)
        measures[worded] = int(bool(latest)) if latest is not None else 0
    measures.update({m: 1 for m in episode.counted if m.startswith(COMPONENT_PREFIX)})
    return measures


FEASIBILITY_STAGES: tuple[str, ...] = (
    "due", "asked", "disclosed", "consented", "referred", "matched", "attended_session",
    "planned_ending", *FOLLOW_UP_MEASURES.values())
"""The stages of the feasibility funnel a person reaches, in order."""
FEASIBILITY_LOSSES: tuple[str, ...] = ("not_asked", "declined", "unplanned_ending")
"""Where people are known to have left the funnel, and why."""
_ENTRY_KINDS = frozenset({"due", "screened", "declined", "not_safe_to_ask", "not_asked",
                          "referred"})


def feasibility(events: list[Event], periods: Periods, remembered: Remembered
                ) -> Iterator[tuple[str, Standing]]:
    """Each person in the period they entered the programme (their first enquiry due,
    enquiry or referral), with every stage they reached since."""
    for subject, own in _by_person(events).items():
        entries = [e for e in own if not e.measures.keys().isdisjoint(_ENTRY_KINDS)]
        if not entries:  # an offer, or someone with only mentoring's later records
            continue
        entry = min(entries, key=lambda e: e.order)
        for period, months in periods.items():
            if months is None or entry.month in months:
                key = (FEASIBILITY, subject, *(e.content for e in own))
                yield period, remembered.standing(key, partial(_reached, subject, own, entry))


def _reached(subject: str, own: list[Event], entry: Event) -> Standing:
    """One person's standing in the feasibility funnel: the stages they reached."""
    counted = {m for e in own for m, value in e.measures.items() if value}
    enquiries = [e for e in own if not e.measures.keys().isdisjoint(ENQUIRY_OUTCOMES)]
    latest = max(enquiries, key=lambda e: e.order) if enquiries else None
    measures = {
        "due": int("due" in counted),
        "asked": int(bool(counted & {"screened", "declined"})),
        "disclosed": int("either_abuse" in counted),
        "consented": int("consented" in counted),
        "referred": int("referred" in counted),
        "matched": int("matched" in counted),
        "attended_session": int("session_attended" in counted),
        "planned_ending": int("planned_ending" in counted),
        **{m: int(m in counted) for m in FOLLOW_UP_MEASURES.values()},
        "not_asked": int(latest is not None and "not_asked" in latest.measures),
        "declined": int(latest is not None and "declined" in latest.measures),
        "unplanned_ending": int("unplanned_ending" in counted),
    }
    return Standing(person_reference(subject), _filled(entry, own, entry.month), measures,
                    _activity(own))


def offers(events: list[Event], periods: Periods, remembered: Remembered
           ) -> Iterator[tuple[str, Standing]]:
    """Each offer of mentoring in the period it was made: one person offered, unlinked to
    anyone else (nothing identifies them)."""
    made = [e for e in events if "offered" in e.measures]
    for period, months in periods.items():
        for subject, own in _by_person(_in(months, made)).items():
            yield period, remembered.standing(_key(OFFERS, subject, own),
                                              partial(_offered, subject, own))


def _offered(subject: str, own: list[Event]) -> Standing:
    """One offer's standing: what the person said, and why they declined."""
    offer = max(own, key=lambda e: e.order)
    measures = {m: offer.measures.get(m, 0)
                for m in ("offered", *OFFER_MEASURES, *DECLINE_MEASURES)}
    return Standing(person_reference(subject), _filled(offer, own, offer.month), measures,
                    _activity(own))


STANDINGS = {PREVALENCE: prevalence, COVERAGE: coverage, ENGAGEMENT: engagement,
             FEASIBILITY: feasibility, OFFERS: offers}


def standings(events: list[Event], table: str, months: set[str] | None) -> list[Standing]:
    """Everyone in ``table`` for the period covering ``months`` (None: all time)."""
    return [standing for _, standing in STANDINGS[table](events, {"": months}, Remembered())]


def rows_now(stored: Iterable[Fact], today: date, remembered: Remembered | None = None
             ) -> dict[RowKey, list[Standing]]:
    """Everyone in every row of every table, grouping and period (the last 12 months and each
    month with data); with ``remembered`` (kept from release to release), only the people whose
    events changed since the last release are worked out again. ``stored`` is read once, so
    it can stream."""
    remembered = remembered or Remembered()
    events = events_of(stored)
    months = sorted({e.month for e in events})
    periods: dict[str, set[str] | None] = {LAST_12_MONTHS: months_in(LAST_12_MONTHS, today)}
    periods.update({m: {m} for m in months})
    rows: defaultdict[RowKey, list[Standing]] = defaultdict(list)
    shared: dict[RowKey, RowKey] = {}  # one tuple per row, however many standings are in it
    for table in TABLES:
        groups = TABLE_GROUPS[table]
        for period, standing in STANDINGS[table](events, periods, remembered):
            keys = standing.rows.get(period)
            if keys is None:
                dims = standing.dims
                keys = standing.rows[period] = tuple(
                    shared.setdefault(key, key) for key in
                    ((table, group_by, dims.get(group_by, UNKNOWN), period) for group_by in groups))
            for key in keys:
                rows[key].append(standing)
    remembered.released()
    return dict(rows)

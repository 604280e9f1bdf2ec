"""The study's own data: research-consented people only, under a study-specific pseudonym.

Research (taking part in the study's data collection) is consented apart from the service
(Health Research Authority guidance), so the research extract and the research figures read
only the people whose ``research`` consent is granted. The extract is person level for the
study's researchers at the sponsoring Trust: each person under a pseudonym keyed for this study
(never the subject reference, and not linkable to it without the study key), with the cells
of the feasibility funnel and of their most recent mentoring episode, and how many of their
sessions covered each of the intervention's components. No team, borough, date or free text
goes into it: organisation, gender, age band and the month they entered are its only
groupings. The research figures are the same people's feasibility and engagement tables,
each figure rounded and suppressed as every figure is, and the share of sessions that
covered each component.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from services.reporting.domain.contributions import COMPONENT_PREFIX, METRIC_SCALE, UNKNOWN
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules, rows_of, shown_count, shown_rate
from services.reporting.domain.people import (
    ENGAGEMENT,
    FEASIBILITY,
    FEASIBILITY_LOSSES,
    FEASIBILITY_STAGES,
    VALUE_MEASURES,
    Fact,
    Standing,
    events_of,
    person_reference,
    standings,
)
from services.reporting.domain.release_rule import members_of, summary

RESEARCH_TABLES: tuple[str, ...] = (FEASIBILITY, ENGAGEMENT)
RESEARCH_GROUPS: tuple[str, ...] = ("org", "gender", "age_band", "month")
"""The only groupings of the research data (a team or borough narrows people down)."""
EXTRACT_GROUPS: tuple[str, ...] = ("org", "gender", "age_band")
"""What an extract row says of who the person is (with the quarter they entered: a month
narrows people down too far for person-level rows)."""
PSEUDONYM_PREFIX = "S-"


def quarter_of(month: str) -> str:
    """``2026-11`` -> ``2026-Q4`` (unknown stays unknown)."""
    if len(month) != 7 or month[4] != "-":
        return month
    return f"{month[:4]}-Q{(int(month[5:]) - 1) // 3 + 1}"


def study_pseudonym(key: bytes, subject_id: str) -> str:
    """The person's pseudonym in this study: keyed, so only the study key links it back."""
    digest = hmac.new(key, f"study-pseudonym:{subject_id}".encode(), hashlib.sha256)
    return PSEUDONYM_PREFIX + digest.hexdigest()[:24]


def latest_matches(facts: Iterable[Fact]) -> dict[str, set[str]]:
    """Per person (subject): the matches of their most recent mentoring episode (the one
    engagement describes), by its referral's date and arrival."""
    starts: dict[str, tuple[tuple[date, int], str]] = {}
    matches: defaultdict[str, set[str]] = defaultdict(set)
    for fact in facts:
        if fact.episode is None:
            continue
        if fact.match_id is not None:
            matches[fact.episode].add(fact.match_id)
        if fact.measure == "referred":
            start = ((fact.occurred_on, fact.seq), fact.episode)
            if fact.subject not in starts or start > starts[fact.subject]:
                starts[fact.subject] = start
    return {subject: matches[episode] for subject, (_, episode) in starts.items()}


def sessions_covering(facts: Iterable[Fact]) -> dict[str, dict[str, int]]:
    """Per person (subject): the sessions of their most recent episode with components
    recorded (``sessions``), and how many of them covered each component (by code)."""
    facts = list(facts)
    latest = latest_matches(facts)
    counted: defaultdict[str, defaultdict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for fact in facts:
        if fact.match_id not in latest.get(fact.subject, ()):
            continue
        if fact.measure == "components_recorded":
            counted[fact.subject]["sessions"].add(fact.source_event)
        elif fact.measure.startswith(COMPONENT_PREFIX):
            counted[fact.subject][fact.measure[len(COMPONENT_PREFIX):]].add(fact.source_event)
    return {subject: {name: len(events) for name, events in by.items()}
            for subject, by in counted.items()}


def _cell(measure: str, value: int) -> int | float:
    return value / METRIC_SCALE if measure == "swemwbs_change" else value


def extract_rows(facts: list[Fact], key: bytes) -> list[dict[str, Any]]:
    """One row per research-consented person in ``facts``: their pseudonym, organisation,
    gender, age band and month of entry, each stage of the funnel they reached, their most
    recent episode's cells, and their sessions covering each component any session covered
    (every row has the same columns)."""
    events = events_of(facts)
    subjects = sorted({f.subject for f in facts if f.subject})
    by_reference = {person_reference(s): s for s in subjects}
    reached = {s.person: s for s in standings(events, FEASIBILITY, None)}
    engaged = {s.person: s for s in standings(events, ENGAGEMENT, None)}
    sessions = sessions_covering(facts)
    codes = sorted({name for counts in sessions.values() for name in counts} - {"sessions"})
    cells = sorted({m for s in engaged.values() for m in s.measures})
    rows = []
    for reference, subject in sorted(by_reference.items(),
                                     key=lambda item: study_pseudonym(key, item[1])):
        entry, episode = reached.get(reference), engaged.get(reference)
        if entry is None and episode is None:
            continue
        first: Standing = entry or episode  # type: ignore[assignment]
        row: dict[str, Any] = {"study_id": study_pseudonym(key, subject),
                               **{g: first.dims.get(g, UNKNOWN) for g in EXTRACT_GROUPS},
                               "entry_quarter": quarter_of(first.dims.get("month", UNKNOWN))}
        row.update({stage: (entry.measures.get(stage, 0) if entry else 0)
                    for stage in (*FEASIBILITY_STAGES, *FEASIBILITY_LOSSES)})
        measures = episode.measures if episode else {}
        row.update({f"episode_{m}": _cell(m, measures[m]) if m in measures
                    else (None if m in VALUE_MEASURES else 0) for m in cells})
        own = sessions.get(subject, {})
        row["sessions_with_components"] = own.get("sessions", 0)
        row.update({f"sessions_covering_{code}": own.get(code, 0) for code in codes})
        rows.append(row)
    return rows


def research_figures(facts: list[Fact], table: str, group_by: str, policy: DisclosurePolicy,
                     rules: OutcomeRules) -> list[dict[str, Any]]:
    """``table`` (feasibility or engagement) of the research-consented people in ``facts``,
    all time, by ``group_by``, each figure under disclosure control; engagement rows also
    give the share of sessions (with components recorded) that covered each component."""
    grouped: defaultdict[str, list[Standing]] = defaultdict(list)
    for standing in standings(events_of(facts), table, None):
        grouped[standing.dims.get(group_by, UNKNOWN)].append(standing)
    published = [{"group": group, "changed_at": None, "held": False,
                  "figures": {m: summary(m, members, rules.meaningful_change)
                              for m, members in members_of(people).items()}}
                 for group, people in grouped.items()]
    rows = rows_of(table, group_by, published, policy, rules, policy.k)
    if table != ENGAGEMENT:
        return rows
    sessions = sessions_covering(facts)
    group_of = {person: group for group, people in grouped.items() for person in
                (p.person for p in people)}
    totals: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for subject, counts in sessions.items():
        group = group_of.get(person_reference(subject))
        if group is not None:
            for name, n in counts.items():
                totals[group][name] += n
    for row in rows:
        counts = totals.get(str(row[group_by]), defaultdict(int))
        if len(grouped[str(row[group_by])]) <= policy.suppress_upto:
            # a few people's sessions would be a few people's answers: withheld with them
            row["session_components"] = {}
            row["sessions_with_components"] = {"value": None, "display": "withheld",
                                               "suppressed": True}
            continue
        row["session_components"] = {
            name: shown_rate(n, counts["sessions"], policy)
            for name, n in sorted(counts.items()) if name != "sessions"}
        row["sessions_with_components"] = shown_count(counts["sessions"], policy)
    return rows

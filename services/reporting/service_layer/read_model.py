"""Keeping the read model: contributions in, releases out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from sys import intern
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from services.reporting.adapters.tables import (
    contributions,
    evaluation_consents,
    lock_rule_memory,
    published_rows,
    releases,
    research_consents,
    team_training,
)
from services.reporting.domain.contributions import (
    DIMENSIONS,
    anonymous_subject,
    contributions_of,
)
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import (
    WHO_COUNTS,
    OutcomeRules,
    rows_of,
    shown_as,
    staff_trained,
)
from services.reporting.domain.people import (
    COVERAGE,
    Fact,
    Remembered,
    RowKey,
    person_reference,
    rows_now,
)
from services.reporting.domain.release_rule import Released, RowState, release
from services.reporting.service_layer.cascade import excluded
from shared.db import Database, UnitOfWork, upsert, utcnow
from shared.events.envelope import CloudEvent, EventPayload
from shared.events.screening import TeamTrainingRecorded
from shared.kafka.consumer import Handler, ManyHandler

COUNTED_EVENTS: tuple[str, ...] = (
    "screening-completed", "screening-declined", "screening-not-safe", "enquiry-not-asked",
    "enquiry-acceptability-recorded", "enquiry-due",
    "marac-referral-required", "mentee-referred", "match-made", "session-logged",
    "mentoring-ended", "outcome-recorded", "session-components-recorded",
    "mentee-feedback-given", "adverse-event-recorded", "mentoring-offered",
    "follow-up-recorded")
"""The business events that contribute to the figures."""
FACTS_PER_READ = 5000
"""Contributions a release reads from the database at a time."""


def apply_event(uow: UnitOfWork, event: CloudEvent, payload: EventPayload) -> None:
    """Store what an event contributes, keyed by the person it is about (unless they are out)."""
    apply_events(uow, [(event, payload)])


def apply_events(uow: UnitOfWork, items: Sequence[tuple[CloudEvent, EventPayload]]) -> None:
    """``apply_event`` for several events in one go: one look at who is out, one insert."""
    out = excluded(uow, {event.subject for event, _ in items if event.subject is not None})
    rows = [dict(vars(c), month=c.month, subject_id=subject,  # flat: no deep copy
                 anonymous=event.subject is None, source_event=event.dedup_key)
            for event, payload in items
            if (subject := event.subject or anonymous_subject(payload)) is not None
            and subject not in out for c in contributions_of(payload)]
    if rows:
        uow.session.execute(contributions.insert(), rows)


def apply_training(uow: UnitOfWork, event: CloudEvent, payload: EventPayload) -> None:
    """Keep each team's newest staff training record (an older one arriving late changes
    nothing)."""
    apply_trainings(uow, [(event, payload)])


def apply_trainings(uow: UnitOfWork, items: Sequence[tuple[CloudEvent, EventPayload]]
                    ) -> None:
    """``apply_training`` for several records in one go."""
    for _, payload in items:
        assert isinstance(payload, TeamTrainingRecorded)
        upsert(uow.session, team_training, {"org": payload.org, "team": payload.team},
               {"as_of": payload.as_of, "staff": payload.staff, "trained": payload.trained},
               unless_newer="as_of")


def business_handlers() -> dict[str, Handler]:
    """The handler of every counted event, and of staff training records."""
    return {**dict.fromkeys(COUNTED_EVENTS, apply_event),
            TeamTrainingRecorded.event_type: apply_training}


def business_batch_handlers() -> dict[str, ManyHandler]:
    """The handler that applies a run of counted events (or training records) at once."""
    return {**dict.fromkeys(COUNTED_EVENTS, apply_events),
            TeamTrainingRecorded.event_type: apply_trainings}


def training_by_team(database: Database, policy: DisclosurePolicy
                     ) -> dict[str, dict[str, Any]]:
    """Staff trained in routine enquiry by team name (the teams of one name across
    organisations added up), from each team's newest record, under disclosure control; as
    of the oldest of those records."""
    totals: dict[str, dict[str, Any]] = {}
    with database.read() as session:
        for row in session.execute(select(team_training)):
            total = totals.setdefault(row.team, {"staff": 0, "trained": 0, "as_of": row.as_of})
            total["staff"] += row.staff
            total["trained"] += row.trained
            total["as_of"] = min(total["as_of"], row.as_of)
    return {team: staff_trained(t["staff"], t["trained"], t["as_of"].isoformat(), policy)
            for team, t in totals.items()}


def clear(uow: UnitOfWork) -> None:
    """Empty the read model (before a rebuild). The release rule's memory and the releases
    stay: a rebuild must not let figures jump by fewer than K people."""
    for table in (contributions, evaluation_consents, research_consents, team_training,
                  contributions.metadata.tables["inbox"]):
        uow.session.execute(delete(table))


def facts(session: Session, opt_in: bool = False) -> list[Fact]:
    """Every stored contribution of the people who count (internal only).

    Opt-out (the default) counts everyone who has not withdrawn ``evaluation``; opt-in counts
    only people whose ``evaluation`` consent is granted.
    """
    return list(stream_facts(session, opt_in))


def stream_facts(session: Session, opt_in: bool = False, among: Any = None
                 ) -> Iterator[Fact]:
    """``facts`` one at a time, read from the database in chunks: a release never holds
    every contribution at once. ``among`` (a condition on contributions) keeps only the
    contributions it admits, and nothing about nobody."""
    c = contributions.c
    query = select(c.id, c.subject_id, c.source_event, c.measure, c.value, c.occurred_on,
                   c.episode, c.match_id, *[c[d] for d in DIMENSIONS]).order_by(c.id)
    counted = _counted(opt_in) if among is None else and_(c.anonymous.is_(False), among)
    if counted is not None:
        query = query.where(counted)
    for row in session.execute(query.execution_options(yield_per=FACTS_PER_READ)):
        mapping = row._mapping  # built per access: once a row, not once a dimension
        # measure names and groups repeat across millions of rows: one string each, not one
        # a row, for as long as a worker remembers the events they are in
        yield Fact(row.id, row.subject_id, row.source_event, intern(row.measure),
                   int(row.value), row.occurred_on, {d: intern(mapping[d]) for d in DIMENSIONS},
                   row.episode, row.match_id)


def _counted(opt_in: bool) -> Any:
    """Who counts: everyone not withdrawn (opt-out), or only those who consented (opt-in),
    and what is about nobody either way (an offer of mentoring)."""
    if not opt_in:
        return None
    return or_(contributions.c.anonymous.is_(True), contributions.c.subject_id.in_(
        select(evaluation_consents.c.subject_id).where(
            evaluation_consents.c.state == "granted")))


def _row_key(key: RowKey) -> str:
    return json.dumps(list(key), separators=(",", ":"))


def carry_memory(source: Database, target: Database) -> int:
    """Give ``target`` the release rule's memory from ``source`` (a rebuild into a new
    database), so its first release cannot move a figure by fewer than K people; returns the
    rows carried."""
    with source.read() as session:
        rows = [dict(row._mapping) for row in session.execute(select(published_rows))]
    with target.unit_of_work() as uow:
        uow.session.execute(delete(published_rows))
        if rows:
            uow.session.execute(published_rows.insert(), rows)
    return len(rows)


@dataclass(frozen=True)
class _Worked:
    """A release worked out from a snapshot, ready to store."""

    after: int | None
    """The release it follows (None: the first)."""
    read_model: str
    withdrawn: frozenset[str]
    """Who had withdrawn as the snapshot saw it."""
    cells: str
    stored: dict[str, str]
    """The rule's memory as the snapshot had it: row key to stored state."""
    writes: dict[RowKey, RowState]


def publish_release(database: Database, policy: DisclosurePolicy, rules: OutcomeRules,
                    now: datetime | None = None, keep: int = 100, opt_in: bool = False,
                    min_interval: float = 0.0, remembered: Remembered | None = None
                    ) -> datetime | None:
    """Apply the release rule to every row and store the result as a new release, keeping the
    newest ``keep``; returns its time, or None when another worker released within
    ``min_interval`` seconds (or while this one worked). ``remembered``, kept by the caller
    from release to release, spares working out again the people whose events did not change.

    The release is worked out from a snapshot that blocks no writer, so events keep being
    applied meanwhile; only storing it takes the write lock (and the rule's memory, which a
    withdrawal's forgetting takes too). It is not stored when another release came in between.
    People who withdrew since the snapshot are forgotten in the rows it writes, as the
    cascade forgot them in the rows already stored: the release is then what it would have
    been had it been published just before they withdrew, and keeps nothing that links to
    them (whether they were in the memory already or new in the snapshot)."""
    released_at = now or utcnow()
    with database.snapshot() as session:
        worked = _work_out(session, released_at, policy, rules, opt_in, min_interval,
                           remembered)
    if worked is None:
        return None
    with database.unit_of_work() as uow:
        session = uow.session
        lock_rule_memory(session)
        latest = session.execute(select(func.max(releases.c.release_id))).scalar()
        if latest != worked.after:
            if remembered is not None:
                remembered.forget()
            return None
        gone = _withdrawn(session) - worked.withdrawn
        _store_states(session, worked.stored, _forgetting(worked.writes, gone))
        newest = session.execute(releases.insert().values(
            released_at=released_at, cells=worked.cells, read_model=worked.read_model)
            .returning(releases.c.release_id)).scalar_one()
        session.execute(delete(releases).where(releases.c.release_id <= newest - keep))
    return released_at


def _work_out(session: Session, released_at: datetime, policy: DisclosurePolicy,
              rules: OutcomeRules, opt_in: bool, min_interval: float,
              remembered: Remembered | None) -> _Worked | None:
    """The release as of the snapshot, or None when the last release is too recent."""
    latest = session.execute(select(releases.c.release_id, releases.c.released_at,
                                    releases.c.read_model, releases.c.cells)
                             .order_by(releases.c.release_id.desc()).limit(1)).first()
    if latest is not None and (released_at - latest.released_at).total_seconds() < min_interval:
        if remembered is not None:
            remembered.forget()
        return None
    after = None if latest is None else latest.release_id
    withdrawn = _withdrawn(session)
    read_model = _read_model(session, opt_in, released_at.date(), policy, rules)
    if latest is not None and latest.read_model == read_model:
        return _Worked(after, read_model, withdrawn, latest.cells, {}, {})  # the same again
    stored = {row.row_key: row.state for row in session.execute(select(published_rows))}
    states = {tuple(json.loads(key)): RowState.from_json(json.loads(state))
              for key, state in stored.items()}
    current = rows_now(stream_facts(session, opt_in), released_at.date(), remembered)
    writes, released = release(states, current, policy.k, rules.meaningful_change,
                               released_at.isoformat(), shown_as(policy, rules))
    return _Worked(after, read_model, withdrawn, json.dumps(released, separators=(",", ":")),
                   stored, writes)


def _read_model(session: Session, opt_in: bool, today: date, policy: DisclosurePolicy,
                rules: OutcomeRules) -> str:
    """What a release is made from: when none of it changed, neither can the release."""
    stored = session.execute(select(func.count(), func.max(contributions.c.id))).one()
    applied = session.execute(select(func.count()).select_from(
        contributions.metadata.tables["inbox"])).scalar_one()  # every event applied, ever
    consents = session.execute(select(func.count(), func.max(evaluation_consents.c.changed_at))
                               ).one()
    return json.dumps([list(stored), applied, [consents[0], str(consents[1])], opt_in,
                       today.isoformat(), policy.k, rules.meaningful_change])


def _withdrawn(session: Session) -> frozenset[str]:
    """Everyone who has withdrawn ``evaluation`` or been erased."""
    c = evaluation_consents.c
    return frozenset(session.execute(select(c.subject_id).where(c.state == "withdrawn"))
                     .scalars())


def _forgetting(writes: dict[RowKey, RowState], gone: Iterable[str]
                ) -> dict[RowKey, RowState]:
    """The rows to write with each of ``gone`` replaced by a token, as the cascade does."""
    references = [person_reference(subject) for subject in gone]
    if not references:
        return writes
    forgotten = {}
    for key, state in writes.items():
        for reference in references:
            if reference in state.activity or any(reference in f for f in state.figures.values()):
                state = state.forgetting(reference)
        forgotten[key] = state
    return forgotten


def _store_states(session: Session, before: Mapping[str, str],
                  writes: dict[RowKey, RowState]) -> None:
    """Write the rows whose state changed; forget rows nobody is in and nothing was shown of."""
    for row, state in writes.items():
        key = _row_key(row)
        if state.empty:
            session.execute(delete(published_rows).where(published_rows.c.row_key == key))
        elif key in before:
            session.execute(update(published_rows).where(published_rows.c.row_key == key)
                            .values(state=json.dumps(state.to_json())))
        else:
            session.execute(published_rows.insert().values(
                row_key=key, state=json.dumps(state.to_json())))


def latest_release(database: Database) -> tuple[datetime, Released] | None:
    """The newest release's time and rows, or None before the first release."""
    with database.read() as session:
        row = session.execute(select(releases.c.released_at, releases.c.cells)
                              .order_by(releases.c.release_id.desc()).limit(1)).first()
    if row is None:
        return None
    return row.released_at, json.loads(row.cells)


def latest_release_time(database: Database) -> datetime | None:
    """When the newest release was published (cheap: the rows are not loaded)."""
    with database.read() as session:
        released_at: datetime | None = session.execute(
            select(releases.c.released_at).order_by(releases.c.release_id.desc()).limit(1)
        ).scalar()
    return released_at


def published_figures(database: Database, table: str, group_by: str, period: str,
                      policy: DisclosurePolicy, rules: OutcomeRules) -> dict[str, Any]:
    """One table's figures for a grouping and period as the newest release has them, under
    disclosure control, with who they count and the rules they follow (no rows before the
    first release)."""
    release = latest_release(database)
    rows: list[dict[str, Any]] = []
    released_at = None
    if release is not None:
        released_at, published = release
        rows = rows_of(table, group_by, published.get(table, {}).get(group_by, {})
                       .get(period, []), policy, rules, policy.k)
    if table == COVERAGE and group_by == "team":  # read against each team's staff training
        training = training_by_team(database, policy)
        rows = [{**row, "staff_trained": training.get(str(row["team"]))} for row in rows]
    return {"released_at": released_at.isoformat() if released_at else None,
            "group_by": group_by, "period": period, "rows": rows,
            "method": f"{WHO_COUNTS[table]} {policy.method}",
            "k": policy.k, "held_rule": policy.held_rule}

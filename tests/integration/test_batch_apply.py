"""Applying records a batch at a time, on SQLite and on PostgreSQL: each event once, in order,
a bad record isolated and dead-lettered exactly as alone, and a stalled consent record holding
back everything after it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, func, select

from shared.crypto import KeyStoreUnavailable
from shared.db import Database, UnitOfWork, service_metadata
from shared.events.envelope import CloudEvent
from shared.events.screening import EnquiryDue, ScreeningDeclined
from shared.identity import new_subject_reference
from shared.kafka.consumer import (
    BatchInterrupted,
    EventApplier,
    InboundRecord,
    Outcome,
    StalledRecord,
)
from shared.stream import apply_until_done


class KeptDeadLetters:
    """The dead letters sent, in order: (offset, reason)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        self.sent.append((record.offset, reason))


def _metadata() -> MetaData:
    metadata = service_metadata()
    Table("effects", metadata, Column("seq", Integer, primary_key=True, autoincrement=True),
          Column("event_id", String(64), nullable=False), Column("team", String(64)))
    return metadata


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    metadata = _metadata()
    db = Database(database_url, metadata)
    metadata.create_all(db.engine)
    yield db
    db.dispose()


def _enquiry(team: str) -> CloudEvent:
    return CloudEvent.wrap(EnquiryDue(org="trust", team=team, due_on="2026-11-02"),
                           source="/peerlink/screening", subject=new_subject_reference())


def _records(events: Sequence[CloudEvent | bytes], first_offset: int = 0) -> list[InboundRecord]:
    return [InboundRecord("screening.events", 0, first_offset + n, b"k",
                          e if isinstance(e, bytes) else e.to_bytes())
            for n, e in enumerate(events)]


def _applier(database: Database, *, refuse_team: str | None = None,
             **options: Any) -> tuple[EventApplier, KeptDeadLetters]:
    effects = database.metadata.tables["effects"]

    def remember(uow: UnitOfWork, event: CloudEvent, payload: EnquiryDue) -> None:
        if payload.team == refuse_team:
            raise RuntimeError("this handler cannot apply it")
        uow.session.execute(effects.insert().values(event_id=event.id, team=payload.team))

    deadletters = KeptDeadLetters()
    return EventApplier("test", "test.batch", database, {"enquiry-due": remember},
                        deadletters, **options), deadletters


def _effects(database: Database) -> list[str]:
    """The teams of the effects, in the order they were applied."""
    effects = database.metadata.tables["effects"]
    with database.read() as session:
        return list(session.execute(select(effects.c.team).order_by(effects.c.seq)).scalars())


def _count_commits(database: Database) -> list[int]:
    commits = [0]

    @event.listens_for(database.engine, "commit")
    def _committed(_connection: Any) -> None:
        commits[0] += 1

    return commits


def test_a_batch_is_applied_in_order_in_one_transaction_each_event_once(
        database: Database) -> None:
    events = [_enquiry(f"team-{n}") for n in range(50)]
    applier, deadletters = _applier(database)
    commits = _count_commits(database)
    before_the_batch = applier.process_batch(_records(events[:10]))
    assert before_the_batch == [Outcome.APPLIED] * 10
    commits[0] = 0

    outcomes = applier.process_batch(_records([*events, events[20]]))

    assert outcomes == [Outcome.DUPLICATE] * 10 + [Outcome.APPLIED] * 40 + [Outcome.DUPLICATE]
    assert commits[0] == 1
    assert _effects(database) == [f"team-{n}" for n in range(50)]
    assert deadletters.sent == []


def test_a_batch_handler_takes_each_run_of_its_types_at_once_in_order(
        database: Database) -> None:
    """Events of the types a ``ManyHandler`` is registered for go to it a run at a time;
    an event of another type between them ends the run, and every event is applied in order."""
    effects = database.metadata.tables["effects"]
    calls: list[list[str]] = []

    def one(uow: UnitOfWork, event: CloudEvent, payload: EnquiryDue) -> None:
        calls.append([payload.team])
        uow.session.execute(effects.insert().values(event_id=event.id, team=payload.team))

    def many(uow: UnitOfWork, items: Sequence[tuple[CloudEvent, Any]]) -> None:
        calls.append([payload.team for _, payload in items])
        uow.session.execute(effects.insert(), [
            {"event_id": event.id, "team": payload.team} for event, payload in items])

    declined = CloudEvent.wrap(ScreeningDeclined(
        screening_id="scr", org="trust", team="declined", borough="camden", gender="female",
        age_band="25-34", asked_on=date(2026, 11, 2), asked_by_role="nurse", training_level=2,
        private=True), source="/peerlink/screening", subject=new_subject_reference())
    applier = EventApplier("test", "test.batch", database,
                           {"enquiry-due": one, "screening-declined": one}, KeptDeadLetters(),
                           many={"enquiry-due": many})
    events = [_enquiry("a"), _enquiry("b"), declined, _enquiry("c")]
    applier.process_batch(_records([events[0], events[0], *events]))

    assert calls == [["a", "b"], ["declined"], ["c"]]  # the repeated "a" is a duplicate
    assert _effects(database) == ["a", "b", "declined", "c"]


def test_a_record_that_does_not_decode_is_dead_lettered_and_the_rest_applied_in_order(
        database: Database) -> None:
    events = [_enquiry(f"team-{n}") for n in range(6)]
    applier, deadletters = _applier(database)
    batch = _records([*events[:3], b"{not json", *events[3:]])

    outcomes = applier.process_batch(batch)

    assert outcomes == [Outcome.APPLIED] * 3 + [Outcome.DEAD_LETTERED] + [Outcome.APPLIED] * 3
    assert deadletters.sent == [(3, "validation")]
    assert _effects(database) == [f"team-{n}" for n in range(6)]


def test_a_handler_failing_on_one_record_rolls_the_batch_back_and_isolates_that_record(
        database: Database) -> None:
    events = [_enquiry(name) for name in ("a", "b", "refused", "c", "d")]
    applier, deadletters = _applier(database, refuse_team="refused")

    outcomes = applier.process_batch(_records(events, first_offset=100))

    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.DEAD_LETTERED,
                        Outcome.APPLIED, Outcome.APPLIED]
    assert deadletters.sent == [(102, "unexpected")]
    assert _effects(database) == ["a", "b", "c", "d"]  # none twice from the rolled-back try


def test_a_stalled_consent_record_holds_back_every_record_after_it(database: Database) -> None:
    events = [_enquiry(name) for name in ("a", "b", "refused", "c")]
    applier, deadletters = _applier(database, refuse_team="refused", halt_on_error=True)

    with pytest.raises(BatchInterrupted, match=r"screening.events\[0\]@2") as stopped:
        applier.process_batch(_records(events))
    assert (stopped.value.done, stopped.value.record.offset) == (2, 2)
    assert isinstance(stopped.value.__cause__, StalledRecord)
    assert "unexpected" in str(stopped.value.__cause__)
    assert _effects(database) == ["a", "b"]
    with pytest.raises(BatchInterrupted) as stopped:
        applier.process_batch(_records([b"{not json", *events[3:]], first_offset=3))
    assert (stopped.value.done, stopped.value.record.offset) == (0, 3)
    assert _effects(database) == ["a", "b"]
    assert deadletters.sent == []

    fixed, _ = _applier(database, halt_on_error=True)  # the operator's fix, then the retry
    assert fixed.process_batch(_records(events)) == [Outcome.DUPLICATE] * 2 + \
        [Outcome.APPLIED] * 2
    assert _effects(database) == ["a", "b", "refused", "c"]


def test_a_transient_failure_commits_nothing_of_the_batch_and_is_raised(
        database: Database) -> None:
    effects = database.metadata.tables["effects"]
    calls = [0]

    def flaky(uow: UnitOfWork, event: CloudEvent, payload: EnquiryDue) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise KeyStoreUnavailable("consent")
        uow.session.execute(effects.insert().values(event_id=event.id, team=payload.team))

    applier = EventApplier("test", "test.batch", database, {"enquiry-due": flaky},
                           KeptDeadLetters())
    events = [_enquiry(f"team-{n}") for n in range(5)]
    with pytest.raises(BatchInterrupted) as stopped:
        applier.process_batch(_records(events))
    assert stopped.value.done == 0
    assert isinstance(stopped.value.__cause__, KeyStoreUnavailable)
    assert _effects(database) == []
    with database.read() as session:
        inbox = database.metadata.tables["inbox"]
        assert session.execute(select(func.count()).select_from(inbox)).scalar_one() == 0
    assert applier.process_batch(_records(events)) == [Outcome.APPLIED] * 5


def test_a_retried_batch_starts_from_the_record_that_stopped_it(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch with a dead letter ahead of a record whose key store is down: retried until the
    key store is back, the dead letter is sent once, the applied record is not counted again
    as a duplicate, and each event has its effect once (found by review: the whole batch was
    retried, dead-lettering the same record at every attempt)."""
    effects = database.metadata.tables["effects"]
    failures = [3]

    def flaky(uow: UnitOfWork, event: CloudEvent, payload: EnquiryDue) -> None:
        if payload.team == "c" and failures[0]:
            failures[0] -= 1
            raise KeyStoreUnavailable("consent")
        uow.session.execute(effects.insert().values(event_id=event.id, team=payload.team))

    deadletters = KeptDeadLetters()
    applier = EventApplier("test", "test.batch", database, {"enquiry-due": flaky}, deadletters)
    attempts: list[list[int]] = []
    process_batch = applier.process_batch

    def recorded(records: Sequence[InboundRecord]) -> list[Outcome]:
        attempts.append([record.offset for record in records])
        return process_batch(records)

    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(applier, "process_batch", recorded)
    monkeypatch.setattr("shared.stream.asyncio.sleep", no_wait)
    batch = _records([_enquiry("a"), b"{not json", _enquiry("b"), _enquiry("c"), _enquiry("d")])
    asyncio.run(apply_until_done("test", applier, batch, halt_on_error=False))

    # b shares c's transaction, rolled back with it: the retries start from b
    assert attempts == [[0, 1, 2, 3, 4], [2, 3, 4], [2, 3, 4], [2, 3, 4]]
    assert deadletters.sent == [(1, "validation")]
    assert _effects(database) == ["a", "b", "c", "d"]


def test_two_workers_applying_overlapping_batches_at_once_apply_each_event_once(
        database: Database) -> None:
    """Two consumers given the same records (a rebalance hands a partition over while the old
    owner still applies it): every event has its effect exactly once, and neither fails."""
    events = [_enquiry(f"team-{n}") for n in range(400)]
    pairs = [_applier(database) for _ in range(2)]
    appliers = [applier for applier, _ in pairs]
    outcomes: list[list[Outcome]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(n: int) -> None:
        try:
            for first in range(0, len(events), 40):
                start.wait(timeout=60)  # the same batch, at the same moment
                outcomes[n] += appliers[n].process_batch(_records(events[first:first + 40]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert [deadletters.sent for _, deadletters in pairs] == [[], []]
    applied = outcomes[0].count(Outcome.APPLIED) + outcomes[1].count(Outcome.APPLIED)
    assert applied == 400
    assert sorted(_effects(database)) == sorted(f"team-{n}" for n in range(400))

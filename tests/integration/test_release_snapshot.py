"""A release is worked out from a snapshot, on both databases: events keep being applied and
withdrawals keep cascading while it is worked out; storing it forgets whoever withdrew
meanwhile, and never undoes another worker's release."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from services.reporting.adapters.tables import published_rows, releases
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules
from services.reporting.domain.people import Remembered, person_reference, rows_now
from services.reporting.service_layer import cascade, read_model
from services.reporting.service_layer.read_model import latest_release
from shared.db import Database
from shared.identity import new_subject_reference
from tests.support.reporting import reporting_database, screened

RULE = DisclosurePolicy(k=10)
WAIT = 10.0
"""How long a step may wait for another thread (far above what any step takes)."""
FIRST = datetime(2026, 11, 30, tzinfo=UTC)
SECOND = datetime(2026, 11, 30, 0, 1, tzinfo=UTC)
THIRD = datetime(2026, 11, 30, 0, 2, tzinfo=UTC)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    with reporting_database(database_url) as db:
        yield db


class Paused:
    """Holds the first release to be worked out after ``rows_now`` is entered (its snapshot
    is taken) until ``go`` is set; later releases run straight through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()
        self._first = True
        real = rows_now

        def paused(*args: Any, **kwargs: Any) -> Any:
            if self._first:
                self._first = False
                self.entered.set()
                assert self.go.wait(WAIT), "the paused release was never let go"
            return real(*args, **kwargs)

        monkeypatch.setattr(read_model, "rows_now", paused)

    def start(self, pool: ThreadPoolExecutor, work: Callable[[], datetime | None]
              ) -> Future[datetime | None]:
        """Start ``work`` (a release) and wait until it is paused inside its snapshot."""
        started = pool.submit(work)
        assert self.entered.wait(WAIT), "the release never reached its computation"
        return started


def release_at(db: Database, now: datetime, remembered: Remembered | None = None
               ) -> Callable[[], datetime | None]:
    return lambda: read_model.publish_release(db, RULE, OutcomeRules(), now=now,
                                              remembered=remembered)


def screened_count(db: Database) -> int:
    release = latest_release(db)
    assert release is not None
    [row] = release[1]["prevalence"]["org"]["last-12-months"]
    return int(row["figures"]["screened"]["n"])


def release_count(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(releases)).scalar_one())


def memory(db: Database) -> list[str]:
    with db.read() as session:
        return [row.state for row in session.execute(select(published_rows))]


def test_events_are_applied_while_a_release_is_worked_out(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(10):
        screened(database, new_subject_reference(), current=True)
    paused = Paused(monkeypatch)
    with ThreadPoolExecutor(2) as pool:
        releasing = paused.start(pool, release_at(database, FIRST))
        later = [new_subject_reference() for _ in range(10)]
        applying = pool.submit(_screen_all, database, later)
        applying.result(timeout=WAIT)  # not behind the release's write lock
        paused.go.set()
        assert releasing.result(timeout=WAIT) == FIRST
    assert screened_count(database) == 10  # as of the snapshot: the later ten come next time
    read_model.publish_release(database, RULE, OutcomeRules(), now=SECOND)
    assert screened_count(database) == 20


def test_a_release_worked_out_before_a_withdrawal_is_stored_with_them_forgotten(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    people = [new_subject_reference() for _ in range(10)]
    for subject in people:
        screened(database, subject, current=True)
    read_model.publish_release(database, RULE, OutcomeRules(), now=FIRST)
    leaving = person_reference(people[0])
    assert any(leaving in state for state in memory(database))
    for _ in range(10):  # enough new people that the next release rewrites the rows
        screened(database, new_subject_reference(), current=True)

    paused = Paused(monkeypatch)
    remembered = Remembered()
    with ThreadPoolExecutor(2) as pool:
        releasing = paused.start(pool, release_at(database, SECOND, remembered))
        erasing = pool.submit(lambda: _erase(database, people[0]))
        erasing.result(timeout=WAIT)  # the cascade does not wait for the release
        assert not any(leaving in state for state in memory(database))
        paused.go.set()
        assert releasing.result(timeout=WAIT) == SECOND  # as if just before the erasure
    assert not any(leaving in state for state in memory(database))
    assert release_count(database) == 2
    assert screened_count(database) == 20  # the snapshot's people

    assert read_model.publish_release(database, RULE, OutcomeRules(), now=THIRD,
                                      remembered=remembered) == THIRD
    assert not any(leaving in state for state in memory(database))
    assert screened_count(database) == 20  # one person left: fewer than K moved


def test_a_person_new_in_the_snapshot_who_withdraws_meanwhile_is_forgotten_in_it(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of theirs is in the rule's memory yet, so the cascade had nothing to forget
    and no stored row changed: the release itself must forget them."""
    people = [new_subject_reference() for _ in range(10)]
    for subject in people:
        screened(database, subject, current=True)
    leaving = person_reference(people[0])
    paused = Paused(monkeypatch)
    with ThreadPoolExecutor(2) as pool:
        releasing = paused.start(pool, release_at(database, FIRST))
        pool.submit(_erase, database, people[0]).result(timeout=WAIT)
        paused.go.set()
        assert releasing.result(timeout=WAIT) == FIRST
    assert not any(leaving in state for state in memory(database))
    assert any("gone-" in state for state in memory(database))  # counted out next time
    assert read_model.publish_release(database, RULE, OutcomeRules(), now=SECOND) == SECOND
    assert not any(leaving in state for state in memory(database))


def test_withdrawals_during_every_release_do_not_stop_releases(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A withdrawal while each release is worked out (the org-wide rows hold nearly
    everyone, so every release writes rows the withdrawn were in): each is still stored."""
    people = [new_subject_reference() for _ in range(30)]
    for subject in people:
        screened(database, subject, current=True)
    times = [datetime(2026, 11, 30, 0, minute, tzinfo=UTC) for minute in range(3)]
    for when, leaving in zip(times, people, strict=False):
        paused = Paused(monkeypatch)
        with ThreadPoolExecutor(2) as pool:
            releasing = paused.start(pool, release_at(database, when))
            pool.submit(_erase, database, leaving).result(timeout=WAIT)
            paused.go.set()
            assert releasing.result(timeout=WAIT) == when
        monkeypatch.undo()
        assert not any(person_reference(leaving) in state for state in memory(database))
    assert release_count(database) == 3


def test_a_release_stored_while_a_withdrawal_is_being_committed_keeps_nothing_of_them(
        database: Database) -> None:
    """The cascade has forgotten the person in its own, not yet committed, transaction when
    the release comes to store: storing waits for it, then forgets them too (on PostgreSQL,
    without the shared lock, it would read the old rows and then overwrite the new)."""
    people = [new_subject_reference() for _ in range(10)]
    for subject in people:
        screened(database, subject, current=True)
    read_model.publish_release(database, RULE, OutcomeRules(), now=FIRST)
    leaving = person_reference(people[0])
    for _ in range(10):
        screened(database, new_subject_reference(), current=True)
    forgotten, commit = threading.Event(), threading.Event()

    def erase_and_hold() -> None:
        with database.unit_of_work() as uow:
            cascade.erase(uow, people[0])
            uow.session.flush()
            forgotten.set()
            assert commit.wait(WAIT)

    with ThreadPoolExecutor(2) as pool:
        erasing = pool.submit(erase_and_hold)
        assert forgotten.wait(WAIT)
        releasing = pool.submit(release_at(database, SECOND))
        time.sleep(1.0)  # let it get as far as it can: at most to storing, where it waits
        commit.set()
        erasing.result(timeout=WAIT)
        stored = releasing.result(timeout=WAIT)
    assert stored == SECOND
    assert not any(leaving in state for state in memory(database))
    assert release_count(database) == 2


def _screen_all(db: Database, people: list[str]) -> None:
    for subject in people:
        screened(db, subject, current=True)


def _erase(db: Database, subject: str) -> None:
    with db.unit_of_work() as uow:
        cascade.erase(uow, subject)


def test_a_release_overtaken_by_another_workers_release_is_dropped(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(10):
        screened(database, new_subject_reference(), current=True)
    paused = Paused(monkeypatch)
    with ThreadPoolExecutor(2) as pool:
        slow = paused.start(pool, release_at(database, FIRST))
        assert pool.submit(release_at(database, SECOND)).result(timeout=WAIT) == SECOND
        paused.go.set()
        assert slow.result(timeout=WAIT) is None
    assert release_count(database) == 1
    release = latest_release(database)
    assert release is not None and release[0] == SECOND

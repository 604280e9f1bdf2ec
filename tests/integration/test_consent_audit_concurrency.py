"""Concurrent appends to the consent audit trail, on SQLite and PostgreSQL.

Issue 13's review found 98 of 200 concurrent appends failing on SQLite (``UNIQUE constraint
failed: audit_log.seq``) and one on PostgreSQL. Here 200 appends start together from an empty
trail (so the first ones also race to create the head row), from 8 threads in one process and
from 4 threads in each of 2 processes: every one succeeds, the sequence is 1..200 without a
gap and the keyed chain verifies.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest
from sqlalchemy import select

from ops.migrations import migrate
from services.consent.adapters.tables import audit_head, audit_log, metadata
from services.consent.service_layer.audit import AuditTrail
from shared.auth import Principal
from shared.db import Database

APPENDS = 200
THREADS = 8
CLERK = Principal(subject="clerk@trust", org="trust", roles=frozenset({"clinician"}))


def append_together(url: str, key: bytes, threads: int, each: int, label: str,
                    start_at: float | None = None) -> list[str]:
    """``threads`` threads, released together, each appending ``each`` entries in a unit of
    work of its own; returns the failures (empty when every append succeeded)."""
    database = Database(url, metadata)
    trail = AuditTrail(key)
    barrier = threading.Barrier(threads)
    failures: list[str] = []

    def appender(thread: int) -> None:
        barrier.wait(timeout=60)
        if start_at is not None:  # the processes' threads start at one wall-clock moment
            time.sleep(max(0.0, start_at - time.time()))
        for n in range(each):
            try:
                with database.unit_of_work() as uow:
                    trail.record(uow, CLERK, "audit-read", note=f"{label}-{thread}-{n}")
            except Exception as exc:  # counted and shown by the caller's assertion
                failures.append(f"{label}-{thread}-{n}: {type(exc).__name__}: {exc}"[:300])

    workers = [threading.Thread(target=appender, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    database.dispose()
    return failures


@pytest.mark.parametrize("processes", [1, 2], ids=["8-threads", "2-processes-of-4-threads"])
def test_concurrent_appends_all_succeed_in_one_gapless_chain_that_verifies(
        database_url: str, processes: int) -> None:
    migrate("consent", database_url)
    key = os.urandom(32)
    threads, each = THREADS // processes, APPENDS // THREADS
    if processes == 1:
        failures = append_together(database_url, key, threads, each, "p0")
    else:
        start_at = time.time() + 5  # after both processes have imported and connected
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            runs = [pool.submit(append_together, database_url, key, threads, each, f"p{p}",
                                start_at) for p in range(processes)]
            failures = [failure for run in runs for failure in run.result(timeout=600)]

    database = Database(database_url, metadata)
    try:
        with database.read() as session:
            seqs = list(session.execute(select(audit_log.c.seq).order_by(audit_log.c.seq))
                        .scalars())
            head = session.execute(select(audit_head.c.seq)).scalar_one()
        with database.read() as session:
            check = AuditTrail(key).verify(session)
    finally:
        database.dispose()
    assert failures == [], f"{len(failures)} of {APPENDS} appends failed: {failures[:5]}"
    assert seqs == list(range(1, APPENDS + 1))
    assert head == APPENDS
    assert (check.valid, check.entries, check.problem) == (True, APPENDS, None)


def test_an_audited_transaction_holds_the_chain_only_while_it_commits(
        postgres_database: Callable[[], str]) -> None:
    """A transaction appends its entries as its last step, so one still at work after
    recording does not hold up another's append. PostgreSQL only: SQLite's write
    transactions are serial from their start whatever the order, so there is nothing to
    show there. The chain stays gapless and in commit order."""
    database_url = postgres_database()
    migrate("consent", database_url)
    key = os.urandom(32)
    trail, database = AuditTrail(key), Database(database_url, metadata)
    recorded, other_done, slow_done = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        with database.unit_of_work() as uow:
            trail.record(uow, CLERK, "audit-read", note="slow")
            recorded.set()
            other_done.wait(timeout=20)  # still at work after recording
        slow_done.set()

    worker = threading.Thread(target=slow)
    worker.start()
    try:
        assert recorded.wait(timeout=20)
        with database.unit_of_work() as uow:
            trail.record(uow, CLERK, "audit-read", note="quick")
        quick_committed_first = not slow_done.is_set()
        other_done.set()
        worker.join(timeout=30)
        with database.read() as session:
            notes = list(session.execute(select(audit_log.c.detail)
                                         .order_by(audit_log.c.seq)).scalars())
            check = trail.verify(session)
    finally:
        other_done.set()
        database.dispose()
        postgres_database.drop_later(database_url)  # type: ignore[attr-defined]
    assert quick_committed_first
    assert notes == ['{"note": "quick"}', '{"note": "slow"}']
    assert (check.valid, check.entries) == (True, 2)

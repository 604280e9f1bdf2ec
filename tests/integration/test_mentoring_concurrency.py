"""Two coordinators matching at the same moment cannot put a mentor over capacity.

Two threads, each in its own transaction, match two different referrals to the only mentor
(capacity 1), released together by a barrier: exactly one is matched and the other
waitlisted, on SQLite (write transactions begin IMMEDIATE) and PostgreSQL (the mentor rows
are locked before the mentees are counted). Repeated, because a race passes by luck.
"""

from __future__ import annotations

import threading
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from services.mentoring.adapters.tables import matches, mentors, metadata, referrals
from services.mentoring.domain.matching import EligibilityRules
from services.mentoring.service_layer import mentoring as use
from shared.db import Database, utcnow
from shared.runtime import migrate

TODAY = date.today()
TRIALS = 10


def add_mentor(database: Database, org: str = "partner-a", capacity: int = 1) -> str:
    mentor_id = f"mnt_{uuid.uuid4().hex}"
    with database.unit_of_work() as uow:
        uow.session.execute(mentors.insert().values(
            mentor_id=mentor_id, org=org, display_name="Robin", gender="female",
            languages="en", borough="camden", modes="phone", capacity=capacity,
            training_completed_on=TODAY - timedelta(days=90), check_level="enhanced",
            check_completed_on=TODAY - timedelta(days=90), last_supervision_on=TODAY,
            status="active", registered_at=utcnow()))
    return mentor_id


def add_referral(database: Database, to_org: str = "partner-a") -> str:
    referral_id = f"ref_{uuid.uuid4().hex}"
    with database.unit_of_work() as uow:
        uow.session.execute(referrals.insert().values(
            referral_id=referral_id, subject_id=f"sub_{uuid.uuid4().hex}",
            referred_by_org="trust", to_org=to_org, referred_on=TODAY, mentor_gender="any",
            status="referred", waitlisted=False, sharing_withdrawn=False))
    return referral_id


def race(database: Database, pair: list[str], rules: EligibilityRules) -> dict[str, Any]:
    """Match both referrals at once, each in its own thread and transaction."""
    barrier = threading.Barrier(len(pair))
    results: dict[str, Any] = {}

    def match(referral_id: str) -> None:
        barrier.wait(timeout=10)
        try:
            with database.unit_of_work() as uow:
                results[referral_id] = use.match(uow, referral_id, TODAY, rules)
        except Exception as exc:  # reported by the caller's assertion
            results[referral_id] = exc

    threads = [threading.Thread(target=match, args=(r,)) for r in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_concurrent_matches_cannot_overfill_a_capacity_one_mentor(
        database_url: str) -> None:
    migrate("mentoring", database_url)
    database = Database(database_url, metadata)
    rules = EligibilityRules()
    try:
        for trial in range(TRIALS):
            mentor_id = add_mentor(database)
            results = race(database, [add_referral(database), add_referral(database)], rules)

            statuses = sorted(r["status"] if isinstance(r, dict) else repr(r)
                              for r in results.values())
            assert statuses == ["matched", "waitlisted"], (trial, results)
            with database.read() as session:
                active = session.execute(select(func.count()).select_from(matches).where(
                    matches.c.mentor_id == mentor_id, matches.c.status == "active")
                ).scalar_one()
            assert active == 1, trial
            # the next trial's mentor is the only one with room
            with database.unit_of_work() as uow:
                uow.session.execute(mentors.update().where(mentors.c.mentor_id == mentor_id)
                                    .values(status="left"))
    finally:
        database.dispose()

"""Two coordinators matching at the same moment cannot put a mentor over capacity; two
safeguarding leads acknowledging the same concern at once record one acknowledgement.

Two threads, each in its own transaction, match two different referrals to the only mentor
(capacity 1), released together by a barrier: exactly one is matched and the other
waitlisted, on SQLite (write transactions begin IMMEDIATE) and PostgreSQL (the mentor rows
are locked before the mentees are counted). Repeated, because a race passes by luck.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from ops.migrations import migrate
from services.mentoring.adapters.tables import (
    concern_transitions,
    matches,
    mentors,
    metadata,
    referrals,
    safeguarding_concerns,
)
from services.mentoring.domain.matching import EligibilityRules
from services.mentoring.service_layer import mentoring, safeguarding
from shared.auth import Principal
from shared.crypto import RecordCipher
from shared.db import Database, utcnow

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
                results[referral_id] = mentoring.match(uow, referral_id, TODAY, rules)
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


def add_concern(database: Database) -> str:
    concern_id = f"sgc_{uuid.uuid4().hex}"
    with database.unit_of_work() as uow:
        uow.session.execute(safeguarding_concerns.insert().values(
            concern_id=concern_id, subject_id=f"sub_{uuid.uuid4().hex}", org="partner-a",
            raised_on=TODAY, raised_at=utcnow(), repeat=False, status="open"))
    return concern_id


def test_two_leads_acknowledging_at_once_record_one_transition(database_url: str) -> None:
    """Both leads act on the same open concern at the same moment: one acknowledgement is
    recorded, the other is told the state it found (409 at the API)."""
    migrate("mentoring", database_url)
    database = Database(database_url, metadata)
    records = RecordCipher(os.urandom(32))
    leads = [Principal(subject=f"lead-{n}", org="trust", roles=frozenset({"safeguarding-lead"}))
             for n in (1, 2)]
    try:
        for trial in range(TRIALS):
            concern_id = add_concern(database)
            barrier = threading.Barrier(len(leads))
            results: dict[str, Any] = {}

            def acknowledge(lead: Principal, concern_id: str = concern_id,
                            barrier: threading.Barrier = barrier,
                            results: dict[str, Any] = results) -> None:
                barrier.wait(timeout=10)
                try:
                    with database.unit_of_work() as uow:
                        results[lead.subject] = safeguarding.step(
                            uow, records, concern_id, "acknowledge", lead, None)
                except Exception as exc:  # reported by the assertion below
                    results[lead.subject] = exc

            threads = [threading.Thread(target=acknowledge, args=(lead,)) for lead in leads]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            won = [r for r in results.values() if isinstance(r, dict)]
            lost = [r for r in results.values() if isinstance(r, safeguarding.StepNotAllowed)]
            assert (len(won), len(lost)) == (1, 1), (trial, results)
            assert "acknowledged" in str(lost[0])
            with database.read() as session:
                recorded = session.execute(select(concern_transitions.c.by_subject).where(
                    concern_transitions.c.concern_id == concern_id)).scalars().all()
            assert recorded == [won[0]["by"]], trial
    finally:
        database.dispose()

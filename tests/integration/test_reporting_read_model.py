"""The reporting read model on both databases: exact subtraction on withdrawal, opt-in and
opt-out, exactly-once application, the release rule's memory through a rebuild, and one
release when two workers release at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from ops.migrations import migrate
from services.reporting.adapters.tables import metadata, published_rows, releases
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules
from services.reporting.domain.people import person_reference
from services.reporting.service_layer import cascade
from services.reporting.service_layer.read_model import (
    apply_event,
    apply_events,
    carry_memory,
    clear,
    facts,
    latest_release,
    publish_release,
)
from shared.db import Database
from shared.events.consent import ErasureRequested
from shared.events.envelope import CloudEvent
from shared.events.mentoring import MentoringOffered, SessionComponentsRecorded
from shared.events.screening import ScreeningCompleted
from shared.identity import new_subject_reference
from tests.support.fakes_reporting import consent_granted, withdrawal
from tests.support.reporting import reporting_database, screened


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    with reporting_database(database_url) as db:
        yield db


def totals(db: Database, opt_in: bool = False) -> dict[str, int]:
    with db.read() as session:
        result: dict[str, int] = {}
        for fact in facts(session, opt_in):
            result[fact.measure] = result.get(fact.measure, 0) + fact.value
    return result


def test_a_withdrawal_subtracts_exactly_that_persons_contributions(database: Database) -> None:
    stays, leaves = new_subject_reference(), new_subject_reference()
    screened(database, stays, current=False)
    screened(database, leaves, current=True)
    assert totals(database)["screened"] == 2
    assert totals(database)["current_abuse"] == 1

    with database.unit_of_work() as uow:
        cascade.withdrawn(uow, leaves, ("evaluation",), withdrawal("evaluation"))

    assert totals(database) == {"screened": 1, "current_abuse": 0, "past_abuse": 0,
                                "either_abuse": 0, "asked_in_private": 1}
    screened(database, leaves, current=True)  # a later event about them stays out
    assert totals(database)["screened"] == 1


def test_events_applied_at_once_store_what_they_store_one_by_one(database: Database) -> None:
    """The batch handler is the per-event handler in fewer statements: the same contributions
    in the same order, and a person who withdrew is left out of both."""
    people = [new_subject_reference() for _ in range(4)]
    events = []
    for n, subject in enumerate(people * 2):
        payload = ScreeningCompleted(
            screening_id=f"scr-{n}", org="trust", team=f"t{n % 3}", borough="camden",
            gender="female", age_band="25-34", asked_on=date(2026, 11, 1 + n),
            asked_by_role="nurse", training_level=2, private=bool(n % 2), hark_score=n % 2,
            current_abuse=bool(n % 2), past_abuse="no", disclosed=bool(n % 2))
        events.append((CloudEvent.wrap(payload, source="/peerlink/screening", subject=subject),
                       payload))
    stored = []
    for at_once in (False, True):
        with database.unit_of_work() as uow:
            clear(uow)
            cascade.withdrawn(uow, people[1], ("evaluation",), withdrawal("evaluation"))
        with database.unit_of_work() as uow:
            if at_once:
                apply_events(uow, events)
            else:
                for event, payload in events:
                    apply_event(uow, event, payload)
        with database.read() as session:
            stored.append([(f.subject, f.source_event, f.measure, f.value, f.occurred_on, f.dims)
                           for f in facts(session)])
    assert stored[0] == stored[1]
    assert len(stored[0]) == 6 * 5  # six screenings of the three who stay, five measures each
    assert people[1] not in {subject for subject, *_ in stored[0]}


def test_opt_in_counts_only_people_who_consented_to_evaluation(database: Database) -> None:
    consented, silent = new_subject_reference(), new_subject_reference()
    screened(database, consented, current=True)
    screened(database, silent, current=True)
    with database.unit_of_work() as uow:
        cascade.granted(uow, *consent_granted(consented, "evaluation"))

    assert totals(database)["screened"] == 2
    assert totals(database, opt_in=True)["screened"] == 1


def test_erasure_keeps_nothing(database: Database) -> None:
    subject = new_subject_reference()
    screened(database, subject, current=True)
    with database.unit_of_work() as uow:
        assert cascade.erase(uow, subject) == 0
    assert totals(database) == {}


def decided(scope: str, org: str) -> ErasureRequested:
    return ErasureRequested.model_validate({
        "withdrawal_id": "wd_1", "purposes": ["evaluation"], "method": "verbal", "org": org,
        "erasure_request_id": "er_1", "scope": scope})


def test_an_organisation_scoped_erasure_removes_only_that_organisations_contributions(
        database: Database) -> None:
    subject = new_subject_reference()
    screened(database, subject, current=True, org="trust")
    screened(database, subject, current=False, org="partner-a")
    with database.unit_of_work() as uow:
        assert cascade.decided_erasure(uow, subject, decided("organisation", "partner-a")) == 0
    assert totals(database) == {"screened": 1, "current_abuse": 1, "past_abuse": 0,
                                "either_abuse": 1, "asked_in_private": 1}

    with database.unit_of_work() as uow:
        assert cascade.decided_erasure(uow, subject, decided("subject", "trust")) == 0
    assert totals(database) == {}
    screened(database, subject, current=True)  # nothing later about them counts
    assert totals(database) == {}


RULE = DisclosurePolicy(k=10)


def prevalence_by_org(database: Database) -> dict[str, Any]:
    release = latest_release(database)
    assert release is not None
    [row] = release[1]["prevalence"]["org"]["last-12-months"]
    return row


def test_a_release_moves_a_figure_only_after_k_people_and_a_rebuild_keeps_the_memory(
        database: Database, database_url: str, request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    people = [new_subject_reference() for _ in range(10)]
    for subject in people:
        screened(database, subject, current=False)
    publish_release(database, RULE, OutcomeRules(), now=datetime(2026, 11, 30, tzinfo=UTC))
    assert prevalence_by_org(database)["figures"]["screened"] == {"n": 10}
    with database.unit_of_work() as uow:
        for subject in people[:3]:
            cascade.withdrawn(uow, subject, ("evaluation",), withdrawal("evaluation"))
    publish_release(database, RULE, OutcomeRules(), now=datetime(2026, 11, 30, 0, 1, tzinfo=UTC))
    held = prevalence_by_org(database)
    assert held["figures"]["screened"] == {"n": 10}  # 3 < K moved

    # a rebuild into another database starts from the live memory, not from nothing
    other_url = (f"sqlite:///{tmp_path_factory.mktemp('rebuilt') / 'reporting.db'}"
                 if database_url.startswith("sqlite")
                 else request.getfixturevalue("postgres_database")())
    migrate("reporting", other_url)
    rebuilt = Database(other_url, metadata)
    try:
        for subject in people[3:]:
            screened(rebuilt, subject, current=False)
        assert carry_memory(database, rebuilt) > 0
        publish_release(rebuilt, RULE, OutcomeRules(),
                        now=datetime(2026, 11, 30, 0, 2, tzinfo=UTC))
        again = prevalence_by_org(rebuilt)
        assert again["figures"]["screened"] == {"n": 10}
    finally:
        rebuilt.dispose()


def test_two_workers_releasing_at_once_make_one_release(database: Database) -> None:
    for _ in range(3):
        screened(database, new_subject_reference(), current=True)
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    barrier = threading.Barrier(2)

    def release() -> datetime | None:
        barrier.wait()
        return publish_release(database, RULE, OutcomeRules(), now=now, min_interval=4.5)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: release(), range(2)))
    assert sorted(results, key=lambda r: r is None) == [now, None]
    with database.read() as session:
        assert session.execute(select(func.count()).select_from(releases)).scalar_one() == 1


def test_a_withdrawal_leaves_nothing_in_the_rules_memory_that_links_to_the_person(
        database: Database) -> None:
    people = [new_subject_reference() for _ in range(10)]
    for subject in people:
        screened(database, subject, current=True)
    publish_release(database, RULE, OutcomeRules(), now=datetime(2026, 11, 30, tzinfo=UTC))
    leaving = person_reference(people[0])
    with database.read() as session:
        states = [row.state for row in session.execute(select(published_rows))]
    assert sum(leaving in s for s in states) > 1  # in every row they were in

    with database.unit_of_work() as uow:
        cascade.erase(uow, people[0])
    with database.read() as session:
        states = [row.state for row in session.execute(select(published_rows))]
    assert not any(leaving in s for s in states)
    tokens = [t for s in states for t in json.loads(s)["activity"] if t.startswith("gone-")]
    assert len(tokens) == len(set(tokens)) == len(states)  # one unlinkable token per row
    publish_release(database, RULE, OutcomeRules(), now=datetime(2026, 11, 30, 0, 1, tzinfo=UTC))
    assert prevalence_by_org(database)["figures"]["screened"] == {"n": 10}  # 1 < K moved


def test_offers_about_nobody_with_the_longest_measures_are_stored_and_count_under_opt_in(
        database: Database) -> None:
    """An offer declined for the reason with the longest measure name fits on PostgreSQL as
    on SQLite; offers have no consent to look up, so opt-in counts them as opt-out does, and
    a component code of the longest length allowed fits too."""
    offer = MentoringOffered(offer_id="off_" + "1" * 32, org="trust", team="north",
                             gender="male", age_band="35-44", offered_on=date(2026, 11, 5),
                             outcome="declined", decline_reason="prefers-professional-support")
    covered = SessionComponentsRecorded(session_id="ses_1", match_id="mat_1", org="partner-a",
                                        held_on=date(2026, 11, 6), components=("a" * 60,))
    person = new_subject_reference()
    with database.unit_of_work() as uow:
        apply_events(uow, [
            (CloudEvent.wrap(offer, source="/peerlink/mentoring", subject=None), offer),
            (CloudEvent.wrap(covered, source="/peerlink/mentoring", subject=person), covered)])

    for opt_in in (False, True):
        counted = totals(database, opt_in)
        assert counted["offered"] == 1 and counted["offer_declined_prefers_professional_support"] \
            == 1, opt_in
    assert totals(database)["component_" + "a" * 60] == 1
    assert "component_" + "a" * 60 not in totals(database, opt_in=True)  # they did not opt in

"""Reporting's use cases (service_layer/read_model.py, cascade.py, sessions.py, viewing.py)
over the read model in memory: the contributions stored, the releases, figures and the release
rule's memory written, who is counted, and the dashboard sessions opened, looked up, revoked."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

import pytest
from sqlalchemy import insert

from services.reporting.adapters.tables import (
    contributions,
    dashboard_sessions,
    evaluation_consents,
    metadata,
    published_rows,
    releases,
    research_consents,
)
from services.reporting.domain.people import Remembered, person_reference
from services.reporting.service_layer import cascade, read_model, research
from services.reporting.service_layer.sessions import (
    PURGE_AFTER,
    SESSION_ROLE,
    DashboardSessions,
    id_hash,
)
from services.reporting.service_layer.viewing import Access, still_valid
from shared.auth import NotAuthenticated, NotPermitted
from shared.db import utcnow
from shared.events.consent import ErasureRequested
from shared.events.envelope import CloudEvent
from shared.events.screening import EnquiryDue, ScreeningCompleted, TeamTrainingRecorded
from tests.support.fakes import memory_database
from tests.support.fakes_reporting import (
    ORG_KINDS,
    RELEASED_AT,
    K,
    ReportingWorld,
    consent_granted,
    viewer,
    withdrawal,
)


@pytest.fixture
def world() -> ReportingWorld:
    return ReportingWorld()


def publish(world: ReportingWorld, after: timedelta = timedelta(), keep: int = 100,
            min_interval: float = 0.0) -> datetime | None:
    return read_model.publish_release(world.database, world.policy, world.rules,
                                      RELEASED_AT + after, keep=keep, min_interval=min_interval)


def screened_at_org(world: ReportingWorld, count: int, current: bool = False) -> list[str]:
    people = [f"subject-{n}" for n in range(count)]
    for person in people:
        world.screened(person, current=current)
    return people


def prevalence_org(world: ReportingWorld) -> dict[str, Any]:
    release = read_model.latest_release(world.database)
    assert release is not None
    [row] = release[1]["prevalence"]["org"]["last-12-months"]
    assert isinstance(row, dict)
    return row


# --- the read model -------------------------------------------------------------------------

def test_a_counted_event_stores_its_contributions_keyed_by_the_person(
        world: ReportingWorld) -> None:
    event = world.screened("subject-1", current=True)

    stored = {row.measure: row.value for row in world.rows(contributions)}
    assert stored == {"screened": 1, "current_abuse": 1, "past_abuse": 0, "either_abuse": 1,
                      "asked_in_private": 1}
    assert {(row.subject_id, row.source_event) for row in world.rows(contributions)} == {
        ("subject-1", event.dedup_key)}


def test_an_event_about_nobody_or_about_someone_withdrawn_stores_nothing(
        world: ReportingWorld) -> None:
    with world.database.unit_of_work() as uow:
        cascade.withdrawn(uow, "subject-out", ("evaluation",), withdrawal("evaluation"))
    world.screened("subject-out")
    payload = ScreeningCompleted(
        screening_id="scr", org="trust", team="north", borough="camden", gender="female",
        age_band="25-34", asked_on=RELEASED_AT.date(), asked_by_role="nurse",
        training_level=2, private=True, hark_score=0, current_abuse=False, past_abuse="no",
        disclosed=False)
    with world.database.unit_of_work() as uow:
        read_model.apply_event(uow, CloudEvent.wrap(payload, source="/peerlink/screening",
                                                    subject=None), payload)

    assert world.count(contributions) == 0


def test_every_counted_event_type_is_applied_to_the_read_model() -> None:
    handlers = read_model.business_handlers()
    training = TeamTrainingRecorded.event_type

    assert set(handlers) == {*read_model.COUNTED_EVENTS, training}
    assert {handlers[t] for t in read_model.COUNTED_EVENTS} == {read_model.apply_event}
    assert handlers[training] is read_model.apply_training
    assert set(read_model.business_batch_handlers()) == set(handlers)


def trained(world: ReportingWorld, org: str, team: str, day: int, staff: int,
            trained: int) -> None:
    payload = TeamTrainingRecorded(org=org, team=team, as_of=date(2026, 11, day), staff=staff,
                                   trained=trained)
    with world.database.unit_of_work() as uow:
        read_model.apply_training(uow, CloudEvent.wrap(payload, source="/peerlink/screening",
                                                       subject=None), payload)


def test_a_teams_newest_training_record_stands_and_an_older_one_arriving_late_does_not(
        world: ReportingWorld) -> None:
    trained(world, "trust", "north", 10, staff=10, trained=4)
    trained(world, "trust", "north", 20, staff=10, trained=8)
    trained(world, "trust", "north", 15, staff=10, trained=6)  # late, and older
    trained(world, "partner-a", "north", 12, staff=5, trained=5)  # one name, two orgs

    [north] = read_model.training_by_team(world.database, world.policy).values()
    assert (north["staff"]["display"], north["trained"]["display"]) == ("15", "15")
    assert (north["trained"]["rate"], north["as_of"]) == (1.0, "2026-11-12")  # from rounded


def test_coverage_by_team_is_read_against_the_teams_training(world: ReportingWorld) -> None:
    for person in screened_at_org(world, K):
        due = EnquiryDue(org="trust", team="north", due_on=date(2026, 11, 1))
        with world.database.unit_of_work() as uow:
            read_model.apply_event(uow, CloudEvent.wrap(due, source="/peerlink/screening",
                                                        subject=person), due)
    trained(world, "trust", "north", 2, staff=12, trained=9)
    trained(world, "trust", "south", 2, staff=3, trained=1)  # a small team: not told
    publish(world)

    by_team = read_model.published_figures(world.database, "coverage", "team",
                                           "last-12-months", world.policy, world.rules)
    by_org = read_model.published_figures(world.database, "coverage", "org",
                                          "last-12-months", world.policy, world.rules)

    [row] = by_team["rows"]
    assert row["team"] == "north"
    training = row["staff_trained"]
    assert (training["staff"]["display"], training["trained"]["display"]) == ("10", "10")
    assert training["as_of"] == "2026-11-02"
    assert "staff_trained" not in by_org["rows"][0]
    south = read_model.training_by_team(world.database, world.policy)["south"]
    assert (south["staff"]["display"], south["trained"]["display"]) == (
        "fewer than 8", "fewer than 8")
    assert south["trained"]["withheld"] is True


def test_opt_in_counts_only_people_who_granted_evaluation(world: ReportingWorld) -> None:
    world.screened("subject-granted")
    world.screened("subject-silent")
    with world.database.unit_of_work() as uow:
        cascade.granted(uow, *consent_granted("subject-granted", "evaluation"))

    with world.database.read() as session:
        opt_out = {f.subject for f in read_model.facts(session)}
        opt_in = {f.subject for f in read_model.facts(session, opt_in=True)}
    assert opt_out == {"subject-granted", "subject-silent"}
    assert opt_in == {"subject-granted"}


def test_clearing_empties_the_read_model_but_keeps_the_releases_and_the_rules_memory(
        world: ReportingWorld) -> None:
    screened_at_org(world, K)
    with world.database.unit_of_work() as uow:
        cascade.granted(uow, *consent_granted("subject-0", "evaluation"))
    publish(world)

    with world.database.unit_of_work() as uow:
        read_model.clear(uow)

    assert world.count(contributions) == world.count(evaluation_consents) == 0
    assert world.count(metadata.tables["inbox"]) == 0
    assert world.count(releases) == 1
    assert world.count(published_rows) > 0


def test_a_release_publishes_a_figure_once_k_people_are_in_it(world: ReportingWorld) -> None:
    screened_at_org(world, K, current=True)

    released_at = publish(world)

    assert released_at == RELEASED_AT
    assert read_model.latest_release_time(world.database) == RELEASED_AT
    row = prevalence_org(world)
    assert row["group"] == "trust"
    assert row["figures"]["current_abuse"] == {"n": K}
    memory = world.memory()['["prevalence","org","trust","last-12-months"]']
    assert len(memory["figures"]["screened"]) == K


def test_fewer_than_k_new_people_leave_the_published_figure_as_it_was(
        world: ReportingWorld) -> None:
    screened_at_org(world, K)
    publish(world)
    world.screened("subject-late")

    publish(world, timedelta(seconds=5))

    assert prevalence_org(world)["figures"]["screened"] == {"n": K}


def test_a_release_with_nothing_new_serves_the_same_figures_again(
        world: ReportingWorld) -> None:
    screened_at_org(world, K)
    publish(world)
    publish(world, timedelta(seconds=5))

    first, second = (row.cells for row in world.rows(releases))
    assert first == second
    assert world.count(releases) == 2


def test_a_release_within_the_minimum_interval_of_the_last_is_not_made(
        world: ReportingWorld) -> None:
    publish(world)

    assert publish(world, timedelta(seconds=1), min_interval=5.0) is None
    assert world.count(releases) == 1


def test_a_worker_that_did_not_make_the_release_forgets_whom_it_remembered(
        world: ReportingWorld) -> None:
    """Another worker released: whoever left since (an erasure) is not kept in its memory."""
    forgotten: list[bool] = []

    class Watched(Remembered):
        def forget(self) -> None:
            forgotten.append(True)
            super().forget()

    remembered = Watched()
    screened_at_org(world, 3)
    read_model.publish_release(world.database, world.policy, world.rules, RELEASED_AT,
                               remembered=remembered)
    assert forgotten == []

    assert read_model.publish_release(world.database, world.policy, world.rules,
                                      RELEASED_AT + timedelta(seconds=1), min_interval=5.0,
                                      remembered=remembered) is None
    assert forgotten == [True]


def test_only_the_newest_releases_are_kept(world: ReportingWorld) -> None:
    for n in range(4):
        publish(world, timedelta(seconds=n), keep=2)

    assert world.count(releases) == 2
    assert read_model.latest_release_time(world.database) == RELEASED_AT + timedelta(seconds=3)


def test_before_any_release_there_is_none_to_show(world: ReportingWorld) -> None:
    assert read_model.latest_release(world.database) is None
    assert read_model.latest_release_time(world.database) is None


def test_the_figures_of_a_table_are_the_newest_release_under_disclosure_control(
        world: ReportingWorld) -> None:
    screened_at_org(world, K)
    publish(world)

    body = read_model.published_figures(world.database, "prevalence", "org",
                                        "last-12-months", world.policy, world.rules)

    assert body["released_at"] == RELEASED_AT.isoformat()
    [row] = body["rows"]
    assert row["org"] == "trust"
    assert row["screened"]["display"] == "fewer than 8"  # K = 3 people: suppressed
    assert (body["k"], body["group_by"], body["period"]) == (K, "org", "last-12-months")
    assert body["method"].startswith("People screened")


def test_before_the_first_release_a_table_has_no_rows(world: ReportingWorld) -> None:
    body = read_model.published_figures(world.database, "coverage", "team", "2026-11",
                                        world.policy, world.rules)

    assert (body["released_at"], body["rows"]) == (None, [])


def test_a_rebuild_carries_the_rules_memory_into_the_new_database(
        world: ReportingWorld) -> None:
    screened_at_org(world, K)
    publish(world)
    target = ReportingWorld(database=memory_database(metadata))

    carried = read_model.carry_memory(world.database, target.database)

    assert carried == world.count(published_rows) > 0
    assert target.memory() == world.memory()


# --- the consent cascade --------------------------------------------------------------------

def test_granting_evaluation_records_the_consent(world: ReportingWorld) -> None:
    with world.database.unit_of_work() as uow:
        cascade.granted(uow, *consent_granted("subject-1", "evaluation"))

    [row] = world.rows(evaluation_consents, subject_id="subject-1")
    assert (row.state, row.erased) == ("granted", False)


def test_consent_to_peer_mentoring_counts_in_the_funnel_unless_the_person_is_out(
        world: ReportingWorld) -> None:
    with world.database.unit_of_work() as uow:
        cascade.withdrawn(uow, "subject-out", ("evaluation",), withdrawal("evaluation"))
    with world.database.unit_of_work() as uow:
        for subject in ("subject-in", "subject-out"):
            cascade.granted(uow, *consent_granted(subject, "peer-mentoring"))
        cascade.granted(uow, *consent_granted("subject-in", "partner-sharing"))

    rows = world.rows(contributions)
    assert [(r.subject_id, r.measure, r.org) for r in rows] == [
        ("subject-in", "consented", "trust")]
    assert world.rows(evaluation_consents, subject_id="subject-in") == []  # not evaluation


def test_withdrawing_evaluation_subtracts_the_person_and_unlinks_them_from_the_memory(
        world: ReportingWorld) -> None:
    people = screened_at_org(world, K)
    publish(world)
    leaving = people[0]

    with world.database.unit_of_work() as uow:
        cascade.withdrawn(uow, leaving, ("evaluation",), withdrawal("evaluation"))
        assert cascade.excluded(uow, [leaving, people[1]]) == {leaving}

    assert world.rows(contributions, subject_id=leaving) == []
    assert len(world.rows(contributions, subject_id=people[1])) == 5
    assert person_reference(leaving) not in str(world.memory())
    assert person_reference(people[1]) in str(world.memory())


def test_erasure_removes_the_person_marks_them_erased_and_retains_nothing(
        world: ReportingWorld) -> None:
    world.screened("subject-1")

    with world.database.unit_of_work() as uow:
        retained = cascade.erase(uow, "subject-1")

    assert retained == 0
    assert world.rows(contributions) == []
    [row] = world.rows(evaluation_consents, subject_id="subject-1")
    assert (row.state, row.erased) == ("withdrawn", True)


def erasure(scope: Literal["subject", "organisation"]) -> ErasureRequested:
    return ErasureRequested(withdrawal_id="w-1", purposes=("evaluation",), method="verbal",
                            org="partner-a", scope=scope)


def test_an_organisations_erasure_removes_only_its_contributions(
        world: ReportingWorld) -> None:
    world.screened("subject-1", org="trust")
    world.screened("subject-1", org="partner-a")

    with world.database.unit_of_work() as uow:
        assert cascade.decided_erasure(uow, "subject-1", erasure("organisation")) == 0
        assert cascade.excluded(uow, ["subject-1"]) == set()

    assert {row.org for row in world.rows(contributions)} == {"trust"}


def test_a_subjects_erasure_removes_them_everywhere(world: ReportingWorld) -> None:
    world.screened("subject-1", org="trust")

    with world.database.unit_of_work() as uow:
        cascade.decided_erasure(uow, "subject-1", erasure("subject"))
        assert cascade.excluded(uow, ["subject-1"]) == {"subject-1"}

    assert world.rows(contributions) == []


def test_reporting_takes_part_in_the_cascade_for_evaluation_and_research() -> None:
    part = cascade.participant()

    assert part.service == "reporting"
    assert part.purposes == frozenset({"evaluation", "research"})
    assert part.on_withdrawal is cascade.withdrawn
    assert part.on_grant is cascade.granted
    assert part.on_decided_erasure is cascade.decided_erasure


def test_research_is_granted_and_withdrawn_per_holder_apart_from_evaluation(
        world: ReportingWorld) -> None:
    with world.database.unit_of_work() as uow:
        cascade.granted(uow, *consent_granted("subject-1", "research"))
        cascade.granted(uow, *consent_granted("subject-2", "research"))
        cascade.granted(uow, *consent_granted("subject-2", "research", org="partner-a"))
        cascade.granted(uow, *consent_granted("subject-2", "evaluation"))
    with world.database.unit_of_work() as uow:
        cascade.withdrawn(uow, "subject-2", ("research",), withdrawal("research"))
    states = {(r.subject_id, r.org): r.state for r in world.rows(research_consents)}
    assert states == {("subject-1", "trust"): "granted", ("subject-2", "trust"): "withdrawn",
                      ("subject-2", "partner-a"): "granted"}
    assert [r.state for r in world.rows(evaluation_consents)] == ["granted"]

    with world.database.unit_of_work() as uow:
        cascade.erase(uow, "subject-1")
        cascade.decided_erasure(uow, "subject-2", erasure("organisation"))
    assert [(r.subject_id, r.org) for r in world.rows(research_consents)] == [
        ("subject-2", "trust")]


def test_the_extract_holds_each_holders_records_under_its_own_research_consent(
        world: ReportingWorld) -> None:
    world.screened("both-a", org="trust")
    world.screened("both-a", org="partner-a")
    world.screened("trust-only")
    world.screened("never")
    world.screened("left-evaluation")
    with world.database.unit_of_work() as uow:
        cascade.granted(uow, *consent_granted("both-a", "research", org="partner-a"))
        cascade.granted(uow, *consent_granted("trust-only", "research"))
        cascade.granted(uow, *consent_granted("left-evaluation", "research"))
        cascade.granted(uow, *consent_granted("never", "evaluation"))
        cascade.withdrawn(uow, "left-evaluation", ("evaluation",), withdrawal("evaluation"))
    # a contribution stored after the withdrawal (a batch that looked just before it)
    late = dict(world.rows(contributions, subject_id="trust-only")[0]._mapping,
                subject_id="left-evaluation")
    late.pop("id")
    with world.database.unit_of_work() as uow:
        uow.session.execute(contributions.insert().values(**late))

    with world.database.read() as session:
        facts = research.research_facts(session)
    assert {(f.subject, f.dims["org"]) for f in facts} == {
        ("both-a", "partner-a"), ("trust-only", "trust")}


# --- dashboard sessions ---------------------------------------------------------------------

@pytest.fixture
def sessions(world: ReportingWorld) -> DashboardSessions:
    return DashboardSessions(world.database, 3600, ORG_KINDS)


def test_a_session_keeps_only_the_hash_of_its_id_and_ends_with_the_token(
        world: ReportingWorld, sessions: DashboardSessions) -> None:
    token_expires_at = utcnow() + timedelta(minutes=10)

    opened = sessions.open(viewer("trust", "ops-viewer", "dpo"), token_expires_at)

    [row] = world.rows(dashboard_sessions)
    assert row.id_hash == id_hash(opened.session_id) != opened.session_id
    assert opened.expires_at == token_expires_at  # sooner than the hour's lifetime
    assert (row.org, row.subject) == ("trust", "viewer-at-trust")


def test_a_session_lasts_no_longer_than_its_lifetime(sessions: DashboardSessions) -> None:
    opened = sessions.open(viewer(), utcnow() + timedelta(days=2))

    assert opened.expires_at <= utcnow() + timedelta(seconds=3600)


def test_a_session_is_refused_without_the_role_or_with_an_expired_token(
        world: ReportingWorld, sessions: DashboardSessions) -> None:
    with pytest.raises(NotPermitted):
        sessions.open(viewer("trust", "dpo"), utcnow() + timedelta(minutes=10))
    with pytest.raises(NotAuthenticated):
        sessions.open(viewer(), utcnow() - timedelta(seconds=1))

    assert world.count(dashboard_sessions) == 0


def test_a_looked_up_session_acts_as_an_ops_viewer_of_its_organisation_only(
        sessions: DashboardSessions) -> None:
    opened = sessions.open(viewer("partner-a", "ops-viewer", "coordinator"),
                           utcnow() + timedelta(minutes=10))

    active = sessions.lookup(opened.session_id)

    assert active.principal.roles == frozenset({SESSION_ROLE})
    assert (active.principal.org, active.principal.org_kind) == ("partner-a", "dva-partner")
    assert active.expires_at == opened.expires_at
    with pytest.raises(NotAuthenticated):
        sessions.lookup("no-such-session")


def test_a_revoked_session_is_refused_from_then_on(sessions: DashboardSessions) -> None:
    opened = sessions.open(viewer(), utcnow() + timedelta(minutes=10))
    assert sessions.is_active(opened.session_id)

    assert sessions.revoke(opened.session_id) is True

    assert not sessions.is_active(opened.session_id)
    assert sessions.revoke(opened.session_id) is False
    with pytest.raises(NotAuthenticated):
        sessions.lookup(opened.session_id)


def test_a_viewer_by_session_lasts_while_the_session_does_and_by_token_until_it_expires(
        sessions: DashboardSessions) -> None:
    now = utcnow()
    opened = sessions.open(viewer(), now + timedelta(minutes=10))
    by_session = Access(viewer(), opened.expires_at, opened.session_id)
    by_token = Access(viewer(), now + timedelta(minutes=1))

    assert still_valid(sessions, by_session, now)
    assert still_valid(sessions, by_token, now)
    assert not still_valid(sessions, by_token, now + timedelta(minutes=1))
    sessions.revoke(opened.session_id)
    assert not still_valid(sessions, by_session, now)


def test_signing_in_purges_sessions_long_expired(world: ReportingWorld,
                                                  sessions: DashboardSessions) -> None:
    long_ago = utcnow() - PURGE_AFTER - timedelta(hours=1)
    with world.database.unit_of_work() as uow:
        uow.session.execute(insert(dashboard_sessions).values(
            id_hash="0" * 64, org="trust", subject="someone", created_at=long_ago,
            expires_at=long_ago, revoked_at=None))

    opened = sessions.open(viewer(), utcnow() + timedelta(minutes=10))

    assert [row.id_hash for row in world.rows(dashboard_sessions)] == [
        id_hash(opened.session_id)]

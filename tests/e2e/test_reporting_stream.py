"""The reporting stream over the real broker, every service its own process.

Figures after a scripted set of events equal the hand-computed expectation; a withdrawal of
evaluation changes them at the next release and is acknowledged; a rebuild from the log equals
the live figures; two reporting workers in one group give the same figures as one; a poison
record is dead-lettered and the stream goes on. These test the pipeline, so the release rule
runs with K = 1 (every change published at once); test_reporting_differencing.py runs it at
the default K on the same pipeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from services.reporting.adapters.tables import metadata
from services.reporting.domain.research import study_pseudonym
from services.reporting.entrypoints.rebuild import rebuild
from services.reporting.service_layer.read_model import latest_release
from shared.crypto import load_key
from shared.db import Database
from shared.kafka.topics import deadletter_topic, events_topic
from tests.support.kafka import headers_of, read_topic
from tests.support.platform import RunningPlatform, running_platform, wait_for

pytestmark = pytest.mark.kafka
PERIOD = "2026-11"


@pytest.fixture(scope="module")
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("reporting"), "sqlite",
                          reporting_people_to_change="1") as running:
        yield running


def figures(platform: RunningPlatform, kind: str, team: str) -> dict[str, Any] | None:
    response = httpx.get(platform.url("reporting", f"/v1/{kind}"),
                         params={"group_by": "team", "period": PERIOD},
                         headers=platform.headers("trust", "ops-viewer"), timeout=10)
    response.raise_for_status()
    rows = [r for r in response.json()["rows"] if r["team"] == team]
    return rows[0] if rows else None


def screen(platform: RunningPlatform, team: str, *, current: bool, past: str,
           outcome: str = "asked", nhs_number: str | None = None, **changes: Any) -> str:
    hark = {"humiliated": current, "afraid": False, "raped": False, "kicked": False}
    body = platform.screening(team, hark=hark, past_abuse=past, outcome=outcome, **changes)
    if nhs_number is not None:
        body["nhs_number"] = nhs_number
    if outcome != "asked":
        body = {k: v for k, v in body.items() if k not in {"hark", "past_abuse"}}
    response = httpx.post(platform.url("screening", "/v1/screenings"), json=body,
                          headers=platform.headers("trust", "clinician"), timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["subject_id"])


def due(platform: RunningPlatform, team: str) -> str:
    """An enquiry due in the period for a new person; returns their NHS number."""
    nhs_number = next(platform.numbers)
    response = httpx.post(platform.url("screening", "/v1/enquiries/due"), json={
        "nhs_number": nhs_number, "org": "trust", "team": team,
        "due_on": f"{PERIOD}-01"}, headers=platform.headers("trust", "clinician"), timeout=10)
    assert response.status_code == 201, response.text
    return nhs_number


def scripted(platform: RunningPlatform, team: str) -> list[str]:
    """24 people due; of them 20 screened (9 current abuse, 5 past of whom 3 also current), 2
    declined, 1 not safe, 1 not yet asked; one person screened three times. Returns the
    subjects with current abuse."""
    numbers = [due(platform, team) for _ in range(24)]
    current = [screen(platform, team, current=True, past="yes" if i < 3 else "no",
                      nhs_number=numbers[i]) for i in range(9)]
    for i in range(11):
        screen(platform, team, current=False, past="yes" if i < 2 else "no",
               nhs_number=numbers[9 + i])
    for _ in range(2):  # asked again: still one person, by their most recent screening
        screen(platform, team, current=False, past="no", nhs_number=numbers[19])
    for i, outcome in enumerate(("declined", "declined", "not-safe-to-ask")):
        screen(platform, team, current=False, past="no", outcome=outcome,
               nhs_number=numbers[20 + i])
    return current


def test_figures_equal_the_hand_computed_expectation_and_follow_a_withdrawal(
        platform: RunningPlatform) -> None:
    team = f"stream-{uuid.uuid4().hex[:6]}"
    current = scripted(platform, team)

    row = wait_for(lambda: (r := figures(platform, "prevalence", team))
                   and r["screened"]["value"] == 20 and r)
    # screened 20; current 9 -> 10; past 5 -> 5; either 9 + 2 = 11 -> 10
    assert row["current_abuse"]["display"] == "10"
    assert row["current_abuse"]["rate"] == 0.5
    assert row["past_abuse"]["display"] == "fewer than 8"
    assert row["past_abuse"]["withheld"] is True
    assert row["either_abuse"]["display"] == "10"
    coverage = wait_for(lambda: (r := figures(platform, "coverage", team))
                        and r["due"]["value"] == 25 and r["screened"]["value"] == 20
                        and r["not_safe_to_ask"]["suppressed"] and r)
    # due 24 -> 25; screened 20 of them over due: 20 / 25 from rounded figures
    assert coverage["screened"]["rate"] == 0.8
    assert coverage["declined"]["display"] == "fewer than 8"
    assert coverage["not_safe_to_ask"]["display"] == "fewer than 8"
    assert coverage["asked_in_private"]["display"] in {"15", "20"}

    withdrawals = [httpx.post(
        platform.url("consent", f"/v1/subjects/{subject}/withdrawals"),
        json={"purposes": ["evaluation"], "method": "verbal"},
        headers=platform.headers("trust", "clinician"), timeout=10).json()["withdrawal_id"]
        for subject in current[:3]]

    # 17 screened -> 15; current 6 -> fewer than 8
    after = wait_for(lambda: (r := figures(platform, "prevalence", team))
                     and r["screened"]["value"] == 15 and r)
    assert after["current_abuse"]["display"] == "fewer than 8"
    def completed(withdrawal_id: str) -> dict[str, Any] | None:
        state: dict[str, Any] = httpx.get(
            platform.url("consent", f"/v1/withdrawals/{withdrawal_id}"),
            headers=platform.headers("trust", "clinician"), timeout=10).json()
        return state if state["status"] == "complete" else None

    for withdrawal_id in withdrawals:
        status = wait_for(partial(completed, withdrawal_id))
        assert status["services"]["reporting"]["status"] == "applied"


def figures_only(release: Any) -> Any:
    """A release without the times its rows changed (a rebuild changes them all at once)."""
    if isinstance(release, dict):
        return {k: figures_only(v) for k, v in release.items() if k != "changed_at"}
    if isinstance(release, list):
        return [figures_only(v) for v in release]
    return release


def live_snapshot(platform: RunningPlatform) -> Any:
    database = Database(platform.settings.database_url("reporting"), metadata)
    try:
        release = latest_release(database)
        assert release is not None
        return figures_only(release[1])
    finally:
        database.dispose()


@pytest.fixture
def same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild in this process applies the release rule the platform's workers apply."""
    monkeypatch.setenv("PEERLINK_REPORTING_PEOPLE_TO_CHANGE", "1")


def test_why_enquiries_were_not_made_and_whether_being_asked_was_all_right_reach_a_release(
        platform: RunningPlatform) -> None:
    """The study's question (a): enquiries due but not made, with their coded reasons; the
    person's view of being asked; and each team's staff training beside its coverage."""
    team = f"stream-{uuid.uuid4().hex[:6]}"
    clinician = platform.headers("trust", "clinician")
    for i in range(10):  # 8 with no private space, 2 too unwell
        body = {k: v for k, v in platform.screening(team).items()
                if k not in {"hark", "past_abuse"}}
        body.update(nhs_number=due(platform, team), outcome="not-asked", private=False,
                    not_asked_reason="no-private-space" if i < 8 else "too-unwell")
        response = httpx.post(platform.url("screening", "/v1/screenings"), json=body,
                              headers=clinician, timeout=10)
        assert response.status_code == 201, response.text
    for i in range(10):  # 9 found it all right and comfortable, 1 did not
        answer = {"acceptable": "yes", "comfort": 5} if i < 9 else {"acceptable": "no",
                                                                    "comfort": 1}
        response = httpx.post(platform.url("screening", "/v1/screenings"),
                              json=platform.screening(team, acceptability=answer),
                              headers=clinician, timeout=10)
        assert response.status_code == 201, response.text
    response = httpx.post(platform.url("screening", "/v1/team-training"), json={
        "org": "trust", "team": team, "as_of": "2026-11-01", "staff": 12, "trained": 9},
        headers=platform.headers("trust", "safeguarding-lead"), timeout=10)
    assert response.status_code == 201, response.text

    row = wait_for(lambda: (r := figures(platform, "coverage", team))
                   and r["not_asked"]["value"] == 10
                   and r["acceptability_answered"]["value"] == 10
                   and r.get("staff_trained") and r)
    # 10 not asked; 8 for want of a private space -> 10, a rate from rounded figures
    assert (row["not_asked_no_private_space"]["display"],
            row["not_asked_no_private_space"]["rate"]) == ("10", 1.0)
    assert row["not_asked_too_unwell"]["display"] == "fewer than 8"
    assert row["not_asked_no_time"]["display"] == "0"
    # 10 answered; 9 found it all right -> 10 of 10; 1 did not: suppressed
    assert (row["found_acceptable"]["display"], row["found_acceptable"]["rate"]) == ("10", 1.0)
    assert row["not_acceptable"]["display"] == "fewer than 8"
    assert row["comfortable"]["display"] == "10"
    # staff trained: 12 -> 10, 9 -> 10, under the same control as every figure
    assert (row["staff_trained"]["staff"]["display"],
            row["staff_trained"]["trained"]["display"],
            row["staff_trained"]["as_of"]) == ("10", "10", "2026-11-01")
    # the people not asked were due; none of them counts as screened
    assert row["due"]["value"] == 10 and row["screened"]["value"] == 0


def call(platform: RunningPlatform, service: str, path: str, body: dict[str, Any], org: str,
         role: str) -> dict[str, Any]:
    response = httpx.post(platform.url(service, path), json=body,
                          headers=platform.headers(org, role), timeout=10)
    assert response.is_success, response.text
    answer: dict[str, Any] = response.json()
    return answer


def journey(platform: RunningPlatform, team: str, mentor_id: str, research: str | None = None,
            gender: str = "female") -> str:
    """One person due, screened (past abuse), referred with consent to partner-a, matched,
    a session covering two components, an adverse event, an ending with feedback, and a
    3-month follow-up; research consent ``granted`` (at the Trust and the partner),
    ``withdrawn`` after the Trust recorded it, or never asked. Returns the subject."""
    numbers = due(platform, team)
    subject = screen(platform, team, current=False, past="yes", nhs_number=numbers,
                     gender=gender)
    purposes: list[tuple[str, dict[str, Any]]] = [
        ("peer-mentoring", {}), ("partner-sharing", {"recipients": ["partner-a"]})]
    if research is not None:
        purposes.append(("research", {}))
    for purpose, more in purposes:
        call(platform, "consent", f"/v1/subjects/{subject}/consents",
             {"purpose": purpose, "method": "verbal", "recorded_by": "Nurse Okafor", **more},
             "trust", "clinician")
    if research == "withdrawn":
        call(platform, "consent", f"/v1/subjects/{subject}/withdrawals",
             {"purposes": ["research"], "method": "verbal"}, "trust", "clinician")
    referral = call(platform, "mentoring", "/v1/referrals", {
        "subject_id": subject, "referred_by_org": "trust", "to_org": "partner-a",
        "safe_contact": {"phone": "07700 900123", "times": "evenings",
                         "may_leave_message": False}}, "trust", "clinician")
    match_id = call(platform, "mentoring", f"/v1/referrals/{referral['id']}/match", {},
                    "partner-a", "mentor-coordinator")["match_id"]
    if research == "granted":  # the partner's records join the research under its own consent
        call(platform, "consent", f"/v1/subjects/{subject}/consents",
             {"purpose": "research", "method": "verbal", "recorded_by": "Worker Ali"},
             "partner-a", "partner-staff")
    coordinator = ("partner-a", "mentor-coordinator")
    call(platform, "mentoring", "/v1/sessions", {
        "match_id": match_id, "held_on": f"{PERIOD}-20", "duration_minutes": 50,
        "mode": "phone", "attendance": "attended",
        "components": ["safety-planning", "emotional-support"]}, *coordinator)
    call(platform, "mentoring", "/v1/adverse-events", {
        "match_id": match_id, "occurred_on": f"{PERIOD}-21", "kind": "distress",
        "serious": False, "relatedness": "possibly-related", "details": "upset"}, *coordinator)
    call(platform, "mentoring", f"/v1/matches/{match_id}/end", {
        "planned": True, "ended_on": f"{PERIOD}-28",
        "feedback": {"helped": 5, "made_worse": "no"}}, *coordinator)
    call(platform, "mentoring", "/v1/outcomes", {
        "match_id": match_id, "timepoint": "3-months", "instrument": "SWEMWBS",
        "items": [4] * 7}, *coordinator)
    assert mentor_id
    return subject


def test_offers_sessions_feedback_follow_ups_and_adverse_events_reach_the_feasibility_funnel(
        platform: RunningPlatform) -> None:
    """The study's questions (b) and (c): eight people through the whole programme, and
    eight offers declined, each at the next release."""
    team = f"stream-{uuid.uuid4().hex[:6]}"
    people = 8
    today = date.today()
    mentor = call(platform, "mentoring", "/v1/mentors", {
        "org": "partner-a", "display_name": "Sam", "gender": "female", "languages": ["en"],
        "borough": "camden", "modes": ["phone"], "capacity": people,
        "training_completed_on": (today - timedelta(days=60)).isoformat(),
        "check_level": "enhanced",
        "check_completed_on": (today - timedelta(days=60)).isoformat(), "status": "active"},
        "partner-a", "mentor-coordinator")
    call(platform, "mentoring", f"/v1/mentors/{mentor['id']}/supervision",
         {"held_on": today.isoformat(), "covered": ["intervention-components"]},
         "partner-a", "mentor-coordinator")
    # research consent: six granted (women), one granted then withdrawn and one never (men)
    consented = [journey(platform, team, mentor["id"], "granted") for _ in range(people - 2)]
    others = [journey(platform, team, mentor["id"], research, gender="male")
              for research in ("withdrawn", None)]
    for _ in range(people):
        call(platform, "mentoring", "/v1/offers", {
            "org": "trust", "team": team, "gender": "male", "age_band": "35-44",
            "offered_on": f"{PERIOD}-03", "outcome": "declined",
            "decline_reason": "has-other-support"}, "trust", "clinician")

    def row(path: str, group_by: str, key: str, period: str = PERIOD
            ) -> dict[str, Any] | None:
        response = httpx.get(platform.url("reporting", path),
                             params={"group_by": group_by, "period": period},
                             headers=platform.headers("trust", "ops-viewer"), timeout=10)
        response.raise_for_status()
        rows = [r for r in response.json()["rows"] if r[group_by] == key]
        return rows[0] if rows else None

    offered = wait_for(lambda: (r := row("/v1/mentoring-offers", "team", team))
                       and r["offered"]["value"] == 10 and r)
    assert offered["offer_declined"]["rate"] == 1.0
    assert offered["offer_declined_has_other_support"]["display"] == "10"
    # the eight people's mentoring: every episode covered both components, had feedback, an
    # adverse event and a 3-month follow-up (8 -> 10 of 10)
    # (referred today: the episodes' cohort is this month)
    this_month = today.strftime("%Y-%m")
    episode = wait_for(lambda: (r := row("/v1/engagement", "org", "partner-a", this_month))
                       and r["followed_up_3_months"]["value"] is not None
                       and r["followed_up_3_months"]["value"] >= 10 and r)
    assert episode["components"]["safety_planning"]["value"] >= 10
    assert episode["feedback_given"]["value"] >= 10
    assert episode["adverse_event"]["value"] >= 10
    # (each person entered when their enquiry fell due, in PERIOD)
    funnel = wait_for(lambda: (r := row("/v1/feasibility", "org", "trust"))
                      and r["followed_up_3_months"]["value"] is not None
                      and r["followed_up_3_months"]["value"] >= 10 and r)
    for stage in ("due", "asked", "disclosed", "consented", "referred", "matched",
                  "attended_session", "planned_ending"):
        assert funnel[stage]["value"] >= 10, stage
    csv = httpx.get(platform.url("reporting", "/v1/feasibility"),
                    params={"group_by": "org", "period": PERIOD, "format": "csv"},
                    headers=platform.headers("trust", "ops-viewer"), timeout=10)
    assert csv.status_code == 200 and "followed_up_3_months" in csv.text.splitlines()[0]

    # the research extract: the research-consented people only, under the study pseudonym
    key = load_key(None, None, platform.settings.var_dir / "development-research-pseudonym.key")
    researcher = platform.headers("trust", "researcher")

    def extract() -> dict[str, Any]:
        response = httpx.get(platform.url("reporting", "/v1/research/extract"),
                             headers=researcher, timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    taken = wait_for(lambda: (body := extract()) and body["people"] == len(consented)
                     and all(r["followed_up_3_months"] for r in body["rows"]) and body)
    assert {r["study_id"] for r in taken["rows"]} == {study_pseudonym(key, s)
                                                      for s in consented}
    text = str(taken)
    assert not any(subject in text for subject in (*consented, *others))
    assert all(r["sessions_covering_safety_planning"] == 1 for r in taken["rows"])
    research = httpx.get(platform.url("reporting", "/v1/research/feasibility"),
                         params={"group_by": "gender"}, headers=researcher, timeout=10)
    assert research.status_code == 200, research.text
    assert [r["gender"] for r in research.json()["rows"]] == ["female"]  # no man counted
    engagement = httpx.get(platform.url("reporting", "/v1/research/engagement"),
                           params={"group_by": "org"}, headers=researcher, timeout=10)
    assert engagement.status_code == 200, engagement.text
    assert "no-store" in engagement.headers["cache-control"]
    [partner] = [r for r in engagement.json()["rows"] if r["org"] == "partner-a"]
    # six people: their sessions are withheld with them, as their counts are suppressed
    assert partner["referred"]["display"] == "fewer than 8"
    assert partner["session_components"] == {}
    assert partner["sessions_with_components"]["suppressed"] is True
    as_csv = httpx.get(platform.url("reporting", "/v1/research/extract"),
                       params={"format": "csv"}, headers=researcher, timeout=10)
    assert as_csv.status_code == 200 and "study_id" in as_csv.text.splitlines()[0]
    assert len(as_csv.text.strip().splitlines()) == 1 + len(consented)
    log = httpx.get(platform.url("reporting", "/v1/research/extracts"),
                    headers=platform.headers("trust", "dpo"), timeout=10).json()["extracts"]
    assert {e["kind"] for e in log} >= {"extract", "figures-feasibility",
                                        "figures-engagement"}
    assert any(e["extract_id"] == taken["extract_id"] and e["people"] == len(consented)
               and e["digest"] == taken["digest"] for e in log)


@pytest.mark.usefixtures("same_rule")
def test_a_rebuild_from_the_log_equals_the_live_figures(platform: RunningPlatform,
                                                       tmp_path: Path) -> None:
    team = f"stream-{uuid.uuid4().hex[:6]}"
    withdrawn = screen(platform, team, current=True, past="no")
    for _ in range(8):
        screen(platform, team, current=False, past="yes")
    httpx.post(platform.url("consent", f"/v1/subjects/{withdrawn}/withdrawals"),
               json={"purposes": ["evaluation"], "method": "written"},
               headers=platform.headers("trust", "clinician"), timeout=10)
    wait_for(lambda: (r := figures(platform, "prevalence", team))
             and r["screened"]["value"] == 10 and r["current_abuse"]["value"] == 0)

    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    summary = rebuild(platform.settings, url)

    assert summary.records >= 10
    rebuilt = Database(url, metadata)
    release = latest_release(rebuilt)
    rebuilt.dispose()
    assert release is not None
    wait_for(lambda: live_snapshot(platform) == figures_only(release[1]), timeout=45)


@pytest.mark.usefixtures("same_rule")
def test_two_reporting_workers_give_the_same_figures_as_one(platform: RunningPlatform,
                                                            tmp_path: Path) -> None:
    offset = str(platform.settings.port_offset + 5)
    platform.processes.start_process("reporting-worker-2", "reporting-worker",
                                     PEERLINK_PORT_OFFSET=offset)
    try:
        team = f"stream-{uuid.uuid4().hex[:6]}"
        for i in range(12):
            screen(platform, team, current=i < 8, past="no")
        row = wait_for(lambda: (r := figures(platform, "prevalence", team))
                       and r["screened"]["value"] == 10 and r)
        assert row["current_abuse"]["display"] == "10"  # 8 of 12 -> 10
        url = f"sqlite:///{tmp_path / 'one-worker.db'}"
        rebuild(platform.settings, url)
        one = Database(url, metadata)
        release = latest_release(one)
        one.dispose()
        assert release is not None
        wait_for(lambda: live_snapshot(platform) == figures_only(release[1]), timeout=20)
    finally:
        platform.processes.stop_process("reporting-worker-2")


def test_a_poison_record_is_dead_lettered_and_the_stream_goes_on(
        platform: RunningPlatform) -> None:
    marker = uuid.uuid4().hex.encode()
    producer = KafkaProducer(bootstrap_servers=platform.settings.kafka_bootstrap, acks="all")
    poison = producer.send(events_topic("screening"), key=marker,
                           value=b'{"specversion": "1.0"')
    producer.flush()
    producer.close()
    sent = poison.get(timeout=30)
    team = f"stream-{uuid.uuid4().hex[:6]}"
    screen(platform, team, current=False, past="no")

    dead = wait_for(lambda: [r for r in read_topic(platform.settings.kafka_bootstrap,
                                                   deadletter_topic("reporting"), timeout=2)
                             if headers_of(r).get("peerlink-original-offset") == str(sent.offset)
                             and headers_of(r).get("peerlink-original-partition")
                             == str(sent.partition)])
    assert dead[0].key != marker  # sealed
    headers = headers_of(dead[0])
    assert headers["peerlink-original-topic"] == events_topic("screening")
    assert headers["peerlink-error-reason"] == "validation"
    assert wait_for(lambda: figures(platform, "prevalence", team))["screened"]["display"] \
        == "fewer than 8"

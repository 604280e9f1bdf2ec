"""Faults on the real broker, every service its own process (issue 13).

The reporting worker killed with ``kill -9`` again and again while events flow still publishes
exactly the figures of what was sent; the screening API and its worker (the outbox relay)
killed in the middle of concurrent writes leave no request half done: every acknowledged write
reaches Kafka and the figures once, every other one is absent or complete; a frozen broker
(SIGSTOP) does not stop the APIs accepting writes, which wait in the outbox, raise its backlog
gauges and drain once the broker resumes, so the figures catch up.

The release rule runs with K = 1 and disclosure control off (no rounding, no suppression), so
the published figures are the exact counts and one lost event shows. Each test prints a
summary line of its figures (``-s`` shows them; docs/reliability.md records them).
"""

from __future__ import annotations

import itertools
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kafka import KafkaProducer
from sqlalchemy import func, select

from services.reporting.adapters.tables import contributions
from services.reporting.adapters.tables import metadata as reporting_metadata
from services.screening.adapters.tables import metadata as screening_metadata
from services.screening.adapters.tables import screenings
from services.screening.service_layer.screenings import SOURCE
from shared.db import Database
from shared.events.envelope import CloudEvent
from shared.events.screening import ScreeningCompleted
from shared.kafka.deadletters import read_records
from shared.kafka.topics import SERVICES, events_topic
from tests.support.platform import (
    RunningPlatform,
    answers,
    consumer_lag,
    metric,
    running_platform,
    wait_for,
    worker_url,
)
from tests.support.scale import scale

pytestmark = [pytest.mark.kafka, pytest.mark.soak]
PERIOD = "2026-11"
EXACT_FIGURES = {"reporting_people_to_change": "1", "reporting_suppress_upto": "0",
                 "reporting_round_to": "1"}
MEASURES = ("screened", "current_abuse", "past_abuse", "either_abuse")
CONTRIBUTIONS_PER_SCREENING = 5
"""The measures one screening-completed event stores for its person (asked_in_private too)."""
REPORTING_GROUP = "peerlink-reporting"
REPORTING_TOPICS = (events_topic("screening"), events_topic("mentoring"), events_topic("consent"))
ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = Path("/usr/bin/promtool")


@pytest.fixture(scope="module")
def sqlite_platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[RunningPlatform]:
    var_dir = tmp_path_factory.mktemp("faults")
    # named, so that the PostgreSQL platform's URLs in this process's environment (set while
    # both platforms run) reach neither these processes nor this module's queries
    files = {f"{s}_database_url": f"sqlite:///{var_dir / f'{s}.db'}" for s in SERVICES}
    with running_platform(request, var_dir, "sqlite", **EXACT_FIGURES, **files) as running:
        yield running


@pytest.fixture(scope="module")
def postgresql_platform(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("faults-pg"), "postgresql",
                          **EXACT_FIGURES) as running:
        yield running


def database_url(platform: RunningPlatform, service: str) -> str:
    """The database the platform's processes of ``service`` use."""
    return platform.env[f"PEERLINK_{service.upper()}_DATABASE_URL"]


def summary(test: str, *, sent: int, acknowledged: int, lost: int | str, duplicated: int,
            kills: int, started: float, **more: object) -> None:
    """The test's figures on one line, for docs/reliability.md."""
    extra = "".join(f" {k.replace('_', '-')}={v}" for k, v in more.items())
    print(f"\nFAULTS {test}: sent={sent} acknowledged={acknowledged} lost={lost} "
          f"duplicated-in-effect={duplicated} kills-survived={kills} "
          f"seconds={time.monotonic() - started:.0f}{extra}", flush=True)


def published(platform: RunningPlatform, teams: set[str], after: datetime | None = None
              ) -> dict[str, tuple[int, ...]]:
    """The published prevalence figures of ``teams`` in a release made after ``after``."""
    def fetch() -> dict[str, Any] | None:
        response = httpx.get(platform.url("reporting", "/v1/prevalence"),
                             params={"group_by": "team", "period": PERIOD},
                             headers=platform.headers("trust", "ops-viewer"), timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        released = body["released_at"]
        fresh = after is None or (released and datetime.fromisoformat(released) > after)
        return body if fresh else None

    body = wait_for(fetch, timeout=scale(60, 600))
    return {row["team"]: tuple(int(row[m]["value"] or 0) for m in MEASURES)
            for row in body["rows"] if row["team"] in teams}


def settled(platform: RunningPlatform) -> datetime:
    """Wait until the reporting worker has committed every record on its topics; returns
    when, so that a release made after it holds everything."""
    wait_for(lambda: consumer_lag(platform.settings.kafka_bootstrap, REPORTING_GROUP,
                                  REPORTING_TOPICS) == 0, timeout=scale(240, 1800))
    return datetime.now(UTC)


def until(condition: Callable[[], Any], timeout: float) -> bool:
    """Whether ``condition`` became truthy within ``timeout`` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def restart(platform: RunningPlatform, *names: str) -> None:
    """``kill -9`` each process, start it again and wait until it answers its health check."""
    for name in names:
        platform.processes.signal_process(name)
    for name in names:
        platform.processes.start_process(name)
    for name in names:
        service, kind = name.rsplit("-", 1)
        url = (worker_url(platform, service, "/healthz") if kind == "worker"
               else platform.url(service, "/healthz"))
        wait_for(lambda u=url: answers(u), timeout=120)


# --- the reporting worker killed while events flow -------------------------------------------

def screening_event(rng: random.Random, team: str) -> CloudEvent:
    """A screening of a new person as the screening service publishes it."""
    hark_score = rng.choices([0, 1, 2], weights=[7, 2, 1])[0]
    past = rng.choice(["yes", "no", "unsure"])
    payload = ScreeningCompleted(
        screening_id=f"scr_{uuid.uuid4().hex}", org="trust", team=team, borough="camden",
        gender=rng.choice(["female", "male", "non-binary"]), age_band="25-34",
        asked_on=date(2026, 11, rng.randrange(1, 29)), asked_by_role="care-coordinator",
        training_level=2, private=True, hark_score=hark_score, current_abuse=hark_score >= 1,
        past_abuse=past, disclosed=hark_score >= 1 or past == "yes")
    return CloudEvent.wrap(payload, source=SOURCE, subject=f"sub_{uuid.uuid4().hex}")


def send(producer: KafkaProducer, event: CloudEvent) -> None:
    """Produce ``event`` as the outbox relay does: keyed by the person, typed in a header."""
    assert event.subject is not None
    producer.send(events_topic("screening"), key=event.subject.encode(), value=event.to_bytes(),
                  headers=[("ce_type", event.type.encode())])


def truth_of(events: list[CloudEvent]) -> dict[str, tuple[int, ...]]:
    """Each team's figures computed from what was sent: one person per event."""
    counts: dict[str, Counter[str]] = {}
    for event in events:
        data = event.data
        counts.setdefault(data["team"], Counter()).update({
            "screened": 1, "current_abuse": int(data["current_abuse"]),
            "past_abuse": int(data["past_abuse"] == "yes"),
            "either_abuse": int(data["disclosed"])})
    return {team: tuple(c[m] for m in MEASURES) for team, c in counts.items()}


def applied_here(platform: RunningPlatform) -> float:
    """Screenings the running reporting worker process applied since it started."""
    return metric(worker_url(platform, "reporting", "/metrics"), "peerlink_events_applied_total",
                  service="reporting", event_type="screening-completed") or 0.0


def test_reporting_worker_killed_while_events_flow_publishes_the_ground_truth(
        sqlite_platform: RunningPlatform) -> None:
    platform, started = sqlite_platform, time.monotonic()
    rng = random.Random()
    run = uuid.uuid4().hex[:6]
    kills = scale(5, 12)
    events = [screening_event(rng, f"kill-{run}-{i % 10}") for i in range(scale(3000, 50000))]
    chunks = [events[i::kills + 1] for i in range(kills + 1)]
    producer = KafkaProducer(bootstrap_servers=platform.settings.kafka_bootstrap, acks="all")
    backlog_at_kill: list[int] = []
    try:
        for chunk in chunks[:-1]:
            before = applied_here(platform)
            for event in chunk:
                send(producer, event)
            producer.flush()
            # killed while it is consuming: it has applied some of this backlog, not all
            wait_for(lambda b=before: applied_here(platform) >= b + 20, timeout=120)
            backlog_at_kill.append(consumer_lag(platform.settings.kafka_bootstrap,
                                                REPORTING_GROUP, REPORTING_TOPICS))
            restart(platform, "reporting-worker")
        for event in chunks[-1]:
            send(producer, event)
        producer.flush()
    finally:
        producer.close()

    truth = truth_of(events)
    figures = published(platform, set(truth), after=settled(platform))
    database = Database(database_url(platform, "reporting"), reporting_metadata)
    try:
        with database.read() as session:
            ours = [e.dedup_key for e in events]
            stored = Counter(dict(session.execute(
                select(contributions.c.source_event, func.count())
                .where(contributions.c.team.like(f"kill-{run}-%"))
                .group_by(contributions.c.source_event)).all()))
    finally:
        database.dispose()
    lost = sum(1 for key in ours if stored[key] == 0)
    duplicated = sum(1 for key in ours if stored[key] > CONTRIBUTIONS_PER_SCREENING)
    summary("reporting-worker-kill-9", sent=len(events), acknowledged=len(events), lost=lost,
            duplicated=duplicated, kills=kills, started=started,
            backlog_at_each_kill="/".join(map(str, backlog_at_kill)))
    assert figures == truth
    assert (lost, duplicated) == (0, 0)
    assert all(backlog > 0 for backlog in backlog_at_kill)


# --- concurrent writes: the screening API and its worker killed ------------------------------

@dataclass
class Writers:
    """Threads posting screenings, each of a new person and marked by its own role label."""

    platform: RunningPlatform
    team: str
    threads: int = 4
    timeout: float = 10.0
    stop: threading.Event = field(default_factory=threading.Event)
    results: dict[str, tuple[float, float, int | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)
    _people: set[str] = field(default_factory=set)

    def start(self) -> Writers:
        """Start writing."""
        headers = self.platform.headers("trust", "clinician")
        for n in range(self.threads):
            thread = threading.Thread(target=self._write, args=(n, headers), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def _write(self, n: int, headers: dict[str, str]) -> None:
        url = self.platform.url("screening", "/v1/screenings")
        with httpx.Client(headers=headers, timeout=self.timeout) as client:
            for i in itertools.count():
                if self.stop.is_set():
                    return
                marker = f"writer{n}x{i}"
                with self._lock:
                    body = self.platform.screening(self.team, asked_by_role=marker,
                                                   nhs_number=self._new_person())
                sent = time.monotonic()
                try:
                    status: int | None = client.post(url, json=body).status_code
                except httpx.HTTPError:
                    status = None
                with self._lock:
                    self.results[marker] = (sent, time.monotonic(), status)
                if status is None or status >= 500:
                    time.sleep(0.2)  # the API is down: try again shortly, as a client would

    def _new_person(self) -> str:
        """An NHS number not used before by these writers: one person per request (random
        test-range numbers repeat within a thousand draws)."""
        while (number := next(self.platform.numbers)) in self._people:
            pass
        self._people.add(number)
        return number

    def acknowledged(self) -> set[str]:
        """The markers of the requests answered 2xx so far."""
        with self._lock:
            return {m for m, (_, _, status) in self.results.items()
                    if status is not None and 200 <= status < 300}

    def finish(self) -> dict[str, tuple[float, float, int | None]]:
        """Stop writing; every request's (sent, answered, status), by marker."""
        self.stop.set()
        for thread in self._workers:
            thread.join(timeout=60)
        with self._lock:
            return dict(self.results)


def stored_screenings(platform: RunningPlatform, team: str) -> set[str]:
    """The markers of the team's screening rows in the screening database."""
    database = Database(database_url(platform, "screening"), screening_metadata)
    try:
        with database.read() as session:
            return set(session.execute(select(screenings.c.asked_by_role)
                                       .where(screenings.c.team == team)).scalars())
    finally:
        database.dispose()


def outbox_pending(platform: RunningPlatform) -> int:
    """Unsent rows in the screening outbox, read from its database."""
    database = Database(database_url(platform, "screening"), screening_metadata)
    outbox = screening_metadata.tables["outbox"]
    try:
        with database.read() as session:
            return int(session.execute(select(func.count()).select_from(outbox)
                                       .where(outbox.c.sent_at.is_(None))).scalar_one())
    finally:
        database.dispose()


def events_on_kafka(platform: RunningPlatform, team: str) -> dict[str, list[str]]:
    """Each marker's screening-completed event ids on screening.events, as often as sent."""
    found: dict[str, list[str]] = {}
    # every record, until the topic goes quiet (read_topic stops at its first records)
    for value in read_records(platform.settings.kafka_bootstrap, events_topic("screening"),
                              idle_seconds=3.0):
        event = CloudEvent.from_bytes(value)
        if event.type == "screening-completed" and event.data.get("team") == team:
            found.setdefault(event.data["asked_by_role"], []).append(event.id)
    return found


def test_api_and_relay_killed_mid_write_leave_no_request_half_done(
        postgresql_platform: RunningPlatform) -> None:
    platform, started = postgresql_platform, time.monotonic()
    team = f"crash-{uuid.uuid4().hex[:6]}"
    kills, target = scale(3, 10), scale(400, 6000)
    writers = Writers(platform, team).start()
    try:
        for round_ in range(1, kills + 1):
            wait_for(lambda r=round_: len(writers.acknowledged()) >= r * target // (kills + 1),
                     timeout=scale(300, 1200))
            restart(platform, "screening-api", "screening-worker")
        wait_for(lambda: len(writers.acknowledged()) >= target, timeout=scale(300, 1200))
    finally:
        results = writers.finish()

    wait_for(lambda: outbox_pending(platform) == 0, timeout=120)
    acknowledged = writers.acknowledged()
    rows = stored_screenings(platform, team)
    on_kafka = events_on_kafka(platform, team)
    figures = published(platform, {team}, after=settled(platform))
    screened = figures.get(team, (0,))[0]
    failed = {m for m, (_, _, status) in results.items() if m not in acknowledged}
    lost = len(acknowledged - rows) + len(rows - set(on_kafka))
    duplicated = sum(1 for ids in on_kafka.values() if len(set(ids)) > 1) + max(
        0, screened - len(rows))
    summary("screening-api-and-relay-kill-9", sent=len(results), acknowledged=len(acknowledged),
            lost=lost, duplicated=duplicated, kills=2 * kills, started=started,
            failed_requests=len(failed), failed_but_complete=len(failed & rows),
            republished=sum(len(ids) - 1 for ids in on_kafka.values()))
    assert acknowledged <= rows  # every 2xx is stored ...
    assert set(on_kafka) == rows  # ... every stored one went out, none without its row
    assert all(len(set(ids)) == 1 for ids in on_kafka.values())  # one event each
    assert screened == len(rows)  # and counted once
    assert failed, "no request was cut by the kills: the test did not test anything"


# --- the broker frozen under load -------------------------------------------------------------

def backlog(platform: RunningPlatform) -> tuple[float, float] | None:
    """The screening worker's outbox gauges: pending events and the oldest one's age."""
    url = worker_url(platform, "screening", "/metrics")
    pending = metric(url, "peerlink_outbox_pending_events", service="screening")
    age = metric(url, "peerlink_outbox_oldest_pending_age_seconds", service="screening")
    return None if pending is None or age is None else (pending, age)


def promtool_backlog_alert(observed: list[float], growth_per_second: float,
                           tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """``promtool test rules`` on PeerlinkOutboxBacklogOld: the observed oldest-age samples
    (one per 15 s scrape) must not fire it; the same growth kept up for a long outage
    (15 minutes) must be pending once past 300 s, fire 2 minutes later and clear after the
    drain. Returns promtool's result and the second of such an outage it fires at."""
    step = round(15.0 * growth_per_second, 2)
    crossed = int(300 // step) + 1  # the first scrape above the 300 s threshold
    fires = crossed * 15 + 120
    alert = 'ALERTS{alertname="PeerlinkOutboxBacklogOld"}'
    series = 'peerlink_outbox_oldest_pending_age_seconds{service="screening",instance="w"}'

    def state(name: str) -> list[dict[str, Any]]:
        return [{"labels": f'ALERTS{{alertname="PeerlinkOutboxBacklogOld",alertstate="{name}",'
                           'service="screening",severity="warning"}', "value": 1}]

    def case(values: str, checks: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
        return {"interval": "15s", "input_series": [{"series": series, "values": values}],
                "promql_expr_test": [{"expr": alert, "eval_time": at, "exp_samples": expected}
                                     for at, expected in checks]}

    tests = tmp_path / "backlog_test.yml"
    tests.write_text(yaml.safe_dump({
        "rule_files": [str(ALERTS)], "evaluation_interval": "15s",
        "tests": [
            case(" ".join(f"{v:.0f}" for v in observed) + " 0x20", [("5m", [])]),
            case(f"0+{step:.2f}x60 0x20", [(f"{fires - 15}s", state("pending")),
                                           (f"{fires}s", state("firing")), ("16m", [])]),
        ]}))
    return subprocess.run([str(PROMTOOL), "test", "rules", str(tests)], capture_output=True,
                          text=True, timeout=60, check=False), fires


def growth(samples: list[tuple[float, float, float]]) -> float:
    """How fast the oldest-age gauge grew while the broker was frozen (seconds per second).
    The relay updates it once per tick, so it moves in steps: compare the first and the last
    value it showed, each from when it first showed it."""
    first_seen: dict[float, float] = {}
    for at, _, age in samples:
        if age > 0:
            first_seen.setdefault(age, at)
    (a0, t0), (a1, t1) = min(first_seen.items()), max(first_seen.items())
    return (a1 - a0) / (t1 - t0) if t1 > t0 else a1 / max(1.0, t1)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_frozen_broker_backs_writes_up_in_the_outbox_and_they_drain(
        request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    platform: RunningPlatform = request.getfixturevalue(f"{backend}_platform")
    started = time.monotonic()
    team = f"freeze-{uuid.uuid4().hex[:6]}"
    freeze = scale(15, 30)
    writers = Writers(platform, team, threads=2).start()
    samples: list[tuple[float, float, float]] = []  # (seconds since freeze, pending, age)
    waiting = [0]  # unsent rows in the outbox table, read from the database
    try:
        # steady state first: writes flow through the relay to the figures (the start-up
        # case is test_a_worker_frozen_out_as_it_starts_still_shows_its_backlog)
        wait_for(lambda: published(platform, {team}).get(team, (0,))[0] >= 1, timeout=120)
        frozen_at = time.monotonic()
        platform.processes.signal_broker(signal.SIGSTOP)
        try:
            while (now := time.monotonic()) < frozen_at + freeze:
                if (gauges := backlog(platform)) is not None:
                    samples.append((now - frozen_at, *gauges))
                waiting.append(outbox_pending(platform))
                time.sleep(1.0)
        finally:
            platform.processes.signal_broker(signal.SIGCONT)
            thawed_at = time.monotonic()
        time.sleep(3)
    finally:
        results = writers.finish()

    drained = until(lambda: outbox_pending(platform) == 0
                    and (g := backlog(platform)) is not None and g == (0.0, 0.0), 120)
    after_thaw = time.monotonic() - thawed_at
    acknowledged = writers.acknowledged()
    during = [status for sent, done, status in results.values()
              if sent >= frozen_at and done <= thawed_at]
    screened = published(platform, {team}, after=settled(platform)).get(team, (0,))[0] \
        if drained else 0
    rows = stored_screenings(platform, team)
    peak_pending = max((p for _, p, _ in samples), default=0.0)
    peak_age = max((a for _, _, a in samples), default=0.0)
    summary(f"broker-sigstop-{freeze}s-{backend}", sent=len(results),
            acknowledged=len(acknowledged),
            lost=len(acknowledged - rows) + max(0, len(rows) - screened) if drained else "?",
            duplicated=max(0, screened - len(rows)), kills=0, started=started,
            writes_answered_during_freeze=len(during),
            peak_outbox_rows=max(waiting), peak_outbox_pending_gauge=f"{peak_pending:.0f}",
            peak_oldest_age_gauge=f"{peak_age:.0f}s",
            drained_after=f"{after_thaw:.0f}s" if drained else "never")

    assert during and all(s is not None and 200 <= s < 300 for s in during), \
        "the API did not answer writes while the broker was frozen"
    assert len(acknowledged) == len(results)
    assert max(waiting) >= len(during) / 2, "writes did not wait in the outbox"
    assert peak_pending >= len(during) / 2, "the outbox pending gauge did not rise"
    assert peak_age >= freeze / 2, "the outbox oldest-age gauge did not rise"
    assert drained, "the outbox did not drain within 120 s of the broker resuming"
    assert screened == len(rows) and acknowledged <= rows

    # the backlog alert: promtool evaluates the real rule on the observed gauge
    if not PROMTOOL.exists():
        print("promtool missing (make tools installs Debian's prometheus): the backlog alert "
              "rule was not evaluated")
        return
    per_scrape = [next(a for at, _, a in samples if at >= k)
                  for k in range(0, int(samples[-1][0]) + 1, 15)]
    rate = growth(samples)
    evaluated, fires = promtool_backlog_alert(per_scrape, rate, tmp_path)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    print(f"FAULTS backlog alert (promtool, deploy/prometheus/alerts.yml): silent for this "
          f"{freeze} s freeze; at the observed growth of {rate:.2f} s/s it fires after "
          f"{fires} s of outage and clears once drained", flush=True)


def test_a_worker_frozen_out_as_it_starts_still_shows_its_backlog(
        sqlite_platform: RunningPlatform) -> None:
    """The relay runs from the worker's start, not once faust has joined its consumer group:
    with the broker frozen as soon as a new screening worker answers (before its group has
    settled), writes still show in the backlog gauges, so the alert can fire, and they go
    out once the broker resumes. With faust's timer the gauges stayed at 0."""
    platform = sqlite_platform
    team = f"cold-{uuid.uuid4().hex[:6]}"
    platform.processes.stop_process("screening-worker", grace_seconds=5)
    platform.processes.start_process("screening-worker")
    wait_for(lambda: answers(worker_url(platform, "screening", "/healthz")), timeout=60)
    platform.processes.signal_broker(signal.SIGSTOP)
    try:
        headers = platform.headers("trust", "clinician")
        for _ in range(20):
            response = httpx.post(platform.url("screening", "/v1/screenings"), headers=headers,
                                  json=platform.screening(team), timeout=10)
            assert response.status_code == 201, response.text
        rose = until(lambda: (gauges := backlog(platform)) is not None and gauges[0] >= 20, 30)
    finally:
        platform.processes.signal_broker(signal.SIGCONT)
    assert rose, "the backlog gauge did not rise while the broker was frozen"
    assert until(lambda: outbox_pending(platform) == 0 and backlog(platform) == (0.0, 0.0), 120)
    assert wait_for(lambda: published(platform, {team}).get(team, (0,))[0] == 20, timeout=120)

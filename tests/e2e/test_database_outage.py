"""PostgreSQL gone for 20 s under load, every service its own process on a private cluster.

Threads keep writing (screenings, consent registrations and evaluation grants, mentors) and
reading figures while the test stops the cluster (``pg_ctl stop -m fast``), waits 20 s and
starts it again; nothing is restarted but the database. During the outage every API answers
503 with a Retry-After and a plain JSON error (``unavailable``; screening, which asks the
consent service first, may say ``consent-unavailable``), nothing internal, no SQL; after it they
recover by themselves within a bound; every write that was answered 2xx, before, during or
after, is there afterwards, its state readable through its API and its event applied
downstream (the reporting worker's contributions and evaluation consents); every worker is
still up, having retried. The long form (``make soak``) has three outages, the second a crash
(``-m immediate``).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ops.demo import fake_nhs_numbers
from services.reporting.adapters.tables import contributions, evaluation_consents, metadata
from shared.db import Database
from shared.kafka.topics import SERVICES
from tests.support.platform import RunningPlatform, running_platform, wait_for
from tests.support.private_postgres import PrivatePostgres, private_postgres  # noqa: F401
from tests.support.scale import scale

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.soak]

OUTAGE_SECONDS = scale(20, 20)
MODES = ("fast", "immediate", "fast")[:scale(1, 3)]
RECOVERY_BOUND_SECONDS = 30.0
PAUSE_SECONDS = 0.25
INTERNALS = ("sqlalchemy", "psycopg", "operationalerror", "traceback", "insert into", "select ",
             "[sql", "sqlstate", "connection refused", "connection failed", "127.0.0.1",
             "postgres")
TODAY = date.today()


@pytest.fixture
def postgres_database(private_postgres: PrivatePostgres  # noqa: F811 - the fixture
                      ) -> Callable[[], str]:
    """The platform's databases on the private cluster (``running_platform`` asks for this
    fixture by name), never on the shared server."""
    return private_postgres.create_database


@dataclass
class Call:
    """One request: what, when, and how it was answered."""

    writer: str
    started: float
    ended: float
    status: int | str
    body: str = ""
    retry_after: str | None = None
    written: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300


@dataclass
class Outage:
    """When the database went and came back (monotonic seconds)."""

    stopped: float
    starting: float
    started: float


class Load:
    """Writer threads and a reader, each pausing ``PAUSE_SECONDS`` between requests."""

    def __init__(self, platform: RunningPlatform) -> None:
        self.platform = platform
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._team = f"outage-{random.randrange(16**6):06x}"
        self._numbers = fake_nhs_numbers(random.Random())
        self._threads = [threading.Thread(target=self._loop, args=(step,), daemon=True)
                         for step in (self._screening, self._consent, self._mentor,
                                      self._figures)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop sending and wait for the threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _loop(self, step: Callable[[httpx.Client], None]) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                step(client)
                time.sleep(PAUSE_SECONDS)

    def _send(self, client: httpx.Client, writer: str, method: str, url: str,
              headers: dict[str, str], body: dict[str, Any] | None = None) -> Call:
        started = time.monotonic()
        try:
            response = client.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            call = Call(writer, started, time.monotonic(), type(exc).__name__)
        else:
            call = Call(writer, started, time.monotonic(), response.status_code,
                        response.text, response.headers.get("retry-after"))
            if call.ok and method == "POST":
                call.written = response.json()
        with self._lock:
            self.calls.append(call)
        return call

    def _screening(self, client: httpx.Client) -> None:
        self._send(client, "screening", "POST", self.platform.url("screening", "/v1/screenings"),
                   self.platform.headers("trust", "clinician"),
                   self.platform.screening(self._team))

    def _consent(self, client: httpx.Client) -> None:
        """Register a person, then record their evaluation consent."""
        clinician = self.platform.headers("trust", "clinician")
        registered = self._send(client, "consent-register", "POST",
                                self.platform.url("consent", "/v1/subjects"), clinician,
                                {"nhs_number": next(self._numbers)})
        if registered.ok:
            subject_id = registered.written["subject_id"]
            granted = self._send(client, "consent-grant", "POST", self.platform.url(
                "consent", f"/v1/subjects/{subject_id}/consents"), clinician,
                {"purpose": "evaluation", "method": "verbal", "recorded_by": "Nurse Adebayo"})
            granted.written.setdefault("subject_id", subject_id)

    def _mentor(self, client: httpx.Client) -> None:
        self._send(client, "mentor", "POST", self.platform.url("mentoring", "/v1/mentors"),
                   self.platform.headers("partner-a", "mentor-coordinator"), {
                       "org": "partner-a", "display_name": "Jo", "gender": "female",
                       "languages": ["en"], "borough": "camden", "modes": ["phone"],
                       "capacity": 1,
                       "training_completed_on": (TODAY - timedelta(days=60)).isoformat(),
                       "check_level": "enhanced",
                       "check_completed_on": (TODAY - timedelta(days=60)).isoformat(),
                       "status": "active"})

    def _figures(self, client: httpx.Client) -> None:
        self._send(client, "figures", "GET", self.platform.url(
            "reporting", "/v1/prevalence?group_by=org&period=2026-11"),
            self.platform.headers("trust", "ops-viewer"))

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)


def healthy_workers(platform: RunningPlatform) -> list[str]:
    """The workers whose /healthz answers 200."""
    answering = []
    for service in SERVICES:
        url = f"http://127.0.0.1:{platform.settings.worker_port(service)}/healthz"
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                answering.append(service)
        except httpx.HTTPError:
            pass
    return answering


def recovered_after(calls: list[Call], outage: Outage) -> float | None:
    """Seconds from the database's return until every kind of request had been answered 2xx
    again (None: one never was)."""
    firsts = []
    for writer in {c.writer for c in calls}:
        after = [c.ended for c in calls if c.writer == writer and c.ok
                 and c.started >= outage.started]
        if not after:
            return None
        firsts.append(min(after) - outage.started)
    return max(firsts)


def unavailable_problems(call: Call, port: int) -> list[str]:
    """What is wrong with an answer given while the database was down."""
    if call.status != 503:
        return [f"{call.writer}: {call.status} {call.body[:200]}"]
    problems = []
    try:
        body = json.loads(call.body)
    except ValueError:
        return [f"{call.writer}: 503 whose body is not JSON: {call.body[:200]}"]
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, str) and error.endswith("unavailable")
            and isinstance(body.get("message"), str) and body["message"]):
        problems.append(f"{call.writer}: 503 without an '...unavailable' error and a message: "
                        f"{call.body[:200]}")
    leaked = [word for word in (*INTERNALS, str(port)) if word in call.body.lower()]
    if leaked:
        problems.append(f"{call.writer}: 503 naming internals {leaked}: {call.body[:200]}")
    if not call.retry_after:
        problems.append(f"{call.writer}: 503 without Retry-After")
    return problems


def missing_writes(platform: RunningPlatform, calls: list[Call]) -> list[str]:
    """The 2xx writes whose state cannot be read back through their API."""
    clinician = platform.headers("trust", "clinician")
    coordinator = platform.headers("partner-a", "mentor-coordinator")
    missing = []
    with httpx.Client(timeout=10) as client:
        for call in (c for c in calls if c.ok and c.written):
            if call.writer == "screening":
                found = client.get(platform.url(
                    "screening", f"/v1/screenings/{call.written['id']}"), headers=clinician)
                present = found.status_code == 200
            elif call.writer == "consent-grant":
                found = client.get(platform.url(
                    "consent", f"/v1/subjects/{call.written['subject_id']}/consents"),
                    headers=clinician)
                present = found.status_code == 200 and \
                    found.json()["purposes"]["evaluation"] == "granted"
            elif call.writer == "consent-register":
                found = client.get(platform.url(
                    "consent", f"/v1/subjects/{call.written['subject_id']}/consents"),
                    headers=clinician)
                present = found.status_code == 200
            else:
                found = client.get(platform.url(
                    "mentoring", f"/v1/mentors/{call.written['id']}"), headers=coordinator)
                present = found.status_code == 200
            if not present:
                missing.append(f"{call.writer} {call.written}: {found.status_code}")
    return missing


def not_downstream(platform: RunningPlatform, calls: list[Call]) -> set[str]:
    """The 2xx screenings and evaluation grants whose event the reporting worker has not
    applied (by the person's reference)."""
    screened = {c.written["subject_id"] for c in calls if c.ok and c.writer == "screening"}
    granted = {c.written["subject_id"] for c in calls if c.ok and c.writer == "consent-grant"}
    database = Database(platform.settings.database_url("reporting"), metadata)
    try:
        with database.read() as session:
            counted = set(session.execute(select(contributions.c.subject_id).where(
                contributions.c.subject_id.in_(screened))).scalars())
            consented = set(session.execute(select(evaluation_consents.c.subject_id).where(
                evaluation_consents.c.subject_id.in_(granted),
                evaluation_consents.c.state == "granted")).scalars())
    finally:
        database.dispose()
    return (screened - counted) | (granted - consented)


def settled(condition: Callable[[], Any], timeout: float) -> bool:
    """Whether ``condition`` came true within ``timeout`` (the assertions say what did not)."""
    try:
        wait_for(condition, timeout=timeout)
    except AssertionError:
        return False
    return True


def test_the_platform_rides_out_twenty_seconds_without_its_database(
        request: pytest.FixtureRequest, tmp_path: Path,
        private_postgres: PrivatePostgres) -> None:  # noqa: F811 - the fixture
    outages: list[Outage] = []
    workers_during: list[list[str]] = []
    with running_platform(request, tmp_path / "platform", "postgresql") as platform:
        with Load(platform) as load:
            time.sleep(5)  # some writes before
            for mode in MODES:
                private_postgres.stop(mode)
                stopped = time.monotonic()
                time.sleep(OUTAGE_SECONDS / 2)
                workers_during.append(healthy_workers(platform))
                time.sleep(OUTAGE_SECONDS / 2)
                starting = time.monotonic()
                private_postgres.start()
                outages.append(Outage(stopped, starting, time.monotonic()))
                settled(lambda: recovered_after(load.snapshot(), outages[-1]) is not None,
                        RECOVERY_BOUND_SECONDS + 30)
                time.sleep(5)  # some writes after
        calls = load.snapshot()
        missing = missing_writes(platform, calls)
        settled(lambda: not not_downstream(platform, calls), 120)
        lost_downstream = not_downstream(platform, calls)
        workers_after = healthy_workers(platform)

    statuses = Counter(c.status for c in calls)
    recoveries = [recovered_after(calls, o) for o in outages]
    during = [c for c in calls for o in outages if c.started >= o.stopped
              and c.ended <= o.starting]
    other = {s: n for s, n in statuses.items()
             if not (isinstance(s, int) and 200 <= s < 300) and s != 503}
    print(f"\ndatabase outage x{len(outages)} of {OUTAGE_SECONDS} s: {len(calls)} requests, "
          f"{sum(c.ok for c in calls)} 2xx, {statuses[503]} 503, other {other or 'none'}, "
          f"lost {len(missing) + len(lost_downstream)} (2xx missing afterwards), recovered in "
          + ", ".join("never" if r is None else f"{r:.1f} s" for r in recoveries))

    assert all(r is not None and r <= RECOVERY_BOUND_SECONDS for r in recoveries), recoveries
    assert missing == [], missing
    assert lost_downstream == set(), f"{len(lost_downstream)} 2xx writes never downstream"
    assert workers_during == [list(SERVICES)] * len(outages)
    assert workers_after == list(SERVICES)
    assert {c.writer for c in during} >= {"screening", "consent-register", "mentor", "figures"}
    problems = [p for c in during for p in unavailable_problems(c, private_postgres.port)]
    assert problems == [], f"{len(problems)} of {len(during)} answers during the outage: " \
        + "; ".join(sorted(set(problems))[:8])

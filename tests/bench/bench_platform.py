"""Whole-platform benchmarks B2 (freshness), B3 (cascade) and B4 (ingest), issue 15.

Run as ``python -m tests.bench.bench_platform [--quick] [--profile]
[--backends sqlite,postgresql]``. Each backend gets its own platforms (``LocalPlatform``: the
Tansu broker, every service's API and worker as processes, its own ports and var dir, on SQLite
files or on fresh databases of the PostgreSQL server on 127.0.0.1:5432): one for B4, started
fresh so that nothing else is in flight, and one for B3 and then B2. Every platform is stopped,
and its databases dropped, even when a benchmark fails.

- **B4, ingest.** A load generator in its own process (``tests.bench.loadgen``: asyncio and
  httpx, 32 keep-alive connections) sends valid synthetic enquiries to POST /v1/screenings as a
  Trust clinician and, in the same run, GET /healthz of the same screening API, in alternating
  slices (A B B A ...) so that the machine's noise falls on both alike: requests/s, p50, p99 and
  errors of each, and their ratio. The generator's own speed is shown against a trivial raw
  asyncio server, with its CPU share in every run, so a reader can see it is not the bottleneck.
- **B3, cascade.** People screened through the API, with ``evaluation`` and ``partner-sharing``
  (to partner-a) consent recorded, each withdraw everything with erasure, at a modest rate; once
  the withdrawal is complete the Trust's DPO approves the erasure request. For each: from the
  request until GET /v1/withdrawals/{id} first answers ``complete``, and from the decision until
  GET /v1/erasure-requests/{id} does (observed by polling every ``POLL_SECONDS`` and
  ``ERASURE_POLL_SECONDS``, the headline), and the same spans from the consent service's own
  stamps (``requested_at`` / ``decided_at`` to ``completed_at``, which for an erasure is the
  last service's ``applied_at``).
- **B2, freshness.** See ``bench_freshness``.

One table is printed (id, what, figure, target, met?) with the machine and the commit; the whole
result goes as JSON to ``PEERLINK_BENCH_OUT`` if set. No test asserts a time. ``--profile``
also records the screening API (and the consent API it calls) with py-spy under B4's load on
each backend: flame graphs under ``/tmp/profiles/`` and the top costs in the JSON and on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ops.broker import free_port, wait_for_port
from ops.demo import consent_body, fake_nhs_numbers
from ops.platform import LocalPlatform
from services.reporting.bootstrap import ReportingSettings
from shared.issuer import development_issuer
from shared.kafka.topics import SERVICES
from shared.settings import PlatformSettings
from tests.bench.loadgen import NOT_SENT, percentile, screening_body

ROOT = Path(__file__).resolve().parents[2]
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PERIOD = "2026-11"
"""The month the synthetic enquiries fall in (``loadgen.ASKED_ON``)."""
CONCURRENCY = 32
POLL_SECONDS = 0.2
"""How often B3 asks for a withdrawal's status (its resolution; the read is not audited)."""
ERASURE_POLL_SECONDS = 0.5
"""How often B3 asks for an erasure request: consent audits every read of one (an append to
its hash chain, serialised with every other audited write), so polling it harder would slow
the very cascade it measures."""
RELEASE_POLL_SECONDS = 0.2
"""How often B2 reads the published figures (at least; a read itself takes time)."""
CASCADE_TIMEOUT_SECONDS = 90.0
PROFILE_DIR = Path("/tmp/profiles")
PROFILE_LOAD_SECONDS = 120


@dataclass(frozen=True)
class Plan:
    """How much of each benchmark to run."""

    ingest_seconds: int
    """B4: seconds of load per endpoint and backend."""
    slice_seconds: int
    rate: float
    """B2: screenings per second."""
    freshness_seconds: float
    withdrawals: int
    """B3: people who withdraw with erasure."""
    withdrawal_rate: float


QUICK = Plan(ingest_seconds=10, slice_seconds=5, rate=50, freshness_seconds=20, withdrawals=30,
             withdrawal_rate=4)
FULL = Plan(ingest_seconds=30, slice_seconds=5, rate=200, freshness_seconds=60,
            withdrawals=200, withdrawal_rate=4)


# --- the platform --------------------------------------------------------------------------

class Platform:
    """A started platform, and how to talk to it."""

    def __init__(self, backend: str, settings: PlatformSettings, processes: LocalPlatform,
                 var_dir: Path) -> None:
        self.backend = backend
        self.settings = settings
        self.processes = processes
        self.var_dir = var_dir
        self.authority = development_issuer(settings)

    def url(self, service: str, path: str) -> str:
        """A URL of a service's API."""
        return f"http://127.0.0.1:{self.settings.api_port(service)}{path}"

    def token(self, org: str, *roles: str) -> str:
        """A person's bearer token (the development issuer)."""
        return self.authority.mint(org, list(roles), subject="bench-platform")

    def headers(self, org: str, *roles: str) -> dict[str, str]:
        """An Authorization header."""
        return {"Authorization": f"Bearer {self.token(org, *roles)}"}

    def api_pid(self, service: str) -> int | None:
        """The pid of the process listening on a service's API port (``ss``)."""
        port = self.settings.api_port(service)
        found = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True,
                               text=True, check=False).stdout
        match = re.search(r"pid=(\d+)", found)
        return int(match.group(1)) if match else None


def postgres_answers(url: str = LOCAL_POSTGRES) -> bool:
    """Whether the local PostgreSQL server takes connections."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception:
        return False
    finally:
        engine.dispose()
    return True


@contextlib.contextmanager
def postgres_databases(count: int, admin_url: str = LOCAL_POSTGRES) -> Iterator[list[str]]:
    """``count`` fresh databases on the server, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = [f"peerlink_bench_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    try:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield [make_url(admin_url).set(database=n).render_as_string(hide_password=False)
               for n in names]
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def running_platform(backend: str) -> Iterator[Platform]:
    """Every service's API and worker as its own process with its own broker, ports and var
    dir, on ``backend`` databases; stopped (and its var dir removed) however the block ends."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"peerlink-bench-{backend}-"))
    names = [f"PEERLINK_{s.upper()}_DATABASE_URL" for s in SERVICES]
    saved = {name: os.environ.pop(name, None) for name in names}
    with contextlib.ExitStack() as stack:
        urls = stack.enter_context(postgres_databases(len(SERVICES))) \
            if backend == "postgresql" else []
        databases = dict(zip(names, urls, strict=False))
        os.environ.update(databases)  # the migrations run in this process
        env = {k: v for k, v in os.environ.items() if k not in names}
        env.update({
            "PEERLINK_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "PEERLINK_VAR_DIR": str(var_dir),
            "PEERLINK_PORT_OFFSET": str(random.randrange(9000, 24000, 10)),
            "PEERLINK_ENV": "test", **databases})
        settings = PlatformSettings(kafka_bootstrap=env["PEERLINK_KAFKA_BOOTSTRAP"],
                                    var_dir=var_dir, port_offset=int(env["PEERLINK_PORT_OFFSET"]),
                                    env="test")
        processes = LocalPlatform(settings, start_broker=True, env=env)
        failed = True
        try:
            processes.start()
            yield Platform(backend, settings, processes, var_dir)
            failed = False
        finally:
            processes.stop()
            for name, value in saved.items():
                os.environ.pop(name, None)
                if value is not None:
                    os.environ[name] = value
            if failed:
                print(f"logs kept under {var_dir / 'logs'}", file=sys.stderr)
            else:
                shutil.rmtree(var_dir, ignore_errors=True)


def run_loadgen(mode: str, spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run ``tests.bench.loadgen`` in its own process and read what it wrote."""
    spec_file, out = folder / f"{mode}-{uuid.uuid4().hex[:6]}.json", folder / "out.json"
    spec_file.write_text(json.dumps(spec))
    subprocess.run([sys.executable, "-m", "tests.bench.loadgen", mode, str(spec_file),
                    str(out)], cwd=ROOT, check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def seconds(values: list[float], q: float) -> float | None:
    """A percentile of ``values``, rounded for the table."""
    value = percentile(values, q)
    return None if value is None else round(value, 3)


def stamp(value: str) -> float:
    """A server's ISO time as a Unix timestamp (naive times are UTC)."""
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


# --- B4 ------------------------------------------------------------------------------------

def slices(plan: Plan, first: str, second: str) -> list[tuple[str, int]]:
    """Alternating slices A B B A A B ..., ``plan.ingest_seconds`` of each endpoint."""
    phases: list[tuple[str, int]] = []
    for turn in range(max(1, plan.ingest_seconds // plan.slice_seconds)):
        pair = (first, second) if turn % 2 == 0 else (second, first)
        phases += [(name, plan.slice_seconds) for name in pair]
    return phases


def bench_ingest(p: Platform, plan: Plan, folder: Path) -> dict[str, Any]:
    """B4: POST /v1/screenings beside GET /healthz of the same API, side by side."""
    spec = {"concurrency": CONCURRENCY, "token": p.token("trust", "clinician"),
            "seed": 4, "warmup": ["healthz", "screenings"], "warmup_seconds": 2,
            "endpoints": {
                "screenings": {"method": "POST", "url": p.url("screening", "/v1/screenings"),
                               "body": True},
                "healthz": {"method": "GET", "url": p.url("screening", "/healthz")}},
            "phases": slices(plan, "healthz", "screenings")}
    result = run_loadgen("closed", spec, folder)["endpoints"]
    post, trivial = result["screenings"], result["healthz"]
    return {"screenings": post, "healthz": trivial,
            "ratio": post["rps"] / trivial["rps"] if trivial["rps"] else None}


def generator_ceiling(folder: Path, seconds_: int = 5) -> dict[str, Any]:
    """The generator against a raw asyncio server that does nothing: its own ceiling."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.bench.loadgen", "serve",
                               str(port)], cwd=ROOT)
    try:
        wait_for_port("127.0.0.1", port)
        spec = {"concurrency": CONCURRENCY, "warmup": ["trivial"], "warmup_seconds": 1,
                "endpoints": {"trivial": {"method": "GET", "url": f"http://127.0.0.1:{port}/"}},
                "phases": [["trivial", seconds_]]}
        summary: dict[str, Any] = run_loadgen("closed", spec, folder)["endpoints"]["trivial"]
        return summary
    finally:
        server.terminate()
        server.wait(timeout=10)


# --- B3 ------------------------------------------------------------------------------------

async def _screen_and_consent(client: httpx.AsyncClient, p: Platform, body: dict[str, Any],
                              clinician: dict[str, str]) -> str:
    """One person screened, with evaluation and partner-sharing consent; their reference."""
    response = await client.post(p.url("screening", "/v1/screenings"), json=body,
                                 headers=clinician)
    response.raise_for_status()
    subject_id = str(response.json()["subject_id"])
    for consent in (consent_body("evaluation"), consent_body("partner-sharing", ["partner-a"])):
        granted = await client.post(p.url("consent", f"/v1/subjects/{subject_id}/consents"),
                                    json=consent, headers=clinician)
        granted.raise_for_status()
    return subject_id


async def _until_complete(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                          every: float) -> tuple[float, dict[str, Any]] | None:
    """Poll ``url`` every ``every`` seconds until its status is complete: the time first
    seen, and the body."""
    deadline = time.monotonic() + CASCADE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        response = await client.get(url, headers=headers)
        seen = time.time()
        if response.status_code == 200 and response.json().get("status") == "complete":
            body: dict[str, Any] = response.json()
            return seen, body
        await asyncio.sleep(every)
    return None


async def _withdraw_and_erase(client: httpx.AsyncClient, p: Platform, subject_id: str,
                              clinician: dict[str, str], dpo: dict[str, str]
                              ) -> dict[str, Any]:
    """One withdrawal of everything with erasure, then the DPO's approval; the spans."""
    requested = time.time()
    filed = await client.post(p.url("consent", f"/v1/subjects/{subject_id}/withdrawals"),
                              json={"purposes": ["all"], "erasure": True, "method": "verbal"},
                              headers=clinician)
    if filed.status_code != 202:
        return {"error": f"withdrawal HTTP {filed.status_code}"}
    withdrawal_id, request_id = filed.json()["withdrawal_id"], filed.json()["erasure_request_id"]
    done = await _until_complete(client, p.url("consent", f"/v1/withdrawals/{withdrawal_id}"),
                                 clinician, POLL_SECONDS)
    if done is None:
        return {"error": "withdrawal not complete in time"}
    seen, body = done
    result: dict[str, Any] = {
        "withdrawal_observed": seen - requested,
        "withdrawal_server": stamp(body["completed_at"]) - stamp(body["requested_at"]),
        **{f"applied_by_{service}": stamp(ack["applied_at"]) - stamp(body["requested_at"])
           for service, ack in body["services"].items() if ack.get("applied_at")}}
    decided = time.time()
    decision = await client.post(
        p.url("consent", f"/v1/erasure-requests/{request_id}/decision"),
        json={"decision": "approve"}, headers=dpo)
    if decision.status_code != 200:
        return {**result, "error": f"decision HTTP {decision.status_code}"}
    erased = await _until_complete(client, p.url("consent", f"/v1/erasure-requests/{request_id}"),
                                   dpo, ERASURE_POLL_SECONDS)
    if erased is None:
        return {**result, "error": "erasure not complete in time"}
    seen, body = erased
    result.update(erasure_observed=seen - decided,
                  erasure_server=stamp(body["completed_at"]) - stamp(body["decided_at"]))
    return result


async def _cascade(p: Platform, plan: Plan) -> dict[str, Any]:
    clinician, dpo = p.headers("trust", "clinician"), p.headers("trust", "dpo")
    rng = random.Random(3)
    numbers = fake_nhs_numbers(rng)
    bodies = [screening_body(rng, numbers, "bench-cascade") for _ in range(plan.withdrawals)]
    async with httpx.AsyncClient(timeout=30) as client:
        gate = asyncio.Semaphore(8)

        async def prepare(body: dict[str, Any]) -> str:
            async with gate:
                return await _screen_and_consent(client, p, body, clinician)

        began = time.monotonic()
        subjects = await asyncio.gather(*(prepare(b) for b in bodies))
        prepared = time.monotonic() - began
        await asyncio.sleep(3)  # the screenings' and consents' events reach every worker
        tasks = []
        began = time.monotonic()
        for i, subject_id in enumerate(subjects):
            delay = began + i / plan.withdrawal_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(
                _withdraw_and_erase(client, p, subject_id, clinician, dpo)))
        results = await asyncio.gather(*tasks)
    return {"people": len(subjects), "prepare_seconds": round(prepared, 1),
            "rate": plan.withdrawal_rate, "poll_seconds": POLL_SECONDS,
            "erasure_poll_seconds": ERASURE_POLL_SECONDS, "results": results}


def bench_cascade(p: Platform, plan: Plan) -> dict[str, Any]:
    """B3: withdrawals with erasure approved; request (or decision) to complete."""
    raw = asyncio.run(_cascade(p, plan))
    results = raw.pop("results")
    summary: dict[str, Any] = dict(raw)
    for span in ("withdrawal_observed", "withdrawal_server", "erasure_observed",
                 "erasure_server", "applied_by_screening", "applied_by_mentoring",
                 "applied_by_reporting"):
        values = [r[span] for r in results if span in r]
        summary[span] = {"n": len(values), "p50": seconds(values, 50),
                         "p99": seconds(values, 99), "max": seconds(values, 100)}
    summary["errors"] = dict(Counter(r["error"] for r in results if "error" in r))
    return summary


# --- B2 ------------------------------------------------------------------------------------

class ReleaseWatcher:
    """Reads the published team figures of the month until told to stop: when each release
    (by its ``released_at``) was first seen, and the first release each bench team is in."""

    def __init__(self, p: Platform, prefix: str) -> None:
        self._url = p.url("reporting", "/v1/prevalence")
        self._headers = p.headers("trust", "ops-viewer")
        self._prefix = prefix
        self.releases: dict[str, float] = {}
        """released_at -> when this watcher first saw it (after the read that showed it)."""
        self.teams: dict[str, tuple[str, float]] = {}
        """team -> (released_at, first seen) of the first release showing it above 0."""
        self.held: set[str] = set()
        self.reads: list[float] = []
        self.errors: Counter[str] = Counter()
        self.k: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ReleaseWatcher:
        """Start reading in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading."""
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                began = time.time()
                try:
                    response = client.get(self._url, headers=self._headers,
                                          params={"group_by": "team", "period": PERIOD})
                except httpx.HTTPError as exc:
                    self.errors[type(exc).__name__] += 1
                    continue
                seen = time.time()
                self.reads.append(seen - began)
                if response.status_code != 200:
                    self.errors[str(response.status_code)] += 1
                else:
                    self._saw(response.json(), seen)
                self._stop.wait(max(0.0, RELEASE_POLL_SECONDS - (seen - began)))

    def _saw(self, body: dict[str, Any], seen: float) -> None:
        released_at = body["released_at"]
        if released_at is None:
            return
        self.k = int(body["k"])
        self.releases.setdefault(released_at, seen)
        first_seen = self.releases[released_at]
        for row in body["rows"]:
            team = str(row["team"])
            if not team.startswith(self._prefix):
                continue
            if row["held"]:
                self.held.add(team)
            if team not in self.teams and row["screened"]["display"] != "0":
                self.teams[team] = (released_at, first_seen)


def held_back_evidence(p: Platform, teams: list[str]) -> list[dict[str, Any]]:
    """For complete teams never shown: how many people the read model holds for each, and
    what the release rule remembers of its rows (people active, figures kept), read from the
    reporting database itself (counts only)."""
    engine = create_engine(p.settings.database_url("reporting"))
    found = []
    try:
        with engine.connect() as connection:
            for team in teams:
                people = connection.execute(text(
                    "SELECT count(DISTINCT subject_id) FROM contributions WHERE team = :t"),
                    {"t": team}).scalar_one()
                rows = {}
                for key, state in connection.execute(text(
                        "SELECT row_key, state FROM published_rows WHERE row_key LIKE :k"),
                        {"k": f'%"team","{team}",%'}):
                    memory = json.loads(state)
                    table_, _, _, period = json.loads(key)
                    rows[f"{table_} {period}"] = {
                        "active": len(memory["activity"]),
                        "figures": {m: len(v) for m, v in memory["figures"].items()}}
                found.append({"team": team, "people": people, "rows": rows})
    finally:
        engine.dispose()
    return found


def applied_by_team(p: Platform, prefix: str) -> dict[str, float]:
    """When the reporting worker applied the last event of each bench team (its inbox's
    ``applied_at``), read from the reporting database: where between the 2xx and the release
    an event's time goes."""
    engine = create_engine(p.settings.database_url("reporting"))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT c.team, max(i.applied_at) FROM contributions c JOIN inbox i "
                "ON i.dedup_key = c.source_event WHERE c.team LIKE :p GROUP BY c.team"),
                {"p": f"{prefix}%"}).all()
    finally:
        engine.dispose()
    return {str(team): stamp(str(at)) for team, at in rows if at is not None}


def bench_freshness(p: Platform, plan: Plan, folder: Path) -> dict[str, Any]:
    """B2: from each screening's 2xx to the first published release that includes it.

    How an event is known to be in a release: the published figures are disclosure-controlled
    (rounded to 5, 1 to 7 suppressed) and the release rule holds a row until K people have had
    events in it, so no count can name one event. So the load gives every team exactly K
    people: event ``i`` is for team ``<prefix>-<i // K>`` (borough, gender, age band and HARK
    answers vary), posted in order at a steady rate. A bench team's row of the month is empty,
    and left out of the release, until its row is reconsidered, which needs K people with
    events in it: all K of its enquiries applied. Then its "screened" figure moves from 0 to K
    people (at least K moved) and is published. So the first release in which the team's row
    shows "screened" above 0 is the first release that includes every one of its events, and
    no earlier release includes any of them (a row with fewer than K active people keeps its
    published value, 0, and is not shown). A release is told apart from the next by its
    ``released_at``; it is taken as published when this bench first reads it (every
    ``RELEASE_POLL_SECONDS`` at most, so that is an upper bound by a read's time).

    The load is open-loop at the plan's rate for the plan's seconds, at most 64 requests in
    flight; a request that finds no free connection before the window closes is not sent, so a
    saturated screening API shows as fewer events answered, not as a run without end.

    Reported: the headline, per event, from the 2xx of the last of its team's K enquiries (when
    the K rule first lets it be published) to that release; separately the K rule's own wait
    (from the event's 2xx to its team's K-th 2xx) and the whole span; and, at the end, the events
    still held back: in teams whose row never showed (incomplete teams, or a complete team that
    the release rule's overlap check refused and whose row is not looked at again until K more
    people have events in it).
    """
    reporting = ReportingSettings()
    cadence, k = reporting.release_seconds, reporting.people_to_change
    prefix = f"b2x{uuid.uuid4().hex[:6]}"
    spec = {"url": p.url("screening", "/v1/screenings"), "token": p.token("trust", "clinician"),
            "rate": plan.rate, "seconds": plan.freshness_seconds, "group": k,
            "prefix": prefix, "cap": 64, "seed": 2}
    watcher = ReleaseWatcher(p, prefix).start()
    try:
        load = run_loadgen("steady", spec, folder)
        teams: dict[str, list[list[Any]]] = defaultdict(list)
        for record in load["records"]:
            teams[record[0]].append(record)
        complete = {team for team, rs in teams.items()
                    if len(rs) == k and all(isinstance(r[4], int) and 200 <= r[4] < 300
                                            for r in rs)}
        quiet_for = max(3 * cadence, 10.0)
        last_news, count = time.monotonic(), len(watcher.teams)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not complete <= watcher.teams.keys():
            time.sleep(0.5)
            if len(watcher.teams) != count:
                last_news, count = time.monotonic(), len(watcher.teams)
            elif time.monotonic() - last_news > quiet_for:
                break
        time.sleep(min(2.0, cadence))
    finally:
        watcher.stop()
    headline, whole, k_wait = [], [], []
    for team, records in teams.items():
        if team not in watcher.teams:
            continue
        ok = [r for r in records if isinstance(r[4], int) and 200 <= r[4] < 300]
        last = max(r[3] for r in ok)
        shown = watcher.teams[team][1]
        for record in ok:
            headline.append(shown - last)
            whole.append(shown - record[3])
            k_wait.append(last - record[3])
    applied = applied_by_team(p, prefix)
    to_applied, to_release = [], []
    for team, (_, seen) in watcher.teams.items():
        answered = [float(r[3]) for r in teams.get(team, [])
                    if isinstance(r[4], int) and 200 <= r[4] < 300]
        if answered and team in applied:
            to_applied.append(applied[team] - max(answered))
            to_release.append(seen - applied[team])
    unshown = sorted(complete - watcher.teams.keys())
    evidence = held_back_evidence(p, unshown[:5]) if unshown else []
    records = load["records"]
    ok_records = [r for r in records if isinstance(r[4], int) and 200 <= r[4] < 300]
    held_back = [r for r in ok_records if r[0] not in watcher.teams]
    released = sorted(stamp(r) for r in watcher.releases)
    gaps = [b - a for a, b in itertools.pairwise(released)]
    lags = [seen - stamp(at) for at, seen in watcher.releases.items()]
    late = [r[2] - r[1] for r in records]
    last_answer = max((r[3] for r in ok_records), default=load["began"])
    return {
        "cadence_seconds": cadence, "k": watcher.k or k, "rate": plan.rate,
        "seconds": plan.freshness_seconds, "offered": len(records), "ok": len(ok_records),
        "not_sent": sum(1 for r in records if r[4] == NOT_SENT),
        "errors": dict(Counter(str(r[4]) for r in records
                               if r[4] != NOT_SENT and r not in ok_records)),
        "achieved_rate": len(ok_records) / max(1e-9, last_answer - load["began"]),
        "schedule_lateness_p99": seconds(late, 99),
        "post_latency_p50": seconds([r[3] - r[2] for r in ok_records], 50),
        "post_latency_p99": seconds([r[3] - r[2] for r in ok_records], 99),
        "teams": len(teams), "complete_teams": len(complete),
        "teams_shown": len(watcher.teams.keys() & teams.keys()),
        "freshness": {"n": len(headline), "p50": seconds(headline, 50),
                      "p99": seconds(headline, 99), "max": seconds(headline, 100)},
        "with_k_wait": {"p50": seconds(whole, 50), "p99": seconds(whole, 99)},
        "k_wait": {"p50": seconds(k_wait, 50), "p99": seconds(k_wait, 99)},
        "to_applied": {"p50": seconds(to_applied, 50), "p99": seconds(to_applied, 99)},
        "applied_to_release": {"p50": seconds(to_release, 50),
                               "p99": seconds(to_release, 99)},
        "held_back_events": len(held_back),
        "held_back_complete_teams": len(unshown),
        "held_back_evidence": evidence,
        "held_rows_seen": len(watcher.held),
        "releases_seen": len(released),
        "release_interval": {"p50": seconds(gaps, 50), "max": seconds(gaps, 100)},
        "release_visible_after_stamp": {"p50": seconds(lags, 50), "max": seconds(lags, 100)},
        "read_seconds": {"p50": seconds(watcher.reads, 50), "max": seconds(watcher.reads, 100)},
        "read_errors": dict(watcher.errors)}


# --- profile -------------------------------------------------------------------------------

IDLE_LEAVES = ("Queue.get (queue.py)", "EpollSelector.select (selectors.py)")
"""The frames an idle pool thread or event loop waits in (a request's wait is elsewhere)."""


def collapsed_top(raw: str, top: int = 10) -> dict[str, Any]:
    """Where a process's busy threads are, from py-spy's collapsed stacks recorded with
    ``--idle``: a thread's sample counts unless it is an idle pool thread or the event loop
    waiting in select. By the innermost frame (the wait or the work itself) and by the
    innermost frame in Peerlink's own code (``services/``, ``shared/``)."""
    leaves: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = busy = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        idle_pool = frames[-2:-1] == ["Queue.get (queue.py)"] and \
            "WorkerThread.run (anyio/_backends/_asyncio.py)" in frames[-4:]
        if idle_pool or frames[-1] == IDLE_LEAVES[1]:
            continue
        busy += count
        pooled = any("sqlalchemy/pool" in f or "sqlalchemy/util/queue" in f for f in frames)
        leaves["waiting for a pooled database connection (SQLAlchemy)" if pooled
               else frames[-1]] += count
        own = [f for f in frames if re.search(r"\((services|shared)/", f)]
        ours[own[-1] if own else "(outside Peerlink: server, framework)"] += count
    share = 100.0 / max(1, busy)
    return {"samples": total, "busy_samples": busy,
            "leaves": [(f, round(n * share, 1)) for f, n in leaves.most_common(top)],
            "ours": [(f, round(n * share, 1)) for f, n in ours.most_common(top)]}


def profile_screening(p: Platform, folder: Path) -> dict[str, Any]:
    """py-spy over the screening API (and the consent API it calls) under B4's POST load: a
    CPU flame graph (as ``py-spy record`` makes by default), a wall-clock one with ``--idle``,
    two dumps, and the collapsed wall-clock stacks of both APIs, summarised."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    pids = {s: p.api_pid(s) for s in ("screening", "consent")}
    if not Path(spy).exists() or None in pids.values():
        return {"skipped": "py-spy or the API processes not found"}
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    spec = {"concurrency": CONCURRENCY, "token": p.token("trust", "clinician"), "seed": 9,
            "endpoints": {"screenings": {"method": "POST", "body": True,
                                         "url": p.url("screening", "/v1/screenings")}},
            "phases": [["screenings", PROFILE_LOAD_SECONDS]]}
    spec_file, out = folder / "profile-spec.json", folder / "profile-out.json"
    spec_file.write_text(json.dumps(spec))
    load = subprocess.Popen([sys.executable, "-m", "tests.bench.loadgen", "closed",
                             str(spec_file), str(out)], cwd=ROOT)
    screening = str(pids["screening"])
    name = f"screening-api-{p.backend}"
    result: dict[str, Any] = {"cpu_flamegraph": str(PROFILE_DIR / f"{name}.svg"),
                              "wall_flamegraph": str(PROFILE_DIR / f"{name}-wall.svg"),
                              "timings": {}}
    began = time.monotonic()

    def spying(args: list[str], wait: float) -> None:
        """Run py-spy with ``args``, ending it if it outlasts ``wait`` seconds (on a busy
        machine its ``-d`` seconds can take several times as long)."""
        running = subprocess.Popen([spy, *args], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            running.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            running.kill()
            running.wait()

    try:
        time.sleep(3)
        raws = {s: PROFILE_DIR / f"{s}-api-{p.backend}-wall.txt" for s in pids}
        jobs = [["record", "-d", "10", "--idle", "-o", result["wall_flamegraph"], "--pid",
                 screening]]
        jobs += [["record", "-d", "10", "--idle", "-f", "raw", "-o", str(raws[s]), "--pid",
                  str(pid)] for s, pid in pids.items()]
        threads = [threading.Thread(target=spying, args=(job, 80.0)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result["timings"]["wall"] = round(time.monotonic() - began, 1)
        dumps = [subprocess.run([spy, "dump", "--pid", screening], capture_output=True,
                                text=True, check=False, timeout=30).stdout for _ in range(2)]
        (PROFILE_DIR / f"{name}-dump.txt").write_text("\n".join(dumps))
        if time.monotonic() - began < PROFILE_LOAD_SECONDS - 30:
            spying(["record", "-d", "20", "-o", result["cpu_flamegraph"], "--pid", screening],
                   max(10.0, PROFILE_LOAD_SECONDS - (time.monotonic() - began)))
            result["timings"]["cpu"] = round(time.monotonic() - began, 1)
        for service, raw in raws.items():
            if raw.exists():
                result[service] = collapsed_top(raw.read_text())
    except (OSError, subprocess.SubprocessError) as exc:
        result["failed"] = f"{type(exc).__name__}: {exc}"
    finally:
        load.wait(timeout=PROFILE_LOAD_SECONDS + 120)
    result["timings"]["load"] = round(time.monotonic() - began, 1)
    if out.exists():
        result["load"] = json.loads(out.read_text())["endpoints"]["screenings"]
    return result


# --- the table -----------------------------------------------------------------------------

def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def rows_of(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The table's rows: id, what, figure, target, met?"""
    rows: list[tuple[str, str, str, str, str]] = []
    for backend, found in results["backends"].items():
        if "skipped" in found:
            rows.append(("B2-4", backend, found["skipped"], "", "-"))
            continue
        if "b2" in found:
            b2 = found["b2"]
            limit = b2["cadence_seconds"] + 1
            p99 = b2["freshness"]["p99"]
            rows.append((
                "B2", f"freshness, {backend}",
                f"p50 {_s(b2['freshness']['p50'])}, p99 {_s(p99)} (n {b2['freshness']['n']}); "
                f"{b2['ok']} of {b2['offered']} offered at {b2['rate']:g}/s answered 2xx "
                f"({b2['achieved_rate']:.0f}/s, POST p99 {_s(b2['post_latency_p99'])}); "
                f"of which 2xx to applied by reporting p50 {_s(b2['to_applied']['p50'])} "
                f"p99 {_s(b2['to_applied']['p99'])}, applied to release p50 "
                f"{_s(b2['applied_to_release']['p50'])} p99 "
                f"{_s(b2['applied_to_release']['p99'])}; "
                f"cadence {b2['cadence_seconds']:g} s; K={b2['k']}: wait p99 "
                f"{_s(b2['k_wait']['p99'])}, with it p99 {_s(b2['with_k_wait']['p99'])}; "
                f"held back at the end {b2['held_back_events']} events "
                f"({b2['held_back_complete_teams']} complete teams of K)",
                f"p99 <= {limit:g} s", "yes" if p99 is not None and p99 <= limit else "no"))
        if "b3" in found:
            # complete when consent stamps it complete (the last service's acknowledgement);
            # the bench's polls, spaced so as not to slow what they watch, only bound it above
            b3 = found["b3"]
            wd, er = b3["withdrawal_server"], b3["erasure_server"]
            ok = (wd["p99"] is not None and er["p99"] is not None and wd["p99"] < 2
                  and er["p99"] < 2 and wd["n"] == er["n"] == b3["people"])
            rows.append((
                "B3", f"cascade, {backend}",
                f"withdrawal p50 {_s(wd['p50'])} p99 {_s(wd['p99'])}; erasure after decision "
                f"p50 {_s(er['p50'])} p99 {_s(er['p99'])}; complete {er['n']}/{b3['people']} "
                f"(consent's stamps, request or decision to complete; seen by polling every "
                f"{POLL_SECONDS:g} / {ERASURE_POLL_SECONDS:g} s: p99 "
                f"{_s(b3['withdrawal_observed']['p99'])} / {_s(b3['erasure_observed']['p99'])})",
                "p99 < 2 s", "yes" if ok else "no"))
        if "b4" in found:
            b4 = found["b4"]
            post, trivial, ratio = b4["screenings"], b4["healthz"], b4["ratio"]
            fast = post["rps"] >= 500 and (post["p99_ms"] or 1e9) < 100
            ratio_ok = ratio is not None and ratio >= 0.5
            met = (fast and ratio_ok) if backend == "postgresql" else ratio_ok
            rows.append((
                "B4", f"ingest, {backend}",
                f"POST {post['rps']:.0f}/s p50 {_ms(post['p50_ms'])} p99 "
                f"{_ms(post['p99_ms'])} errors {sum(post['errors'].values())}; /healthz "
                f"{trivial['rps']:.0f}/s p99 {_ms(trivial['p99_ms'])}; ratio "
                f"{'-' if ratio is None else f'{ratio:.2f}'}; generator CPU "
                f"{post['generator_cpu_share']:.0%} / {trivial['generator_cpu_share']:.0%}",
                ">= 500/s, p99 < 100 ms on PostgreSQL; ratio >= 0.5" if backend ==
                "postgresql" else "ratio >= 0.5", "yes" if met else "no"))
    ceiling = results.get("generator")
    if ceiling:
        rows.append(("gen", "load generator alone",
                     f"{ceiling['rps']:.0f}/s p99 {_ms(ceiling['p99_ms'])} against a raw "
                     f"asyncio server, CPU {ceiling['generator_cpu_share']:.0%} of a core",
                     "well above B4's rates", "-"))
    return rows


def table(rows: list[tuple[str, str, str, str, str]]) -> str:
    """A Markdown table."""
    lines = ["| id | what | figure | target | met? |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def commit() -> str:
    """The commit measured (``-dirty`` when the work tree has changes)."""
    found = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                           cwd=ROOT, capture_output=True, text=True, check=False)
    return found.stdout.strip() or "unknown"


def machine(before: tuple[float, ...], after: tuple[float, ...]) -> str:
    """Cores, Python, platform, load average before and after."""
    def load(values: tuple[float, ...]) -> str:
        return " ".join(f"{v:.2f}" for v in values)

    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, {platform.platform()}; load average before "
            f"{load(before)}, after {load(after)}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_platform")
    parser.add_argument("--quick", action="store_true", help="short forms (about 5 minutes)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the screening API under B4's load")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--only", default="b2,b3,b4", help="which benchmarks")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    before = os.getloadavg()
    results: dict[str, Any] = {"plan": plan.__dict__, "commit": commit(), "backends": {},
                               "started": datetime.now(UTC).isoformat()}
    with tempfile.TemporaryDirectory(prefix="peerlink-bench-") as tmp:
        folder = Path(tmp)
        if "b4" in only:
            results["generator"] = generator_ceiling(folder)
        for backend in args.backends.split(","):
            found: dict[str, Any] = results["backends"].setdefault(backend, {})
            if backend == "postgresql" and not postgres_answers():
                found["skipped"] = "skipped: no PostgreSQL on 127.0.0.1:5432"
                continue
            if "b4" in only:
                with running_platform(backend) as p:
                    found["b4"] = bench_ingest(p, plan, folder)
                    if args.profile:
                        results.setdefault("profile", {})[backend] = \
                            profile_screening(p, folder)
            if only & {"b2", "b3"}:
                with running_platform(backend) as p:
                    if "b3" in only:
                        found["b3"] = bench_cascade(p, plan)
                    if "b2" in only:
                        found["b2"] = bench_freshness(p, plan, folder)
    after = os.getloadavg()
    results["machine"] = machine(before, after)
    print()
    rows = rows_of(results)
    results["rows"] = [dict(zip(["id", "what", "figure", "target", "met"], row, strict=True))
                       for row in rows]
    print(table(rows))
    print(results["machine"])
    print(f"commit: {results['commit']}")
    for backend, profile in results.get("profile", {}).items():
        print_profile(backend, profile)
    out = os.environ.get("PEERLINK_BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps(results, indent=2))
    return 0


def print_profile(backend: str, profile: dict[str, Any]) -> None:
    """Where the screening API's (and the consent API's) busy threads were."""
    if "skipped" in profile:
        print(f"profile ({backend}): {profile['skipped']}")
        return
    load = profile.get("load", {})
    print(f"profile ({backend}), under {load.get('rps', 0):.0f} POST/s: flame graphs "
          f"{profile['cpu_flamegraph']} (CPU), {profile['wall_flamegraph']} (wall clock); "
          f"seconds from the load's start: {profile.get('timings')}")
    for service in ("screening", "consent"):
        top = profile.get(service)
        if not top:
            continue
        print(f"  {service} API, share of busy thread samples ({top['busy_samples']} of "
              f"{top['samples']}):")
        print("    innermost: " + "; ".join(f"{f} {s}%" for f, s in top["leaves"][:6]))
        print("    in our code: " + "; ".join(f"{f} {s}%" for f, s in top["ours"][:6]))


if __name__ == "__main__":
    sys.exit(main())

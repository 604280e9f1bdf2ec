"""Stream throughput and memory of the reporting worker: ``make bench`` (B1, B6, B7).

A local broker is loaded with ``PEERLINK_BENCH_STREAM_EVENTS`` realistic business events
(default 200,000; ``make bench-quick`` uses 20,000): many fake people, several events each,
three organisations, 30 teams, 12 boroughs, dates over the last year, keyed by subject and
written as the outbox relay writes them (CloudEvents structured mode, a ``ce_type`` header).
Then, one after another on the same topics, each contender reads all of them from the start:

- A, bare: an aiokafka consumer that only json-parses each value;
- B, one at a time: a plain faust app whose one agent takes ``stream.events()`` one by one and
  counts them per organisation, team and month in memory;
- C, Peerlink: the real reporting worker (``python -m ops.cli worker reporting``) on a fresh
  SQLite database, its progress read from its inbox (consumer ``reporting.business``);
- C2: two reporting workers on one fresh database, in one consumer group (B7).

A rate runs from a contender's first record to its Nth (start-up is reported apart). Every
contender process's RSS is sampled from ``/proc/<pid>/status`` every 0.5 s (B6). Ratios are
taken within one run, so the machine's load weighs on every contender alike. One table is
printed, and the results go as JSON to ``PEERLINK_BENCH_OUT`` if it is set. No test asserts a
time.

Run as ``python -m tests.bench.bench_stream``; ``bare`` and ``agent`` are the contenders' own
entry points (``python -m tests.bench.bench_stream bare BOOTSTRAP N RESULT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ops.broker import LocalBroker, free_port, port_in_use
from ops.migrations import migrate
from services.mentoring.domain.outcomes import SWEMWBS_METRIC
from shared.events.envelope import CloudEvent, EventPayload
from shared.events.mentoring import (
    MatchMade,
    MenteeReferred,
    MentoringEnded,
    MentoringPreferences,
    OutcomeRecorded,
    SessionLogged,
)
from shared.events.screening import (
    EnquiryDue,
    MaracReferralRequired,
    ScreeningCompleted,
    ScreeningDeclined,
    ScreeningNotSafe,
)
from shared.identity import new_subject_reference
from shared.kafka.producer import create_topics
from shared.kafka.topics import events_topic, registry
from shared.settings import WORKER_PORTS, PlatformSettings

EVENTS = int(os.environ.get("PEERLINK_BENCH_STREAM_EVENTS", "200000"))
TIMEOUT_SECONDS = float(os.environ.get("PEERLINK_BENCH_STREAM_TIMEOUT", "0")) or \
    120.0 + EVENTS / 100
"""How long one contender may take to read every event (default 2 min + 10 ms per event)."""
PARTITIONS = 6
SEED = 15
SAMPLE_SECONDS = 0.5
REPO = Path(__file__).resolve().parents[2]
SCREENING = events_topic("screening")
MENTORING = events_topic("mentoring")
TOPICS = (SCREENING, MENTORING)
WORKER_GROUP = "peerlink-reporting"
"""The reporting worker's faust app id, which is its consumer group."""
BUSINESS_CONSUMER = "reporting.business"
ORGS = ("trust", "partner-a", "partner-b")
TEAMS = {org: tuple(f"{org}-team-{i:02d}" for i in range(count))
         for org, count in zip(ORGS, (20, 5, 5), strict=True)}
BOROUGHS = ("camden", "islington", "haringey", "enfield", "barnet", "hackney", "westminster",
            "lambeth", "southwark", "lewisham", "newham", "brent")
GENDERS = ("female", "male", "non-binary", "not-stated")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
ROLES = ("nurse", "psychiatrist", "social-worker", "occupational-therapist", "psychologist")
DATE_FIELDS = ("asked_on", "due_on", "raised_on", "referred_on", "matched_on", "held_on",
               "ended_on", "recorded_on")
QUARTERS = (0.25, 0.5, 0.75, 1.0)
FLAT_GROWTH = 0.10
FLAT_GROWTH_MB = 25.0
"""Flat: RSS at 100% of the events at most 10% (or 25 MB) above RSS at 25%."""
WORKER_RSS_LIMIT_MB = 500.0


# --- the events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One record to pre-load, as the outbox relay would publish it."""

    topic: str
    key: bytes
    value: bytes
    event_type: str
    day: date


Cell = tuple[str, str, str]
"""Organisation, team and month: what contender B counts."""


def cell_of(data: dict[str, Any]) -> Cell:
    """The organisation, team and month of an event's data (contender B's aggregation)."""
    day = next(str(data[name]) for name in DATE_FIELDS if name in data)
    org = data.get("org") or data.get("to_org") or data.get("referred_by_org") or "unknown"
    return str(org), str(data.get("team") or "unknown"), day[:7]


class People:
    """Fake people's journeys: enquiry due, screening (sometimes again), now and then a MARAC
    referral, and for some who disclosed a mentoring episode with a partner."""

    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        self.today = today

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{self.rng.getrandbits(64):016x}"

    def journey(self) -> list[tuple[str, EventPayload, date]]:
        """One person's events in order: (publishing service, payload, date)."""
        rng = self.rng
        org = rng.choices(ORGS, weights=(70, 15, 15))[0]
        team = rng.choice(TEAMS[org])
        person = {"borough": rng.choice(BOROUGHS), "gender": rng.choice(GENDERS),
                  "age_band": rng.choice(AGE_BANDS)}
        day = self.today - timedelta(days=rng.randrange(20, 366))
        events: list[tuple[str, EventPayload, date]] = []
        if rng.random() < 0.9:
            events.append(("screening", EnquiryDue(org=org, team=team, due_on=day), day))
        disclosed = False
        for attempt in range(2):
            day += timedelta(days=rng.randrange(0, 21) if attempt == 0 else rng.randrange(30, 120))
            if day >= self.today or (attempt == 1 and rng.random() > 0.3):
                break
            outcome = rng.random()
            common = {"screening_id": self._id("scr"), "org": org, "team": team,
                      "asked_on": day, "asked_by_role": rng.choice(ROLES),
                      "training_level": rng.choice((1, 2, 3)),
                      "private": rng.random() < 0.85, **person}
            if outcome < 0.8:
                completed = self._screened(common)
                disclosed = disclosed or completed.disclosed
                events.append(("screening", completed, day))
            elif outcome < 0.9:
                events.append(("screening", ScreeningDeclined(**common), day))
            elif outcome < 0.97:
                events.append(("screening", ScreeningNotSafe(**common), day))
        if disclosed and rng.random() < 0.15:
            events.append(("screening", MaracReferralRequired(
                org=org, team=team, referral_id=self._id("marac"),
                assessment_id=self._id("ra"), raised_on=day, criteria_met=("visible-high-risk",),
                **person), day))
        if disclosed and rng.random() < 0.5:
            events += self._mentoring(org, day, person)
        return [event for event in events if event[2] < self.today]

    def _screened(self, common: dict[str, Any]) -> ScreeningCompleted:
        rng = self.rng
        hark = rng.choices((0, 1, 2, 3, 4), weights=(78, 9, 6, 4, 3))[0]
        past = rng.choices(("no", "yes", "unsure"), weights=(75, 20, 5))[0]
        disclosed = hark >= 1 or past == "yes"
        return ScreeningCompleted(
            **common, hark_score=hark, current_abuse=hark >= 1, past_abuse=past,
            disclosed=disclosed,
            abuser_relationship=rng.choice(("partner", "ex-partner", "family-member", "other"))
            if disclosed else None,
            affected_mental_health=rng.choice(("yes", "no", "unsure")) if disclosed else None)

    def _mentoring(self, referred_by: str, day: date, person: dict[str, str]
                   ) -> list[tuple[str, EventPayload, date]]:
        rng = self.rng
        partner = rng.choice(ORGS[1:])
        referral, match = self._id("ref"), self._id("match")
        events: list[tuple[str, EventPayload, date]] = []
        day += timedelta(days=rng.randrange(1, 10))
        events.append(("mentoring", MenteeReferred(
            referral_id=referral, referred_by_org=referred_by, to_org=partner, referred_on=day,
            preferences=MentoringPreferences(mode=rng.choice(("in-person", "phone", "video"))),
            **person), day))
        wait = rng.randrange(2, 40)
        day += timedelta(days=wait)
        events.append(("mentoring", MatchMade(
            match_id=match, referral_id=referral, mentor_id=self._id("mentor"), org=partner,
            matched_on=day, days_from_referral=wait, waitlisted=wait > 21), day))
        events.append(("mentoring", self._outcome(match, partner, day, "intake"), day))
        for _ in range(rng.randrange(2, 6)):
            day += timedelta(days=rng.randrange(5, 15))
            events.append(("mentoring", SessionLogged(
                session_id=self._id("session"), match_id=match, org=partner, held_on=day,
                duration_minutes=rng.choice((30, 45, 60, 90)),
                mode=rng.choice(("in-person", "phone", "video")),
                attendance=rng.choices(("attended", "did-not-attend", "cancelled-by-mentee",
                                        "cancelled-by-mentor"), weights=(80, 10, 6, 4))[0],
                safeguarding_concern=False), day))
        day += timedelta(days=rng.randrange(5, 15))
        events.append(("mentoring", self._outcome(match, partner, day, "exit"), day))
        events.append(("mentoring", MentoringEnded(match_id=match, org=partner, ended_on=day,
                                                   planned=rng.random() < 0.7), day))
        return events

    def _outcome(self, match: str, org: str, day: date, timepoint: str) -> OutcomeRecorded:
        items = tuple(self.rng.randrange(1, 6) for _ in range(7))
        return OutcomeRecorded(outcome_id=self._id("outcome"), match_id=match, org=org,
                               recorded_on=day, timepoint=timepoint, instrument="SWEMWBS",
                               items=items, raw_score=sum(items),
                               metric_score=SWEMWBS_METRIC[sum(items)])


@dataclass
class Workload:
    """The records to pre-load and what they hold."""

    records: list[Record]
    people: int
    cells: Counter[Cell]
    by_type: Counter[str]


def realistic_events(count: int, today: date, seed: int = SEED) -> Workload:
    """``count`` events of fake people, in date order (a person's own events stay in order)."""
    people = People(random.Random(seed), today)
    records: list[Record] = []
    persons = 0
    while len(records) < count:
        subject = new_subject_reference()
        persons += 1
        for service, payload, day in people.journey()[:count - len(records)]:
            event = CloudEvent.wrap(payload, source=f"/peerlink/{service}", subject=subject)
            records.append(Record(events_topic(service), subject.encode(), event.to_bytes(),
                                  event.type, day))
    records.sort(key=lambda record: record.day)  # stable: each person's order is kept
    cells = Counter(cell_of(json.loads(record.value)["data"]) for record in records)
    return Workload(records, persons, cells, Counter(record.event_type for record in records))


async def _produce(bootstrap: str, records: Sequence[Record]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20,
                                max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        pending: list[asyncio.Future[Any]] = []
        for record in records:
            pending.append(await producer.send(
                record.topic, record.value, key=record.key,
                headers=[("ce_type", record.event_type.encode())]))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def preload(bootstrap: str, records: Sequence[Record]) -> float:
    """Publish every record (aiokafka, batched); returns the seconds it took."""
    started = time.perf_counter()
    asyncio.run(_produce(bootstrap, records))
    return time.perf_counter() - started


# --- the contenders' own processes -----------------------------------------------------------


class Progress:
    """A contender's own count: when it had its first record and each quarter of ``total``."""

    def __init__(self, total: int, out: Path) -> None:
        self.total = total
        self.out = out
        self.count = 0
        self.first: tuple[float, float] | None = None  # (perf_counter, wall clock)
        self.marks = {max(1, round(total * q)): q for q in QUARTERS}
        self.quarters: dict[str, float] = {}

    def one(self) -> bool:
        """Count one record; whether it was the last one wanted."""
        self.count += 1
        if self.first is None:
            self.first = (time.perf_counter(), time.time())
        if self.count in self.marks:
            self.quarters[str(self.marks[self.count])] = time.time()
        return self.count >= self.total

    def finish(self, **extra: Any) -> None:
        """Write the result file (atomically: the bench waits for it to appear)."""
        assert self.first is not None
        elapsed = time.perf_counter() - self.first[0]
        result = {"records": self.count, "first_wall": self.first[1], "elapsed": elapsed,
                  "rate": (self.count - 1) / elapsed if elapsed > 0 else 0.0,
                  "quarters": self.quarters, **extra}
        partial = self.out.with_suffix(".partial")
        partial.write_text(json.dumps(result))
        partial.replace(self.out)


async def _bare(bootstrap: str, total: int, out: Path) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(*TOPICS, bootstrap_servers=bootstrap,
                                group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    progress = Progress(total, out)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    json.loads(message.value)
                    if progress.one():
                        progress.finish()
                        return
    finally:
        await consumer.stop()


def run_bare(bootstrap: str, total: int, out: Path) -> None:
    """Contender A: read ``total`` records and json-parse each, nothing else."""
    asyncio.run(_bare(bootstrap, total, out))


def run_agent(bootstrap: str, total: int, out: Path) -> None:
    """Contender B: a plain faust app, one agent taking events one at a time and counting
    them per organisation, team and month in memory."""
    import faust

    app = faust.App(f"bench-one-at-a-time-{uuid.uuid4().hex[:8]}",
                    broker=f"kafka://{bootstrap}", store="memory://", autodiscover=False,
                    web_enabled=False, topic_partitions=PARTITIONS,
                    consumer_auto_offset_reset="earliest", datadir=str(out.parent / "faust"),
                    broker_session_timeout=6.0, broker_heartbeat_interval=2.0)
    topic = app.topic(*TOPICS, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw")
    counts: Counter[Cell] = Counter()
    progress = Progress(total, out)

    async def aggregate(stream: Any) -> None:
        async for event in stream.events():
            counts[cell_of(json.loads(event.value)["data"])] += 1
            if progress.one():
                progress.finish(cells=[[*cell, n] for cell, n in sorted(counts.items())])

    app.agent(topic, name="bench.aggregate")(aggregate)
    sys.argv = [sys.argv[0]]
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


# --- measuring processes ---------------------------------------------------------------------


def status_kb(pid: int, field_name: str) -> int | None:
    """One ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``), if it is there."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return None


class RssSampler:
    """Samples the VmRSS of some processes every 0.5 s in a thread."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.samples: dict[int, list[tuple[float, int]]] = {pid: [] for pid in self.pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                rss = status_kb(pid, "VmRSS")
                if rss is not None:
                    self.samples[pid].append((time.time(), rss))
            self._stop.wait(SAMPLE_SECONDS)

    def at(self, pid: int, when: float) -> float | None:
        """RSS in MB of the last sample at or before ``when`` (else the first one)."""
        samples = self.samples[pid]
        if not samples:
            return None
        before = [rss for at, rss in samples if at <= when]
        return (before[-1] if before else samples[0][1]) / 1024

    def peak(self, pid: int) -> float | None:
        """The highest RSS sampled, in MB."""
        samples = self.samples[pid]
        return max(rss for _, rss in samples) / 1024 if samples else None


@dataclass
class Memory:
    """One process's memory during a contender's run (MB)."""

    process: str
    hwm: float | None
    peak_sampled: float | None
    quarters: list[float | None]

    def flat(self) -> bool | None:
        """Whether RSS at 100% of the events is within the flat margin of RSS at 25%."""
        first, last = self.quarters[0], self.quarters[-1]
        if first is None or last is None:
            return None
        return last - first <= max(FLAT_GROWTH * first, FLAT_GROWTH_MB)


@dataclass
class Run:
    """What one contender did."""

    name: str
    records: int = 0
    rate: float | None = None
    elapsed: float | None = None
    startup: float | None = None
    memory: list[Memory] = field(default_factory=list)
    error: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _stop_group(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM a process's group, then SIGKILL it after ``grace`` seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever it started


def _tail(log: Path, lines: int = 8) -> str:
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _child_env() -> dict[str, str]:
    """The environment of a contender: this one, without any PEERLINK_ setting that could
    point it elsewhere, the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERLINK_")
           or (k.startswith(("PEERLINK_REPORTING_", "PEERLINK_CONSUMER_BATCH_"))
               and not k.endswith("_DATABASE_URL"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def _processes(commands: Sequence[tuple[list[str], dict[str, str], Path]], cwd: Path
               ) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start each (argv, env, log) in its own session; stop them all however this ends."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for argv, env, log in commands:
            with log.open("ab") as out:
                started.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=out,
                                                stderr=subprocess.STDOUT,
                                                start_new_session=True))
        yield started
    finally:
        for process in started:
            _stop_group(process)


def run_own_process(kind: str, name: str, bootstrap: str, total: int, folder: Path) -> Run:
    """Contender A (``bare``) or B (``agent``) in a process of its own, until its result file
    appears."""
    work = folder / kind
    work.mkdir()
    out, log = work / "result.json", work / "log.txt"
    argv = [sys.executable, "-m", "tests.bench.bench_stream", kind, bootstrap, str(total),
            str(out)]
    run = Run(name)
    launched = time.time()
    with _processes([(argv, _child_env(), log)], work) as (process,), \
            RssSampler([process.pid]) as sampler:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not out.exists():
            if process.poll() is not None:
                run.error = f"exited with {process.returncode}: {_tail(log)}"
                return run
            if time.monotonic() > deadline:
                run.error = f"not done in {TIMEOUT_SECONDS:.0f} s"
                break
            time.sleep(0.2)
        hwm = status_kb(process.pid, "VmHWM")
    if not out.exists():
        return run
    result = json.loads(out.read_text())
    run.records, run.rate, run.elapsed = result["records"], result["rate"], result["elapsed"]
    run.startup = result["first_wall"] - launched
    run.memory = [Memory(name, hwm / 1024 if hwm else None, sampler.peak(process.pid),
                         [sampler.at(process.pid, result["quarters"][str(q)])
                          for q in QUARTERS])]
    if "cells" in result:
        run.notes["cells"] = {tuple(row[:3]): row[3] for row in result["cells"]}
    return run


# --- the reporting worker --------------------------------------------------------------------


def _port_offset(workers: int) -> int:
    """A port offset whose worker ports (this offset and +5 for a second worker) are free."""
    rng = random.Random()
    for _ in range(100):
        offset = rng.randrange(9000, 24000, 10)
        ports = [WORKER_PORTS["reporting"] + offset + 5 * i for i in range(workers)]
        if not any(port_in_use("127.0.0.1", port) for port in ports):
            return offset
    raise RuntimeError("no free worker ports")


def _applied(db: Path) -> int:
    """How many events the worker's business consumer has applied (its inbox rows)."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        row = connection.execute("SELECT count(*) FROM inbox WHERE consumer = ?",
                                 (BUSINESS_CONSUMER,)).fetchone()
    return int(row[0])


def _stamp(text: str) -> float:
    """An ``applied_at`` as SQLite holds it (naive UTC) as a wall-clock time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _inbox_times(db: Path, total: int) -> tuple[float, float, int, list[float]]:
    """First and last ``applied_at``, how many share the first, and when each quarter of
    ``total`` was reached."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        stamps = [row[0] for row in connection.execute(
            "SELECT applied_at FROM inbox WHERE consumer = ? ORDER BY applied_at",
            (BUSINESS_CONSUMER,))]
    first = stamps[0]
    in_first = sum(1 for stamp in stamps if stamp == first)
    quarters = [_stamp(stamps[min(len(stamps), max(1, round(total * q))) - 1])
                for q in QUARTERS]
    return _stamp(first), _stamp(stamps[-1]), in_first, quarters


def read_model(db: Path) -> dict[tuple[str, ...], tuple[int, int]]:
    """The contributions per measure, organisation, team and month: (rows, sum of values)."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        return {tuple(row[:4]): (row[4], row[5]) for row in connection.execute(
            "SELECT measure, org, team, month, count(*), sum(value) FROM contributions "
            "GROUP BY measure, org, team, month")}


def _releases(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        return int(connection.execute("SELECT coalesce(max(release_id), 0) FROM releases")
                   .fetchone()[0])


def _worker_metric(port: int, name: str) -> float | None:
    """The sum of one metric's samples on a worker's ``/metrics`` page."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == name)


def run_workers(count: int, bootstrap: str, total: int, folder: Path) -> tuple[Run, Path]:
    """Contender C: ``count`` reporting worker processes on one fresh SQLite database, until
    its inbox holds ``total`` events. Returns the run and the database."""
    var = folder / f"reporting-{count}"
    var.mkdir()
    db = var / "reporting.db"
    migrate("reporting", f"sqlite:///{db}")
    offset = _port_offset(count)
    commands = []
    for i in range(count):
        env = {**_child_env(), "PEERLINK_KAFKA_BOOTSTRAP": bootstrap,
               "PEERLINK_VAR_DIR": str(var), "PEERLINK_ENV": "development",
               "PEERLINK_PORT_OFFSET": str(offset + 5 * i),
               "PEERLINK_TOPIC_PARTITIONS": str(PARTITIONS)}
        commands.append(([sys.executable, "-m", "ops.cli", "worker", "reporting"], env,
                         var / f"worker-{i + 1}.log"))
    names = ["reporting worker"] if count == 1 else \
        [f"reporting worker {i + 1} of {count}" for i in range(count)]
    run = Run(f"{count} reporting worker{'s' if count > 1 else ''}")
    launched = time.time()
    done = 0
    with _processes(commands, var) as processes, \
            RssSampler([p.pid for p in processes]) as sampler:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while done < total:
            dead = [(i, p) for i, p in enumerate(processes) if p.poll() is not None]
            if dead:
                i, p = dead[0]
                run.error = f"worker {i + 1} exited with {p.returncode}: " \
                            f"{_tail(var / f'worker-{i + 1}.log')}"
                break
            if time.monotonic() > deadline:
                run.error = f"{done} of {total} applied in {TIMEOUT_SECONDS:.0f} s"
                break
            time.sleep(SAMPLE_SECONDS)
            done = _applied(db)
        hwms = [status_kb(p.pid, "VmHWM") for p in processes]
        ports = [WORKER_PORTS["reporting"] + offset + 5 * i for i in range(count)]
        run.notes["applied_per_worker"] = [_worker_metric(port, "peerlink_events_applied_total")
                                           for port in ports]
        run.notes["duplicates_per_worker"] = [
            _worker_metric(port, "peerlink_events_duplicate_total") for port in ports]
        pids = [p.pid for p in processes]
    if done == 0:
        return run, db
    first, last, in_first, quarters = _inbox_times(db, min(done, total))
    run.records = done
    run.elapsed = last - first
    run.rate = (done - in_first) / run.elapsed if run.elapsed > 0 else None
    run.startup = first - launched
    run.notes["releases"] = _releases(db)
    run.memory = [Memory(name, hwm / 1024 if hwm else None, sampler.peak(pid),
                         [sampler.at(pid, when) for when in quarters])
                  for name, pid, hwm in zip(names, pids, hwms, strict=True)]
    return run, db


def forget_group(bootstrap: str, group: str, timeout: float = 60.0) -> float:
    """Delete ``group`` once its workers have gone (DeleteGroups), so the next workers of that
    group read every topic from the start again; returns the seconds it took. (Tansu refuses
    to commit offsets for a group its members left: UNKNOWN_MEMBER_ID.)"""
    from kafka import KafkaAdminClient

    started = time.monotonic()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-stream")
    try:
        while True:
            answer = dict(admin.delete_groups([group]))
            if answer.get(group) == "OK" and not admin.list_group_offsets(group).get(group):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{group} not deleted: {answer}")
            time.sleep(1)
    finally:
        admin.close()


# --- the report ------------------------------------------------------------------------------


def _mb(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f} MB"


def _rate(run: Run) -> str:
    if run.rate is None:
        return f"failed ({run.error})" if run.error else "?"
    text = f"{run.rate:,.0f} records/s ({run.records:,} in {run.elapsed:.1f} s, start-up " \
           f"{run.startup:.1f} s)"
    return f"{text}; {run.error}" if run.error else text


def _yes(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _memory_line(memory: Memory) -> str:
    quarters = ", ".join(_mb(m).removesuffix(" MB") for m in memory.quarters)
    return f"peak {_mb(memory.hwm)} (VmHWM); RSS at 25/50/75/100%: {quarters} MB"


def report(runs: dict[str, Run], same_read_model: bool | None) -> list[list[str]]:
    """The table's rows: id, what, figure, target, met?"""
    bare, agent, one, two = (runs.get(k, Run(k)) for k in ("bare", "agent", "one", "two"))
    vs_agent, vs_bare = _ratio(one.rate, agent.rate), _ratio(one.rate, bare.rate)
    rows = [
        ["B1", "bare aiokafka consumer (json-parse only)", _rate(bare), "", ""],
        ["B1", "one-at-a-time faust agent (count per org/team/month)", _rate(agent), "", ""],
        ["B1", "reporting worker, 1 process", _rate(one), "", ""],
        ["B1", "worker / one-at-a-time agent",
         "?" if vs_agent is None else f"{vs_agent:.2f}x", ">= 2x",
         _yes(None if vs_agent is None else vs_agent >= 2)],
        ["B1", "worker / bare consumer", "?" if vs_bare is None else f"{vs_bare:.2f}x",
         ">= 0.25x", _yes(None if vs_bare is None else vs_bare >= 0.25)],
    ]
    for run in (bare, agent):
        rows += [["B6", f"memory, {m.process}", _memory_line(m), "", ""] for m in run.memory]
    for run in (one, two):
        for m in run.memory:
            peak = m.hwm if m.hwm is not None else m.peak_sampled
            under = None if peak is None else peak < WORKER_RSS_LIMIT_MB
            flat = m.flat()
            met = None if under is None or flat is None else under and flat
            rows.append(["B6", f"memory, {m.process}", _memory_line(m),
                         f"< {WORKER_RSS_LIMIT_MB:.0f} MB, flat", _yes(met)])
    scale = _ratio(two.rate, one.rate)
    rows.append(["B7", "reporting workers, 2 processes, one database", _rate(two), "", ""])
    complete = two.rate is not None and two.error is None and two.records == one.records
    rows.append(["B7", "2 workers / 1 worker (same read model as 1 worker: "
                       f"{_yes(same_read_model)})",
                 "?" if scale is None else f"{scale:.2f}x", "reported, same figures",
                 _yes(complete and bool(same_read_model) and scale is not None)])
    return rows


def print_table(rows: list[list[str]]) -> None:
    """A Markdown table."""
    header = ["id", "what", "figure", "target", "met?"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
              + " |")


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=False).stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "HEAD") + (" (working tree has uncommitted changes)"
                                       if changed else "")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _measure(name: str, runs: dict[str, Run], contender: Callable[[], Run]) -> Run:
    """Run one contender; a failure is reported in the table, the others still run."""
    print(f"... {name}", flush=True)
    try:
        run = contender()
    except Exception as exc:
        run = Run(name, error=f"{type(exc).__name__}: {exc}")
    runs[name] = run
    print(f"    {_rate(run)}", flush=True)
    return run


def main() -> None:
    """Pre-load, run every contender one after another, print the table."""
    load_start, commit = _load(), _commit()
    started = time.perf_counter()
    generating = time.perf_counter()
    workload = realistic_events(EVENTS, date.today())
    generated = time.perf_counter() - generating
    runs: dict[str, Run] = {}
    same: bool | None = None
    with tempfile.TemporaryDirectory(prefix="peerlink-bench-stream-") as tmp, \
            LocalBroker(free_port(), Path(tmp) / "broker.log") as broker:
        folder = Path(tmp)
        create_topics(broker.bootstrap, registry(PlatformSettings().organisations), PARTITIONS)
        loaded = preload(broker.bootstrap, workload.records)
        mentoring = sum(1 for r in workload.records if r.topic == MENTORING)
        print(f"pre-loaded {EVENTS:,} events ({workload.people:,} people; "
              f"{EVENTS - mentoring:,} on {SCREENING}, {mentoring:,} on {MENTORING}) in "
              f"{loaded:.1f} s ({EVENTS / loaded:,.0f}/s; generated in {generated:.1f} s)",
              flush=True)
        del workload.records
        _measure("bare", runs, lambda: run_own_process("bare", "bare consumer",
                                                       broker.bootstrap, EVENTS, folder))
        agent = _measure("agent", runs, lambda: run_own_process(
            "agent", "one-at-a-time agent", broker.bootstrap, EVENTS, folder))
        if "cells" in agent.notes:
            agent.notes["cells_match"] = agent.notes.pop("cells") == dict(workload.cells)
        one_db: list[Path] = []

        def one() -> Run:
            run, db = run_workers(1, broker.bootstrap, EVENTS, folder)
            one_db.append(db)
            return run

        def two() -> Run:
            nonlocal same
            reset = forget_group(broker.bootstrap, WORKER_GROUP)
            run, db = run_workers(2, broker.bootstrap, EVENTS, folder)
            run.notes["group_reset_seconds"] = round(reset, 1)
            if one_db and run.records:
                same = read_model(one_db[0]) == read_model(db)
            return run

        _measure("one", runs, one)
        _measure("two", runs, two)
    rows = report(runs, same)
    print()
    print(f"Stream throughput (issue 15): {EVENTS:,} events, {workload.people:,} people, "
          f"{PARTITIONS} partitions, pre-loaded in {loaded:.1f} s; bench took "
          f"{time.perf_counter() - started:.0f} s")
    print()
    print_table(rows)
    print()
    notes = {name: run.notes for name, run in runs.items() if run.notes}
    for name, values in notes.items():
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    machine = (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, {platform.platform()}; load average at start "
               f"{load_start}, at end {_load()}")
    if _commit() != commit:
        commit += f"; at the end {_commit()}"
    print(machine)
    print(f"commit: {commit}")
    out = os.environ.get("PEERLINK_BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps({
            "events": EVENTS, "people": workload.people, "partitions": PARTITIONS,
            "events_by_type": dict(workload.by_type), "preload_seconds": loaded,
            "rows": [dict(zip(["id", "what", "figure", "target", "met"], row, strict=True))
                     for row in rows],
            "runs": {name: {"records": run.records, "rate": run.rate, "elapsed": run.elapsed,
                            "startup": run.startup, "error": run.error,
                            "memory": [vars(m) for m in run.memory], "notes": run.notes}
                     for name, run in runs.items()},
            "machine": machine, "commit": commit}, indent=2, default=str))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] in ("bare", "agent"):
        entry = run_bare if sys.argv[1] == "bare" else run_agent
        entry(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()

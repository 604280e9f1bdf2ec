"""The whole platform in processes, for end-to-end and cascade tests."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from ops.broker import free_port
from ops.demo import fake_nhs_numbers, fake_screening
from ops.platform import LocalPlatform
from shared.issuer import development_issuer
from shared.kafka.topics import SERVICES
from shared.settings import PlatformSettings


class RunningPlatform:
    """A started platform and how to talk to it."""

    def __init__(self, settings: PlatformSettings, processes: LocalPlatform,
                 env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.processes = processes
        self.env = dict(env or {})  # the processes' environment, for a ``peerlink`` command
        self.authority = development_issuer(settings)
        self.numbers = fake_nhs_numbers(random.Random())

    def url(self, service: str, path: str) -> str:
        """A URL of a service's API."""
        return f"http://127.0.0.1:{self.settings.api_port(service)}{path}"

    def headers(self, org: str, *roles: str) -> dict[str, str]:
        """An Authorization header."""
        return {"Authorization": f"Bearer {self.authority.mint(org, list(roles))}"}

    def screening(self, team: str, **changes: Any) -> dict[str, Any]:
        """A synthetic enquiry (outcome asked, HARK positive) in November 2026."""
        record = fake_screening(random.Random(), next(self.numbers), date(2026, 11, 2),
                                outcome="asked")
        record.pop("acceptability", None)  # drawn at random: a test asks for it
        record.update(team=team, asked_on="2026-11-02", outcome="asked",
                      hark={"humiliated": False, "afraid": True, "raped": False,
                            "kicked": False}, past_abuse="no")
        record.update(changes)
        return record

    def team_row(self, team: str) -> dict[str, Any] | None:
        """The reporting API's prevalence row for one team in November 2026."""
        response = httpx.get(self.url("reporting", "/v1/prevalence"),
                             params={"group_by": "team", "period": "2026-11"},
                             headers=self.headers("trust", "ops-viewer"), timeout=5)
        response.raise_for_status()
        rows = [r for r in response.json()["rows"] if r["team"] == team]
        return rows[0] if rows else None


def wait_for(condition: Callable[[], Any], timeout: float = 45.0,
             interval: float = 0.3) -> Any:
    """Poll every ``interval`` seconds until ``condition`` returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f} s")


@contextmanager
def running_platform(request: pytest.FixtureRequest, var_dir: Path, backend: str,
                     **settings_env: str) -> Iterator[RunningPlatform]:
    """Every service's API and worker as its own process, on ``backend`` databases."""
    env = dict(os.environ)
    configured = os.environ.get("PEERLINK_KAFKA_BOOTSTRAP")
    env.update({
        "PEERLINK_KAFKA_BOOTSTRAP": configured or f"127.0.0.1:{free_port()}",
        "PEERLINK_VAR_DIR": str(var_dir),
        # below the ephemeral range (32768+), where outgoing connections could take our ports
        "PEERLINK_PORT_OFFSET": str(random.randrange(9000, 24000, 10)),
        "PEERLINK_REPORTING_RELEASE_SECONDS": "1",
        "PEERLINK_ENV": "test",
        **{f"PEERLINK_{k.upper()}": v for k, v in settings_env.items()},
    })
    databases: dict[str, str] = {}
    if backend == "postgresql":
        create_database: Callable[[], str] = request.getfixturevalue("postgres_database")
        databases = {f"PEERLINK_{s.upper()}_DATABASE_URL": create_database() for s in SERVICES}
    env.update(databases)
    monkeypatch = pytest.MonkeyPatch()
    for name, value in databases.items():
        monkeypatch.setenv(name, value)
    settings = PlatformSettings(
        kafka_bootstrap=env["PEERLINK_KAFKA_BOOTSTRAP"], var_dir=var_dir,
        port_offset=int(env["PEERLINK_PORT_OFFSET"]), env="test")
    processes = LocalPlatform(settings, start_broker=configured is None, env=env)
    try:
        processes.start()
        yield RunningPlatform(settings, processes, env)
    finally:
        processes.stop()
        monkeypatch.undo()


def worker_url(platform: RunningPlatform, service: str, path: str) -> str:
    """A URL of a service's stream worker (health, readiness, metrics)."""
    return f"http://127.0.0.1:{platform.settings.worker_port(service)}{path}"


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def metric(url: str, name: str, **labels: str) -> float | None:
    """One sample of a process's ``/metrics`` (``None`` if it is absent or does not answer)."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def consumer_lag(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    """Records on ``topics`` that consumer group ``group`` has not committed yet."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        committed = admin.list_group_offsets(group)[group]
        partitions = [TopicPartition(topic, p) for topic in topics
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(partitions)
        return sum(max(0, ends[tp] - max(0, committed[tp].offset if tp in committed else 0))
                   for tp in partitions)
    finally:
        consumer.close()
        admin.close()

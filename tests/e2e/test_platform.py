"""End to end over the real broker: every service as its own process, on both databases.

An enquiry accepted by the screening API travels outbox, Kafka, reporting worker and shows in
the reporting API's disclosure-controlled figures; a malformed record on the Trust's inbound
topic is dead-lettered with its error while the worker keeps consuming.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from shared.events.envelope import CloudEvent
from shared.kafka.topics import SERVICES, deadletter_topic, partner_inbound_topic
from tests.support.kafka import dead_letters_of, headers_of, read_topic
from tests.support.platform import RunningPlatform, running_platform, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("platform"), request.param) as p:
        yield p


def test_every_process_is_healthy_ready_and_measured(platform: RunningPlatform) -> None:
    for service in SERVICES:
        for port in (platform.settings.api_port(service), platform.settings.worker_port(service)):
            base = f"http://127.0.0.1:{port}"
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
            assert "peerlink_" in httpx.get(f"{base}/metrics", timeout=5).text


def test_up_prints_a_working_token_from_the_issuer_it_started_first(
        platform: RunningPlatform) -> None:
    issuer = f"http://127.0.0.1:{platform.settings.issuer_port()}"
    assert httpx.get(f"{issuer}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{issuer}/.well-known/jwks.json", timeout=5).json()["keys"]
    described = platform.processes.describe()
    [token] = [line.strip() for line in described.splitlines()
               if line.strip().count(".") == 2 and line.strip().startswith("ey")]
    headers = {"Authorization": f"Bearer {token}"}

    listed = httpx.get(platform.url("consent", "/v1/withdrawals"), headers=headers, timeout=5)
    audit = httpx.get(platform.url("consent", "/v1/audit"), headers=headers, timeout=5)
    key = httpx.get(platform.url("consent", "/internal/v1/data-keys/sub_" + "0" * 32),
                    headers=headers, timeout=5)

    assert (listed.status_code, audit.status_code) == (200, 200)
    assert key.status_code == 403


def test_enquiries_reach_the_reporting_figures_under_the_release_rule(
        platform: RunningPlatform) -> None:
    """Ten people in a fresh team are published together (the default K is 10); five more
    change nothing and the row says it is held."""
    team = f"e2e-{uuid.uuid4().hex[:8]}"
    clinician = platform.headers("trust", "clinician")
    for _ in range(10):  # all asked in private, so no figure is left part-way to K
        response = httpx.post(platform.url("screening", "/v1/screenings"),
                              json=platform.screening(team, private=True), headers=clinician,
                              timeout=10)
        assert response.status_code == 201, response.text
    row = wait_for(lambda: platform.team_row(team))
    assert row["screened"]["value"] == 10
    assert row["current_abuse"]["display"] == "10"
    assert row["current_abuse"]["rate"] == 1.0
    assert row["past_abuse"]["display"] == "0"
    assert row["held"] is False and row["changed_at"]

    for _ in range(5):  # half of K: enough to say held, too few to change a figure
        more = httpx.post(platform.url("screening", "/v1/screenings"),
                          json=platform.screening(team), headers=clinician, timeout=10)
        assert more.status_code == 201, more.text
    held = wait_for(lambda: (r := platform.team_row(team)) and r["held"] and r)
    assert held["screened"]["value"] == 10
    assert held["changed_at"] == row["changed_at"]
    assert "people have had events" in held["held_reason"]


def test_a_malformed_partner_record_is_dead_lettered_and_consumption_goes_on(
        platform: RunningPlatform) -> None:
    bootstrap = platform.settings.kafka_bootstrap
    team = f"e2e-{uuid.uuid4().hex[:8]}"
    before = trust_screened(platform)
    bad_outcome = platform.screening(team, outcome="maybe")
    good = [CloudEvent(id=str(uuid.uuid4()), source="/trust/record-system",
                       type="screening-completed", time=datetime.now(UTC),
                       subject=None, data=platform.screening(team)) for _ in range(10)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    topic = partner_inbound_topic("trust")
    marker = uuid.uuid4().hex.encode()
    bad = [producer.send(topic, key=marker, value=b"{this is not a CloudEvent"),
           producer.send(topic, key=marker, value=CloudEvent(
               id=str(uuid.uuid4()), source="/trust/record-system",
               type="screening-completed", time=datetime.now(UTC),
               data=bad_outcome).to_bytes())]
    for event in good:  # ten people, so the release rule publishes them
        producer.send(topic, key=marker, value=event.to_bytes())
    producer.flush()
    producer.close()
    sent = [(m.partition, m.offset) for m in (future.get(timeout=30) for future in bad)]

    def dead_letters() -> list[Any]:
        records = read_topic(bootstrap, deadletter_topic("screening"), timeout=2)
        return dead_letters_of(records, topic, sent)

    dead = wait_for(lambda: len(dead_letters()) == 2 and dead_letters())
    not_json, bad_value = (headers_of(r) for r in dead)
    assert not_json["peerlink-error-reason"] == "validation"
    assert not_json["peerlink-original-topic"] == topic
    assert {"peerlink-original-partition", "peerlink-original-offset"} <= set(not_json)
    assert "outcome" in bad_value["peerlink-error"]
    assert bad_value["peerlink-error"].count("maybe") == 0
    assert all(str(bad_outcome["nhs_number"]) not in v for v in bad_value.values())

    # the ten good records were consumed: the Trust's total moves by them (the new team's own
    # row may wait while another team's figures trail it, so that the two cannot be subtracted)
    assert wait_for(lambda: trust_screened(platform) >= before + 10)


def trust_screened(platform: RunningPlatform) -> int:
    """The Trust's published count of people screened in November 2026 (0 before any)."""
    response = httpx.get(platform.url("reporting", "/v1/prevalence"),
                         params={"group_by": "org", "period": "2026-11"},
                         headers=platform.headers("trust", "ops-viewer"), timeout=5)
    response.raise_for_status()
    rows = [r for r in response.json()["rows"] if r["org"] == "trust"]
    return int(rows[0]["screened"]["value"] or 0) if rows else 0

"""Regression (adversarial review, issue 10): a partner that registers a person the Trust
already knows learns nothing of the Trust's records; the Trust's partner-sharing opens them to
the one partner it names, with a relationship, and withdrawing it closes them again.

End to end over the real broker: the consent API (served on a port) writes the events, its
outbox is relayed to Kafka, and the screening worker (its own process, as deployed) projects
relationships and sharing from consent.events; every read goes through the screening API.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.screening.adapters.tables import partner_sharing, relationships
from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from shared.events.envelope import CloudEvent
from shared.kafka.client import client_options
from shared.kafka.producer import create_topics
from shared.kafka.topics import CASCADE_ACKS, registry
from shared.runtime import WorkerPlumbing
from tests.support.http import serving
from tests.support.kafka import read_topic
from tests.support.platform import wait_for
from tests.support.services import bearer, issuing, settings_for

pytestmark = pytest.mark.kafka

NHS_NUMBER = "943 476 5919"
NOTES = "Numbat-5521 the back gate is safe after six"
ASKED: dict[str, Any] = {
    "nhs_number": NHS_NUMBER, "org": "trust", "team": "north-cmht", "borough": "camden",
    "gender": "female", "age_band": "25-34", "asked_on": "2026-11-20",
    "asked_by_role": "care-coordinator", "training_level": 2, "private": True,
    "outcome": "asked", "hark": {"humiliated": True, "afraid": True, "raped": False,
                                 "kicked": False},
    "past_abuse": "yes", "abuser_relationship": "ex-partner", "affected_mental_health": "yes",
    "notes": NOTES,
}
RISK: dict[str, Any] = {"nhs_number": NHS_NUMBER, "answers": ["yes"] * 14 + ["no"] * 10,
                        "incidents_last_12_months": 1, "assessed_on": "2026-11-20"}


@dataclass
class Programme:
    consent: ConsentAdapters
    consent_url: str
    screening: ScreeningAdapters
    client: TestClient
    consent_outbox: WorkerPlumbing

    def headers(self, org: str, role: str) -> dict[str, str]:
        return bearer(self.screening.settings, org, role)

    def consent_call(self, path: str, body: dict[str, Any], org: str, role: str
                     ) -> dict[str, Any]:
        response = httpx.post(f"{self.consent_url}{path}", json=body,
                              headers=self.headers(org, role), timeout=10)
        assert response.status_code in (201, 202), response.text
        self.consent_outbox.relay.drain()
        created: dict[str, Any] = response.json()
        return created

    def register(self, org: str) -> str:
        return str(self.consent_call("/v1/subjects", {"nhs_number": NHS_NUMBER}, org,
                                     "partner-staff")["subject_id"])

    def results(self, subject_id: str, org: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/subjects/{subject_id}/results",
                                   headers=self.headers(org, "partner-staff"))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def screening_status(self, screening_id: str, org: str) -> int:
        return int(self.client.get(f"/v1/screenings/{screening_id}",
                                   headers=self.headers(org, "partner-staff")).status_code)

    def projected(self, subject_id: str) -> tuple[set[str], set[tuple[str, str, str]]]:
        """What the worker has applied: related organisations, and sharing rows."""
        with self.screening.database.read() as session:
            related = set(session.execute(select(relationships.c.org).where(
                relationships.c.subject_id == subject_id)).scalars())
            shared = {(r.holder_org, r.recipient_org, r.state) for r in session.execute(
                select(partner_sharing).where(partner_sharing.c.subject_id == subject_id))}
        return related, shared


@pytest.fixture
def programme(database_url: str, kafka_bootstrap: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Programme]:
    offset = random.randrange(9000, 24000, 10)
    consent_db = f"sqlite:///{tmp_path / 'consent.db'}"
    settings = settings_for(monkeypatch, tmp_path,
                            {"consent": consent_db, "screening": database_url},
                            kafka_bootstrap=kafka_bootstrap, port_offset=offset, env="test")
    create_topics(kafka_bootstrap, registry(settings.organisations), settings.topic_partitions,
                  settings.topic_replication, **client_options(settings))
    consent = ConsentAdapters(settings)
    with issuing(settings) as issued, \
            serving(consent_api(consent)) as consent_url:
        served = issued.model_copy(update={"consent_url": consent_url})
        screening = ScreeningAdapters(served)
        env = {**os.environ, "PEERLINK_KAFKA_BOOTSTRAP": kafka_bootstrap,
               "PEERLINK_VAR_DIR": str(tmp_path), "PEERLINK_PORT_OFFSET": str(offset),
               "PEERLINK_ENV": "test", "PEERLINK_CONSENT_URL": consent_url,
               "PEERLINK_TOKEN_URL": str(issued.token_url),
               "PEERLINK_SCREENING_DATABASE_URL": database_url}
        with (tmp_path / "screening-worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", "worker", "screening"], env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        relay = WorkerPlumbing("consent", consent.database, settings)
        try:
            yield Programme(consent, consent_url, screening, TestClient(screening_api(screening)),
                            relay)
        finally:
            relay.producer.close()
            screening.database.dispose()
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def test_a_partner_registering_a_known_person_sees_only_what_the_trust_shares_with_it(
        programme: Programme) -> None:
    trust = programme.headers("trust", "clinician")
    recorded = programme.client.post("/v1/screenings", json=ASKED, headers=trust)
    assert recorded.status_code == 201, recorded.text
    subject_id, screening_id = recorded.json()["subject_id"], recorded.json()["id"]
    assessed = programme.client.post("/v1/risk-assessments", json=RISK, headers=trust)
    assert assessed.status_code == 201, assessed.text

    # partner-b registers the NHS number the Trust registered: one reference, nothing shown
    assert programme.register("partner-b") == subject_id
    wait_for(lambda: "partner-b" in programme.projected(subject_id)[0])
    nothing = {"subject_id": subject_id, "screenings": [], "risk_assessments": []}
    assert programme.results(subject_id, "partner-b") == nothing
    assert programme.screening_status(screening_id, "partner-b") == 404

    # partner-a has a relationship too; the Trust shares with partner-a only
    assert programme.register("partner-a") == subject_id
    programme.consent_call(f"/v1/subjects/{subject_id}/consents", {
        "purpose": "partner-sharing", "method": "verbal", "recorded_by": "Nurse Okafor",
        "recipients": ["partner-a"]}, "trust", "clinician")
    shared = wait_for(lambda: (body := programme.results(subject_id, "partner-a"))
                      ["screenings"] and body)
    [screening] = shared["screenings"]
    assert (screening["id"], screening["notes"]) == (screening_id, NOTES)
    assert [r["score"] for r in shared["risk_assessments"]] == [14]
    assert programme.screening_status(screening_id, "partner-a") == 200
    assert programme.projected(subject_id) == (
        {"trust", "partner-a", "partner-b"}, {("trust", "partner-a", "granted")})
    assert programme.results(subject_id, "partner-b") == nothing
    assert programme.screening_status(screening_id, "partner-b") == 404

    # the Trust withdraws sharing with partner-a: it sees nothing again; screening acknowledges
    withdrawal = programme.consent_call(f"/v1/subjects/{subject_id}/withdrawals", {
        "purposes": ["partner-sharing"], "method": "verbal", "recipients": ["partner-a"]},
        "trust", "clinician")
    wait_for(lambda: programme.results(subject_id, "partner-a") == nothing)
    assert programme.screening_status(screening_id, "partner-a") == 404
    assert programme.results(subject_id, "partner-b") == nothing
    acks = wait_for(lambda: [e for e in (
        CloudEvent.from_bytes(r.value) for r in read_topic(
            programme.screening.settings.kafka_bootstrap, CASCADE_ACKS, timeout=2))
        if e.data.get("withdrawal_id") == withdrawal["withdrawal_id"]])
    assert [(e.type, e.data["service"]) for e in acks] == [("withdrawal-applied", "screening")]

    # the Trust's staff always see their own records
    own = programme.client.get(f"/v1/subjects/{subject_id}/results", headers=trust)
    assert [s["id"] for s in own.json()["screenings"]] == [screening_id]

    # every partner read is in its organisation's audit trail, and reads the same whether
    # or not anything was withheld (partner-b's DPO must not learn the Trust holds records)
    for org, expected in (("partner-b", {"screening-results-read"}),
                          ("partner-a", {"screening-results-read"})):
        entries = httpx.get(f"{programme.consent_url}/v1/audit",
                            params={"subject_id": subject_id},
                            headers=programme.headers(org, "dpo"), timeout=10).json()["entries"]
        actions = {e["action"] for e in entries if e["action"].startswith("screening-")}
        assert actions == expected, org

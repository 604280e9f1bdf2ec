"""The consent audit trail against an adversary with database access: the keyed chain, the
heads the worker publishes on Kafka, and verification against both. Real broker (the
``kafka_bootstrap`` fixture), SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from ops.broker import free_port, wait_for_port
from services.consent.adapters.heads import RECORD_KEY
from services.consent.bootstrap import ConsentAdapters, ConsentAuditSettings, audit_key
from services.consent.domain.audit import GENESIS, PublishedHead
from services.consent.service_layer.audit import HeadPublisher
from services.consent.service_layer.ports import HeadsUnavailable
from shared.auth import Principal
from shared.events.envelope import CloudEvent
from shared.kafka.producer import KafkaEventProducer, create_topics
from shared.kafka.topics import CASCADE_ACKS, TopicSpec, events_topic
from tests.support.consent import consent_on
from tests.support.kafka import headers_of, read_topic
from tests.support.services import bearer

pytestmark = pytest.mark.kafka

NHS_NUMBERS = ("9434765919", "4010232137")
CLERK = Principal(subject="clerk@trust", org="trust", roles=("clinician",))


def new_heads_topic(bootstrap: str) -> str:
    topic = f"audit.heads.test-{uuid.uuid4().hex[:12]}"
    create_topics(bootstrap, [TopicSpec(topic, "consent", "test audit heads")], partitions=3)
    return topic


@dataclass
class Audited:
    """The consent service on one test database, with a heads topic of its own."""

    service: ConsentAdapters
    client: TestClient
    backend: str
    producer: KafkaEventProducer | None
    publisher: HeadPublisher

    def verify(self) -> dict[str, Any]:
        response = self.client.get("/v1/audit/verify",
                                   headers=bearer(self.service.settings, "trust", "dpo"))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def append(self, n: int, action: str = "audit-read") -> None:
        for _ in range(n):
            with self.service.database.unit_of_work() as uow:
                self.service.trail.record(uow, CLERK, action, note="synthetic")

    def publish_head(self) -> PublishedHead:
        published = self.publisher.publish_if_moved()
        assert published is not None
        return published

    def sql(self, statement: str, **params: Any) -> None:
        with self.service.database.engine.begin() as connection:
            connection.execute(text(statement), params)

    def rows(self) -> list[Any]:
        log = self.service.database.metadata.tables["audit_log"]
        with self.service.database.read() as session:
            return list(session.execute(select(log).order_by(log.c.seq)).all())

    def drop_append_only_triggers(self) -> None:
        if self.backend == "postgresql":
            self.sql("DROP TRIGGER audit_log_append_only ON audit_log")
        else:
            self.sql("DROP TRIGGER audit_log_no_update")
            self.sql("DROP TRIGGER audit_log_no_delete")


@pytest.fixture
def open_audited(database_url: str, kafka_bootstrap: str, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Audited]]:
    with contextlib.ExitStack() as opened:
        def open_(bootstrap: str = kafka_bootstrap, **env: str) -> Audited:
            monkeypatch.setenv("PEERLINK_CONSENT_AUDIT_HEADS_TOPIC", new_heads_topic(
                kafka_bootstrap))
            for name, value in env.items():
                monkeypatch.setenv(f"PEERLINK_CONSENT_{name.upper()}", value)
            running = opened.enter_context(consent_on(database_url, tmp_path, monkeypatch,
                                                      kafka_bootstrap=bootstrap))
            service = running.adapters
            producer = (KafkaEventProducer(kafka_bootstrap, "test-consent-heads")
                        if bootstrap == kafka_bootstrap else None)
            if producer is not None:
                opened.callback(producer.close)
            publisher = HeadPublisher(service.database, service.trail,
                                      lambda head: service.heads.publish(producer, head)
                                      if producer else None)
            return Audited(service, running.client, running.backend, producer, publisher)

        yield open_


@pytest.fixture
def audited(open_audited: Callable[..., Audited]) -> Audited:
    return open_audited()


def _keyed(key: bytes, prev: str, content: dict[str, Any]) -> str:
    """What an adversary holding the stolen key computes (independently of the service)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, f"{prev}|{canonical}".encode(), hashlib.sha256).hexdigest()


def _unkeyed(_key: bytes, prev: str, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev}|{canonical}".encode()).hexdigest()


def rewrite_chain(audited: Audited, delete: range, digest: Callable[..., str],
                  key: bytes = b"") -> int:
    """The adversary: with the triggers dropped, delete entries, renumber the rest and recompute
    every hash and the head consistently with ``digest``. Returns the new head seq."""
    survivors = [r for r in audited.rows() if r.seq not in delete]
    audited.drop_append_only_triggers()
    with audited.service.database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log"))
        prev = GENESIS
        for seq, row in enumerate(survivors, start=1):
            content = {"seq": seq, "at": row.at, "actor": row.actor,
                       "actor_org": row.actor_org, "action": row.action,
                       "subject_id": row.subject_id, "detail": row.detail}
            hashed = digest(key, prev, content)
            connection.execute(text(
                "INSERT INTO audit_log (seq, at, actor, actor_org, action, subject_id, detail,"
                " prev_hash, hash) VALUES (:seq, :at, :actor, :actor_org, :action,"
                " :subject_id, :detail, :prev, :hash)"),
                {**content, "prev": prev, "hash": hashed})
            prev = hashed
        connection.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
                           {"seq": len(survivors), "hash": prev})
    return len(survivors)


def some_activity(audited: Audited) -> None:
    """Real entries through the API: two people registered, consent granted to one."""
    clinician = bearer(audited.service.settings, "trust", "clinician")
    subject_ids = []
    for number in NHS_NUMBERS:
        response = audited.client.post("/v1/subjects", json={"nhs_number": number},
                                       headers=clinician)
        assert response.status_code == 201, response.text
        subject_ids.append(response.json()["subject_id"])
    response = audited.client.post(
        f"/v1/subjects/{subject_ids[0]}/consents", headers=clinician,
        json={"purpose": "evaluation", "method": "written", "recorded_by": "Nurse Adebayo"})
    assert response.status_code == 201, response.text


# --- the keyed chain and its published heads ----------------------------------------------


def test_an_untouched_trail_verifies_against_the_published_heads(audited: Audited) -> None:
    some_activity(audited)
    first = audited.publish_head()
    audited.append(4)
    second = audited.publish_head()

    check = audited.verify()

    assert check["valid"] is True, check
    assert check["problem"] is None
    assert check["first_broken_seq"] is None
    assert check["heads_checked"] == 2
    assert check["newest_head"]["seq"] == second.seq == first.seq + 4
    assert check["newest_head"]["hash"] == second.hash
    assert check["entries"] == second.seq  # nothing appended since the second head


def test_a_transactions_entries_chain_in_the_order_recorded_and_a_failed_one_leaves_none(
        audited: Audited) -> None:
    audited.append(1)
    trail, database = audited.service.trail, audited.service.database
    with database.unit_of_work() as uow:
        for step in ("first", "second", "third"):
            trail.record(uow, CLERK, "audit-read", step=step)
    with pytest.raises(RuntimeError), database.unit_of_work() as uow:
        trail.record(uow, CLERK, "audit-read", step="rolled back")
        raise RuntimeError("the transaction failed")
    with database.unit_of_work() as uow:
        trail.record(uow, CLERK, "audit-read", step="after")
    with pytest.raises(RuntimeError, match="savepoint"), database.unit_of_work() as uow, \
            uow.session.begin_nested():
        trail.record(uow, CLERK, "audit-read", step="in a savepoint")

    rows = audited.rows()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert [json.loads(r.detail).get("step") for r in rows] == [
        None, "first", "second", "third", "after"]
    assert all(r.prev_hash == before.hash for before, r in itertools.pairwise(rows))
    check = audited.verify()
    assert check["valid"] is True, check
    assert check["entries"] == 5  # its own read of the trail is recorded after it checks


def test_heads_are_published_only_when_the_head_moved(audited: Audited) -> None:
    audited.append(3)
    published = audited.publish_head()

    assert audited.publisher.publish_if_moved() is None
    audited.append(1)
    moved = audited.publish_head()
    assert audited.publisher.publish_if_moved() is None

    topic = audited.service.heads.topic
    records = read_topic(audited.service.settings.kafka_bootstrap, topic, at_least=2)
    assert len(records) == 2
    assert {r.key for r in records} == {RECORD_KEY}
    assert len({r.partition for r in records}) == 1  # in publication order
    events = [CloudEvent.from_bytes(r.value) for r in sorted(records, key=lambda r: r.offset)]
    assert [e.type for e in events] == ["audit-head-published"] * 2
    assert all(e.subject is None for e in events)
    assert [e.data["seq"] for e in events] == [published.seq, moved.seq] == [3, 4]
    last = audited.rows()[-1]
    assert events[1].data["hash"] == last.hash
    assert headers_of(records[0]) == {"ce_type": "audit-head-published"}
    assert audited.service.heads.read_all() == [published, moved]


def test_a_head_is_not_published_for_an_entry_without_its_keyed_hash(
        audited: Audited) -> None:
    audited.append(2)
    audited.drop_append_only_triggers()
    audited.sql("UPDATE audit_log SET detail = '{}' WHERE seq = 2")

    with pytest.raises(ValueError, match="keyed hash"):
        audited.publisher.publish_if_moved()
    assert audited.service.heads.read_all() == []


def test_a_record_on_the_heads_topic_that_is_not_a_head_is_not_counted(
        audited: Audited) -> None:
    audited.append(2)
    head = audited.publish_head()
    assert audited.producer is not None
    audited.producer.send(audited.service.heads.topic, RECORD_KEY, b"not a cloud event",
                          []).get(timeout=10)

    assert audited.service.heads.read_all() == [head]
    check = audited.verify()
    assert check["valid"] is True
    assert check["heads_checked"] == 1


# --- the attack ---------------------------------------------------------------------------


def test_a_rewrite_with_the_stolen_key_disagrees_with_the_published_heads(
        audited: Audited) -> None:
    """The strongest adversary: a database administrator who also stole the audit key drops
    the triggers, deletes 18 entries and recomputes a consistent keyed chain."""
    some_activity(audited)
    audited.append(10 - len(audited.rows()))
    early = audited.publish_head()  # pins entries 1-10
    audited.append(20)
    late = audited.publish_head()  # pins entries 1-30
    assert (early.seq, late.seq) == (10, 30)
    assert audited.verify()["valid"] is True

    stolen = audit_key(audited.service.settings, ConsentAuditSettings())
    new_head = rewrite_chain(audited, range(11, 29), _keyed, stolen)

    with audited.service.database.read() as session:
        alone = audited.service.trail.verify(session)  # the keyed chain without the heads
    assert alone.valid, "the rewrite should be consistent under the stolen key"
    assert alone.entries == new_head == 31 - 18  # 30 entries, one audit-verified, 18 gone
    check = audited.verify()

    assert check["valid"] is False
    assert check["first_broken_seq"] == early.seq + 1
    assert check["entries"] == early.seq
    assert late.at.isoformat() in check["problem"]
    assert "no entry 30" in check["problem"]
    assert check["heads_checked"] == 2

    # the trail carries on above the forgery: entry 30 exists again, but not as published
    audited.append(30 - len(audited.rows()))
    later = audited.verify()
    assert later["valid"] is False
    assert later["first_broken_seq"] == early.seq + 1
    assert f"disagrees with the head published at {late.at.isoformat()}" in later["problem"]


def test_a_rewrite_without_the_key_fails_by_the_keyed_hash_alone(audited: Audited) -> None:
    """An adversary with only the database recomputes the chain as plain SHA-256; no head was
    published, so the keyed hash is all that stands in the way."""
    some_activity(audited)
    audited.append(25)
    assert audited.verify()["valid"] is True

    rewrite_chain(audited, range(5, 23), _unkeyed)
    check = audited.verify()

    assert check["valid"] is False
    assert check["heads_checked"] == 0
    assert check["first_broken_seq"] == 1
    assert check["entries"] == 0
    assert "unkeyed SHA-256" in check["problem"]


def test_a_rewrite_with_another_key_fails(audited: Audited) -> None:
    audited.append(5)

    rewrite_chain(audited, range(2, 3), _keyed, os.urandom(32))
    check = audited.verify()

    assert check["valid"] is False
    assert check["first_broken_seq"] == 1
    assert "altered" in check["problem"]


# --- when the heads cannot be read --------------------------------------------------------


def test_verify_says_so_when_kafka_is_unreachable(open_audited: Callable[..., Audited]
                                                  ) -> None:
    audited = open_audited(f"127.0.0.1:{free_port()}", audit_heads_read_seconds="1")
    audited.append(3)

    started = time.monotonic()
    check = audited.verify()

    assert time.monotonic() - started < 10
    assert check["valid"] is False
    assert check["heads_checked"] is None
    assert check["newest_head"] is None
    assert check["first_broken_seq"] is None  # the chain itself recomputes
    assert "could not be read" in check["problem"]
    assert "Kafka did not answer" in check["problem"]
    with pytest.raises(HeadsUnavailable):
        audited.service.heads.read_all()


def test_verify_says_so_when_the_heads_topic_is_missing(audited: Audited,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    audited.append(2)
    monkeypatch.setattr(audited.service.heads, "topic", f"absent-{uuid.uuid4().hex}")

    check = audited.verify()

    assert check["valid"] is False
    assert check["heads_checked"] is None
    assert "does not exist" in check["problem"]


def test_the_openapi_document_describes_the_verdict(audited: Audited) -> None:
    operation = audited.client.get("/openapi.json").json()["paths"]["/v1/audit/verify"]["get"]
    ok = operation["responses"]["200"]
    assert "heads_checked" in ok["description"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("AuditVerification")


# --- the worker process -------------------------------------------------------------------


def test_the_consent_worker_publishes_the_head_on_its_interval(
        audited: Audited, tmp_path: Path) -> None:
    settings = audited.service.settings
    create_topics(settings.kafka_bootstrap, [
        TopicSpec(events_topic("consent"), "consent", "events"),
        TopicSpec(CASCADE_ACKS, "consent", "acks")], partitions=settings.topic_partitions)
    audited.append(3)
    offset = _port_offset()
    env = {**os.environ, "PEERLINK_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "PEERLINK_VAR_DIR": str(settings.var_dir), "PEERLINK_PORT_OFFSET": str(offset),
           "PEERLINK_CONSENT_DATABASE_URL": settings.database_url("consent"),
           "PEERLINK_CONSENT_AUDIT_HEADS_TOPIC": audited.service.heads.topic,
           "PEERLINK_CONSENT_AUDIT_HEAD_SECONDS": "0.3", "PEERLINK_ENV": "test"}
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "worker", "consent"], env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", 8202 + offset, timeout=60)
        first = _wait_for_heads(audited, 1)
        audited.append(2)
        second = _wait_for_heads(audited, 2)
        time.sleep(1.5)  # five more intervals with nothing appended
        assert httpx.get(f"http://127.0.0.1:{8202 + offset}/healthz").status_code == 200
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    heads = audited.service.heads.read_all()
    assert [(h.seq, h.hash) for h in heads] == [(3, first[-1].hash), (5, second[-1].hash)]
    assert heads[1].hash == audited.rows()[-1].hash
    assert audited.verify()["heads_checked"] == 2


def _port_offset() -> int:
    """A port offset that puts the consent worker's web port on a free port."""
    while not 0 <= (offset := free_port() - 8202) <= 50000:
        pass
    return offset


def _wait_for_heads(audited: Audited, n: int, timeout: float = 30.0) -> list[PublishedHead]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        heads = audited.service.heads.read_all()
        if len(heads) >= n:
            return heads
        time.sleep(0.2)
    raise AssertionError(f"the worker did not publish {n} heads within {timeout} s")


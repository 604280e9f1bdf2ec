"""Dead letters over the real broker: sealed under the service's dead-letter key, listed
without values, replayed (unsealed) to their topic; and a partner's bad record, sent by a
Kafka client we did not write, leaves no NHS number, notes or invented field name behind."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ops.broker import LocalBroker, free_port
from ops.cli import main
from ops.migrations import migrate
from shared.kafka.consumer import DeadLetterSink, DeadLetterUnavailable, InboundRecord
from shared.kafka.deadletters import DeadLetterCipher
from shared.kafka.producer import KafkaEventProducer, RenewingProducer, create_topics
from shared.kafka.topics import TopicSpec, deadletter_topic, registry
from shared.settings import PlatformSettings, platform_settings
from tests.support.kafka import headers_of, read_topic
from tests.support.platform import wait_for

pytestmark = pytest.mark.kafka
SECRET = b'{"nhs_number": "9434765919"}'
KEY = bytes(range(1, 33))
NHS_NUMBER = "9434765919"
NOTES = "Numbat-5521 the back gate is safe after six"
INVENTED = "Alice Smith"


@pytest.fixture
def origin(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    topic = f"origin.{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [TopicSpec(topic, "test", "where records came from"),
                                    TopicSpec(deadletter_topic("mentoring"), "mentoring", "dl")],
                  partitions=3)
    monkeypatch.setenv("PEERLINK_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("PEERLINK_MENTORING_DEADLETTER_KEY", base64.b64encode(KEY).decode())
    platform_settings.cache_clear()
    yield topic
    platform_settings.cache_clear()


def _position(listed: str, origin: str, partition: int, offset: int) -> str:
    line = next(line for line in listed.splitlines()
                if f"from {origin}[{partition}]@{offset}" in line)
    return line.split("  ")[0].split("[")[1].replace("]@", ":")


def test_dead_letters_are_sealed_listed_without_values_and_replayed_to_their_topic(
        kafka_bootstrap: str, origin: str, capsys: pytest.CaptureFixture[str]) -> None:
    producer = KafkaEventProducer(kafka_bootstrap, "test")
    key = uuid.uuid4().hex.encode()
    DeadLetterSink("mentoring", deadletter_topic("mentoring"), producer,
                   DeadLetterCipher(KEY)).send(
        "mentoring.partner-inbound.partner-a",
        InboundRecord(topic=origin, partition=2, offset=17, key=key, value=SECRET),
        "validation", "attendance: Input should be 'attended'")
    producer.close()
    [kept] = [r for r in read_topic(kafka_bootstrap, deadletter_topic("mentoring"))
              if headers_of(r).get("peerlink-original-topic") == origin]
    assert NHS_NUMBER.encode() not in kept.value
    assert headers_of(kept)["peerlink-sealed"] == "aes256gcm/v2"
    assert kept.key != key  # the partner's key is sealed too: it may be an NHS number
    assert DeadLetterCipher(KEY).open(origin, 2, 17, kept.key, part="key") == key

    assert main(["deadletter", "list", "--service", "mentoring"]) == 0
    listed = capsys.readouterr().out
    assert "validation: attendance" in next(
        line for line in listed.splitlines() if f"from {origin}[2]@17" in line)
    assert NHS_NUMBER not in listed

    position = _position(listed, origin, 2, 17)
    assert main(["deadletter", "replay", "--service", "mentoring", "--offset", position]) == 0
    [replayed] = [r for r in read_topic(kafka_bootstrap, origin) if r.key == key]
    assert replayed.value == SECRET
    assert headers_of(replayed)["peerlink-replayed-from"].startswith("deadletter.mentoring[")


def test_a_binary_mode_record_keeps_its_headers_sealed_and_replays_with_them(
        kafka_bootstrap: str, origin: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A binary-mode CloudEvent's attributes are its headers: the dead letter keeps them sealed
    (a partner may put an NHS number in ``ce_subject``) and a replay sends them back."""
    producer = KafkaEventProducer(kafka_bootstrap, "test")
    key = uuid.uuid4().hex.encode()
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"evt-1"), ("ce_source", b"/partner-a"),
               ("ce_type", b"peerlink.mentoring.session-recorded.v1"),
               ("ce_subject", NHS_NUMBER.encode()), ("content-type", b"application/json")]
    DeadLetterSink("mentoring", deadletter_topic("mentoring"), producer,
                   DeadLetterCipher(KEY)).send(
        "mentoring.partner-inbound.partner-a",
        InboundRecord(topic=origin, partition=1, offset=9, key=key, value=b"{}",
                      headers=tuple(headers)),
        "rejected", "subject: not a subject reference")
    producer.close()
    [kept] = [r for r in read_topic(kafka_bootstrap, deadletter_topic("mentoring"))
              if headers_of(r).get("peerlink-original-topic") == origin]
    assert all(NHS_NUMBER.encode() not in value for _, value in kept.headers)
    assert not {name for name, _ in kept.headers} & {name for name, _ in headers}

    assert main(["deadletter", "list", "--service", "mentoring"]) == 0
    listed = capsys.readouterr().out
    assert NHS_NUMBER not in listed
    position = _position(listed, origin, 1, 9)
    assert main(["deadletter", "replay", "--service", "mentoring", "--offset", position]) == 0
    [replayed] = [r for r in read_topic(kafka_bootstrap, origin) if r.key == key]
    assert replayed.value == b"{}"
    assert list(replayed.headers)[:-1] == headers
    assert list(replayed.headers)[-1][0] == "peerlink-replayed-from"


def test_a_dead_letter_from_before_sealing_still_replays(
        kafka_bootstrap: str, origin: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = uuid.uuid4().hex.encode()
    legacy = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    legacy.send(deadletter_topic("mentoring"), key=key, value=SECRET, headers=[
        ("peerlink-error-reason", b"validation"), ("peerlink-error", b"match_id: missing"),
        ("peerlink-original-topic", origin.encode()),
        ("peerlink-original-partition", b"1"), ("peerlink-original-offset", b"5")],
    ).get(timeout=30)
    legacy.close()

    assert main(["deadletter", "list", "--service", "mentoring"]) == 0
    position = _position(capsys.readouterr().out, origin, 1, 5)
    assert main(["deadletter", "replay", "--service", "mentoring", "--offset", position]) == 0
    [replayed] = [r for r in read_topic(kafka_bootstrap, origin) if r.key == key]
    assert replayed.value == SECRET


def test_replay_needs_a_choice(origin: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deadletter", "replay", "--service", "mentoring"]) == 2
    assert "--offset" in capsys.readouterr().err


@pytest.fixture
def screening_worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[None]:
    """The screening worker in its own process, as deployed, with a known dead-letter key."""
    offset = random.randrange(9000, 24000, 10)
    settings = PlatformSettings(kafka_bootstrap=kafka_bootstrap, var_dir=tmp_path)
    create_topics(kafka_bootstrap, registry(settings.organisations), settings.topic_partitions)
    database_url = f"sqlite:///{tmp_path / 'screening.db'}"
    migrate("screening", database_url)
    env = {**os.environ, "PEERLINK_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "PEERLINK_VAR_DIR": str(tmp_path), "PEERLINK_PORT_OFFSET": str(offset),
           "PEERLINK_ENV": "test", "PEERLINK_CONSENT_URL": "http://127.0.0.1:9",
           "PEERLINK_TOKEN_URL": "http://127.0.0.1:9/oauth/token",
           "PEERLINK_SCREENING_DATABASE_URL": database_url,
           "PEERLINK_SCREENING_DEADLETTER_KEY": base64.b64encode(KEY).decode()}
    with (tmp_path / "screening-worker.log").open("ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "ops.cli", "worker", "screening"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        yield
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _opens_to(sealed: bytes, headers: dict[str, bytes], key: bytes) -> bool:
    """Whether a dead letter's sealed key is ``key`` (it opens only for its position)."""
    try:
        return DeadLetterCipher(KEY).open(
            headers["peerlink-original-topic"].decode(),
            int(headers["peerlink-original-partition"]),
            int(headers["peerlink-original-offset"]), sealed, part="key") == key
    except (InvalidTag, KeyError, ValueError):
        return False


def _dead_letter_with_key(bootstrap: str, key: bytes) -> tuple[bytes, dict[str, bytes]] | None:
    """The record with ``key`` on deadletter.screening, read with plain kafka-python."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition("deadletter.screening", p) for p in
                      sorted(consumer.partitions_for_topic("deadletter.screening") or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        while batches := consumer.poll(timeout_ms=1000):
            for record in (r for batch in batches.values() for r in batch):
                headers = dict(record.headers or ())
                if record.key is not None and _opens_to(record.key, headers, key):
                    return record.value, headers
    finally:
        consumer.close()
    return None


def test_a_partners_bad_record_is_dead_lettered_sealed_and_named_without_its_inventions(
        kafka_bootstrap: str, screening_worker: None) -> None:
    key = f"sub_{uuid.uuid4().hex}".encode()
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/trust/epr",
             "type": "screening-completed", "time": "2026-11-20T09:30:00Z",
             "datacontenttype": "application/json",
             "data": {"nhs_number": NHS_NUMBER, "org": "trust", "notes": NOTES,
                      INVENTED: "her sister's address"}}
    partner = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    partner.send("partner.trust.inbound", key=key, value=json.dumps(event).encode(),
                 headers=[("content-type", b"application/cloudevents+json")]).get(timeout=30)
    partner.close()

    value, headers = wait_for(lambda: _dead_letter_with_key(kafka_bootstrap, key), timeout=90)

    assert NHS_NUMBER.encode() not in value and b"Numbat" not in value
    assert headers["peerlink-sealed"] == b"aes256gcm/v2"
    assert headers["peerlink-original-topic"] == b"partner.trust.inbound"
    assert headers["peerlink-error-reason"] == b"validation"
    error = headers["peerlink-error"].decode()
    assert "unexpected field" in error and "asked_on" in error
    for header in headers.values():
        assert b"Alice" not in header and NHS_NUMBER.encode() not in header
    opened = DeadLetterCipher(KEY).open(
        "partner.trust.inbound", int(headers["peerlink-original-partition"]),
        int(headers["peerlink-original-offset"]), value)
    assert json.loads(opened) == event


def test_dead_letters_go_on_after_the_broker_restarted(tmp_path: Path) -> None:
    """A producer whose broker restarted fails until it is replaced (the broker forgot its
    producer id): the worker's producer renews itself, and a dead letter that could not be
    sent is an error to retry (``DeadLetterUnavailable``), never a stalled partition."""
    port = free_port()
    broker = LocalBroker(port, tmp_path / "broker.log").start()
    specs = [TopicSpec(deadletter_topic("mentoring"), "mentoring", "dl"),
             TopicSpec("origin.restart", "test", "where records came from")]
    try:
        create_topics(broker.bootstrap, specs, partitions=1)
        made: list[KafkaEventProducer] = []

        def make() -> KafkaEventProducer:
            made.append(KafkaEventProducer(broker.bootstrap, "test"))
            return made[-1]

        producer = RenewingProducer(make)
        sink = DeadLetterSink("mentoring", deadletter_topic("mentoring"), producer,
                              DeadLetterCipher(KEY))

        def dead_letter(offset: int) -> int:
            """Send one dead letter, retrying as the worker would; returns the attempts."""
            for attempt in range(1, 6):
                try:
                    sink.send("mentoring.partner-inbound.partner-a", InboundRecord(
                        topic="origin.restart", partition=0, offset=offset, key=None,
                        value=SECRET), "validation", "match_id: Field required")
                    return attempt
                except DeadLetterUnavailable:
                    time.sleep(1)
            raise AssertionError("no dead letter after 5 attempts")

        assert dead_letter(1) == 1
        broker.stop()
        broker.start()
        create_topics(broker.bootstrap, specs, partitions=1)
        assert dead_letter(2) <= 3
        assert len(made) == 2  # the first producer failed once against the new broker
        kept = read_topic(broker.bootstrap, deadletter_topic("mentoring"))
        assert [headers_of(r)["peerlink-original-offset"] for r in kept] == ["2"]
        producer.close()
    finally:
        broker.stop()

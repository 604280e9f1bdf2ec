"""peerlink deadletter list|replay over the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.cli import main
from shared.kafka.consumer import DeadLetterSink, InboundRecord
from shared.kafka.producer import KafkaEventProducer, create_topics
from shared.kafka.topics import TopicSpec, deadletter_topic
from shared.settings import platform_settings
from tests.support.kafka import headers_of, read_topic

pytestmark = pytest.mark.kafka
SECRET = b'{"nhs_number": "9434765919"}'


@pytest.fixture
def origin(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    topic = f"origin.{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [TopicSpec(topic, "test", "where records came from"),
                                    TopicSpec(deadletter_topic("mentoring"), "mentoring", "dl")],
                  partitions=3)
    monkeypatch.setenv("PEERLINK_KAFKA_BOOTSTRAP", kafka_bootstrap)
    platform_settings.cache_clear()
    yield topic
    platform_settings.cache_clear()


def test_dead_letters_are_listed_without_values_and_replayed_to_their_topic(
        kafka_bootstrap: str, origin: str, capsys: pytest.CaptureFixture[str]) -> None:
    producer = KafkaEventProducer(kafka_bootstrap, "test")
    key = uuid.uuid4().hex.encode()
    DeadLetterSink("mentoring", deadletter_topic("mentoring"), producer).send(
        "mentoring.partner-inbound.partner-a",
        InboundRecord(topic=origin, partition=2, offset=17, key=key, value=SECRET),
        "validation", "attendance: Input should be 'attended'")
    producer.close()

    assert main(["deadletter", "list", "--service", "mentoring"]) == 0
    listed = capsys.readouterr().out
    line = next(line for line in listed.splitlines() if f"from {origin}[2]@17" in line)
    assert "validation: attendance" in line
    assert "9434765919" not in listed
    position = line.split("  ")[0].split("[")[1].replace("]@", ":")

    assert main(["deadletter", "replay", "--service", "mentoring", "--offset", position]) == 0
    [replayed] = [r for r in read_topic(kafka_bootstrap, origin) if r.key == key]
    assert replayed.value == SECRET
    assert headers_of(replayed)["peerlink-replayed-from"].startswith("deadletter.mentoring[")


def test_replay_needs_a_choice(origin: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deadletter", "replay", "--service", "mentoring"]) == 2
    assert "--offset" in capsys.readouterr().err

"""Hostile input on the partner topics, through the real workers on the real broker: records
of wrong types, missing fields, oversize values, invalid UTF-8 in the value and the headers,
unknown types, forged organisations and sources, both CloudEvents modes, random bytes, empty
values and huge headers, with valid events among them. Every hostile record is dead-lettered
with a reason that quotes nothing it carried, no worker crashes, and every valid event is
applied. A bad record on ``consent.events`` is never skipped: it halts the consumer and
raises ``peerlink_consent_events_stalled``.

Short form in ``make test``; ``make soak`` sends 10 000 hostile records.
"""

from __future__ import annotations

import json
import os
import random
import re
import string
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from shared.events.envelope import CloudEvent
from shared.kafka.topics import deadletter_topic, events_topic, partner_inbound_topic
from tests.e2e.test_mentoring_journey import matched_person
from tests.support.kafka import headers_of
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
HOSTILE = scale(1500, 10_000)
VALID_EVERY = 50
"""One valid event after every 49 hostile records."""
TOKEN = re.compile(r"zq[a-z]{10}")
"""The shape of the markers hostile records carry in what they send (values, names,
headers): no dead letter's reason may repeat one."""
NHS_NUMBER = re.compile(r"\b\d{3}\s?\d{3}\s?\d{4}\b")
TODAY = date.today()

Headers = list[tuple[str, bytes]]
Record = tuple[bytes | None, bytes | None, Headers]
"""Key, value and headers, as a client sends them."""


@pytest.fixture(scope="module")
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("hostile"), "sqlite") as p:
        yield p


@dataclass
class Target:
    """A partner topic, and what a valid event on it looks like."""

    org: str
    service: str
    event_type: str
    source: str
    valid_data: Callable[[int], dict[str, Any]]
    wrong_types: list[str]
    """Fields to give a value of a type they cannot take."""
    strings: frozenset[str]
    """Those of them that take text (any text may pass for them)."""
    required: list[str]
    subject: str | None = None

    @property
    def topic(self) -> str:
        """The partner's inbound topic."""
        return partner_inbound_topic(self.org)


@dataclass
class Hostile:
    """Makes hostile records for one target, marked with fresh tokens."""

    rng: random.Random
    target: Target

    def token(self) -> str:
        """A marker no error message may repeat."""
        return "zq" + "".join(self.rng.choices(string.ascii_lowercase, k=10))

    def attributes(self, **changes: Any) -> dict[str, Any]:
        """Valid envelope attributes, changed."""
        attributes: dict[str, Any] = {
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": self.target.source,
            "type": self.target.event_type, "datacontenttype": "application/json"}
        if self.rng.random() < 0.5:
            attributes["time"] = "2026-11-20T09:30:00Z"
        attributes.update(changes)
        return {k: v for k, v in attributes.items() if v is not None}

    def data(self, **changes: Any) -> dict[str, Any]:
        """Valid data, changed."""
        return {**self.target.valid_data(0), **changes}

    def encode(self, attributes: dict[str, Any], data: Any, mode: str | None = None
               ) -> Record:
        """One event in structured or binary mode (at random unless ``mode`` says)."""
        key = (self.target.subject or self.token()).encode()
        if (mode or self.rng.choice(["structured", "binary"])) == "structured":
            headers = self.rng.choice([[], [("content-type", b"application/cloudevents+json")]])
            return key, json.dumps({**attributes, "data": data}).encode(), headers
        binary: Headers = [("content-type", attributes.pop("datacontenttype").encode())]
        binary += [(f"ce_{k}", str(v).encode()) for k, v in attributes.items()]
        return key, json.dumps(data).encode(), binary

    # the kinds of hostile record, each returns one

    def wrong_type(self) -> Record:
        name = self.rng.choice(self.target.wrong_types)
        wrongs: list[Any] = [[self.token()], {self.token(): 1}]
        if name not in self.target.strings:
            wrongs.append(self.token())
        wrong = self.rng.choice(wrongs)
        return self.encode(self.attributes(), self.data(**{name: wrong}))

    def missing_field(self) -> Record:
        if self.rng.random() < 0.3:
            dropped = {name: None for name in self.rng.sample(["id", "source", "type"],
                                                            self.rng.randint(1, 3))}
            return self.encode(self.attributes(**dropped, subjectnote=self.token()),
                               self.data())
        data = self.data(notes=self.token()) if self.target.org == "trust" else self.data()
        for name in self.rng.sample(self.target.required, self.rng.randint(1, 3)):
            data.pop(name, None)
        return self.encode(self.attributes(), data)

    def oversize(self) -> Record:
        token = self.token()
        choice = self.rng.randrange(4)
        if choice == 0:
            return self.encode(self.attributes(id=token * 30), self.data())
        if choice == 1:
            return self.encode(self.attributes(source="/" + token * 30), self.data())
        big: dict[str, Any]
        if self.target.org == "trust":
            big = {"notes": token * 500} if choice == 2 else {"team": token * 500}
        else:
            big = ({"safeguarding_concern": True, "concern_details": token * 500}
                   if choice == 2 else {"match_id": token * 20})
        return self.encode(self.attributes(), self.data(**big))

    def invalid_utf8_value(self) -> Record:
        key, value, headers = self.encode(self.attributes(), self.data())
        assert value is not None
        cut = value.index(b'"', 2)  # inside the first name
        broken = self.rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"])
        return key, value[:cut] + self.token().encode() + broken + value[cut:], headers

    def invalid_utf8_header(self) -> Record:
        key, value, headers = self.encode(self.attributes(subject="sub_" + "0" * 32),
                                          self.data(), "binary")
        at = self.rng.randrange(len(headers))
        name, _ = headers[at]
        headers[at] = (name, self.token().encode() + b"\xff\xfe\xfd")
        if self.rng.random() < 0.3:
            headers.append((f"ce_{self.token()}", b"\xc0\xaf"))
            del headers[at]
        return key, value, headers

    def unknown_type(self) -> Record:
        event_type = self.rng.choice([f"{self.token()}-happened", "consent-withdrawn",
                                      "screening-completed" if self.target.org != "trust"
                                      else "session-logged"])
        return self.encode(self.attributes(type=event_type), self.data(note=self.token()))

    def forged(self) -> Record:
        if self.rng.random() < 0.5:
            source = self.rng.choice(["/peerlink/consent", "/peerlink/screening", "/peerlink"])
            return self.encode(self.attributes(source=source, cehint=self.token()),
                               self.data())
        if self.target.org == "trust":
            data = self.data(org=self.rng.choice(["partner-a", "partner-b"]),
                             notes=self.token())
        else:
            data = self.data(match_id="mm_" + self.token())
        return self.encode(self.attributes(), data)

    def random_bytes(self) -> Record:
        value = self.token().encode() + self.rng.randbytes(self.rng.randrange(0, 2000))
        headers = self.rng.choice([[], [("content-type", b"application/cloudevents+json")],
                                   [("ce_specversion", b"1.0")]])
        return self.rng.randbytes(16), value, headers

    def empty(self) -> Record:
        headers = self.rng.choice([[], [("content-type", b"application/cloudevents+json")],
                                   self.encode(self.attributes(), {}, "binary")[2]])
        return None, self.rng.choice([None, b""]), headers

    def huge_headers(self) -> Record:
        token = self.token()
        choice = self.rng.randrange(3)
        if choice == 0:  # many extensions, and no id
            key, value, headers = self.encode(self.attributes(id=None), self.data(), "binary")
            headers += [(f"ce_ext{i}", token.encode() * 40) for i in range(100)]
            return key, value, headers
        if choice == 1:  # a name no attribute may have
            key, value, headers = self.encode(self.attributes(), self.data(), "binary")
            return key, value, [*headers, (f"ce_{token}-" + "X" * 20_000, b"v")]
        return self.encode(self.attributes(source=token * 4000), self.data(), "binary")

    def wrong_content_type(self) -> Record:
        key, value, headers = self.encode(self.attributes(), self.data(), "binary")
        choice = self.rng.randrange(4)
        if choice == 0:
            return key, self.token().encode(), [
                (k, v) if k != "content-type" else (k, b"text/plain") for k, v in headers]
        if choice == 1:
            return key, value, [(k, v) if k != "content-type" else (k, b"application/xml")
                                for k, v in headers]
        structured = json.dumps({**self.attributes(), "data": self.data(),
                                 "note": self.token()}).encode()
        if choice == 2:
            return key, b"[" + structured + b"]", [
                ("content-type", b"application/cloudevents-batch+json")]
        return key, structured, [("content-type", b"application/cloudevents+avro")]

    def broken_envelope(self) -> Record:
        choice = self.rng.randrange(7)
        token = self.token()
        if choice == 0:  # binary without ce_specversion
            key, value, headers = self.encode(self.attributes(), self.data(), "binary")
            return key, value, [(k, v) for k, v in headers if k != "ce_specversion"]
        if choice == 1:
            return self.encode(self.attributes(time=self.rng.choice(
                [token, "2026-13-45T99:00:00Z", "2026-11-20T09:30:00", "1700000000"])),
                self.data())
        if choice == 2:
            return self.encode(self.attributes(specversion=self.rng.choice(["0.3", token])),
                               self.data())
        if choice == 3:  # an attribute twice
            key, value, headers = self.encode(self.attributes(), self.data(), "binary")
            return key, value, [*headers, ("ce_id", token.encode())]
        if choice == 4:
            return self.encode(self.attributes(id=f"{token}\x00\x07"), self.data())
        if choice == 5:
            return None, self.rng.choice([b"[" * 5000, b"null", b'"' + token.encode() + b'"',
                                          b"[1, 2]", b"12"]), []
        return self.encode(self.attributes(subject=self.rng.choice(
            ["943 476 5919", token, "sub_" + "f" * 32])), self.data())

    def invented_field(self) -> Record:
        name = self.rng.choice([self.token(), f"Alice Smith {self.token()}"])
        return self.encode(self.attributes(), self.data(**{name: self.token()}))

    def make(self) -> tuple[str, Record]:
        """One hostile record of a kind chosen at random, and the kind's name."""
        kinds: list[Callable[[], Record]] = [
            self.wrong_type, self.missing_field, self.oversize, self.invalid_utf8_value,
            self.invalid_utf8_header, self.unknown_type, self.forged, self.random_bytes,
            self.empty, self.huge_headers, self.wrong_content_type, self.broken_envelope,
            self.invented_field]
        kind = self.rng.choice(kinds)
        return kind.__name__, kind()


def send(bootstrap: str, batches: dict[str, list[Record]]) -> dict[str, list[tuple[int, int]]]:
    """Send each topic's records with confluent-kafka, as a partner's client would; returns
    where each one landed, (partition, offset), in order."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 20,
                         "message.max.bytes": 2_000_000})
    landed: dict[tuple[str, int], tuple[int, int]] = {}
    failed: list[KafkaError] = []

    def report(topic: str, index: int) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(error: KafkaError | None, message: Message) -> None:
            partition, offset = message.partition(), message.offset()
            if error is not None or partition is None or offset is None:
                failed.append(error or KafkaError(KafkaError.UNKNOWN))
            else:
                landed[(topic, index)] = (partition, offset)
        return on_delivery

    for topic, records in batches.items():
        for index, (key, value, headers) in enumerate(records):
            producer.produce(topic, value=value, key=key, headers=list(headers),
                             on_delivery=report(topic, index))
            producer.poll(0)
    assert producer.flush(60) == 0
    assert failed == []
    return {topic: [landed[(topic, i)] for i in range(len(records))]
            for topic, records in batches.items()}


class Tail:
    """Every record of some topics from the beginning, read on as more arrive."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                       max_partition_fetch_bytes=4_000_000)
        partitions = [TopicPartition(t, p) for t in topics
                      for p in sorted(self._consumer.partitions_for_topic(t) or ())]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        self.records: list[ConsumerRecord] = []

    def read(self) -> list[ConsumerRecord]:
        """Everything read so far, after reading what is there now."""
        while batches := self._consumer.poll(timeout_ms=300):
            for batch in batches.values():
                self.records.extend(batch)
        return self.records

    def close(self) -> None:
        """Stop reading."""
        self._consumer.close()


def targets(platform: RunningPlatform, run: str) -> list[Target]:
    """The Trust's topic (screening adopts) and partner-a's (mentoring adopts)."""
    subject_id, match_id = matched_person(platform)

    def session(i: int) -> dict[str, Any]:
        return {"match_id": match_id, "held_on": (TODAY - timedelta(days=1)).isoformat(),
                "duration_minutes": i % 1440, "mode": "phone", "attendance": "attended",
                "safeguarding_concern": False}

    return [
        Target("trust", "screening", "screening-completed", "/trust/epr",
               lambda i: platform.screening(f"hv-{run}-{i}"),
               wrong_types=["training_level", "private", "hark", "asked_on", "team",
                            "outcome", "org"],
               strings=frozenset({"team", "org"}),
               required=["org", "team", "borough", "gender", "age_band", "asked_on",
                         "asked_by_role", "training_level", "private", "outcome"]),
        Target("partner-a", "mentoring", "session-logged", "/partner-a/case-system", session,
               wrong_types=["duration_minutes", "held_on", "mode", "match_id", "attendance",
                            "safeguarding_concern"],
               strings=frozenset({"match_id"}),
               required=["match_id", "held_on", "duration_minutes", "mode", "attendance"],
               subject=subject_id),
    ]


def valid_record(rng: random.Random, target: Target, i: int) -> Record:
    """A valid event, in either mode, with or without time and subject."""
    attributes: dict[str, Any] = {"specversion": "1.0", "id": str(uuid.uuid4()),
                                  "source": target.source, "type": target.event_type}
    if rng.random() < 0.5:
        attributes["time"] = "2026-11-20T09:30:00.123Z"
    if target.subject is not None and rng.random() < 0.5:
        attributes["subject"] = target.subject
    data = target.valid_data(i)
    key = (target.subject or uuid.uuid4().hex).encode()
    if i % 2:
        return key, json.dumps({**attributes, "data": data}).encode(), [
            ("content-type", b"application/cloudevents+json")]
    return key, json.dumps(data).encode(), [
        ("content-type", b"application/json"),
        *((f"ce_{k}", str(v).encode()) for k, v in attributes.items())]


def test_hostile_records_are_dead_lettered_unquoted_and_valid_ones_among_them_applied(
        platform: RunningPlatform) -> None:
    seed = int(os.environ.get("PEERLINK_HOSTILE_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    bootstrap = platform.settings.kafka_bootstrap
    trust, partner = targets(platform, run)
    match_id = partner.valid_data(0)["match_id"]
    batches: dict[str, list[Record]] = {}
    hostile: dict[str, dict[int, str]] = {}
    """Each topic's hostile records: their index among those sent, and their kind."""
    valid: dict[str, list[int]] = {}
    for target, share in ((trust, HOSTILE - HOSTILE // 2), (partner, HOSTILE // 2)):
        maker = Hostile(rng, target)
        records: list[Record] = []
        hostile[target.topic], valid[target.topic] = {}, []
        while len(hostile[target.topic]) < share:
            if len(records) % VALID_EVERY == VALID_EVERY - 1:
                valid[target.topic].append(len(records))
                records.append(valid_record(rng, target, len(records)))
            else:
                hostile[target.topic][len(records)], record = maker.make()
                records.append(record)
        valid[target.topic].append(len(records))  # the last record is a valid one
        records.append(valid_record(rng, target, len(records)))
        batches[target.topic] = records
    dead_tail = Tail(bootstrap, [deadletter_topic(t.service) for t in (trust, partner)])
    events_tail = Tail(bootstrap, [events_topic(t.service) for t in (trust, partner)])
    started = time.monotonic()

    landed = send(bootstrap, batches)

    def dead_letters() -> dict[tuple[str, int, int], dict[str, str]]:
        """Our dead letters by where their record came from."""
        return {(h.get("peerlink-original-topic", ""),
                 int(h.get("peerlink-original-partition", "-1")),
                 int(h.get("peerlink-original-offset", "-1"))): h
                for r in dead_tail.read()
                if (h := headers_of(r)).get("peerlink-original-topic") in batches}

    def applied() -> list[CloudEvent]:
        """What the services recorded from our valid events."""
        events = (CloudEvent.from_bytes(r.value) for r in events_tail.read())
        return [e for e in events
                if (e.type == "screening-completed" and e.data["team"].startswith(f"hv-{run}-"))
                or (e.type == "session-logged" and e.data["match_id"] == match_id)]

    kind_at = {(topic, *landed[topic][i]): kind for topic, at in hostile.items()
               for i, kind in at.items()}
    wanted = set(kind_at)
    deadline = time.monotonic() + scale(240, 1500)
    while not wanted <= dead_letters().keys() and time.monotonic() < deadline:
        time.sleep(0.5)
    missing = Counter(kind_at[at] for at in wanted - dead_letters().keys())
    assert not missing, f"not dead-lettered (seed {seed}): {dict(missing)}"
    valid_total = sum(len(at) for at in valid.values())
    done = wait_for(lambda: len(found := applied()) >= valid_total and found, timeout=120)
    seconds = time.monotonic() - started
    letters = dead_letters()
    dead_tail.close()
    events_tail.close()

    print(f"\nhostile input (seed {seed}): {sum(map(len, batches.values()))} records tried "
          f"({len(wanted)} hostile, {valid_total} valid), {len(letters)} dead-lettered, "
          f"{len(done)} applied, {seconds:.1f} s; kinds "
          f"{dict(sorted(Counter(kind_at.values()).items()))}")
    assert len(wanted) == HOSTILE
    assert letters.keys() == wanted  # every hostile record, and no valid one
    for headers in letters.values():
        assert headers["peerlink-error-reason"] in ("validation", "rejected"), headers
        message = headers["peerlink-error"]
        assert message and TOKEN.search(message) is None, message
        assert NHS_NUMBER.search(message) is None and "Alice" not in message, message
        assert headers["peerlink-sealed"] == "aes256gcm/v2"
    teams = sorted(e.data["team"] for e in done if e.type == "screening-completed")
    assert teams == sorted(f"hv-{run}-{i}" for i in valid[trust.topic])
    minutes = sorted(e.data["duration_minutes"] for e in done if e.type == "session-logged")
    assert minutes == sorted(i % 1440 for i in valid[partner.topic])
    for service in (trust.service, partner.service):  # still up, and nothing unforeseen
        assert answers(worker_url(platform, service, "/healthz"))
        assert metric(worker_url(platform, service, "/metrics"), "peerlink_deadletters_total",
                      service=service, reason="unexpected") == 0.0


def test_a_bad_consent_record_halts_the_consumer_and_raises_the_stalled_gauge(
        platform: RunningPlatform) -> None:
    if os.environ.get("PEERLINK_KAFKA_BOOTSTRAP"):
        pytest.skip("a bad record would stay on the shared broker's consent.events for good")
    bootstrap = platform.settings.kafka_bootstrap
    topic = events_topic("consent")
    services = ("screening", "mentoring")

    def stalled() -> set[float | None]:
        return {metric(worker_url(platform, s, "/metrics"), "peerlink_consent_events_stalled",
                       service=s) for s in services}

    assert stalled() == {0.0}

    send(bootstrap, {topic: [(None, b"{not a CloudEvent", [])]})

    wait_for(lambda: stalled() == {1.0}, timeout=60)
    time.sleep(5)  # a few retries and offset commits later, it still waits
    assert stalled() == {1.0}
    for service in services:  # never committed past the bad record
        assert consumer_lag(bootstrap, f"peerlink-{service}", [topic]) >= 1
    tail = Tail(bootstrap, [deadletter_topic(s) for s in services])
    try:
        assert [r for r in tail.read()
                if headers_of(r).get("peerlink-original-topic") == topic] == []
    finally:
        tail.close()

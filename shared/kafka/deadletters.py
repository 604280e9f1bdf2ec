"""Sealing, inspecting and replaying dead letters (``peerlink deadletter list|replay``).

A dead letter's value and key are the original record's, sealed (AES-256-GCM) under the
service's dead-letter key and bound to where it was consumed from (topic, partition, offset),
marked ``peerlink-sealed: aes256gcm/v2``: a partner's record may carry an NHS number or notes
in clear, in its value or in the key the partner chose, and the dead-letter topic must not
become a copy of them (``v1`` dead letters sealed the value only). The record's own headers
(a binary-mode CloudEvent's ``ce_*`` attributes) are sealed the same way, in
``peerlink-original-headers``, so a replay sends the record as it came. Listing shows only the
headers (where a record came from and why it failed), never the value. Replaying unseals a
record and sends it back to the topic it came from, after the cause was fixed; if it still
fails it is dead-lettered again. Records dead-lettered before sealing (no ``peerlink-sealed``
header) are replayed as they are.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kafka import KafkaConsumer, TopicPartition

from shared.crypto import KEY_BYTES, NONCE_BYTES
from shared.kafka.producer import EventProducer

SEALED_HEADER: Final = "peerlink-sealed"
SEALED_V1: Final = "aes256gcm/v1"
"""The value sealed, the key in clear (dead letters written before keys were sealed)."""
SEALED_V2: Final = "aes256gcm/v2"
"""The value and the key sealed."""
ORIGINAL_HEADERS: Final = "peerlink-original-headers"
"""The dead-letter header holding the original record's headers, sealed and base64-encoded
(so every dead-letter header stays text), when the record had any."""
Headers = list[tuple[str, bytes | None]]


def encode_headers(headers: Headers) -> bytes:
    """Record headers as bytes to seal (names and base64 values, in order)."""
    return json.dumps([[name, None if value is None else base64.b64encode(value).decode()]
                       for name, value in headers]).encode()


def decode_headers(raw: bytes) -> Headers:
    """Record headers from ``encode_headers``."""
    return [(name, None if value is None else base64.b64decode(value))
            for name, value in json.loads(raw)]


class DeadLetterCipher:
    """Seals dead-lettered values under one service's dead-letter key, each bound to the topic,
    partition and offset it was consumed from (so a sealed value cannot pass for another)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a dead-letter key must be 32 bytes")
        self._aead = AESGCM(key)

    @staticmethod
    def _context(topic: str, partition: int, offset: int, part: str) -> bytes:
        suffix = "" if part == "value" else f"|{part}"
        return f"peerlink-deadletter|{topic}|{partition}|{offset}{suffix}".encode()

    def seal(self, topic: str, partition: int, offset: int, value: bytes,
             part: str = "value") -> bytes:
        """Nonce plus ciphertext of the record's ``part`` (its value, or its key)."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, value,
                                          self._context(topic, partition, offset, part))

    def open(self, topic: str, partition: int, offset: int, sealed: bytes,
             part: str = "value") -> bytes:
        """The original value (or key); raises ``cryptography.exceptions.InvalidTag`` when it
        was sealed under another key, for another position or as the other part."""
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                  self._context(topic, partition, offset, part))


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record, with where it came from and why it failed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    sealed_headers: bytes | None = None
    """The original record's headers, sealed (``peerlink-original-headers``)."""

    @property
    def service(self) -> str:
        """The service whose dead-letter topic holds it."""
        return self.topic.removeprefix("deadletter.")

    @property
    def sealed(self) -> bool:
        """Whether the value is sealed (dead-lettered since values were sealed)."""
        return SEALED_HEADER in self.headers

    def original_value(self, cipher_for: Callable[[str], DeadLetterCipher]) -> bytes:
        """The value as it was consumed: unsealed with ``cipher_for(service)``, or as it is
        for a dead letter from before sealing."""
        if not self.sealed:
            return self.value
        self._scheme()
        return cipher_for(self.service).open(*self.original, self.value)

    def original_key(self, cipher_for: Callable[[str], DeadLetterCipher]) -> bytes | None:
        """The record key as it was consumed: unsealed for ``v2``, as it is before that."""
        if not self.sealed or self._scheme() == SEALED_V1 or self.key is None:
            return self.key
        return cipher_for(self.service).open(*self.original, self.key, part="key")

    def original_headers(self, cipher_for: Callable[[str], DeadLetterCipher]) -> Headers:
        """The record's headers as it was consumed (none kept before headers were sealed)."""
        if self.sealed_headers is None:
            return []
        return decode_headers(cipher_for(self.service).open(
            *self.original, base64.b64decode(self.sealed_headers), part="headers"))

    def _scheme(self) -> str:
        scheme = self.headers[SEALED_HEADER]
        if scheme not in (SEALED_V1, SEALED_V2):
            raise ValueError(f"{self.topic}[{self.partition}]@{self.offset} is sealed with an "
                             "unknown scheme")
        return scheme

    @property
    def original(self) -> tuple[str, int, int]:
        """The topic, partition and offset the record was consumed from."""
        return (self.headers.get("peerlink-original-topic", "?"),
                int(self.headers.get("peerlink-original-partition", "-1")),
                int(self.headers.get("peerlink-original-offset", "-1")))

    def describe(self) -> str:
        """One line for an operator: position, origin, reason (no value)."""
        topic, partition, offset = self.original
        return (f"{self.topic}[{self.partition}]@{self.offset}  from {topic}[{partition}]@"
                f"{offset}  {self.headers.get('peerlink-failed-at', '?')}  "
                f"{self.headers.get('peerlink-error-reason', '?')}: "
                f"{self.headers.get('peerlink-error', '')}")


def read_records(bootstrap: str, topic: str, idle_seconds: float = 2.0,
                 **options: Any) -> Iterator[bytes]:
    """Every record value on a topic, from the beginning, until it goes quiet."""
    for letter in read_dead_letters(bootstrap, topic, idle_seconds, **options):
        yield letter.value


def read_dead_letters(bootstrap: str, topic: str, idle_seconds: float = 2.0,
                      **options: Any) -> Iterator[DeadLetter]:
    """Every record on a (dead-letter) topic, from the beginning, until it goes quiet."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             client_id="peerlink-topic-reader", **options)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        last = time.monotonic()
        while time.monotonic() - last < idle_seconds:
            for tp, batch in consumer.poll(timeout_ms=300).items():
                last = time.monotonic()
                for message in batch:
                    raw = dict(message.headers or ())
                    yield DeadLetter(
                        topic=tp.topic, partition=tp.partition, offset=message.offset,
                        key=message.key, value=message.value or b"",
                        headers={k: v.decode(errors="replace") for k, v in raw.items()
                                 if k != ORIGINAL_HEADERS},
                        sealed_headers=raw.get(ORIGINAL_HEADERS))
    finally:
        consumer.close()


def replay(producer: EventProducer, letters: list[DeadLetter],
           cipher_for: Callable[[str], DeadLetterCipher]) -> int:
    """Unseal dead letters (with ``cipher_for(service)``) and send them back to their original
    topics with their own headers; returns how many were sent."""
    for letter in letters:
        topic, _, _ = letter.original
        if topic == "?":
            raise ValueError(f"{letter.topic}[{letter.partition}]@{letter.offset} does not say "
                             "where it came from")
        headers = [(name, value or b"") for name, value in letter.original_headers(cipher_for)
                   if name != "peerlink-replayed-from"]
        headers.append(("peerlink-replayed-from",
                        f"{letter.topic}[{letter.partition}]@{letter.offset}".encode()))
        producer.send(topic, letter.original_key(cipher_for), letter.original_value(cipher_for),
                      headers).get(timeout=30)
    producer.flush(timeout=30)
    return len(letters)

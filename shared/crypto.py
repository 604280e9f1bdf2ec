"""Per-subject data keys and AES-256-GCM sealing of personal-data fields.

Erasure is crypto-shredding: once a subject's data key is destroyed, every sealed copy of that
person's personal data (in databases, in Kafka) opens to ``REDACTED``. That is different from
the key store being unavailable, which raises ``KeyStoreUnavailable`` so the caller retries:
personal data is never written in clear as a fallback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.events.envelope import EncryptedBlock

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12


class KeyShredded(Exception):
    """The subject's data key was destroyed: their personal data is erased."""


class KeyStoreUnavailable(Exception):
    """The key store could not be reached: retry later, never fall back to plaintext."""


class UnknownSubject(Exception):
    """No data key exists for this subject reference."""


@dataclass(frozen=True)
class Redacted:
    """What personal data reads as after erasure."""

    marker: str = "[redacted: erased]"


REDACTED: Final = Redacted()


@dataclass(frozen=True)
class DataKey:
    """A subject's data key."""

    key_id: str
    material: bytes = b""

    def __repr__(self) -> str:  # never print key material
        return f"DataKey(key_id={self.key_id!r})"


class DataKeyStore(Protocol):
    """Where a service gets a subject's data key from."""

    def data_key(self, subject_id: str) -> DataKey:
        """The subject's key; raises KeyShredded, UnknownSubject or KeyStoreUnavailable."""
        ...


def b64e(raw: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    """Inverse of ``b64e``."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_material() -> bytes:
    """Fresh random key material for AES-256."""
    return os.urandom(KEY_BYTES)


def derive_key(master_key: bytes, purpose: str) -> bytes:
    """A separate 32-byte key for one purpose, derived from a master key (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=f"peerlink {purpose}".encode()).derive(master_key)


def _aad(subject_id: str, context: str) -> bytes:
    return f"{subject_id}|{context}".encode()


class PersonalDataCipher:
    """Seals and opens a subject's personal-data fields with their data key.

    Over a ``CachingKeyStore`` it opens with the cached key but seals only with a key the
    store confirmed within the last second, so nothing new is written about a person a
    second after their key was shredded (``KeyShredded``).
    """

    def __init__(self, keys: DataKeyStore) -> None:
        self._keys = keys
        self._sealing_key = keys.sealing_key if isinstance(keys, CachingKeyStore) \
            else keys.data_key

    def seal(self, subject_id: str, context: str, fields: dict[str, Any]) -> EncryptedBlock:
        """Encrypt a JSON object of personal fields, bound to the subject and a context."""
        key = self._sealing_key(subject_id)
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        ciphertext = AESGCM(key.material).encrypt(nonce, plaintext, _aad(subject_id, context))
        return EncryptedBlock(key_id=key.key_id, nonce=b64e(nonce), ciphertext=b64e(ciphertext))

    def open(self, subject_id: str, context: str,
             block: EncryptedBlock) -> dict[str, Any] | Redacted:
        """Decrypt a block; ``REDACTED`` when the subject's key has been shredded."""
        try:
            key = self._keys.data_key(subject_id)
        except KeyShredded:
            return REDACTED
        if key.key_id != block.key_id:
            raise ValueError("the block was sealed under another key")
        try:
            plaintext = AESGCM(key.material).decrypt(
                b64d(block.nonce), b64d(block.ciphertext), _aad(subject_id, context)
            )
        except InvalidTag as exc:
            raise ValueError("the block does not belong to this subject and context") from exc
        fields: dict[str, Any] = json.loads(plaintext)
        return fields


class KeyWrapper:
    """Wraps data keys at rest under the key store's master key (AES-256-GCM)."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(master_key)

    def wrap(self, subject_id: str, material: bytes) -> bytes:
        """Nonce plus ciphertext of a data key, bound to its subject."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, material, subject_id.encode())

    def unwrap(self, subject_id: str, wrapped: bytes) -> bytes:
        """The data key's material."""
        return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], subject_id.encode())


class CachingKeyStore:
    """A data-key cache in front of another store.

    Reading (``data_key``) uses a key fetched at most ``ttl`` seconds ago (at most 30).
    Writing must not outlive an erasure: ``live_key`` always asks the store, and
    ``sealing_key`` (what ``PersonalDataCipher.seal`` uses) takes a key the store confirmed
    within ``SEALING_FRESHNESS_SECONDS``, so the check at the start of a write serves its
    seals. ``evict`` drops a subject at once (on ``subject-key-shredded``). A shredded answer
    is remembered, since a shredded key never comes back.
    """

    SEALING_FRESHNESS_SECONDS: Final = 1.0

    def __init__(self, inner: DataKeyStore, ttl_seconds: float = 5.0) -> None:
        self._inner = inner
        self._ttl = min(ttl_seconds, 30.0)
        self._entries: dict[str, tuple[float, DataKey]] = {}
        self._shredded: set[str] = set()
        self._lock = threading.Lock()

    def data_key(self, subject_id: str) -> DataKey:
        """The cached key, or the inner store's (for reading)."""
        return self._key(subject_id, self._ttl)

    def live_key(self, subject_id: str) -> DataKey:
        """The inner store's answer now, never the cache's (before writing about someone)."""
        return self._key(subject_id, 0.0)

    def sealing_key(self, subject_id: str) -> DataKey:
        """A key the inner store confirmed within ``SEALING_FRESHNESS_SECONDS``."""
        return self._key(subject_id, min(self._ttl, self.SEALING_FRESHNESS_SECONDS))

    def _key(self, subject_id: str, max_age: float) -> DataKey:
        now = time.monotonic()
        with self._lock:
            if subject_id in self._shredded:
                raise KeyShredded()
            cached = self._entries.get(subject_id)
            if cached is not None and now - cached[0] < max_age:
                return cached[1]
        try:
            key = self._inner.data_key(subject_id)
        except KeyShredded:
            self.evict(subject_id)
            raise
        with self._lock:
            if subject_id not in self._shredded:
                self._entries[subject_id] = (now, key)
        return key

    def confirmed(self, subject_id: str, key: DataKey, asked_at: float) -> None:
        """Take ``key`` as the subject's, as if the store had answered a request sent at
        ``asked_at`` (``time.monotonic()``) with it, as a registration answers with the key:
        it then serves seals until ``SEALING_FRESHNESS_SECONDS`` after the asking, as a
        ``live_key`` asked then would have. A slow answer does not stretch that."""
        with self._lock:
            if subject_id not in self._shredded:
                self._entries[subject_id] = (asked_at, key)

    def evict(self, subject_id: str) -> None:
        """Forget a subject's key (it was shredded)."""
        with self._lock:
            self._entries.pop(subject_id, None)
            self._shredded.add(subject_id)


class KnownKeys:
    """A ``DataKeyStore`` over keys already in hand (a key created in the same transaction)."""

    def __init__(self, keys: dict[str, DataKey]) -> None:
        self._keys = keys

    def data_key(self, subject_id: str) -> DataKey:
        """The key in hand, or ``UnknownSubject``."""
        try:
            return self._keys[subject_id]
        except KeyError:
            raise UnknownSubject() from None


def _create_development_key(path: Path) -> None:
    """Write a new key whole, then link it into place: a process starting at the same moment
    (the API and the worker share the file) sees either no file or the whole key, and only
    the first key made is ever used."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(new_key_material()).decode())
        with contextlib.suppress(FileExistsError):
            os.link(partial, path)
    finally:
        os.unlink(partial)


def load_key(configured: str | None, key_file: Path | None, development_file: Path,
             production: bool = False) -> bytes:
    """A 32-byte key, base64: configured, from a file, or (never in production) a development
    file made on first use."""
    if configured is not None:
        encoded = configured
    elif key_file is not None:
        encoded = key_file.read_text().strip()
    elif production:
        raise ValueError(f"no key configured for {development_file.stem} in production")
    else:
        if not development_file.exists():
            _create_development_key(development_file)
        encoded = development_file.read_text().strip()
    key = base64.b64decode(encoded)
    if len(key) != KEY_BYTES:
        raise ValueError("a key must be 32 bytes, base64-encoded")
    return key


class RecordCipher:
    """Seals records a service keeps under another lawful basis than consent (safeguarding).

    They are sealed under the service's own records key, not the person's data key, so
    erasure does not destroy what the law requires to be kept for the DPO to decide on.
    """

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, context: str, fields: dict[str, Any]) -> bytes:
        """Nonce plus ciphertext of a JSON object, bound to ``context`` (a record id)."""
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, context: str, sealed: bytes) -> dict[str, Any]:
        """The JSON object sealed for ``context``."""
        plaintext = self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                       context.encode())
        fields: dict[str, Any] = json.loads(plaintext)
        return fields

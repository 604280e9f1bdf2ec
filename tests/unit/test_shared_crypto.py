"""Per-subject data keys, AES-GCM sealing, crypto-shredding and the key cache."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

import shared.crypto as crypto
from shared.crypto import (
    KEY_BYTES,
    REDACTED,
    CachingKeyStore,
    DataKey,
    KeyShredded,
    KeyStoreUnavailable,
    KeyWrapper,
    PersonalDataCipher,
    Redacted,
    b64d,
    derive_key,
    new_key_material,
)

ALICE = "sub_" + "a" * 32
BOB = "sub_" + "b" * 32
CONTEXT = "screening-completed"
SECRET_NOTES = "She told me about the night of 3 March at 14 Acacia Avenue"


@dataclass
class FakeKeyStore:
    """An in-memory DataKeyStore that can shred keys, fail, and counts its calls."""

    keys: dict[str, DataKey] = field(default_factory=dict)
    shredded: set[str] = field(default_factory=set)
    unavailable: bool = False
    calls: int = 0

    def add(self, subject_id: str, key_id: str | None = None) -> DataKey:
        key = DataKey(key_id=key_id or f"key-{subject_id[-4:]}", material=new_key_material())
        self.keys[subject_id] = key
        return key

    def data_key(self, subject_id: str) -> DataKey:
        self.calls += 1
        if self.unavailable:
            raise KeyStoreUnavailable()
        if subject_id in self.shredded:
            raise KeyShredded()
        return self.keys[subject_id]


@pytest.fixture
def store() -> FakeKeyStore:
    s = FakeKeyStore()
    s.add(ALICE)
    s.add(BOB)
    return s


@pytest.mark.parametrize(
    "given_fields",
    [
        pytest.param({"notes": SECRET_NOTES}, id="notes"),
        pytest.param({"nhs_number": "9434765919", "name": "Jane Example"}, id="identifiers"),
        pytest.param({"answers": ["yes", "no", "dont-know"] * 8, "n": 3, "ok": True},
                     id="nested-values"),
        pytest.param({"notes": "naïve café, ünïcode ✓ 中文"}, id="unicode"),
        pytest.param({}, id="empty"),
    ],
)
def test_seal_then_open_round_trips(store: FakeKeyStore, given_fields: dict[str, Any]) -> None:
    cipher = PersonalDataCipher(store)
    block = cipher.seal(ALICE, CONTEXT, given_fields)
    assert block.key_id == store.keys[ALICE].key_id
    assert cipher.open(ALICE, CONTEXT, block) == given_fields


@pytest.mark.parametrize(
    "given_fields",
    [
        pytest.param({"notes": SECRET_NOTES}, id="notes"),
        pytest.param({"nhs_number": "9434765919"}, id="nhs-number"),
    ],
)
def test_the_block_does_not_contain_the_plaintext(store: FakeKeyStore,
                                                  given_fields: dict[str, Any]) -> None:
    block = PersonalDataCipher(store).seal(ALICE, CONTEXT, given_fields)
    dumped = block.model_dump_json()
    raw = b64d(block.ciphertext)
    for value in given_fields.values():
        assert value not in dumped
        assert value.encode() not in raw
    for key in given_fields:
        assert key not in dumped


def test_two_seals_of_the_same_fields_differ(store: FakeKeyStore) -> None:
    cipher = PersonalDataCipher(store)
    first = cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    second = cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


@pytest.mark.parametrize(
    ("given_subject", "given_context", "given_same_key"),
    [
        pytest.param(BOB, CONTEXT, False, id="another-subject-another-key"),
        pytest.param(BOB, CONTEXT, True, id="another-subject-same-key-id"),
        pytest.param(ALICE, "risk-assessed", False, id="another-context"),
        pytest.param(BOB, "risk-assessed", False, id="another-subject-and-context"),
    ],
)
def test_opening_as_another_subject_or_context_fails(store: FakeKeyStore, given_subject: str,
                                                     given_context: str,
                                                     given_same_key: bool) -> None:
    if given_same_key:  # the worst case: the other subject's store entry has the same key
        store.keys[BOB] = store.keys[ALICE]
    cipher = PersonalDataCipher(store)
    block = cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    with pytest.raises(ValueError):
        cipher.open(given_subject, given_context, block)


def test_a_tampered_ciphertext_fails_to_open(store: FakeKeyStore) -> None:
    cipher = PersonalDataCipher(store)
    block = cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    raw = bytearray(b64d(block.ciphertext))
    raw[0] ^= 0x01
    tampered = block.model_copy(update={"ciphertext": crypto.b64e(bytes(raw))})
    with pytest.raises(ValueError):
        cipher.open(ALICE, CONTEXT, tampered)


def test_after_shredding_open_reads_redacted_and_seal_refuses(store: FakeKeyStore) -> None:
    cipher = PersonalDataCipher(store)
    block = cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    # given the subject's key is shredded
    store.shredded.add(ALICE)
    # expect the data to read as redacted and no new data to be sealed
    opened = cipher.open(ALICE, CONTEXT, block)
    assert opened is REDACTED
    assert isinstance(opened, Redacted)
    assert SECRET_NOTES not in repr(opened)
    with pytest.raises(KeyShredded):
        cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    # and other subjects are untouched
    assert cipher.open(BOB, CONTEXT, cipher.seal(BOB, CONTEXT, {"x": 1})) == {"x": 1}


@pytest.mark.parametrize("operation", ["seal", "open"])
def test_key_store_unavailable_propagates_and_never_gives_plaintext(store: FakeKeyStore,
                                                                    operation: str) -> None:
    cipher = PersonalDataCipher(store)
    block = cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    store.unavailable = True
    with pytest.raises(KeyStoreUnavailable):
        if operation == "seal":
            cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
        else:
            cipher.open(ALICE, CONTEXT, block)


class FakeClock:
    """Stands in for the ``time`` module inside ``shared.crypto``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(crypto, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


@pytest.mark.parametrize(
    ("given_ttl", "given_elapsed", "expected_inner_calls"),
    [
        pytest.param(10.0, 0.0, 1, id="immediately-cached"),
        pytest.param(10.0, 9.999, 1, id="just-within-ttl"),
        pytest.param(10.0, 10.0, 2, id="at-ttl-goes-back"),
        pytest.param(10.0, 11.0, 2, id="after-ttl-goes-back"),
        pytest.param(30.0, 29.9, 1, id="default-cap-within"),
        pytest.param(3600.0, 29.9, 1, id="long-ttl-within-30s"),
        pytest.param(3600.0, 30.0, 2, id="long-ttl-capped-at-30s"),
        pytest.param(3600.0, 31.0, 2, id="long-ttl-capped-after-30s"),
    ],
)
def test_caching_key_store_ttl(store: FakeKeyStore, clock: FakeClock, given_ttl: float,
                               given_elapsed: float, expected_inner_calls: int) -> None:
    cache = CachingKeyStore(store, ttl_seconds=given_ttl)
    first = cache.data_key(ALICE)
    clock.now += given_elapsed
    second = cache.data_key(ALICE)
    assert first == second == store.keys[ALICE]
    assert store.calls == expected_inner_calls


def test_caching_key_store_default_ttl_is_5_seconds(store: FakeKeyStore,
                                                    clock: FakeClock) -> None:
    cache = CachingKeyStore(store)
    cache.data_key(ALICE)
    clock.now += 4.9
    cache.data_key(ALICE)
    assert store.calls == 1
    clock.now += 0.1
    cache.data_key(ALICE)
    assert store.calls == 2


def test_a_live_key_always_asks_the_store_and_refreshes_the_cache(
        store: FakeKeyStore, clock: FakeClock) -> None:
    cache = CachingKeyStore(store, ttl_seconds=30.0)
    cache.data_key(ALICE)
    assert cache.live_key(ALICE) == store.keys[ALICE]
    assert store.calls == 2
    store.shredded.add(ALICE)
    with pytest.raises(KeyShredded):
        cache.live_key(ALICE)
    with pytest.raises(KeyShredded):
        cache.data_key(ALICE)
    assert store.calls == 3


def test_sealing_uses_a_key_confirmed_within_a_second_and_reading_the_cache(
        store: FakeKeyStore, clock: FakeClock) -> None:
    cache = CachingKeyStore(store, ttl_seconds=30.0)
    cipher = PersonalDataCipher(cache)
    cache.live_key(ALICE)  # a write checks the person first
    block = cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    clock.now += 0.9
    cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    assert store.calls == 1

    store.shredded.add(ALICE)  # erased, and this process has not heard yet
    clock.now += 0.1
    assert cipher.open(ALICE, CONTEXT, block) == {"notes": SECRET_NOTES}  # read: cached
    with pytest.raises(KeyShredded):
        cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    assert cipher.open(ALICE, CONTEXT, block) is REDACTED


def test_a_key_a_registration_answered_with_seals_for_a_second_from_the_asking(
        store: FakeKeyStore, clock: FakeClock) -> None:
    cache = CachingKeyStore(store, ttl_seconds=30.0)
    cipher = PersonalDataCipher(cache)
    asked_at = clock.now
    clock.now += 0.7  # a slow answer: the registration waited on consent's database
    cache.confirmed(ALICE, store.keys[ALICE], asked_at)
    cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    assert store.calls == 0  # the answer served the seal

    store.shredded.add(ALICE)  # erased just after consent answered
    clock.now += 0.3  # a second after the asking, not after the answer
    with pytest.raises(KeyShredded):
        cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    assert store.calls == 1


def test_a_registration_answer_for_a_person_known_erased_is_not_taken(
        store: FakeKeyStore, clock: FakeClock) -> None:
    cache = CachingKeyStore(store, ttl_seconds=30.0)
    cache.evict(ALICE)  # the erasure event arrived first
    cache.confirmed(ALICE, store.keys[ALICE], clock.now)
    with pytest.raises(KeyShredded):
        cache.sealing_key(ALICE)
    assert store.calls == 0


def test_without_a_cache_every_seal_asks(store: FakeKeyStore, clock: FakeClock) -> None:
    cipher = PersonalDataCipher(CachingKeyStore(store, ttl_seconds=0.0))
    cipher.seal(ALICE, CONTEXT, {})
    cipher.seal(ALICE, CONTEXT, {})
    assert store.calls == 2


def test_caching_key_store_caches_per_subject(store: FakeKeyStore, clock: FakeClock) -> None:
    cache = CachingKeyStore(store)
    assert cache.data_key(ALICE) == store.keys[ALICE]
    assert cache.data_key(BOB) == store.keys[BOB]
    assert cache.data_key(ALICE) == store.keys[ALICE]
    assert store.calls == 2


def test_evict_makes_later_calls_shredded_without_asking_inner(store: FakeKeyStore,
                                                               clock: FakeClock) -> None:
    cache = CachingKeyStore(store)
    cache.data_key(ALICE)
    cache.evict(ALICE)
    calls_before = store.calls
    for _ in range(3):
        with pytest.raises(KeyShredded):
            cache.data_key(ALICE)
    assert store.calls == calls_before
    # and the cache still serves other subjects
    assert cache.data_key(BOB) == store.keys[BOB]


def test_a_shredded_answer_is_remembered(store: FakeKeyStore, clock: FakeClock) -> None:
    cache = CachingKeyStore(store)
    store.shredded.add(ALICE)
    with pytest.raises(KeyShredded):
        cache.data_key(ALICE)
    assert store.calls == 1
    # given the inner store would now (wrongly) answer, expect the cache to stay shredded
    store.shredded.discard(ALICE)
    clock.now += 3600.0
    with pytest.raises(KeyShredded):
        cache.data_key(ALICE)
    assert store.calls == 1


def test_unavailable_is_not_remembered(store: FakeKeyStore, clock: FakeClock) -> None:
    cache = CachingKeyStore(store)
    store.unavailable = True
    with pytest.raises(KeyStoreUnavailable):
        cache.data_key(ALICE)
    store.unavailable = False
    assert cache.data_key(ALICE) == store.keys[ALICE]
    assert store.calls == 2


def test_cipher_over_an_evicted_cache_reads_redacted(store: FakeKeyStore,
                                                     clock: FakeClock) -> None:
    cache = CachingKeyStore(store)
    cipher = PersonalDataCipher(cache)
    block = cipher.seal(ALICE, CONTEXT, {"notes": SECRET_NOTES})
    cache.evict(ALICE)
    assert cipher.open(ALICE, CONTEXT, block) is REDACTED


@pytest.mark.parametrize(
    "given_material",
    [
        pytest.param(new_key_material(), id="random"),
        pytest.param(bytes(KEY_BYTES), id="zeros"),
    ],
)
def test_key_wrapper_round_trips(given_material: bytes) -> None:
    wrapper = KeyWrapper(new_key_material())
    wrapped = wrapper.wrap(ALICE, given_material)
    assert given_material not in wrapped
    assert wrapper.unwrap(ALICE, wrapped) == given_material


@pytest.mark.parametrize(
    ("given_subject", "given_other_master"),
    [
        pytest.param(BOB, False, id="another-subject"),
        pytest.param(ALICE, True, id="another-master-key"),
    ],
)
def test_key_wrapper_refuses_another_subject_or_master(given_subject: str,
                                                       given_other_master: bool) -> None:
    master = new_key_material()
    wrapped = KeyWrapper(master).wrap(ALICE, new_key_material())
    unwrapper = KeyWrapper(new_key_material() if given_other_master else master)
    with pytest.raises(InvalidTag):
        unwrapper.unwrap(given_subject, wrapped)


@pytest.mark.parametrize("given_length", [0, 16, 31, 33, 64])
def test_key_wrapper_rejects_master_keys_not_32_bytes(given_length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        KeyWrapper(b"k" * given_length)


@pytest.mark.parametrize(
    ("given_a", "given_b"),
    [
        pytest.param("key-wrapping", "token-signing", id="different-purposes"),
        pytest.param("subject-keys", "subject-keys ", id="trailing-space-differs"),
    ],
)
def test_derive_key_separates_purposes(given_a: str, given_b: str) -> None:
    master = new_key_material()
    key_a, key_b = derive_key(master, given_a), derive_key(master, given_b)
    assert len(key_a) == len(key_b) == KEY_BYTES == 32
    assert key_a != key_b


def test_derive_key_is_deterministic_and_depends_on_the_master() -> None:
    master = new_key_material()
    assert derive_key(master, "p") == derive_key(master, "p")
    assert derive_key(master, "p") != derive_key(new_key_material(), "p")
    assert derive_key(master, "p") != master


def test_data_key_repr_hides_material() -> None:
    material = bytes(range(32))
    key = DataKey(key_id="k-1", material=material)
    for text in (repr(key), str(key), f"{key}"):
        assert "k-1" in text
        assert "material" not in text
        assert repr(material) not in text
        assert material.hex() not in text


def test_processes_starting_together_share_one_whole_development_key(
        tmp_path: pathlib.Path) -> None:
    """The consent API and worker start at once and both load the development audit key: a
    reader once saw the file before its key was written ("a key must be 32 bytes")."""
    from concurrent.futures import ThreadPoolExecutor

    from shared.crypto import load_key

    for trial in range(20):
        path = tmp_path / f"trial-{trial}" / "development.key"
        with ThreadPoolExecutor(8) as pool:
            keys = list(pool.map(load_key, [None] * 8, [None] * 8, [path] * 8))
        assert len(set(keys)) == 1
        assert len(keys[0]) == 32
        assert [p.name for p in path.parent.iterdir()] == ["development.key"]

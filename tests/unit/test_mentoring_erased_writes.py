"""Writes on a match stop once the mentee is erased (sessions, outcomes, endings)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.mentoring.service_layer.mentoring import require_live
from shared.crypto import CachingKeyStore, DataKey, KeyShredded


class Consent:
    """The consent service's answers: shredded once ``shred`` is called."""

    def __init__(self) -> None:
        self.shredded: set[str] = set()
        self.asked = 0

    def data_key(self, subject_id: str) -> DataKey:
        self.asked += 1
        if subject_id in self.shredded:
            raise KeyShredded()
        return DataKey("dk_1", b"k" * 32)


def test_a_write_asks_consent_past_the_cache_and_stops_once_the_key_is_shredded() -> None:
    consent = Consent()
    keys = CachingKeyStore(consent, ttl_seconds=30)
    referral = SimpleNamespace(subject_id="sub_1")
    keys.data_key("sub_1")  # cached
    require_live(keys, referral)
    consent.shredded.add("sub_1")

    with pytest.raises(KeyShredded):
        require_live(keys, referral)
    assert consent.asked == 3  # the cache was never trusted for a write


def test_a_referral_whose_person_the_cascade_already_erased_refuses_writes() -> None:
    with pytest.raises(KeyShredded):
        require_live(CachingKeyStore(Consent()), SimpleNamespace(subject_id=None))

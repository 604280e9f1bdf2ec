"""Each service's dead-letter key: its own variable, a development file, never absent in
production."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from shared.runtime import deadletter_cipher
from shared.settings import PlatformSettings

KEY = bytes(range(32))


def test_production_refuses_to_start_without_a_dead_letter_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no key configured"):
        deadletter_cipher("screening", PlatformSettings(env="production", var_dir=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_the_services_own_key_seals_and_others_do_not_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "screening.key"
    key_file.write_text(base64.b64encode(KEY).decode())
    monkeypatch.setenv("PEERLINK_SCREENING_DEADLETTER_KEY_FILE", str(key_file))
    production = PlatformSettings(env="production", var_dir=tmp_path)
    sealed = deadletter_cipher("screening", production).seal("partner.trust.inbound", 0, 1,
                                                             b"value")
    development = PlatformSettings(var_dir=tmp_path)
    mentoring = deadletter_cipher("mentoring", development)
    assert (tmp_path / "development-mentoring-deadletter.key").exists()
    with pytest.raises(InvalidTag):
        mentoring.open("partner.trust.inbound", 0, 1, sealed)
    assert deadletter_cipher("screening", development).open(
        "partner.trust.inbound", 0, 1, sealed) == b"value"

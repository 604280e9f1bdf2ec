"""The audit key: configured, from a file, or a development file; never missing in production."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from services.consent.bootstrap import ConsentAuditSettings, audit_key
from shared.settings import PlatformSettings

KEY = bytes(range(32))


@pytest.fixture(autouse=True)
def _no_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PEERLINK_CONSENT_AUDIT_KEY", "PEERLINK_CONSENT_AUDIT_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_production_refuses_to_start_without_an_audit_key(tmp_path: Path) -> None:
    settings = PlatformSettings(env="production", var_dir=tmp_path)
    with pytest.raises(ValueError, match=r"development-consent-audit.*production"):
        audit_key(settings, ConsentAuditSettings())
    assert list(tmp_path.iterdir()) == []


def test_the_key_comes_from_the_environment_or_a_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings = PlatformSettings(env="production", var_dir=tmp_path)
    monkeypatch.setenv("PEERLINK_CONSENT_AUDIT_KEY", base64.b64encode(KEY).decode())
    assert audit_key(settings, ConsentAuditSettings()) == KEY

    monkeypatch.delenv("PEERLINK_CONSENT_AUDIT_KEY")
    key_file = tmp_path / "audit.key"
    key_file.write_text(base64.b64encode(KEY[::-1]).decode() + "\n")
    monkeypatch.setenv("PEERLINK_CONSENT_AUDIT_KEY_FILE", str(key_file))
    assert audit_key(settings, ConsentAuditSettings()) == KEY[::-1]


def test_development_makes_a_private_key_file_once(tmp_path: Path) -> None:
    settings = PlatformSettings(env="development", var_dir=tmp_path)

    first = audit_key(settings, ConsentAuditSettings())
    second = audit_key(settings, ConsentAuditSettings())

    assert first == second and len(first) == 32
    path = tmp_path / "development-consent-audit.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first != audit_key(PlatformSettings(var_dir=tmp_path / "other"),
                              ConsentAuditSettings())


def test_a_key_of_the_wrong_length_is_refused(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERLINK_CONSENT_AUDIT_KEY", base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="32 bytes"):
        audit_key(PlatformSettings(var_dir=tmp_path), ConsentAuditSettings())

"""The ``peerlink`` command: development tokens (never in production), and argument checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.cli import main
from shared.runtime import token_verifier
from shared.settings import PlatformSettings, platform_settings


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own var/ folder (so the development issuer's key is made there)."""
    monkeypatch.setenv("PEERLINK_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("PEERLINK_ENV", raising=False)
    platform_settings.cache_clear()
    yield tmp_path
    platform_settings.cache_clear()


def test_token_prints_only_a_verifiable_token(capsys: pytest.CaptureFixture[str],
                                              var_dir: Path) -> None:
    assert main(["token", "--org", "partner-a", "--role", "partner-staff"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    caller = token_verifier(PlatformSettings(var_dir=var_dir)).verify(out.strip())
    assert (caller.org, caller.roles) == ("partner-a", frozenset({"partner-staff"}))
    assert (var_dir / "keys" / "issuer-signing-key.pem").stat().st_mode & 0o077 == 0
    assert (var_dir / "keys" / "jwks.json").exists()


def test_the_same_development_key_signs_every_token(capsys: pytest.CaptureFixture[str],
                                                    var_dir: Path) -> None:
    assert main(["token", "--org", "trust", "--role", "clinician"]) == 0
    first_key = (var_dir / "keys" / "issuer-signing-key.pem").read_bytes()
    assert main(["token", "--org", "trust", "--role", "dpo"]) == 0
    assert (var_dir / "keys" / "issuer-signing-key.pem").read_bytes() == first_key
    verifier = token_verifier(PlatformSettings(var_dir=var_dir))
    assert [verifier.verify(t).roles for t in capsys.readouterr().out.split()] == [
        {"clinician"}, {"dpo"}]


@pytest.mark.parametrize(("org", "role", "problem"), [
    ("nowhere", "clinician", "unknown organisation"),
    ("trust", "superuser", "roles must be among"),
    ("trust", "service", "roles must be among"),
    ("partner-a", "clinician", "does not exist at an organisation of kind dva-partner"),
])
def test_token_refuses_unknown_organisations_and_roles(
        capsys: pytest.CaptureFixture[str], org: str, role: str, problem: str) -> None:
    assert main(["token", "--org", org, "--role", role]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert problem in captured.err


@pytest.mark.parametrize("role", ["dpo", "clinician", "ops-viewer"])
def test_token_refuses_to_mint_in_production(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch, var_dir: Path,
                                             role: str) -> None:
    monkeypatch.setenv("PEERLINK_ENV", "production")
    platform_settings.cache_clear()
    assert main(["token", "--org", "trust", "--role", role]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "PEERLINK_ENV=production" in captured.err
    assert not (var_dir / "keys").exists()


def test_the_development_issuer_refuses_to_run_in_production(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        var_dir: Path) -> None:
    monkeypatch.setenv("PEERLINK_ENV", "production")
    platform_settings.cache_clear()
    assert main(["issuer", "--port", "1"]) == 2
    assert "identity provider" in capsys.readouterr().err
    assert not (var_dir / "keys").exists()


def test_migrate_refuses_an_unknown_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "billing"]) == 2
    assert "unknown service billing" in capsys.readouterr().err

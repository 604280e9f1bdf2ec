"""The ``peerlink`` command: development tokens (never in production), and argument checks."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ops.cli import main
from services.consent.entrypoints.sar_export import SarExportFailed, sar_bundle
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


SAR = "sar_" + "1" * 32
SUBJECT = "sub_" + "2" * 32
URLS = {"consent": "http://consent", "screening": "http://screening",
        "mentoring": "http://mentoring"}


def sar_services(screening_status: int, calls: list[str]) -> httpx.MockTransport:
    """Consent answers a request and an export; screening answers ``screening_status`` for
    its export; mentoring exports one record."""
    request = {"request_id": SAR, "subject_id": SUBJECT, "status": "open"}

    def answer(call: httpx.Request) -> httpx.Response:
        calls.append(f"{call.method} {call.url}")
        assert call.headers["Authorization"] == "Bearer dpo-token"
        path = f"{call.url.host}{call.url.path}"
        if path == f"consent/v1/subject-access-requests/{SAR}":
            return httpx.Response(200, json=request)
        if path == f"consent/v1/subjects/{SUBJECT}/export":
            return httpx.Response(200, json={"service": "consent", "nhs_number": "9434765919"})
        if path == f"screening/v1/subjects/{SUBJECT}/export":
            return httpx.Response(screening_status, json={"error": "unknown-subject"})
        if path == f"mentoring/v1/subjects/{SUBJECT}/export":
            return httpx.Response(200, json={"service": "mentoring", "referrals": []})
        if path == f"consent/v1/subject-access-requests/{SAR}/complete":
            return httpx.Response(200, json={**request, "status": "complete"})
        return httpx.Response(404, json={"error": "not-found"})

    return httpx.MockTransport(answer)


def test_a_sar_bundle_holds_every_service_and_completes_the_request() -> None:
    calls: list[str] = []
    with httpx.Client(transport=sar_services(404, calls),
                      headers={"Authorization": "Bearer dpo-token"}) as client:
        bundle = sar_bundle(client, SAR, URLS)

    assert bundle["subject_id"] == SUBJECT
    assert bundle["subject_access_request"]["status"] == "complete"
    parts = bundle["services"]
    assert set(parts) == {"consent", "screening", "mentoring", "reporting"}
    assert parts["consent"]["nhs_number"] == "9434765919"
    assert parts["screening"]["held"] is False, "a 404 is a service holding nothing"
    assert "404" in parts["screening"]["note"]
    assert parts["mentoring"] == {"service": "mentoring", "referrals": []}
    assert "no personal data" in parts["reporting"]["note"]
    assert calls[-1] == f"POST {URLS['consent']}/v1/subject-access-requests/{SAR}/complete"


def test_a_service_that_fails_leaves_the_request_open() -> None:
    calls: list[str] = []
    with httpx.Client(transport=sar_services(503, calls),
                      headers={"Authorization": "Bearer dpo-token"}) as client, \
            pytest.raises(SarExportFailed, match="screening: the export: HTTP 503"):
        sar_bundle(client, SAR, URLS)

    assert not any(call.endswith("/complete") for call in calls)


def test_sar_export_needs_the_request_the_token_and_a_file(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sar", "export", "--request", SAR])
    assert "--token" in capsys.readouterr().err

"""``peerlink sar export`` against the real consent, screening and mentoring APIs served on
loopback ports: one owner-only bundle, and the subject access request marked complete."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ops.cli import main
from services.mentoring.entrypoints.api import create_app as mentoring_app
from services.screening.entrypoints.api import create_app as screening_app
from shared.settings import platform_settings
from tests.support.consent import served_consent
from tests.support.http import serving
from tests.support.services import bearer, issuing, settings_for

NHS_NUMBER = "9434765919"


def test_peerlink_sar_export_writes_one_bundle_and_completes_the_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    databases = {s: f"sqlite:///{tmp_path / f'{s}.db'}"
                 for s in ("consent", "screening", "mentoring")}
    settings = settings_for(monkeypatch, tmp_path, databases)
    monkeypatch.setenv("PEERLINK_VAR_DIR", str(tmp_path))
    platform_settings.cache_clear()
    staff, dpo = bearer(settings, "partner-a", "partner-staff"), bearer(settings, "partner-a",
                                                                        "dpo")
    out = tmp_path / "bundle.json"
    try:
        with served_consent(settings) as (_, consent_url), issuing(settings) as issued:
            wired = issued.model_copy(update={"consent_url": consent_url})
            with serving(screening_app(wired)) as screening_url, \
                    serving(mentoring_app(wired)) as mentoring_url:
                subject_id = httpx.post(f"{consent_url}/v1/subjects", headers=staff,
                                        json={"nhs_number": NHS_NUMBER}).json()["subject_id"]
                httpx.post(f"{consent_url}/v1/subjects/{subject_id}/consents", headers=staff,
                           json={"purpose": "peer-mentoring", "method": "verbal",
                                 "recorded_by": "Advocate Okafor"})
                request_id = httpx.post(f"{consent_url}/v1/subject-access-requests",
                                        headers=staff, json={"subject_id": subject_id}
                                        ).json()["request_id"]

                code = main(["sar", "export", "--request", request_id,
                             "--token", dpo["Authorization"].removeprefix("Bearer "),
                             "--out", str(out), "--consent-url", consent_url,
                             "--screening-url", screening_url,
                             "--mentoring-url", mentoring_url])

                after = httpx.get(f"{consent_url}/v1/subject-access-requests/{request_id}",
                                  headers=dpo).json()
    finally:
        platform_settings.cache_clear()

    assert code == 0, capsys.readouterr().err
    assert out.stat().st_mode & 0o077 == 0, "the bundle is readable by its owner only"
    bundle = json.loads(out.read_text())
    assert bundle["subject_id"] == subject_id
    parts = bundle["services"]
    assert set(parts) == {"consent", "screening", "mentoring", "reporting"}
    assert parts["consent"]["nhs_number"] == NHS_NUMBER
    assert parts["consent"]["consents"]["history"][0]["recorded_by"] == "Advocate Okafor"
    assert "subject-exported" in {e["action"] for e in parts["consent"]["audit"]}
    assert "no personal data" in parts["reporting"]["note"]
    assert after["status"] == "complete"
    assert bundle["subject_access_request"]["status"] == "complete"
    assert NHS_NUMBER not in capsys.readouterr().out

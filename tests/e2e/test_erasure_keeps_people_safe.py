"""Erasure that keeps people safe, over the real broker with every service its own process.

An approved erasure of a person with an open MARAC referral leaves the referral's DASH answers,
reasons and safe contact readable by the safeguarding lead and listed to the DPO with its lawful
basis; the same NHS number registered again meets ``repeat`` within 12 months; a refused
erasure changes nothing and says why; afterwards no file under ``var/`` holds the wrapped key
or anything personal in clear; and a write about the erased person is refused with 410 at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from services.consent.adapters.tables import data_keys
from tests.support.platform import RunningPlatform, running_platform, wait_for
from tests.support.services import approve_erasure

pytestmark = pytest.mark.kafka
HIGH_RISK = ["yes"] * 14 + ["no"] * 10


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("erasure"), request.param) as running:
        yield running


def consent_file(platform: RunningPlatform) -> Path | None:
    """Consent's SQLite file, when the platform runs on SQLite (PostgreSQL's files are the
    server's, not under var/)."""
    path = platform.settings.var_dir / "consent.db"
    return path if path.exists() else None


def call(platform: RunningPlatform, verb: str, service: str, path: str, role: str,
         expected: int, org: str = "trust", **body: Any) -> dict[str, Any]:
    response = httpx.request(verb, platform.url(service, path),
                             json=body or None, headers=platform.headers(org, role), timeout=15)
    assert response.status_code == expected, response.text
    answered: dict[str, Any] = response.json()
    return answered


def referred_person(platform: RunningPlatform, nhs_number: str, marker: str,
                    on: str = "2026-11-02") -> dict[str, Any]:
    """A DASH with 14 "yes", the judgement's reasons and a safe contact: a MARAC referral."""
    return call(platform, "POST", "screening", "/v1/risk-assessments", "clinician", 201,
                nhs_number=nhs_number, answers=HIGH_RISK, incidents_last_12_months=1,
                assessed_on=on,
                professional_judgement={"referral": True, "reasons": f"{marker} reasons"},
                safe_contact={"phone": "07700 900456", "times": f"{marker} mornings",
                              "may_leave_message": False, "safe_to_call": True})


def file_erasure(platform: RunningPlatform, subject_id: str) -> str:
    filed = call(platform, "POST", "consent", f"/v1/subjects/{subject_id}/withdrawals",
                 "clinician", 202, purposes=["all"], erasure=True, method="verbal")
    assert filed["erasure_request_status"] == "awaiting-dpo-decision"
    return str(filed["erasure_request_id"])


def request_of(platform: RunningPlatform, request_id: str) -> dict[str, Any]:
    return call(platform, "GET", "consent", f"/v1/erasure-requests/{request_id}", "dpo", 200)


def queue_entry(platform: RunningPlatform, role: str, referral_id: str) -> dict[str, Any]:
    entries = call(platform, "GET", "screening", "/v1/marac-referrals?status=open", role,
                   200)["referrals"]
    [entry] = [e for e in entries if e["id"] == referral_id]
    return dict(entry)


def wrapped_key(database: Path, subject_id: str) -> bytes:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            key: bytes = connection.execute(select(data_keys.c.wrapped_key).where(
                data_keys.c.subject_id == subject_id)).scalar_one()
    finally:
        engine.dispose()
    return key


def files_holding(var_dir: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    """Which of the needles each file under ``var_dir`` holds, raw bytes."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in var_dir.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        hits = [name for name, needle in needles.items() if needle in raw]
        if hits:
            found[str(path.relative_to(var_dir))] = hits
    return found


def test_an_approved_erasure_keeps_the_marac_referral_and_a_re_registration_meets_repeat(
        platform: RunningPlatform) -> None:
    marker = f"Quokka-{uuid.uuid4().hex[:8]}"
    nhs_number = next(platform.numbers)
    assessed = referred_person(platform, nhs_number, marker)
    subject_id, referral_id = assessed["subject_id"], assessed["marac_referral_id"]
    assert "repeat" not in assessed["criteria_met"]
    database = consent_file(platform)
    key_before = None if database is None else wrapped_key(database, subject_id)
    if key_before is not None:  # the scan sees the key while it exists
        assert files_holding(platform.settings.var_dir, {"wrapped key": key_before})

    request_id = file_erasure(platform, subject_id)
    with httpx.Client(timeout=15) as client:
        approve_erasure(client, platform.settings, request_id, "trust",
                        base_url=platform.url("consent", ""))
    done = wait_for(lambda: (r := request_of(platform, request_id))["status"] == "complete"
                    and r, timeout=60)
    assert done["scope"] == "subject"
    assert done["services"]["screening"]["retained_records"] >= 1

    # a write about the erased person is refused at once, with a clear reason
    refused = httpx.post(platform.url("screening", "/v1/screenings"),
                         json={**platform.screening("erased"), "nhs_number": None,
                               "subject_id": subject_id},
                         headers=platform.headers("trust", "clinician"), timeout=15)
    assert refused.status_code == 410, refused.text
    assert refused.json()["error"] == "erased"

    # the safeguarding lead still reads the referral's evidence and safe contact
    lead = queue_entry(platform, "safeguarding-lead", referral_id)
    assessment = lead["assessment"]
    assert assessment["answers"] == HIGH_RISK
    assert assessment["professional_judgement"]["reasons"] == f"{marker} reasons"
    assert lead["safe_contact"]["times"] == f"{marker} mornings"
    # and the DPO sees it listed, with the lawful basis it is kept under, but not its details
    flagged = call(platform, "GET", "screening",
                   "/v1/marac-referrals?status=open&flagged_for_dpo=true", "dpo", 200)
    [listed] = [e for e in flagged["referrals"] if e["id"] == referral_id]
    assert "Article 17(3)" in listed["lawful_basis"]
    assert marker not in str(listed)

    # the same NHS number registered again is a new subject, and a DASH within 12 months is
    # a repeat: the kept referral is found by its safeguarding pseudonym
    again = call(platform, "POST", "screening", "/v1/risk-assessments", "clinician", 201,
                 nhs_number=nhs_number, answers=["no"] * 24, incidents_last_12_months=0,
                 assessed_on="2027-03-01")
    assert again["subject_id"] != subject_id
    assert again["criteria_met"] == ["repeat"]
    assert again["marac_referral_required"] is True

    if key_before is None:
        return
    needles = {"wrapped key": key_before, "NHS number": nhs_number.encode(),
               "NHS digits": nhs_number.replace(" ", "").encode(),
               "marker": marker.encode(), "safe number": b"07700 900456"}
    found = files_holding(platform.settings.var_dir, needles)
    assert found == {}


def test_a_refused_erasure_changes_nothing_and_says_why(platform: RunningPlatform) -> None:
    marker = f"Numbat-{uuid.uuid4().hex[:8]}"
    assessed = referred_person(platform, next(platform.numbers), marker)
    subject_id = assessed["subject_id"]
    before = call(platform, "GET", "screening", f"/v1/subjects/{subject_id}/results",
                  "clinician", 200)

    request_id = file_erasure(platform, subject_id)
    decided = call(platform, "POST", "consent", f"/v1/erasure-requests/{request_id}/decision",
                   "dpo", 200, decision="refuse",
                   reason="kept for the legal claim the person has brought")

    assert decided["status"] == "refused"
    assert decided["reason"] == "kept for the legal claim the person has brought"
    assert request_of(platform, request_id)["status"] == "refused"
    # nothing was erased: the key opens, the records read as before
    after = call(platform, "GET", "screening", f"/v1/subjects/{subject_id}/results",
                 "clinician", 200)
    assert after == before
    assert after["risk_assessments"][0]["answers"] == HIGH_RISK
    key = call(platform, "GET", "consent", f"/v1/subjects/{subject_id}/safe-contact",
               "safeguarding-lead", 200)
    assert key["safe_contact"]["times"] == f"{marker} mornings"

"""Erased means erased at once: within a second of a person's data key being shredded, the
screening and mentoring APIs refuse to record anything more about them (410), although their
key caches still held the key and no subject-key-shredded event had reached them.

The consent API is real, served on a loopback port; the key is shredded directly in consent's
key store (not through the erasure API, whose flow is the DPO's decision)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ops.demo import fake_nhs_numbers
from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.api import build_api as mentoring_api
from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from shared.settings import PlatformSettings
from tests.support.http import serving
from tests.support.services import bearer, issuing, settings_for

ERASED = {"error": "erased",
          "message": "this person's records were erased; nothing more can be recorded about "
                     "them"}
NOTES = "Numbat-5521 the back gate is safe after six"


def screening_body(subject_id: str) -> dict[str, Any]:
    return {"subject_id": subject_id, "org": "trust", "team": "north-cmht",
            "borough": "camden", "gender": "female", "age_band": "25-34",
            "asked_on": "2026-11-20", "asked_by_role": "care-coordinator",
            "training_level": 2, "private": True, "outcome": "asked",
            "hark": {"humiliated": True, "afraid": False, "raped": False, "kicked": False},
            "past_abuse": "no", "notes": NOTES}


def referral_body(subject_id: str) -> dict[str, Any]:
    return {"subject_id": subject_id, "referred_by_org": "trust", "to_org": "partner-a",
            "safe_contact": {"phone": "07700 900417", "times": "mornings",
                             "may_leave_message": False}}


@dataclass
class Programme:
    settings: PlatformSettings
    consent: ConsentAdapters
    consent_api: httpx.Client
    screening: ScreeningAdapters
    mentoring: MentoringAdapters

    @property
    def clinician(self) -> dict[str, str]:
        return bearer(self.settings, "trust", "clinician")

    def person(self) -> str:
        """A person the Trust registered, with peer-mentoring and sharing with partner-a."""
        registered = self.consent_api.post(
            "/v1/subjects", json={"nhs_number": next(fake_nhs_numbers(random.Random()))},
            headers=self.clinician)
        assert registered.status_code == 201, registered.text
        subject_id = str(registered.json()["subject_id"])
        for purpose, extra in (("peer-mentoring", {}),
                               ("partner-sharing", {"recipients": ["partner-a"]})):
            granted = self.consent_api.post(
                f"/v1/subjects/{subject_id}/consents", headers=self.clinician,
                json={"purpose": purpose, "method": "verbal", "recorded_by": "Nurse Adebayo",
                      **extra})
            assert granted.status_code == 201, granted.text
        return subject_id

    def shred(self, subject_id: str) -> None:
        with self.consent.database.unit_of_work() as uow:
            assert self.consent.keys.shred(uow.session, subject_id) is not None


@pytest.fixture
def programme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Programme]:
    settings = settings_for(monkeypatch, tmp_path, {
        service: f"sqlite:///{tmp_path / f'{service}.db'}"
        for service in ("consent", "screening", "mentoring")},
        data_key_cache_seconds=30.0)
    consent = ConsentAdapters(settings)
    with issuing(settings) as issued, serving(consent_api(consent)) as consent_url, \
            httpx.Client(base_url=consent_url, timeout=10) as client:
        served = issued.model_copy(update={"consent_url": consent_url})
        screening, mentoring = ScreeningAdapters(served), MentoringAdapters(served)
        try:
            yield Programme(served, consent, client, screening, mentoring)
        finally:
            for database in (screening.database, mentoring.database, consent.database):
                database.dispose()


def test_writes_about_an_erased_person_are_refused_within_a_second_despite_cached_keys(
        programme: Programme) -> None:
    screening = TestClient(screening_api(programme.screening))
    mentoring = TestClient(mentoring_api(programme.mentoring))
    clinician = programme.clinician
    subject_id = programme.person()

    recorded = screening.post("/v1/screenings", json=screening_body(subject_id),
                              headers=clinician)
    assert recorded.status_code == 201, recorded.text
    results = screening.get(f"/v1/subjects/{subject_id}/results", headers=clinician)
    assert [s["notes"] for s in results.json()["screenings"]] == [NOTES]
    referred = mentoring.post("/v1/referrals", json=referral_body(subject_id),
                              headers=clinician)
    assert referred.status_code == 201, referred.text
    cached = (programme.screening.keys.data_key(subject_id),
              programme.mentoring.keys.data_key(subject_id))

    programme.shred(subject_id)
    shredded_at = time.monotonic()
    # the caches still hold the key: no subject-key-shredded has reached these processes
    assert (programme.screening.keys.data_key(subject_id),
            programme.mentoring.keys.data_key(subject_id)) == cached

    again = screening.post("/v1/screenings", json=screening_body(subject_id),
                           headers=clinician)
    referred_again = mentoring.post("/v1/referrals", json=referral_body(subject_id),
                                    headers=clinician)
    elapsed = time.monotonic() - shredded_at

    assert (again.status_code, again.json()) == (410, ERASED)
    assert (referred_again.status_code, referred_again.json()) == (410, ERASED)
    assert elapsed < 1.0

"""The screening service's harness for the access matrix (tests/access/screening.csv, run by
tests/integration/test_access_matrix.py).

Each row gets a person of its own, put in the row's relationship state through the public
consent API exactly as the consent harness does. The events consent writes to its outbox
(relationship-established, consent-granted, consent-withdrawn) are applied to screening's
projection by the screening worker's own handlers, as they would arrive from consent.events.
The holder then has a screening record whose notes carry a marker only the holder (and an
organisation it shares with) may see, and a MARAC referral raised by one of its clinicians.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import httpx
from fastapi.testclient import TestClient

from services.consent.bootstrap import ConsentAdapters
from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from services.screening.service_layer.commands import RecordScreening
from services.screening.service_layer.screenings import store_screening
from shared.auth import ON_BEHALF_OF
from shared.settings import PlatformSettings
from tests.support.screening import consent_applier
from tests.support.screening_consent import DirectSafeguarding
from tests.support.services import consent_beside, relay_consent_events
from tests.support.tokens import Tokens

REGISTRAR = {"nhs-trust": "clinician", "dva-partner": "partner-staff"}
READS = frozenset({"GET /v1/screenings/{screening_id}", "GET /v1/subjects/{subject_id}/results"})
QUEUE = "GET /v1/marac-referrals"


class MatrixRow(Protocol):
    """What the harness reads of a matrix row (``test_access_matrix.Row``)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def caller(self) -> str: ...
    @property
    def caller_org(self) -> str: ...
    @property
    def relationship(self) -> str: ...
    @property
    def where(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...


def _nhs_numbers(start: int) -> Iterator[str]:
    body = start
    while True:
        digits = f"{body:09d}"
        body += 1
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            yield digits + str(0 if check == 11 else check)


class ScreeningHarness:
    """Rows of the screening API, with a consent service served on a port."""

    def __init__(self, consent: ConsentAdapters, consent_url: str, screening: ScreeningAdapters,
                 tokens: Tokens, check_status: Callable[[Any, httpx.Response], None]) -> None:
        self.check_status = check_status
        self.consent = consent
        self.consent_client = httpx.Client(base_url=consent_url, timeout=10)
        self.screening = screening
        self.client = TestClient(screening_api(screening))
        self.tokens = tokens
        self.numbers = _nhs_numbers(300_000_000)
        self.applier = consent_applier(screening.database, screening.cipher,
                                       screening.records)
        self.applied_seq = 0

    @classmethod
    @contextmanager
    def running(cls, settings: PlatformSettings, tokens: Tokens, var_dir: Path,
                check_status: Callable[[Any, httpx.Response], None]
                ) -> Iterator[ScreeningHarness]:
        with consent_beside("screening", settings, var_dir) as (consent, consent_url, beside):
            screening = ScreeningAdapters(beside)
            screening.safeguarding = DirectSafeguarding(consent)
            harness = cls(consent, consent_url, screening, tokens, check_status)
            try:
                yield harness
            finally:
                harness.consent_client.close()
                screening.database.dispose()

    # --- setting a row's person up -------------------------------------------------------------

    def _as(self, org: str, role: str | None = None, subject: str | None = None
            ) -> dict[str, str]:
        role = role or REGISTRAR[self.tokens.kind(org)]
        return {"Authorization": f"Bearer {self.tokens.person(org, role, subject=subject)}"}

    def _consent(self, path: str, body: dict[str, Any], headers: dict[str, str],
                 status: int = 201) -> dict[str, Any]:
        response = self.consent_client.post(path, json=body, headers=headers)
        assert response.status_code == status, f"setup: {path}: {response.text}"
        created: dict[str, Any] = response.json()
        return created

    def _project(self) -> None:
        """Apply what consent published since last time to screening's projection."""
        self.applied_seq = relay_consent_events(self.consent, self.applier,
                                                self.applied_seq)

    def prepare(self, row: MatrixRow) -> dict[str, str]:
        """A fresh person in the row's state; returns ids and the holder's marker."""
        org, state = row.caller_org, row.relationship
        holder = org if state == "own" else ("partner-a" if org == "trust" else "trust")
        nhs_number = next(self.numbers)
        marker = f"holder-{uuid.uuid4().hex}"
        holder_headers = self._as(holder, subject=marker)
        subject_id = self._consent("/v1/subjects", {"nhs_number": nhs_number},
                                   holder_headers)["subject_id"]
        subject = f"/v1/subjects/{subject_id}"
        if state == "registered":
            self._consent("/v1/subjects", {"nhs_number": nhs_number}, self._as(org))
        if state in ("shared", "withdrawn"):
            self._consent(f"{subject}/consents", {
                "purpose": "partner-sharing", "method": "verbal", "recorded_by": "matrix",
                "recipients": [org]}, holder_headers)
            self._consent(f"/internal{subject}/relationships", {"org": org}, {
                "Authorization": "Bearer " + self.tokens.service("mentoring"),
                ON_BEHALF_OF: self.tokens.person(holder, REGISTRAR[self.tokens.kind(holder)])})
        if state == "withdrawn":
            self._consent(f"{subject}/withdrawals", {
                "purposes": ["partner-sharing"], "recipients": [org], "method": "verbal"},
                holder_headers, 202)
        self._project()
        screening_id = self._holders_screening(subject_id, holder, marker)
        referral_id = self._trust_referral(subject_id) if row.endpoint not in READS else ""
        return {"subject_id": subject_id, "screening_id": screening_id, "holder": holder,
                "marker": marker, "referral_id": referral_id}

    def _holders_screening(self, subject_id: str, holder: str, marker: str) -> str:
        body: dict[str, Any] = {
            "subject_id": subject_id, "org": holder, "team": "matrix", "borough": "camden",
            "gender": "female", "age_band": "25-34", "asked_on": "2026-11-20",
            "asked_by_role": "nurse", "training_level": 2, "private": True,
            "outcome": "asked", "past_abuse": "no", "notes": marker,
            "hark": {"humiliated": True, "afraid": False, "raped": False, "kicked": False}}
        if self.tokens.kind(holder) == "nhs-trust":
            response = self.client.post("/v1/screenings", json=body,
                                        headers=self._as(holder, "clinician"))
            assert response.status_code == 201, f"setup: the holder screens: {response.text}"
            return str(response.json()["id"])
        # no person at a DVA partner records screenings; its record system could (service)
        with self.screening.database.unit_of_work() as uow:
            return store_screening(uow, self.screening.cipher,
                                    RecordScreening.model_validate(body), subject_id, holder)

    def _trust_referral(self, subject_id: str) -> str:
        """A MARAC referral for the person raised by a Trust clinician who is not the caller."""
        response = self.client.post("/v1/risk-assessments", headers=self._as(
            "trust", "clinician", subject=f"referrer-{uuid.uuid4().hex[:8]}"), json={
            "subject_id": subject_id, "answers": ["yes"] * 14 + ["no"] * 10,
            "incidents_last_12_months": 0, "assessed_on": str(date(2026, 11, 20))})
        assert response.status_code == 201, f"setup: a referral: {response.text}"
        return str(response.json()["marac_referral_id"])

    # --- the row's request ---------------------------------------------------------------------

    def request(self, row: MatrixRow, person: dict[str, str]) -> httpx.Response:
        path = row.path.format(**person)
        headers = self.tokens.headers(row.caller, row.caller_org)
        subject_id = person["subject_id"]
        bodies: dict[str, dict[str, Any]] = {
            "POST /v1/screenings": {
                "subject_id": subject_id, "org": row.caller_org, "team": "matrix",
                "borough": "camden", "gender": "female", "age_band": "25-34",
                "asked_on": "2026-11-21", "asked_by_role": "nurse", "training_level": 2,
                "private": True, "outcome": "declined"},
            "POST /v1/enquiries/due": {"subject_id": subject_id, "org": row.caller_org,
                                       "team": "matrix", "due_on": "2026-11-21"},
            "POST /v1/team-training": {"org": row.caller_org, "team": "matrix",
                                       "as_of": "2026-11-21", "staff": 10, "trained": 7},
            "POST /v1/risk-assessments": {
                "subject_id": subject_id, "answers": ["no"] * 24,
                "incidents_last_12_months": 0, "assessed_on": "2026-11-21"},
            "POST /v1/marac-referrals": {
                "subject_id": subject_id, "reasons": "matrix", "incidents_last_12_months": 0,
                "not_completed_reason": "matrix", "referred_on": "2026-11-21"},
            "POST /v1/marac-referrals/external": {
                "subject_id": subject_id, "referred_on": "2026-11-21",
                "referring_agency": "police"},
        }
        response: httpx.Response = self.client.request(row.method, path, headers=headers,
                                                       json=bodies.get(row.endpoint))
        return response

    def run(self, row: MatrixRow) -> None:
        person = self.prepare(row)
        response = self.request(row, person)
        self.check_status(row, response)
        marker = person["marker"]
        if row.caller_org != person["holder"] and row.relationship != "shared":
            assert marker not in response.text, \
                f"{row.where}: {row.id} shows the holder's record: {response.text[:300]}"
        if not response.is_success:
            return
        if row.endpoint in READS and row.relationship in ("own", "shared"):
            # the holder and an organisation it shares with see the record, so the check
            # above is known to see it
            assert marker in response.text, f"{row.where}: {row.id}: {response.text[:300]}"
        if row.endpoint == QUEUE:
            shown = person["referral_id"] in response.text
            assert shown is (row.caller == "safeguarding-lead"), \
                f"{row.where}: {row.id}: the queue shows {response.text[:300]}"

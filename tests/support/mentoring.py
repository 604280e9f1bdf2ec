"""The mentoring service in process beside a real consent service, and how its integration
tests call it: people and their consents, mentors, referrals, matches, sessions, the outbox
and tables, and the cascade effects as the worker applies them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ops.demo import fake_nhs_numbers
from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.api import build_api as mentoring_api
from services.mentoring.service_layer.cascade import MentoringCascade
from tests.support.http import serving
from tests.support.services import bearer, issuing, settings_for

TODAY = date.today()
DISPLAY_NAME = "Marguerite Okonkwo-Vale"
PHONE = "07700 900417"
TIMES = "weekday mornings before ten"


def mentor_body(org: str = "partner-a", **changes: Any) -> dict[str, Any]:
    """An active, trained and checked mentor (not yet supervised, so not yet matchable)."""
    return {"org": org, "display_name": DISPLAY_NAME, "gender": "female",
            "languages": ["en", "ur"], "borough": "camden",
            "modes": ["in-person", "phone", "video"], "capacity": 2,
            "training_completed_on": (TODAY - timedelta(days=120)).isoformat(),
            "check_level": "enhanced",
            "check_completed_on": (TODAY - timedelta(days=300)).isoformat(),
            "status": "active", **changes}


def referral_body(subject_id: str | None = None, org: str = "trust", to_org: str = "partner-a",
                  **changes: Any) -> dict[str, Any]:
    """A referral by ``org`` to ``to_org``'s intake, with the person's safe contact."""
    return {"subject_id": subject_id, "referred_by_org": org, "to_org": to_org,
            "safe_contact": {"phone": PHONE, "times": TIMES, "may_leave_message": False},
            **changes}


def session_body(match_id: str, **changes: Any) -> dict[str, Any]:
    """An attended phone session today."""
    return {"match_id": match_id, "held_on": TODAY.isoformat(), "duration_minutes": 60,
            "mode": "phone", "attendance": "attended", "safeguarding_concern": False,
            **changes}


@dataclass
class Mentoring:
    """The mentoring service's adapters (``service``) and its API, the consent API it asks,
    and the cascade effects as the worker applies them."""

    service: MentoringAdapters
    client: TestClient
    consent: httpx.Client
    numbers: Iterator[str] = field(default_factory=lambda: fake_nhs_numbers(random.Random()))

    @property
    def cascade(self) -> MentoringCascade:
        return MentoringCascade(self.service.cipher, self.service.records, self.service.rules)

    def as_(self, org: str, *roles: str) -> dict[str, str]:
        """The bearer header of someone of ``org`` with ``roles``."""
        return bearer(self.service.settings, org, *roles)

    @property
    def coordinator(self) -> dict[str, str]:
        return self.as_("partner-a", "mentor-coordinator")

    @property
    def clinician(self) -> dict[str, str]:
        return self.as_("trust", "clinician")

    @property
    def safeguarding_lead(self) -> dict[str, str]:
        return self.as_("trust", "safeguarding-lead")

    def person(self, *, consent: bool = True, org: str = "trust",
               sharing_with: tuple[str, ...] = ("partner-a",)) -> str:
        """A person registered with ``org``, with ``org``'s peer-mentoring consent unless told
        not, and its partner-sharing consent naming ``sharing_with`` (none when empty)."""
        recorder = self.as_(org, "clinician" if org == "trust" else "partner-staff")
        response = self.consent.post("/v1/subjects", json={"nhs_number": next(self.numbers)},
                                     headers=recorder)
        assert response.status_code == 201, response.text
        subject_id = str(response.json()["subject_id"])
        if consent:
            self.grant(subject_id, org, "peer-mentoring")
        if sharing_with:
            self.grant(subject_id, org, "partner-sharing", list(sharing_with))
        return subject_id

    def grant(self, subject_id: str, org: str, purpose: str,
              recipients: list[str] | None = None) -> None:
        recorder = self.as_(org, "clinician" if org == "trust" else "partner-staff")
        body: dict[str, Any] = {"purpose": purpose, "method": "verbal",
                                "recorded_by": "Nurse Adebayo"}
        if recipients is not None:
            body["recipients"] = recipients
        granted = self.consent.post(f"/v1/subjects/{subject_id}/consents", json=body,
                                    headers=recorder)
        assert granted.status_code == 201, granted.text

    def mentor(self, org: str = "partner-a", *, supervised: bool = True,
               **changes: Any) -> str:
        """A registered mentor of ``org``; matchable unless the changes say otherwise."""
        headers = self.as_(org, "mentor-coordinator")
        response = self.client.post("/v1/mentors", json=mentor_body(org, **changes),
                                    headers=headers)
        assert response.status_code == 201, response.text
        mentor_id = str(response.json()["id"])
        if supervised:
            self.supervise(mentor_id, TODAY - timedelta(days=3), org)
        return mentor_id

    def supervise(self, mentor_id: str, held_on: date, org: str = "partner-a"
                  ) -> dict[str, Any]:
        response = self.client.post(f"/v1/mentors/{mentor_id}/supervision",
                                    json={"held_on": held_on.isoformat()},
                                    headers=self.as_(org, "mentor-coordinator"))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def refer(self, subject_id: str, org: str = "trust", role: str = "clinician",
              to_org: str = "partner-a", **preferences: Any) -> str:
        response = self.client.post("/v1/referrals", json=referral_body(
            subject_id, org, to_org, preferences=preferences), headers=self.as_(org, role))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def match(self, referral_id: str, org: str = "partner-a") -> dict[str, Any]:
        """Matched (or waitlisted) by the receiving organisation's coordinator."""
        response = self.client.post(f"/v1/referrals/{referral_id}/match",
                                    headers=self.as_(org, "mentor-coordinator"))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def referral(self, referral_id: str, headers: dict[str, str] | None = None
                 ) -> dict[str, Any]:
        """The referral as ``headers`` see it (by default the receiving coordinator, who
        alone sees the match)."""
        response = self.referral_response(referral_id, headers or self.coordinator)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def referral_response(self, referral_id: str, headers: dict[str, str]) -> httpx.Response:
        """The answer to ``headers`` reading the referral, whatever it is."""
        response: httpx.Response = self.client.get(f"/v1/referrals/{referral_id}",
                                                   headers=headers)
        return response

    def matched_person(self, mentor_id: str | None = None) -> tuple[str, str, str]:
        """A person referred by the Trust and matched; (subject_id, referral_id, match_id)."""
        subject_id = self.person()
        referral_id = self.refer(subject_id)
        matched = self.match(referral_id)
        assert matched["status"] == "matched", matched
        if mentor_id is not None:
            assert matched["mentor_id"] == mentor_id
        return subject_id, referral_id, str(matched["match_id"])

    def end(self, match_id: str, planned: bool = True) -> httpx.Response:
        response: httpx.Response = self.client.post(
            f"/v1/matches/{match_id}/end", json={"planned": planned, "reason": "goals met"},
            headers=self.coordinator)
        return response

    def concern(self, match_id: str, details: str) -> str:
        """A safeguarding concern raised in a session logged by the coordinator."""
        response = self.client.post("/v1/sessions", json=session_body(
            match_id, duration_minutes=45, safeguarding_concern=True,
            concern_details=details), headers=self.coordinator)
        assert response.status_code == 201, response.text
        return str(response.json()["safeguarding_concern_id"])

    def outbox(self) -> list[Any]:
        outbox = self.service.database.metadata.tables["outbox"]
        with self.service.database.read() as session:
            return list(session.execute(select(outbox).order_by(outbox.c.seq)))

    def count(self, table: str) -> int:
        rows = self.service.database.metadata.tables[table]
        with self.service.database.read() as session:
            return int(session.execute(select(func.count()).select_from(rows)).scalar_one())


    def rows(self, table: str) -> list[Any]:
        rows = self.service.database.metadata.tables[table]
        with self.service.database.read() as session:
            return list(session.execute(select(rows)))

    def referral_row(self, referral_id: str) -> Any:
        [row] = [r for r in self.rows("referrals") if r.referral_id == referral_id]
        return row

    def withdraw(self, subject_id: str, purposes: tuple[Any, ...], org: str = "trust",
                 recipients: tuple[str, ...] = ()) -> None:
        """As the worker applies a withdrawal recorded by ``org``."""
        with self.service.database.unit_of_work() as uow:
            self.cascade.withdrawn(uow, subject_id, purposes, org, recipients)

    def erase(self, subject_id: str, service: MentoringAdapters | None = None) -> int:
        """As the worker applies an erasure (with ``service``'s adapters, if given)."""
        service = service or self.service
        with service.database.unit_of_work() as uow:
            return MentoringCascade(service.cipher, service.records, service.rules
                                    ).erase(uow, subject_id)

    def dpo_queue(self) -> list[dict[str, Any]]:
        """The Trust's DPO's open concerns flagged for them."""
        response = self.client.get("/v1/safeguarding-concerns",
                                   params={"flagged_for_dpo": "true", "status": "open"},
                                   headers=self.as_("trust", "dpo"))
        assert response.status_code == 200, response.text
        concerns: list[dict[str, Any]] = response.json()["concerns"]
        return concerns


def beside_consent(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> Iterator[Mentoring]:
    """Mentoring on ``database_url`` and its API in process, with a real consent service
    (SQLite) served on a loopback port; for a fixture to ``yield from``."""
    settings = settings_for(monkeypatch, tmp_path, {
        "consent": f"sqlite:///{tmp_path / 'consent.db'}", "mentoring": database_url})
    with issuing(settings) as settings, \
            serving(consent_api(ConsentAdapters(settings))) as consent_url, \
            httpx.Client(base_url=consent_url, timeout=10) as consent:
        service = MentoringAdapters(settings.model_copy(update={"consent_url": consent_url}))
        yield Mentoring(service, TestClient(mentoring_api(service)), consent)
        service.database.dispose()

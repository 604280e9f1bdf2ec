"""Every row of tests/access/mentoring.yaml, against the real mentoring API (SQLite) and a
real consent service: the caller's status, and whether the safe contact, the intake entry,
the mentor or the concern is shown. Identifiable data never appears where it is not shown,
and a record of no concern to the caller is answered exactly like one that does not exist.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from services.consent.bootstrap import ConsentService
from services.consent.entrypoints.api import build_api as consent_api
from services.mentoring.bootstrap import MentoringService
from services.mentoring.entrypoints.api import build_api as mentoring_api
from services.mentoring.service_layer.cascade import MentoringCascade
from shared.demo import fake_nhs_numbers
from tests.support.http import serving
from tests.support.services import bearer, issuing, settings_for

TABLE = Path(__file__).parents[1] / "access" / "mentoring.yaml"
TODAY = date.today()
PHONE = "07700 900731"
CONCERN = "mentee said he found her new address"
UNKNOWN = {"referral_id": "ref_00000000000000000000000000000000",
           "match_id": "mat_00000000000000000000000000000000",
           "mentor_id": "mnt_00000000000000000000000000000000"}


def load_rows() -> list[dict[str, Any]]:
    table = yaml.safe_load(TABLE.read_text())
    return [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]


ROWS = load_rows()


def mentor_body(org: str) -> dict[str, Any]:
    return {"org": org, "display_name": "Sam Matrix", "gender": "female", "languages": ["en"],
            "borough": "camden", "modes": ["phone"], "capacity": 50,
            "training_completed_on": (TODAY - timedelta(days=60)).isoformat(),
            "check_level": "enhanced",
            "check_completed_on": (TODAY - timedelta(days=60)).isoformat(),
            "supervision_held_on": TODAY.isoformat(), "status": "active"}


def referral_body(subject_id: str, org: str, to_org: str) -> dict[str, Any]:
    return {"subject_id": subject_id, "referred_by_org": org, "to_org": to_org,
            "safe_contact": {"phone": PHONE, "times": "mornings", "may_leave_message": False}}


@dataclass
class World:
    """The services, and the records each row is asked about."""

    service: MentoringService
    client: TestClient
    consent: httpx.Client
    numbers: Iterator[str] = field(default_factory=lambda: fake_nhs_numbers(random.Random(7)))
    mentors: dict[str, str] = field(default_factory=dict)
    concern_id: str = ""

    def as_(self, org: str, role: str) -> dict[str, str]:
        return bearer(self.service.settings, org, role)

    def staff(self, org: str) -> dict[str, str]:
        return self.as_(org, "clinician" if org == "trust" else "partner-staff")

    def ok(self, response: httpx.Response, *statuses: int) -> dict[str, Any]:
        assert response.status_code in (statuses or (200, 201)), response.text
        body: dict[str, Any] = response.json()
        return body

    def person(self, org: str, sharing_with: str = "partner-a") -> str:
        """Registered by ``org``, with its peer-mentoring consent and (unless it is ``org``)
        partner-sharing naming ``sharing_with``."""
        subject_id = str(self.ok(self.consent.post(
            "/v1/subjects", json={"nhs_number": next(self.numbers)}, headers=self.staff(org))
        )["subject_id"])
        consents: list[tuple[str, dict[str, Any]]] = [("peer-mentoring", {})]
        if sharing_with != org:  # an organisation never shares with itself
            consents.append(("partner-sharing", {"recipients": [sharing_with]}))
        for purpose, more in consents:
            self.ok(self.consent.post(f"/v1/subjects/{subject_id}/consents", json={
                "purpose": purpose, "method": "verbal", "recorded_by": "Nurse Adebayo",
                **more}, headers=self.staff(org)))
        return subject_id

    def referral(self, referrer: str, to_org: str, *, matched: bool = False,
                 withdrawn: bool = False) -> dict[str, str]:
        """A referral from ``referrer`` to ``to_org``; its ids (and the match's)."""
        subject_id = self.person(referrer, to_org)
        referral_id = str(self.ok(self.client.post(
            "/v1/referrals", json=referral_body(subject_id, referrer, to_org),
            headers=self.staff(referrer)))["id"])
        ids = {"referral_id": referral_id, "subject_id": subject_id}
        if matched:
            coordinator = self.as_(to_org, "mentor-coordinator")
            made = self.ok(self.client.post(f"/v1/referrals/{referral_id}/match",
                                            headers=coordinator))
            if made["status"] == "waitlisted":  # every mentor is full: a new one takes it
                self.ok(self.client.post("/v1/mentors", json=mentor_body(to_org),
                                         headers=coordinator))
                made = self.ok(self.client.get(f"/v1/referrals/{referral_id}",
                                               headers=coordinator))
            ids["match_id"] = str(made["match_id"])
        if withdrawn:
            with self.service.database.unit_of_work() as uow:
                MentoringCascade(self.service.cipher, self.service.rules).withdrawn(
                    uow, subject_id, ("partner-sharing",), referrer, (to_org,))
        return ids


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path = tmp_path_factory.mktemp("mentoring-access")
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = settings_for(monkeypatch, tmp_path, {
            "consent": f"sqlite:///{tmp_path / 'consent.db'}",
            "mentoring": f"sqlite:///{tmp_path / 'mentoring.db'}"})
        with issuing(settings) as settings, \
                serving(consent_api(ConsentService(settings))) as consent_url, \
                httpx.Client(base_url=consent_url, timeout=10) as consent:
            service = MentoringService(settings.model_copy(update={"consent_url": consent_url}))
            world = World(service, TestClient(mentoring_api(service)), consent)
            for org in ("partner-a", "partner-b"):
                world.mentors[org] = str(world.ok(world.client.post(
                    "/v1/mentors", json=mentor_body(org),
                    headers=world.as_(org, "mentor-coordinator")))["id"])
            # the queue's one concern: raised in a partner-a match, flagged by erasure
            ids = world.referral("trust", "partner-a", matched=True)
            world.concern_id = str(world.ok(world.client.post("/v1/sessions", json={
                "match_id": ids["match_id"], "held_on": TODAY.isoformat(),
                "duration_minutes": 30, "mode": "phone", "attendance": "attended",
                "safeguarding_concern": True, "concern_details": CONCERN},
                headers=world.as_("partner-a", "mentor-coordinator")))[
                "safeguarding_concern_id"])
            with service.database.unit_of_work() as uow:
                MentoringCascade(service.cipher, service.rules).erase(uow, ids["subject_id"])
            yield world
            service.database.dispose()


def referrer_of(row: dict[str, Any]) -> str:
    """Who made the referral a row asks about."""
    if row["relationship"] == "referrer":
        return str(row["caller_org"])
    return "partner-b" if row["caller_org"] == "trust" else "trust"


def ask(world: World, row: dict[str, Any]) -> tuple[httpx.Response, bool | None]:
    """Set up the row's record and send its request; the response, and whether the thing
    the ``shows`` column names is in it (None: n/a)."""
    method, template = str(row["endpoint"]).split(" ", 1)
    path, _, query = template.partition("?")
    caller = world.as_(row["caller_org"], row["role"])
    record = str(row["record_org"])
    body: dict[str, Any] | None = None
    ids: dict[str, str] = {}
    if path.startswith(("/v1/referrals/", "/v1/sessions", "/v1/outcomes", "/v1/matches/")):
        ids = world.referral(referrer_of(row), record, matched="{referral_id}" not in path,
                             withdrawn=row["relationship"] == "withdrawn")
        if path == "/v1/sessions":
            body = {"match_id": ids["match_id"], "held_on": TODAY.isoformat(),
                    "duration_minutes": 45, "mode": "phone", "attendance": "attended"}
        elif path == "/v1/outcomes":
            body = {"match_id": ids["match_id"], "timepoint": "intake",
                    "instrument": "SWEMWBS", "items": [3] * 7}
        elif path.endswith("/end"):
            body = {"planned": True}
    elif path == "/v1/referrals" and method == "GET":
        ids = world.referral(referrer_of(row), record,
                             withdrawn=row["relationship"] == "withdrawn")
    elif path == "/v1/referrals":
        body = referral_body(world.person(row["caller_org"]), row["caller_org"], record)
    elif path.startswith("/v1/mentors"):
        ids = {"mentor_id": world.mentors[record]}
        body = {"/v1/mentors": mentor_body(record) if method == "POST" else None,
                "/v1/mentors/{mentor_id}/status": {"status": "active"},
                "/v1/mentors/{mentor_id}/supervision": {"held_on": TODAY.isoformat()},
                }.get(path)
    params = dict(p.split("=") for p in query.split("&")) if query else None
    response = world.client.request(method, path.format(**ids), json=body, params=params,
                                    headers=caller)
    if row["shows"] == "n/a" or response.status_code != 200:
        return response, None
    answer = response.json()
    if path == "/v1/referrals/{referral_id}":
        return response, answer["safe_contact"] is not None
    if path == "/v1/referrals":
        return response, ids["referral_id"] in {r["id"] for r in answer["referrals"]}
    if path == "/v1/mentors":
        return response, ids["mentor_id"] in {m["id"] for m in answer["mentors"]}
    shown = [c for c in answer["concerns"] if c["id"] == world.concern_id]
    assert all(c["concern_details"] == CONCERN for c in shown)
    return response, bool(shown)


@pytest.mark.parametrize("row", ROWS, ids=[
    f"{i:03d}:{r['endpoint']}:{r['role']}@{r['caller_org']}:{r['relationship']}:{r['record_org']}"
    for i, r in enumerate(ROWS)])
def test_row(world: World, row: dict[str, Any]) -> None:
    response, shown = ask(world, row)
    assert response.status_code == row["expected"], response.text
    if row["shows"] != "n/a":
        assert shown is (row["shows"] == "shown")
    if row["shows"] != "shown":
        assert PHONE not in response.text
        assert CONCERN not in response.text
    if row["expected"] == 404:  # exactly as if it did not exist
        method, template = str(row["endpoint"]).split(" ", 1)
        sent = json.loads(response.request.content or b"null")
        if isinstance(sent, dict) and "match_id" in sent:
            sent["match_id"] = UNKNOWN["match_id"]
        unknown = world.client.request(method, template.format(**UNKNOWN), json=sent,
                                       headers=world.as_(row["caller_org"], row["role"]))
        assert (unknown.status_code, unknown.json()) == (404, response.json())


def test_the_table_is_readable_and_its_values_known() -> None:
    assert len(ROWS) > 100
    for row in ROWS:
        assert row["relationship"] in {"none", "referrer", "receiver", "withdrawn"}, row
        assert row["shows"] in {"shown", "absent", "n/a"}, row
        assert row["expected"] in {200, 201, 403, 404, 409}, row
        assert str(row["endpoint"]).split(" ", 1)[0] in {"GET", "POST"}, row

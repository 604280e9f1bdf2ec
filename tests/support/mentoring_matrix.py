"""The mentoring service's harness for the access matrix (tests/access/mentoring.csv, run by
tests/integration/test_access_matrix.py).

Each row gets a world of its own, made through the public APIs: a person registered by the
holder of their record (and by the caller's organisation too at ``registered``), the holder's
peer-mentoring consent and partner-sharing naming the receiver, and the holder's referral
through the mentoring API (which gives the receiver its relationship in consent). What consent
then writes to its outbox (a partner-sharing withdrawal, an erasure) is applied to mentoring
by the mentoring worker's own cascade handlers, as it would arrive from consent.events. Which
organisation refers to which, per state, is in the header of mentoring.csv and in
tests/access/README.md. Mentor endpoints name no person: their rows ask about a fresh mentor of
the organisation that receives the state's referral.

Beyond the status, every row checks that the safe contact (on a referral to the receiver's
coordinators, on a concern to the safeguarding lead, in an export to the DPO of an end of the
referral), the intake entry, the mentor and the safeguarding concern are shown exactly where
the rules show them, that nothing of a referral
is shown to an organisation with no relationship to it, and that a 404 is answered exactly as
for an id that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from services.consent.bootstrap import ConsentAdapters
from services.mentoring.adapters.tables import (
    matches,
    mentors,
    referrals,
    safeguarding_concerns,
)
from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.api import build_api as mentoring_api
from services.mentoring.entrypoints.worker import HolderCascadeParticipant
from services.mentoring.service_layer.cascade import MentoringCascade
from shared.events.consent import ErasureRequested
from shared.events.envelope import CloudEvent
from shared.kafka.consumer import EventApplier, InboundRecord
from shared.kafka.topics import events_topic
from shared.settings import PlatformSettings
from tests.support.screening_matrix import MatrixRow as ScreeningRow
from tests.support.services import consent_beside, relay_consent_events
from tests.support.tokens import Tokens


class MatrixRow(ScreeningRow, Protocol):
    """What the harness reads of a matrix row (``test_access_matrix.Row``)."""

    @property
    def expected(self) -> int: ...


REGISTRAR: Final = {"nhs-trust": "clinician", "dva-partner": "partner-staff"}
RECEIVES: Final = frozenset({"self-referred", "shared", "withdrawn"})
"""The states in which the caller's organisation receives the row's referral."""
MENTORS: Final = frozenset({"POST /v1/mentors", "GET /v1/mentors", "GET /v1/mentors/{mentor_id}",
                            "POST /v1/mentors/{mentor_id}/supervision",
                            "POST /v1/mentors/{mentor_id}/status"})
REFER: Final = "POST /v1/referrals"
INTAKE: Final = "GET /v1/referrals"
READ: Final = "GET /v1/referrals/{referral_id}"
QUEUE: Final = "GET /v1/safeguarding-concerns"
RAISE: Final = "POST /v1/safeguarding-concerns"
STEPS: Final = {"POST /v1/safeguarding-concerns/{concern_id}/acknowledge": (),
                "POST /v1/safeguarding-concerns/{concern_id}/action": ("acknowledge",),
                "POST /v1/safeguarding-concerns/{concern_id}/close": ("acknowledge", "action")}
"""Each step of the queue, with the steps the lead takes first to bring the concern to it."""
SAFE_CONTACT: Final = "PUT /v1/referrals/{referral_id}/safe-contact"
EXPORT: Final = "GET /v1/subjects/{subject_id}/export"
MATCHED: Final = frozenset({"POST /v1/sessions", "POST /v1/outcomes", "POST /v1/adverse-events",
                            "POST /v1/matches/{match_id}/end", QUEUE, EXPORT})
"""Endpoints whose row's referral is matched with a mentor of the receiver first."""
UNKNOWN: Final = {"referral_id": "ref_" + "0" * 32, "match_id": "mat_" + "0" * 32,
                  "mentor_id": "mnt_" + "0" * 32, "subject_id": "sub_" + "0" * 32,
                  "concern_id": "sgc_" + "0" * 32}
SAFE_CONTACT_ROUTE: Final = "/internal/v1/subjects/{subject_id}/safe-contact"
PHONE: Final = "07700 900731"
TODAY: Final = date.today()


def _nhs_numbers(start: int) -> Iterator[str]:
    body = start
    while True:
        digits = f"{body:09d}"
        body += 1
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            yield digits + str(0 if check == 11 else check)


def other_partner(org: str) -> str:
    return "partner-b" if org == "partner-a" else "partner-a"


def holder_of(org: str, state: str) -> str:
    """Who holds the row's person's record (README: the Trust, but for own rows and a Trust
    caller's none and registered rows)."""
    if state in ("own", "self-referred"):
        return org
    return "partner-a" if org == "trust" else "trust"


def receiver_of(org: str, state: str) -> str:
    """The organisation the row's referral is sent to (always a DVA partner)."""
    if state in RECEIVES:
        return org
    if org == "trust":
        return "partner-a" if state == "own" else "partner-b"
    return other_partner(org)


def mentor_body(org: str) -> dict[str, Any]:
    done = (TODAY - timedelta(days=60)).isoformat()
    return {"org": org, "display_name": "Sam Matrix", "gender": "female", "languages": ["en"],
            "borough": "camden", "modes": ["phone"], "capacity": 50,
            "training_completed_on": done, "check_level": "enhanced",
            "check_completed_on": done, "supervision_held_on": TODAY.isoformat(),
            "status": "active"}


@dataclass
class World:
    """A row's records, and what only some callers may see of them."""

    holder: str
    receiver: str
    subject_id: str = ""
    referral_id: str = ""
    match_id: str = ""
    mentor_id: str = ""
    concern_id: str = ""
    fresh_mentor: str = ""
    """A mentor registered for the row alone (mentor endpoints), deleted after it."""
    contact: str = field(default_factory=lambda: f"safe-{uuid.uuid4().hex}")
    """The safe contact's times: seen by the receiver's coordinators only."""
    concern: str = field(default_factory=lambda: f"concern-{uuid.uuid4().hex}")
    """The safeguarding concern's details: seen by those the queue shows it to only."""

    @property
    def ids(self) -> dict[str, str]:
        return {"subject_id": self.subject_id, "referral_id": self.referral_id,
                "match_id": self.match_id, "mentor_id": self.mentor_id,
                "concern_id": self.concern_id}


class _NoDeadLetters:
    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        raise AssertionError(f"a consent event was dead-lettered: {reason}: {message}")


class MentoringHarness:
    """Rows of the mentoring API (in-process), with a consent service served on a port."""

    def __init__(self, consent: ConsentAdapters, consent_url: str, mentoring: MentoringAdapters,
                 tokens: Tokens, check_status: Callable[[Any, httpx.Response], None]) -> None:
        self.check_status = check_status
        self.consent = consent
        self.consent_client = httpx.Client(base_url=consent_url, timeout=10)
        self.mentoring = mentoring
        self.client = TestClient(mentoring_api(mentoring))
        self.tokens = tokens
        self.numbers = _nhs_numbers(500_000_000)
        cascade = MentoringCascade(mentoring.cipher, mentoring.records, mentoring.rules)
        self.applier = EventApplier(
            "mentoring", "mentoring.consent", mentoring.database,
            HolderCascadeParticipant(cascade, mentoring.keys.evict, mentoring.cipher,
                                     mentoring.records).handlers(),
            _NoDeadLetters(), halt_on_error=True)
        self.applied_seq = 0
        self.erasures = 0
        self.matching: dict[str, str] = {}
        """Each partner's mentor for the rows' matches (they end with their row)."""
        self._headers: dict[tuple[str, str], dict[str, str]] = {}

    @classmethod
    @contextmanager
    def running(cls, settings: PlatformSettings, tokens: Tokens, var_dir: Path,
                check_status: Callable[[Any, httpx.Response], None]
                ) -> Iterator[MentoringHarness]:
        with consent_beside("mentoring", settings, var_dir) as (consent, consent_url, beside):
            mentoring = MentoringAdapters(beside)
            harness = cls(consent, consent_url, mentoring, tokens, check_status)
            try:
                yield harness
            finally:
                harness.consent_client.close()
                mentoring.database.dispose()

    # --- setting a row's world up ----------------------------------------------------------

    def _as(self, org: str, role: str | None = None) -> dict[str, str]:
        """A setup caller of ``org`` (its staff unless ``role``); tokens are reused."""
        role = role or REGISTRAR[self.tokens.kind(org)]
        if (org, role) not in self._headers:
            self._headers[org, role] = {
                "Authorization": f"Bearer {self.tokens.person(org, role)}"}
        return self._headers[org, role]

    @staticmethod
    def _ok(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
        assert response.status_code == status, f"setup: {what}: {response.text}"
        body: dict[str, Any] = response.json()
        return body

    def _consent(self, path: str, body: dict[str, Any], org: str, status: int = 201
                 ) -> dict[str, Any]:
        return self._ok(self.consent_client.post(path, json=body, headers=self._as(org)),
                        status, path)

    def _project(self) -> None:
        """Apply what consent published since last time to mentoring (its cascade)."""
        self.applied_seq = relay_consent_events(self.consent, self.applier,
                                                self.applied_seq)

    def _share(self, world: World) -> None:
        self._consent(f"/v1/subjects/{world.subject_id}/consents", {
            "purpose": "partner-sharing", "method": "verbal", "recorded_by": "matrix",
            "recipients": [world.receiver]}, world.holder)

    def _mentor(self, org: str) -> str:
        return str(self._ok(self.client.post("/v1/mentors", json=mentor_body(org),
                                             headers=self._as(org, "mentor-coordinator")),
                            201, "a mentor of the receiver")["id"])

    def referral_body(self, world: World, org: str, to_org: str) -> dict[str, Any]:
        return {"subject_id": world.subject_id, "referred_by_org": org, "to_org": to_org,
                "safe_contact": {"phone": PHONE, "times": world.contact,
                                 "may_leave_message": False}}

    def prepare(self, row: MatrixRow) -> World:
        """The row's world, through the APIs."""
        org, state = row.caller_org, row.relationship
        world = World(holder_of(org, state), receiver_of(org, state))
        if row.endpoint in MENTORS:
            if row.endpoint != "POST /v1/mentors":
                world.mentor_id = world.fresh_mentor = self._mentor(world.receiver)
            return world
        nhs_number = next(self.numbers)
        world.subject_id = str(self._consent("/v1/subjects", {"nhs_number": nhs_number},
                                             world.holder)["subject_id"])
        if state == "registered":
            self._consent("/v1/subjects", {"nhs_number": nhs_number}, org)
        self._consent(f"/v1/subjects/{world.subject_id}/consents", {
            "purpose": "peer-mentoring", "method": "verbal", "recorded_by": "matrix"},
            world.holder)
        if row.endpoint == REFER and state in ("own", "self-referred"):
            return world  # the row's request is the referral (own: sharing comes in run)
        if world.receiver != world.holder:
            self._share(world)
        if row.endpoint == REFER and state not in ("shared", "withdrawn"):
            return world  # none and registered: no referral is needed to be nothing to it
        world.referral_id = str(self._ok(self.client.post(
            "/v1/referrals", json=self.referral_body(world, world.holder, world.receiver),
            headers=self._as(world.holder)), 201, "the holder refers")["id"])
        if row.endpoint in MATCHED:
            coordinator = self._as(world.receiver, "mentor-coordinator")
            if world.receiver not in self.matching:  # one mentor per partner takes every match
                self.matching[world.receiver] = self._mentor(world.receiver)
            made = self._ok(self.client.post(f"/v1/referrals/{world.referral_id}/match",
                                             headers=coordinator), 200, "the match")
            assert made["status"] == "matched", f"setup: not matched: {made}"
            world.match_id = str(made["match_id"])
        if state == "withdrawn":
            self._consent(f"/v1/subjects/{world.subject_id}/withdrawals", {
                "purposes": ["partner-sharing"], "recipients": [org], "method": "verbal"},
                world.holder, 202)
            self._project()
        if row.endpoint in STEPS or row.endpoint == EXPORT:
            world.concern_id = str(self._ok(self.client.post("/v1/safeguarding-concerns", json={
                "subject_id": world.subject_id, "raised_on": TODAY.isoformat(),
                "details": world.concern}, headers=self._as(world.holder)), 201,
                "the holder raises a concern")["id"])
            for taken in STEPS.get(row.endpoint, ()):
                self._ok(self.client.post(
                    f"/v1/safeguarding-concerns/{world.concern_id}/{taken}",
                    json=None if taken == "acknowledge" else {"note": "matrix"},
                    headers=self._as("trust", "safeguarding-lead")), 200, f"the lead's {taken}")
        if row.endpoint == QUEUE:
            world.concern_id = str(self._ok(self.client.post("/v1/sessions", json={
                "match_id": world.match_id, "held_on": TODAY.isoformat(),
                "duration_minutes": 30, "mode": "phone", "attendance": "attended",
                "safeguarding_concern": True, "concern_details": world.concern},
                headers=self._as(world.receiver, "mentor-coordinator")), 201,
                "a concern in the match")["safeguarding_concern_id"])
        return world

    def erase(self, world: World) -> None:
        """Mentoring applies an erasure of the person: the concern is flagged for the DPO.

        The event is mentoring's input as the consent service would publish it (consent
        refuses the holder's erasure itself while another organisation, as at "registered",
        holds the person independently; who may erase is consent's table, not this one)."""
        self._project()
        erasure = CloudEvent.wrap(ErasureRequested(
            withdrawal_id=f"wd_{uuid.uuid4().hex}", purposes=("peer-mentoring",),
            method="verbal", org=world.holder), source="/peerlink/consent",
            subject=world.subject_id)
        self.applier.process(InboundRecord(events_topic("consent"), 1, self.erasures,
                                           world.subject_id.encode(), erasure.to_bytes()))
        self.erasures += 1

    # --- the row's request ---------------------------------------------------------------

    def body(self, row: MatrixRow, world: World) -> dict[str, Any] | None:
        org, state = row.caller_org, row.relationship
        if row.endpoint == REFER:
            to_org = world.receiver if state in ("own", "self-referred") else (
                "partner-a" if org == "trust" else org)
            return self.referral_body(world, org, to_org)
        if row.endpoint == RAISE:
            return {"subject_id": world.subject_id, "raised_on": TODAY.isoformat(),
                    "details": world.concern}
        if row.endpoint == SAFE_CONTACT:
            contact: dict[str, Any] = self.referral_body(world, org, world.receiver)[
                "safe_contact"]
            return contact
        return {
            "POST /v1/safeguarding-concerns/{concern_id}/action": {"note": "matrix action"},
            "POST /v1/safeguarding-concerns/{concern_id}/close": {"note": "matrix close"},
            "POST /v1/mentors": mentor_body(world.receiver),
            "POST /v1/mentors/{mentor_id}/supervision": {"held_on": TODAY.isoformat()},
            "POST /v1/mentors/{mentor_id}/status": {"status": "active"},
            "POST /v1/sessions": {"match_id": world.match_id, "held_on": TODAY.isoformat(),
                                  "duration_minutes": 45, "mode": "phone",
                                  "attendance": "attended"},
            "POST /v1/outcomes": {"match_id": world.match_id, "timepoint": "intake",
                                  "instrument": "SWEMWBS", "items": [3] * 7},
            "POST /v1/matches/{match_id}/end": {"planned": True},
            "POST /v1/adverse-events": {"match_id": world.match_id,
                                        "occurred_on": TODAY.isoformat(), "kind": "distress",
                                        "serious": False, "relatedness": "not-known",
                                        "details": "matrix"},
            "POST /v1/offers": {"org": org, "team": "matrix", "gender": "female",
                                "age_band": "25-34", "offered_on": TODAY.isoformat(),
                                "outcome": "undecided"},
        }.get(row.endpoint)

    def request(self, row: MatrixRow, ids: dict[str, str], body: dict[str, Any] | None,
                params: dict[str, str] | None = None) -> httpx.Response:
        response: httpx.Response = self.client.request(
            row.method, row.path.format(**ids), json=body, params=params,
            headers=self.tokens.headers(row.caller, row.caller_org))
        return response

    def run(self, row: MatrixRow) -> None:
        world = self.prepare(row)
        try:
            self.ask(row, world)
        finally:
            self.retire(world)

    def retire(self, world: World) -> None:
        """Take the row's referral out of every intake, end its match, take its concern off
        the open queue and delete its own mentor, so that what the next rows read (intakes,
        mentors, the queue, the mentors' room) stays as small as the first row's."""
        with self.mentoring.database.unit_of_work() as uow:
            if world.referral_id:
                uow.session.execute(update(referrals).where(
                    referrals.c.referral_id == world.referral_id).values(status="cancelled"))
                uow.session.execute(update(matches).where(
                    matches.c.referral_id == world.referral_id).values(status="ended"))
            if world.fresh_mentor:
                uow.session.execute(delete(mentors).where(
                    mentors.c.mentor_id == world.fresh_mentor))
            if world.concern_id:
                uow.session.execute(update(safeguarding_concerns).where(
                    safeguarding_concerns.c.concern_id == world.concern_id
                ).values(status="closed"))

    def ask(self, row: MatrixRow, world: World) -> None:
        body = self.body(row, world)
        if row.endpoint == REFER and row.relationship == "own":
            if row.expected == 201:  # to another organisation, only once sharing names it
                refused = self.request(row, world.ids, body)
                assert (refused.status_code, refused.json()["error"]) == (
                    409, "sharing-required"), f"{row.where}: {row.id}: {refused.text[:300]}"
            self._share(world)
        if row.endpoint == QUEUE and row.expected == 200:
            self.check_queue(row, world, self.request(row, world.ids, body), flagged=False)
        if row.endpoint == QUEUE:
            self.erase(world)
        response = self.request(row, world.ids, body)
        if row.endpoint == REFER and response.status_code == 201:
            world.referral_id = str(response.json()["id"])  # retired with the row
        if row.endpoint == "POST /v1/mentors" and response.status_code == 201:
            world.fresh_mentor = str(response.json()["id"])
        if row.endpoint == RAISE and response.status_code == 201:
            world.concern_id = str(response.json()["id"])  # taken off the queue with the row
        self.check_status(row, response)
        self.check_shown(row, world, response)
        if row.endpoint == QUEUE and response.is_success:
            self.check_queue(row, world, response, flagged=True)
            self.check_queue(row, world, self.request(
                row, world.ids, body, {"flagged_for_dpo": "false"}), flagged=True,
                unflagged_only=True)
        if row.expected == 404 or (row.endpoint in (REFER, RAISE)
                                   and row.relationship == "none"):
            self.check_as_unknown(row, world, body, response)

    # --- what each answer may show -------------------------------------------------------

    def check_shown(self, row: MatrixRow, world: World, response: httpx.Response) -> None:
        where = f"{row.where}: {row.id}"
        text = response.text
        contact = response.is_success and (
            (row.endpoint == READ and row.caller == "mentor-coordinator"
             and row.relationship in ("self-referred", "shared"))
            or (row.endpoint == EXPORT and row.relationship in ("own", "self-referred",
                                                                 "shared"))
            or (row.endpoint == QUEUE and row.caller == "safeguarding-lead"))
        assert (world.contact in text) is contact, \
            f"{where}: the safe contact is {'not ' * contact}shown: {text[:300]}"
        if contact:
            shown = response.json()
            if row.endpoint == EXPORT:
                [shown] = shown["referrals"]
            if row.endpoint == QUEUE:  # the concern carries the latest known safe contact
                [shown] = [c for c in shown["concerns"] if c["id"] == world.concern_id]
            assert shown["safe_contact"]["phone"] == PHONE, f"{where}: {text[:300]}"
        if row.relationship in ("none", "registered") and row.endpoint not in (
                QUEUE, RAISE, *STEPS):  # the queue's concerns are the lead's (or just raised)
            leaked = [name for name, value in world.ids.items() if value and value in text]
            assert not leaked, f"{where}: shows the {leaked} of a referral or mentor it has " \
                               f"nothing to do with: {text[:300]}"
        exported = (row.endpoint == EXPORT and response.is_success
                    and row.caller_org == world.holder)  # the concerns it raised
        if row.endpoint != QUEUE and not exported:
            assert world.concern not in text, f"{where}: shows the concern: {text[:300]}"
        if not response.is_success:
            return
        if row.endpoint == INTAKE:
            listed = world.referral_id in {r["id"] for r in response.json()["referrals"]}
            assert listed is (row.relationship in ("self-referred", "shared")), \
                f"{where}: the intake {'lists' if listed else 'lacks'} the referral: {text[:300]}"
        if row.endpoint == "GET /v1/mentors":
            listed = world.mentor_id in {m["id"] for m in response.json()["mentors"]}
            assert listed is (row.relationship in RECEIVES), \
                f"{where}: the mentors list {'shows' if listed else 'lacks'} the mentor"

    def check_queue(self, row: MatrixRow, world: World, response: httpx.Response, *,
                    flagged: bool, unflagged_only: bool = False) -> None:
        """The concern is shown to the Trust's lead (not when asking for unflagged only), to a
        DPO once flagged (a partner's DPO: in its own organisation's matches only)."""
        assert response.status_code == 200, f"{row.where}: {row.id}: {response.text[:300]}"
        if row.caller == "safeguarding-lead":
            expected = not (flagged and unflagged_only)
        else:
            expected = flagged and (row.caller_org in ("trust", world.receiver))
        shown = [c for c in response.json()["concerns"] if c["id"] == world.concern_id]
        assert bool(shown) is expected, \
            f"{row.where}: {row.id} (flagged={flagged}, unflagged only={unflagged_only}): " \
            f"the concern is {'' if shown else 'not '}shown: {response.text[:300]}"
        assert all(c["concern_details"] == world.concern for c in shown), row.where
        assert (world.concern in response.text) is expected, row.where

    def check_as_unknown(self, row: MatrixRow, world: World, body: dict[str, Any] | None,
                         response: httpx.Response) -> None:
        """A record of no concern to the caller is answered exactly like one that does not
        exist."""
        if response.status_code != row.expected:
            return  # the status check already reported it
        sent = dict(body) if body else None
        if sent is not None:
            for key in ("match_id", "subject_id"):
                if key in sent:
                    sent[key] = UNKNOWN[key]
        unknown = self.request(row, UNKNOWN, sent)
        assert (unknown.status_code, unknown.json()) == (response.status_code,
                                                          response.json()), \
            f"{row.where}: {row.id} answers unlike for an unknown id: {response.text[:300]} " \
            f"vs {unknown.text[:300]}"

"""Issue 10: the adversarial review's seven cases, each replayed as the review did it, in one
place, against the real APIs; each must now reach nothing.

Services run in process on their own databases (SQLite, and PostgreSQL where a database or an
invariant matters: the ``database_url`` fixture), consent served on a loopback port and the
development issuer served so that screening and mentoring fetch their own tokens. What consent
writes to its outbox reaches screening's projection through the screening worker's own
handlers (``tests.support.screening.consent_applier``), without a broker. Each case also has a
thorough test elsewhere, named in its docstring; the helpers come from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from ops.cli import main as peerlink
from services.consent.bootstrap import ConsentAdapters, ConsentAuditSettings, audit_key
from services.consent.entrypoints.api import build_api as consent_api
from services.consent.service_layer import consents
from services.consent.service_layer.audit import HeadPublisher
from services.mentoring.adapters.tables import safeguarding_concerns
from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.api import build_api as mentoring_api
from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.access import SESSION_COOKIE
from services.screening.adapters.tables import marac_referrals, risk_assessments, screenings
from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from shared.auth import ON_BEHALF_OF, TokenIssuer
from shared.consent_client import ConsentClient
from shared.crypto import CachingKeyStore, KeyWrapper, PersonalDataCipher, RecordCipher
from shared.db import utcnow
from shared.events.cascade import WithdrawalApplied
from shared.events.envelope import CloudEvent
from shared.issuer import create_app as issuer_app
from shared.issuer import development_issuer
from shared.kafka.consumer import InboundRecord
from shared.kafka.producer import KafkaEventProducer
from shared.kafka.topics import events_topic
from shared.service_tokens import ClientCredentials
from shared.settings import PlatformSettings, platform_settings
from tests.integration.test_consent_audit import (
    Audited,
    _keyed,
    _unkeyed,
    new_heads_topic,
    rewrite_chain,
    some_activity,
)
from tests.integration.test_mentoring_api import PHONE, Mentoring, session_body
from tests.integration.test_reporting_sessions import (  # noqa: F401 - the fixture
    FIGURES,
    Reporting,
    is_jwt,
    reporting,
)
from tests.integration.test_screening_partner_access import (
    ANSWERS,
    ASKED,
    REASONS,
    World,
    _sees_nothing,
    _sees_the_trusts_records,
)
from tests.integration.test_service_identities import (  # noqa: F401 - the fixture
    EXPECTED_HOLDINGS,
    Secrets,
    composed,
    reachable,
)
from tests.support.http import serving
from tests.support.screening import consent_applier, policy_refused_bearer
from tests.support.services import bearer, issuing, service_bearer, settings_for

NHS_NUMBER = ASKED["nhs_number"]
UNKNOWN_NHS_NUMBER = "401 023 2137"
CONCERN = "Kestrel-3390 her cousin at partner-b asked where she lives"
HUNDRED_YEARS = 100 * 365 * 24 * 3600


# --- the programme: consent served, screening and mentoring in process ---------------------

@dataclass
class Programme:
    """The consent, screening and mentoring services of one test, and how to call them."""

    consent: ConsentAdapters
    consent_http: httpx.Client
    screening: ScreeningAdapters
    screening_http: TestClient
    mentoring: Mentoring

    @property
    def settings(self) -> PlatformSettings:
        return self.screening.settings

    def as_(self, org: str, *roles: str, subject: str | None = None) -> dict[str, str]:
        if subject is None:
            return bearer(self.settings, org, *roles)
        token = development_issuer(self.settings).mint(org, list(roles), subject=subject)
        return {"Authorization": f"Bearer {token}"}

    def screen(self, headers: dict[str, str] | None = None, **changes: Any) -> dict[str, Any]:
        """The Trust's screening (notes marker) and DASH assessment (reasons marker) of the
        person; returns both answers."""
        headers = headers or self.as_("trust", "clinician")
        recorded = self.screening_http.post("/v1/screenings", json={**ASKED, **changes},
                                            headers=headers)
        assert recorded.status_code == 201, recorded.text
        assessed = self.screening_http.post("/v1/risk-assessments", headers=headers, json={
            "subject_id": recorded.json()["subject_id"], "answers": ANSWERS,
            "incidents_last_12_months": 1, "assessed_on": "2026-11-20",
            "professional_judgement": {"referral": True, "reasons": REASONS}})
        assert assessed.status_code == 201, assessed.text
        return {"screening": recorded.json(), "risk": assessed.json()}

    def world(self, subject_id: str, screening_id: str) -> World:
        """tests/integration/test_screening_partner_access.py's reader of the Trust's records."""
        return World(self.screening, self.screening_http, str(self.consent_http.base_url),
                     subject_id, screening_id)

    def consent_call(self, path: str, body: dict[str, Any], org: str, role: str
                     ) -> httpx.Response:
        response = self.consent_http.post(path, json=body, headers=self.as_(org, role))
        self.project()
        return response

    def register(self, org: str, nhs_number: str = NHS_NUMBER) -> httpx.Response:
        role = "clinician" if org == "trust" else "partner-staff"
        return self.consent_call("/v1/subjects", {"nhs_number": nhs_number}, org, role)

    def grant(self, subject_id: str, org: str, purpose: str, *recipients: str
              ) -> httpx.Response:
        body: dict[str, Any] = {"purpose": purpose, "method": "verbal",
                                "recorded_by": "Advocate Reyes"}
        if recipients:
            body["recipients"] = list(recipients)
        role = "clinician" if org == "trust" else "partner-staff"
        return self.consent_call(f"/v1/subjects/{subject_id}/consents", body, org, role)

    def withdraw(self, subject_id: str, org: str, role: str, **body: Any) -> httpx.Response:
        return self.consent_call(f"/v1/subjects/{subject_id}/withdrawals",
                                 {"method": "verbal", **body}, org, role)

    def consents_of(self, subject_id: str, org: str, role: str) -> dict[str, Any]:
        response = self.consent_http.get(f"/v1/subjects/{subject_id}/consents",
                                         headers=self.as_(org, role))
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    def audit(self, org: str, subject_id: str | None = None) -> list[dict[str, Any]]:
        """The audit trail as ``org``'s DPO reads it."""
        response = self.consent_http.get(
            "/v1/audit", params={"subject_id": subject_id} if subject_id else {},
            headers=self.as_(org, "dpo"))
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    def project(self) -> None:
        """consent.events from consent's outbox, applied by the screening worker's handlers
        (the inbox makes a redelivered event a no-op)."""
        outbox = self.consent.database.metadata.tables["outbox"]
        topic = events_topic("consent")
        with self.consent.database.read() as session:
            rows = session.execute(select(outbox).where(outbox.c.topic == topic)
                                   .order_by(outbox.c.seq)).all()
        applier = consent_applier(self.screening.database)
        for row in rows:
            applier.process(InboundRecord(topic, 0, row.seq, (row.aggregate_id or "").encode(),
                                          bytes(row.payload)))

    def data_key_status(self, subject_id: str, headers: dict[str, str] | None = None) -> int:
        return self.consent_http.get(
            f"/internal/v1/data-keys/{subject_id}",
            headers=headers or service_bearer(self.settings, "screening")).status_code


@pytest.fixture
def open_programme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> Iterator[Callable[..., Programme]]:
    """Opens the programme with the given services' database URLs (SQLite files otherwise)
    and settings ``overrides``."""
    with ExitStack() as stack:
        def open_(urls: dict[str, str] | None = None, **overrides: Any) -> Programme:
            databases = {s: f"sqlite:///{tmp_path / f'{s}.db'}"
                         for s in ("consent", "screening", "mentoring")} | (urls or {})
            settings = stack.enter_context(issuing(settings_for(
                monkeypatch, tmp_path, databases, **overrides)))
            consent = ConsentAdapters(settings)
            consent_url = stack.enter_context(serving(consent_api(consent)))
            consent_http = stack.enter_context(httpx.Client(base_url=consent_url, timeout=10))
            served = settings.model_copy(update={"consent_url": consent_url})
            screening, mentoring = ScreeningAdapters(served), MentoringAdapters(served)
            for service in (consent, screening, mentoring):
                stack.callback(service.database.dispose)  # PostgreSQL's connections are shared
            return Programme(consent, consent_http, screening,
                             TestClient(screening_api(screening)),
                             Mentoring(mentoring, TestClient(mentoring_api(mentoring)),
                                       consent_http))

        yield open_


def another_database(request: pytest.FixtureRequest, database_url: str, tmp_path: Path,
                     name: str) -> str:
    """A second empty database of ``database_url``'s backend."""
    if make_url(database_url).get_backend_name() == "postgresql":
        factory: Callable[[], str] = request.getfixturevalue("postgres_database")
        return factory()
    return f"sqlite:///{tmp_path / f'{name}-2.db'}"


def marac_ids(programme: Programme, headers: dict[str, str]) -> list[str]:
    response = programme.screening_http.get("/v1/marac-referrals", headers=headers)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["referrals"]]


def count(database: Any, table: Any) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


# --- case 1 --------------------------------------------------------------------------------

def test_case_1_a_partner_knowing_an_nhs_number_cannot_take_over_the_trusts_records(
        request: pytest.FixtureRequest, database_url: str, tmp_path: Path,
        open_programme: Callable[..., Programme]) -> None:
    """Finding 1: "any partner staff member who knows an NHS number can take over that
    person's records" (registration answered 200 "already registered", then partner-b read
    the Trust's consents, granted partner-sharing itself, read HARK and DASH answers,
    judgement reasons and notes, and erased the Trust's records). Thorough tests:
    test_consent_subjects.py, test_consent_api.py, test_screening_sharing_broker.py."""
    programme = open_programme({"consent": database_url, "screening": another_database(
        request, database_url, tmp_path, "screening")})
    trust = programme.screen()
    subject_id, screening_id = trust["screening"]["subject_id"], trust["screening"]["id"]
    assert programme.grant(subject_id, "trust", "peer-mentoring").status_code == 201
    trust_consents = programme.consents_of(subject_id, "trust", "clinician")
    programme.register("partner-a")  # partner-a has a relationship too

    # partner-b registers the Trust's patient: exactly what an unknown person gets
    known = programme.register("partner-b")
    unknown = programme.register("partner-b", UNKNOWN_NHS_NUMBER)
    assert (known.status_code, unknown.status_code) == (201, 201)
    assert set(known.json()) == set(unknown.json()) == {"subject_id"}
    assert known.headers.keys() == unknown.headers.keys()
    assert "registered" not in known.text

    # partner-b's view of the consents shows nothing of the Trust's
    seen = programme.consents_of(subject_id, "partner-b", "partner-staff")
    assert seen["history"] == [] and seen["sharing_recipients"] == []
    assert set(seen["purposes"].values()) == {"not-recorded"}
    assert "trust" not in str(seen)

    # partner-b grants partner-sharing: its own consent, opening none of the Trust's records
    granted = programme.grant(subject_id, "partner-b", "partner-sharing", "partner-a")
    assert granted.status_code == 201, granted.text
    assert granted.json()["org"] == "partner-b"
    assert programme.consents_of(subject_id, "trust", "clinician") == trust_consents
    world = programme.world(subject_id, screening_id)
    for org in ("partner-b", "partner-a"):
        _sees_nothing(world, org)  # no HARK, DASH, reasons or notes; "Wombat" is the marker
        assert "humiliated" not in world.read_results(org, "partner-staff").text

    # partner-b asks for erasure of the Trust's patient: filed for partner-b's DPO, answered
    # as for anyone (saying nothing of the Trust), and nothing of the Trust's changes
    erased = programme.withdraw(subject_id, "partner-b", "partner-staff", purposes=["all"],
                                erasure=True)
    assert erased.status_code == 202, erased.text
    assert erased.json()["erasure_request_status"] == "awaiting-dpo-decision"
    assert "trust" not in erased.text
    assert programme.consents_of(subject_id, "trust", "clinician") == trust_consents
    assert programme.data_key_status(subject_id) == 200
    _sees_the_trusts_records(world, "trust", "clinician")


# --- case 2 --------------------------------------------------------------------------------

def test_case_2_partner_sharing_opens_the_trusts_records_to_the_named_partner_only(
        database_url: str, open_programme: Callable[..., Programme]) -> None:
    """Finding 2: "partner-sharing is not tied to a recipient: once granted, staff of every
    partner read the person's results". Thorough tests: test_screening_partner_access.py,
    test_screening_sharing_broker.py (over the real broker)."""
    programme = open_programme({"screening": database_url})
    trust = programme.screen()
    subject_id, screening_id = trust["screening"]["subject_id"], trust["screening"]["id"]
    for org in ("partner-a", "partner-b"):  # both have a relationship with the person
        assert programme.register(org).json()["subject_id"] == subject_id
    world = programme.world(subject_id, screening_id)

    assert programme.grant(subject_id, "trust", "partner-sharing", "partner-a"
                           ).status_code == 201
    _sees_the_trusts_records(world, "partner-a")
    _sees_nothing(world, "partner-b")

    # shared with both, then withdrawn for partner-a only: partner-a alone stops
    assert programme.grant(subject_id, "trust", "partner-sharing", "partner-b"
                           ).status_code == 201
    _sees_the_trusts_records(world, "partner-b")
    withdrawn = programme.withdraw(subject_id, "trust", "clinician",
                                   purposes=["partner-sharing"], recipients=["partner-a"])
    assert withdrawn.status_code == 202, withdrawn.text
    _sees_nothing(world, "partner-a")
    _sees_the_trusts_records(world, "partner-b")


# --- case 3 --------------------------------------------------------------------------------

def test_case_3_roles_act_only_for_their_own_organisation(
        open_programme: Callable[..., Programme]) -> None:
    """Finding 3: "roles are not bound to organisations": a partner-b dpo token read the whole
    audit trail, every MARAC referral and the decrypted safeguarding concerns and erased a
    Trust patient; a partner-b clinician token recorded screenings and raised a MARAC referral
    on the Trust's queue; every Trust clinician saw every MARAC referral. Thorough tests:
    test_screening_risk_api.py, test_consent_api.py, test_mentoring_api.py,
    test_access_matrix.py."""
    programme = open_programme()
    ada = programme.as_("trust", "clinician", subject="clinician-ada")
    bo = programme.as_("trust", "clinician", subject="clinician-bo")
    raised_by_ada = programme.screen(ada)["risk"]
    raised_by_bo = programme.screen(bo, nhs_number=UNKNOWN_NHS_NUMBER)["risk"]
    subject_id = raised_by_ada["subject_id"]
    referrals = {raised_by_ada["marac_referral_id"], raised_by_bo["marac_referral_id"]}
    assert None not in referrals

    # a partner-b clinician token: refused, naming the role, and nothing recorded
    forged = policy_refused_bearer(programme.settings, "partner-b", "clinician")
    before = [count(programme.screening.database, t)
              for t in (screenings, risk_assessments, marac_referrals)]
    for path, body in (("/v1/screenings", {**ASKED, "org": "partner-b"}),
                       ("/v1/risk-assessments", {"subject_id": subject_id, "answers": ANSWERS,
                                                 "incidents_last_12_months": 3,
                                                 "assessed_on": "2026-11-21"})):
        refused = programme.screening_http.post(path, json=body, headers=forged)
        assert refused.status_code == 401, refused.text
        assert "clinician" in refused.json()["message"]
    assert [count(programme.screening.database, t)
            for t in (screenings, risk_assessments, marac_referrals)] == before

    # a Trust clinician sees the referrals they raised; the safeguarding lead sees all
    assert marac_ids(programme, ada) == [raised_by_ada["marac_referral_id"]]
    assert marac_ids(programme, bo) == [raised_by_bo["marac_referral_id"]]
    assert set(marac_ids(programme, programme.as_("trust", "safeguarding-lead"))) == referrals

    # a Trust concern, raised in partner-a's match of a Trust referral; flagged for the DPOs
    mentoring = programme.mentoring
    mentoring.mentor("partner-a")
    _, _, match_id = mentoring.matched_person()
    logged = mentoring.client.post("/v1/sessions", json=session_body(
        match_id, safeguarding_concern=True, concern_details=CONCERN),
        headers=mentoring.coordinator)
    assert logged.status_code == 201, logged.text
    for database, table in ((programme.screening.database, marac_referrals),
                            (mentoring.service.database, safeguarding_concerns)):
        with database.unit_of_work() as uow:
            uow.session.execute(update(table).values(flagged_for_dpo_at=utcnow()))

    # the partner-b DPO: only partner-b's own audit entries, none of the Trust's referrals
    # or concerns, and no erasure of the Trust's patient
    b_dpo = programme.as_("partner-b", "dpo")
    assert {e["actor_org"] for e in programme.audit("trust")} == {"trust"}  # there are some
    b_entries = programme.audit("partner-b")
    assert b_entries and {e["actor_org"] for e in b_entries} == {"partner-b"}
    assert marac_ids(programme, b_dpo) == []
    assert set(marac_ids(programme, programme.as_("trust", "dpo"))) == referrals
    concerns = mentoring.client.get("/v1/safeguarding-concerns", headers=b_dpo)
    assert concerns.status_code == 200, concerns.text
    assert concerns.json()["concerns"] == [] and "Kestrel" not in concerns.text
    trust_dpo = mentoring.client.get("/v1/safeguarding-concerns",
                                     headers=programme.as_("trust", "dpo"))
    assert [c["concern_details"] for c in trust_dpo.json()["concerns"]] == [CONCERN]
    assert programme.register("partner-b").json()["subject_id"] == subject_id  # it knows them
    trust_consents = programme.consents_of(subject_id, "trust", "clinician")
    erased = programme.withdraw(subject_id, "partner-b", "dpo", purposes=["all"],
                                erasure=True)
    assert erased.status_code == 202, erased.text
    assert erased.json()["erasure_request_status"] == "awaiting-dpo-decision"
    assert programme.consents_of(subject_id, "trust", "clinician") == trust_consents
    assert programme.data_key_status(subject_id) == 200


# --- case 4 --------------------------------------------------------------------------------

def test_case_4_tokens_come_from_the_issuer_alone_and_prove_who_acts(
        composed: tuple[PlatformSettings, Secrets],  # noqa: F811 - the imported fixture
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 4: "one signing secret everywhere; a service token fetches any person's data
    key and writes audit entries naming any actor; peerlink token mints with
    PEERLINK_ENV=production; a 100-year token is accepted; acknowledgements are not checked
    against their sender". Thorough tests: test_service_identities.py, test_tokens.py,
    tests/unit/test_cli.py, test_consent_api.py."""
    settings, secrets = composed

    # every service's composition: only the issuer holds the key; reporting holds nothing
    consent = ConsentAdapters(settings)
    composition = {"consent": consent, "screening": ScreeningAdapters(settings),
                   "mentoring": MentoringAdapters(settings),
                   "reporting": ReportingAdapters(settings)}
    for service, root in composition.items():
        assert secrets.held_by(root) == EXPECTED_HOLDINGS[service], service
    assert "signing-key" in secrets.held_by(issuer_app(settings))  # the search finds it
    material = (ConsentClient, ClientCredentials, TokenIssuer, PersonalDataCipher,
                CachingKeyStore, KeyWrapper, RecordCipher)
    assert not [type(o).__name__ for o in reachable(composition["reporting"])
                if isinstance(o, material)]

    client = TestClient(consent_api(consent))
    clinician = bearer(settings, "trust", "clinician")
    subject_id = client.post("/v1/subjects", json={"nhs_number": NHS_NUMBER},
                             headers=clinician).json()["subject_id"]
    key_url = f"/internal/v1/data-keys/{subject_id}"

    # a person's token, or reporting's own, fetches no data key
    for headers in (clinician, bearer(settings, "partner-b", "dpo"),
                    service_bearer(settings, "reporting")):
        refused = client.get(key_url, headers=headers)
        assert refused.status_code in (401, 403), refused.text
        assert "key" not in refused.json()
    assert client.get(key_url, headers=service_bearer(settings, "screening")).status_code == 200

    # the audit entry names the verified person, never a body field
    via = {**service_bearer(settings, "screening"),
           ON_BEHALF_OF: development_issuer(settings).mint("partner-a", ["partner-staff"],
                                                           subject="staff-42")}
    claimed = client.post("/internal/v1/audit", headers=via, json={
        "action": "screening-results-read", "subject_id": subject_id,
        "actor": "dr-someone-else", "actor_org": "trust"})
    assert claimed.status_code == 422, claimed.text
    recorded = client.post("/internal/v1/audit", headers=via, json={
        "action": "screening-results-read", "subject_id": subject_id})
    assert recorded.status_code == 201, recorded.text
    entries = client.get("/v1/audit", params={"subject_id": subject_id},
                         headers=bearer(settings, "partner-a", "dpo")).json()["entries"]
    assert [(e["actor"], e["actor_org"]) for e in entries
            if e["action"] == "screening-results-read"] == [
        ("staff-42 (via svc-screening)", "partner-a")]
    assert "dr-someone-else" not in str(entries)

    # a 100-year token, a person's or a service's, is refused
    issuer = development_issuer(settings)
    ancient = {"Authorization": "Bearer " + issuer.mint("trust", ["clinician"],
                                                        lifetime_seconds=HUNDRED_YEARS)}
    refused = client.get(f"/v1/subjects/{subject_id}/consents", headers=ancient)
    assert refused.status_code == 401 and "lifetime" in refused.json()["message"]
    ancient_service = {"Authorization": "Bearer " + issuer.mint_service(
        "screening", lifetime_seconds=HUNDRED_YEARS)}
    assert client.get(key_url, headers=ancient_service).status_code == 401

    # an acknowledgement from another source than the service it names is refused
    withdrawal = client.post(f"/v1/subjects/{subject_id}/withdrawals", headers=clinician,
                             json={"purposes": ["peer-mentoring"], "method": "verbal"})
    withdrawal_id = withdrawal.json()["withdrawal_id"]
    ack = WithdrawalApplied(service="mentoring", withdrawal_id=withdrawal_id,
                            purposes=("peer-mentoring",), applied_at=utcnow())
    with (pytest.raises(consents.ForeignAcknowledgement),
          consent.database.unit_of_work() as uow):
        consents.acknowledge(uow, CloudEvent.wrap(ack, source="/peerlink/reporting",
                                                  subject=subject_id), ack)
    view = client.get(f"/v1/withdrawals/{withdrawal_id}", headers=clinician).json()
    assert (view["status"], view["services"]["mentoring"]["status"]) == ("pending", "pending")
    consent.database.dispose()

    # peerlink token with PEERLINK_ENV=production mints nothing
    monkeypatch.setenv("PEERLINK_VAR_DIR", str(settings.var_dir / "production"))
    monkeypatch.setenv("PEERLINK_ENV", "production")
    platform_settings.cache_clear()
    try:
        code = peerlink(["token", "--org", "trust", "--role", "dpo"])
    finally:
        platform_settings.cache_clear()
    printed = capsys.readouterr()
    assert code != 0
    assert printed.out == "" and "PEERLINK_ENV=production" in printed.err
    assert not (settings.var_dir / "production" / "keys").exists()


# --- case 5 --------------------------------------------------------------------------------

@pytest.mark.kafka
def test_case_5_reads_are_audited_as_the_person_and_a_rewritten_chain_does_not_verify(
        database_url: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
        open_programme: Callable[..., Programme]) -> None:
    """Finding 5: "mentoring writes no audit entries; NHS-number look-ups through screening
    are recorded as the screening service, not the person; a DBA dropped the triggers,
    deleted entries and recomputed the SHA-256 chain, and verify said valid". Thorough tests:
    test_mentoring_api.py, test_service_identities.py, test_consent_audit.py."""
    monkeypatch.setenv("PEERLINK_CONSENT_AUDIT_HEADS_TOPIC", new_heads_topic(kafka_bootstrap))
    programme = open_programme({"consent": database_url}, kafka_bootstrap=kafka_bootstrap)

    # a screening by NHS number: the look-up is the clinician's, via screening
    nurse = programme.as_("trust", "clinician", subject="nurse-okafor")
    subject_id = programme.screen(nurse)["screening"]["subject_id"]
    [registered] = [e for e in programme.audit("trust", subject_id)
                    if e["action"] == "subject-registered"]
    assert (registered["actor"], registered["actor_org"]) == (
        "nurse-okafor (via svc-screening)", "trust")

    # the receiving coordinator reads a referral's safe contact: audited as them
    mentoring = programme.mentoring
    referred = mentoring.person()
    referral_id = mentoring.refer(referred)
    coordinator = programme.as_("partner-a", "mentor-coordinator", subject="coordinator-lee")
    assert mentoring.referral(referral_id, coordinator)["safe_contact"]["phone"] == PHONE
    assert [(e["actor"], e["actor_org"]) for e in programme.audit("partner-a", referred)
            if e["action"] == "mentoring-safe-contact-read"] == [
        ("coordinator-lee (via svc-mentoring)", "partner-a")]

    # the DBA: triggers dropped, entries deleted, the chain recomputed
    consent = programme.consent
    producer = KafkaEventProducer(kafka_bootstrap, "test-issue10-heads")
    try:
        audited = Audited(consent, TestClient(consent_api(consent)),
                          make_url(database_url).get_backend_name(), producer,
                          HeadPublisher(consent.database, consent.trail,
                                        lambda head: consent.heads.publish(producer, head)))
        some_activity(audited)
        audited.append(3)
        pinned = audited.publish_head()
        audited.append(5)
        assert audited.verify()["valid"] is True
        middle = range(pinned.seq - 4, pinned.seq - 1)

        rewrite_chain(audited, middle, _unkeyed)  # plain SHA-256, as the review did
        check = audited.verify()
        assert (check["valid"], check["first_broken_seq"]) == (False, 1), check
        with consent.database.read() as session:  # the keyed chain alone, without the heads
            alone = consent.trail.verify(session)
        assert (alone.valid, alone.first_broken_seq) == (False, 1)
        assert "unkeyed SHA-256" in str(alone.problem)

        # with the stolen audit key the chain recomputes, but not to the published head
        again = TriggersGone(consent, audited.client, audited.backend, producer,
                             audited.publisher)
        rewrite_chain(again, range(0), _keyed, audit_key(consent.settings,
                                                         ConsentAuditSettings()))
        with consent.database.read() as session:
            assert consent.trail.verify(session).valid
        check = audited.verify()
        assert check["valid"] is False, check
        assert check["heads_checked"] == 1
        assert check["first_broken_seq"] is not None and check["problem"]
    finally:
        producer.close()


class TriggersGone(Audited):
    """The consent service after the DBA dropped the append-only triggers."""

    def drop_append_only_triggers(self) -> None:
        """Dropped already."""


# --- case 6 --------------------------------------------------------------------------------

def test_case_6_the_dashboard_cookie_is_opaque_and_dies_at_sign_out(
        reporting: Reporting) -> None:  # noqa: F811 - the imported fixture
    """Finding 6: "the dashboard cookie is the raw bearer token, and signing out does not
    invalidate it". Thorough tests: test_reporting_sessions.py."""
    token = reporting.token("ops-viewer", subject="viewer-6")
    signed_in = reporting.sign_in(token)
    assert signed_in.status_code == 303, signed_in.text
    cookie = signed_in.cookies[SESSION_COOKIE]
    assert not is_jwt(cookie) and token not in cookie and cookie not in token
    for path in FIGURES:
        assert reporting.get(path, cookie).status_code == 200, path

    signed_out = httpx.post(f"{reporting.url}/logout", cookies={SESSION_COOKIE: cookie},
                            timeout=10)
    assert signed_out.status_code == 303

    for path in (*FIGURES, "/v1/releases/stream"):  # the copied cookie, replayed
        replayed = reporting.get(path, cookie)
        assert replayed.status_code == 401, path
        assert cookie not in replayed.text
    page = reporting.get("/dashboard", cookie)
    assert (page.status_code, page.headers["location"]) == (303, "/login")
    assert reporting.get("/v1/prevalence", token).status_code == 401  # the token is no cookie


# --- case 7 --------------------------------------------------------------------------------

def test_case_7_a_referral_goes_to_one_partner_who_alone_sees_and_matches_it(
        database_url: str, open_programme: Callable[..., Programme]) -> None:
    """Finding 7: "a referral has no receiving organisation: the DVA partner's coordinator
    cannot see a referral sent to them until someone matches it; the referrer matches across
    every partner's mentors". Thorough tests: test_mentoring_api.py,
    test_mentoring_access_matrix.py."""
    mentoring = open_programme({"mentoring": database_url}).mentoring
    busy_a = mentoring.mentor("partner-a", capacity=3)
    mentoring.matched_person(busy_a)  # partner-a's mentor already has a mentee
    idle_b = mentoring.mentor("partner-b", display_name="Bea", capacity=3)  # a better fit
    referral_id = mentoring.refer(mentoring.person(sharing_with=("partner-a",)),
                                  to_org="partner-a")
    b_coordinator = mentoring.as_("partner-b", "mentor-coordinator")
    nowhere = mentoring.client.get("/v1/referrals/ref_" + "0" * 32, headers=b_coordinator)

    # at once in partner-a's intake, safe contact to its coordinator
    intake = mentoring.client.get("/v1/referrals", headers=mentoring.coordinator)
    assert intake.status_code == 200, intake.text
    assert [r["id"] for r in intake.json()["referrals"]] == [referral_id]
    assert mentoring.referral(referral_id, mentoring.coordinator)["safe_contact"]["phone"] \
        == PHONE

    # partner-b's coordinator: told nothing, cannot match
    for response in (mentoring.client.get(f"/v1/referrals/{referral_id}",
                                          headers=b_coordinator),
                     mentoring.client.post(f"/v1/referrals/{referral_id}/match",
                                           headers=b_coordinator)):
        assert (response.status_code, response.json()) == (404, nowhere.json())
        assert PHONE not in response.text
    assert mentoring.client.get("/v1/referrals", headers=b_coordinator
                                ).json()["referrals"] == []

    # the referrer neither matches nor sees the safe contact
    assert mentoring.client.post(f"/v1/referrals/{referral_id}/match",
                                 headers=mentoring.clinician).status_code == 403
    referrer_view = mentoring.referral(referral_id, mentoring.clinician)
    assert referrer_view["status"] == "referred"
    assert referrer_view["safe_contact"] is None and PHONE not in str(referrer_view)

    # partner-a's coordinator matches with partner-a's mentor, not partner-b's idle one
    matched = mentoring.match(referral_id)
    assert (matched["status"], matched["mentor_id"]) == ("matched", busy_a)
    assert idle_b != busy_a
    after = mentoring.referral(referral_id, mentoring.clinician)
    assert (after["status"], after["match_id"], after["mentor_id"], after["safe_contact"]) \
        == ("matched", None, None, None), "the referrer sees the status, not whom they meet"

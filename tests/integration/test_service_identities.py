"""Service identities: which process holds which secret, and who consent's internal endpoints
admit. Every service's API and worker is composed here (their ``bootstrap``) in a private var/
folder, and everything reachable from each is searched for the issuer's signing key and for
client credentials."""

from __future__ import annotations

import contextlib
import functools
import importlib
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

import shared.runtime as runtime_module
from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.callers import SERVICE_ACCESS
from shared.auth import ON_BEHALF_OF, ROLE_POLICY, TokenIssuer
from shared.consent_client import ConsentClient
from shared.crypto import b64d
from shared.issuer import CALLING_SERVICES, DevelopmentIssuerFiles, development_issuer
from shared.issuer import create_app as issuer_app
from shared.kafka.topics import SERVICES
from shared.runtime import service_credentials
from shared.service_tokens import ClientCredentials, ServiceTokenUnavailable
from shared.settings import PlatformSettings
from tests.support.consent import consent_on, served_consent
from tests.support.services import bearer, issuing, service_bearer, settings_for

PRIVATE_KEY_TYPES = (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey,
                     ed25519.Ed25519PrivateKey)
NHS_NUMBER = "9434765919"


def reachable(root: Any, limit: int = 2_000_000) -> Iterator[Any]:
    """Every object reachable from ``root`` through attributes, containers, closures and bound
    methods (not through modules or classes, which every process shares)."""
    seen: set[int] = set()
    stack = [root]
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, types.ModuleType | type):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, str | bytes | bytearray | int | float | complex | bool | None):
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, types.FunctionType):
            stack.extend(c.cell_contents for c in obj.__closure__ or ()
                         if c.cell_contents is not None)
            stack.extend(obj.__defaults__ or ())
            stack.extend((obj.__kwdefaults__ or {}).values())
        elif isinstance(obj, types.MethodType):
            stack.extend((obj.__self__, obj.__func__))
        elif isinstance(obj, functools.partial):
            stack.extend((obj.func, obj.args, obj.keywords))
        else:
            attributes = getattr(obj, "__dict__", None)
            if isinstance(attributes, dict):
                stack.extend(attributes.values())
            for cls in type(obj).__mro__:
                for slot in getattr(cls, "__slots__", ()):
                    with contextlib.suppress(AttributeError, TypeError):
                        stack.append(getattr(obj, slot))
    assert len(seen) < limit, "the search did not finish"


@dataclass
class Secrets:
    """What must not leak: the issuer's key and each calling service's secret."""

    signing_key: Path
    secret_files: dict[str, Path]
    secret_values: dict[str, str]

    def held_by(self, root: Any) -> set[str]:
        found: set[str] = set()
        issuer_files = {self.signing_key.resolve(),
                        self.signing_key.resolve().parent / "clients.json"}
        for obj in reachable(root):
            text = obj.decode(errors="replace") if isinstance(obj, bytes) else obj
            if isinstance(obj, (*PRIVATE_KEY_TYPES, TokenIssuer)) or (
                    isinstance(text, str) and "PRIVATE KEY" in text):
                found.add("signing-key")
            if isinstance(text, str):
                found |= {f"credential:{s}" for s, v in self.secret_values.items() if v in text}
            if isinstance(obj, Path):
                if obj.resolve() in issuer_files:
                    found.add("signing-key")
                found |= {f"credential:{s}" for s, p in self.secret_files.items()
                          if obj.resolve() == p.resolve()}
            if isinstance(obj, ClientCredentials):
                found.add(f"credential:{obj.service}")
        return found


class FakeProducer:
    """Stands in for the Kafka producer, which would connect when built."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass


@pytest.fixture
def composed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> tuple[PlatformSettings, Secrets]:
    settings = settings_for(monkeypatch, tmp_path, {
        s: f"sqlite:///{tmp_path / f'{s}.db'}" for s in SERVICES})
    development_issuer(settings)
    files = DevelopmentIssuerFiles(settings.development_keys_dir())
    monkeypatch.setattr(runtime_module, "KafkaEventProducer", FakeProducer)
    monkeypatch.chdir(tmp_path)  # faust makes its data directory in the working directory
    return settings, Secrets(files.signing_key,
                             {s: files.secret_file(s) for s in CALLING_SERVICES},
                             {s: files.secret_file(s).read_text() for s in CALLING_SERVICES})


EXPECTED_HOLDINGS = {
    "consent": set(),
    "screening": {"credential:screening"},
    "mentoring": {"credential:mentoring"},
    "reporting": set(),
}


@pytest.mark.parametrize("kind", ["api", "worker"])
@pytest.mark.parametrize("service", SERVICES)
def test_no_process_but_the_issuer_holds_the_signing_key_and_each_only_its_own_credential(
        composed: tuple[PlatformSettings, Secrets], service: str, kind: str) -> None:
    settings, secrets = composed
    entrypoint = importlib.import_module(f"services.{service}.entrypoints.{kind}")
    process = entrypoint.create_app(settings) if kind == "api" else \
        entrypoint.build_worker(settings)

    assert secrets.held_by(process) == EXPECTED_HOLDINGS[service]


def test_the_issuer_alone_holds_the_signing_key(
        composed: tuple[PlatformSettings, Secrets]) -> None:
    """The search finds the key where it is, so its finding nothing elsewhere means something."""
    settings, secrets = composed
    assert "signing-key" in secrets.held_by(issuer_app(settings))


def test_reporting_has_no_credential_or_client_at_all(
        composed: tuple[PlatformSettings, Secrets]) -> None:
    settings, _secrets = composed
    api = importlib.import_module("services.reporting.entrypoints.api").create_app(settings)
    worker = importlib.import_module("services.reporting.entrypoints.worker").build_worker(
        settings)
    for process in (api, worker):
        assert not any(isinstance(o, ConsentClient | ClientCredentials | TokenIssuer)
                       for o in reachable(process))
    assert "reporting" not in CALLING_SERVICES
    with pytest.raises(ServiceTokenUnavailable, match="secret file"):
        service_credentials("reporting", settings).token()


def test_no_setting_holds_a_shared_signing_secret() -> None:
    fields = set(PlatformSettings.model_fields)
    assert not {f for f in fields if "secret" in f}
    assert {"jwt_jwks_file", "jwt_jwks_url", "token_url", "token_max_lifetime_seconds",
            "service_token_max_lifetime_seconds"} <= fields


# --- consent's internal endpoints ----------------------------------------------------------

@pytest.fixture
def consent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[ConsentAdapters, TestClient, str]]:
    with consent_on(f"sqlite:///{tmp_path / 'consent.db'}", tmp_path, monkeypatch) as running:
        subject_id = running.client.post(
            "/v1/subjects", json={"nhs_number": NHS_NUMBER},
            headers=bearer(running.settings, "trust", "clinician")).json()["subject_id"]
        yield running.adapters, running.client, subject_id


PEOPLE = [(org, role) for role, kinds in ROLE_POLICY.items()
          for org, kind in (("trust", "nhs-trust"), ("partner-a", "dva-partner"))
          if kind in kinds]


def person_token(settings: PlatformSettings, org: str = "trust", role: str = "clinician",
                 subject: str = "nurse-17") -> str:
    return development_issuer(settings).mint(org, [role], subject=subject)


def audit_entries(service: ConsentAdapters) -> list[Any]:
    table = service.database.metadata.tables["audit_log"]
    with service.database.read() as session:
        return list(session.execute(select(table).order_by(table.c.seq)))


def test_the_table_admits_to_data_keys_only_the_holders_of_sealed_fields() -> None:
    assert SERVICE_ACCESS["data-key"].alone == {"screening", "mentoring"}
    assert not SERVICE_ACCESS["data-key"].for_person
    assert all("reporting" not in a.alone | a.for_person for a in SERVICE_ACCESS.values())


@pytest.mark.parametrize("service_name", ["screening", "mentoring"])
def test_a_holder_of_sealed_fields_may_fetch_a_data_key(
        consent: tuple[ConsentAdapters, TestClient, str], service_name: str) -> None:
    service, client, subject_id = consent
    response = client.get(f"/internal/v1/data-keys/{subject_id}",
                          headers=service_bearer(service.settings, service_name))
    assert response.status_code == 200
    served = [e for e in audit_entries(service) if e.action == "data-key-served"]
    assert [e.actor for e in served] == [f"svc-{service_name}"]


@pytest.mark.parametrize(("org", "role"), PEOPLE, ids=["-".join(p) for p in PEOPLE])
@pytest.mark.parametrize("path", ["/internal/v1/data-keys/{id}", "/internal/v1/audit"])
def test_no_persons_token_opens_an_internal_endpoint(
        consent: tuple[ConsentAdapters, TestClient, str], org: str, role: str,
        path: str) -> None:
    service, client, subject_id = consent
    before = len(audit_entries(service))
    headers = {"Authorization": f"Bearer {person_token(service.settings, org, role)}"}
    if "audit" in path:
        response = client.post(path, headers=headers,
                               json={"action": "screening-results-read",
                                     "subject_id": subject_id})
    else:
        response = client.get(path.format(id=subject_id), headers=headers)
    assert response.status_code in (401, 403)
    assert "key" not in response.json()
    assert len(audit_entries(service)) == before


@pytest.mark.parametrize(("service_name", "action"), [
    ("mentoring", "screening-results-read"), ("mentoring", "marac-referral-read"),
    ("screening", "mentoring-safe-contact-read"), ("screening", "consent-granted")])
def test_a_service_records_only_its_own_audit_actions(
        consent: tuple[ConsentAdapters, TestClient, str], service_name: str, action: str) -> None:
    """Review finding: a service could write any action, so a compromised one could forge
    the other's evidence."""
    service, client, subject_id = consent
    headers = service_bearer(service.settings, service_name)
    before = len(audit_entries(service))
    for extra in ({}, {ON_BEHALF_OF: person_token(service.settings)}):
        response = client.post("/internal/v1/audit", headers={**headers, **extra},
                               json={"action": action, "subject_id": subject_id})
        assert response.status_code == 422, response.text
        assert response.json()["details"][0]["field"] == "action"
    assert len(audit_entries(service)) == before


@pytest.mark.parametrize("service_name", ["reporting", "consent"])
def test_a_service_not_in_the_table_is_refused(
        consent: tuple[ConsentAdapters, TestClient, str], service_name: str) -> None:
    service, client, subject_id = consent
    headers = service_bearer(service.settings, service_name)
    key = client.get(f"/internal/v1/data-keys/{subject_id}", headers=headers)
    audit = client.post("/internal/v1/audit", headers=headers,
                        json={"action": "x-read", "subject_id": subject_id})
    via = client.post("/internal/v1/audit", json={"action": "x-read", "subject_id": subject_id},
                      headers={**headers, ON_BEHALF_OF: person_token(service.settings)})
    assert (key.status_code, audit.status_code, via.status_code) == (403, 403, 403)
    assert f"the {service_name} service may not" in key.json()["message"]


def test_the_audit_names_the_person_who_acted_via_the_service_never_a_body_field(
        consent: tuple[ConsentAdapters, TestClient, str]) -> None:
    service, client, subject_id = consent
    headers = {**service_bearer(service.settings, "screening"),
               ON_BEHALF_OF: person_token(service.settings, "partner-a", "partner-staff",
                                          subject="worker-42")}

    recorded = client.post("/internal/v1/audit", headers=headers, json={
        "action": "screening-results-refused", "subject_id": subject_id,
        "detail": {"reason": "no-consent"}})
    claimed = client.post("/internal/v1/audit", headers=headers, json={
        "action": "screening-results-read", "subject_id": subject_id,
        "actor": "dr-someone-else", "actor_org": "trust"})

    assert recorded.status_code == 201, recorded.text
    assert claimed.status_code == 422
    entries = [e for e in audit_entries(service) if e.action.startswith("screening-results")]
    assert [(e.actor, e.actor_org, e.action) for e in entries] == [
        ("worker-42 (via svc-screening)", "partner-a", "screening-results-refused")]
    assert "dr-someone-else" not in str(audit_entries(service))


def test_a_worker_audits_as_its_service(consent: tuple[ConsentAdapters, TestClient, str]
                                        ) -> None:
    service, client, subject_id = consent
    response = client.post("/internal/v1/audit", headers=service_bearer(
        service.settings, "mentoring"), json={"action": "mentoring-match-ended",
                                              "subject_id": subject_id})
    assert response.status_code == 201
    [entry] = [e for e in audit_entries(service) if e.action == "mentoring-match-ended"]
    assert (entry.actor, entry.actor_org) == ("svc-mentoring", "peerlink-platform")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(lambda s: {ON_BEHALF_OF: person_token(s)}, 401, id="no-service-token"),
        pytest.param(lambda s: {**service_bearer(s, "screening"),
                                ON_BEHALF_OF: development_issuer(s).mint_service("mentoring")},
                     401, id="on-behalf-of-a-service"),
        pytest.param(lambda s: {**service_bearer(s, "screening"), ON_BEHALF_OF: "x.y.z"}, 401,
                     id="on-behalf-of-garbage"),
        pytest.param(lambda s: {"Authorization": f"Bearer {person_token(s)}",
                                ON_BEHALF_OF: person_token(s, subject="other")}, 403,
                     id="a-person-claiming-to-act-for-another"),
    ],
)
def test_on_behalf_of_needs_a_service_token_and_a_persons(
        consent: tuple[ConsentAdapters, TestClient, str], headers: Any, status: int) -> None:
    service, client, subject_id = consent
    before = len(audit_entries(service))
    response = client.post("/internal/v1/audit", headers=headers(service.settings),
                           json={"action": "screening-results-read", "subject_id": subject_id})
    assert response.status_code == status
    assert len(audit_entries(service)) == before


def test_registration_by_a_worker_is_for_the_trust_and_by_a_person_for_their_org(
        consent: tuple[ConsentAdapters, TestClient, str]) -> None:
    service, client, _subject_id = consent
    settings = service.settings

    alone = client.post("/v1/subjects", json={"nhs_number": "9990000018"},
                        headers=service_bearer(settings, "screening"))
    mentoring_alone = client.post("/v1/subjects", json={"nhs_number": "9990000026"},
                                  headers=service_bearer(settings, "mentoring"))
    via = client.post("/v1/subjects", json={"nhs_number": "9990000026"}, headers={
        **service_bearer(settings, "mentoring"),
        ON_BEHALF_OF: person_token(settings, "partner-a", "partner-staff", "staff-3")})

    assert alone.status_code == 201, alone.text
    assert mentoring_alone.status_code == 403
    assert via.status_code == 201, via.text
    linked = service.database.metadata.tables["subject_orgs"]
    with service.database.read() as session:
        orgs = {(r.subject_id, r.org) for r in session.execute(select(linked))}
    assert (alone.json()["subject_id"], "trust") in orgs
    assert (via.json()["subject_id"], "partner-a") in orgs
    assert (via.json()["subject_id"], "trust") not in orgs
    actors = {e.actor for e in audit_entries(service) if e.action == "subject-registered"}
    assert {"svc-screening", "staff-3 (via svc-mentoring)"} <= actors


@pytest.mark.parametrize(("headers", "status", "org"), [
    (lambda s: service_bearer(s, "screening"), 201, "trust"),
    (lambda s: service_bearer(s, "mentoring"), 403, None),
    (lambda s: {**service_bearer(s, "mentoring"),
                ON_BEHALF_OF: person_token(s, "partner-a", "partner-staff", "staff-3")},
     201, "partner-a"),
    (lambda s: {**service_bearer(s, "screening"),
                ON_BEHALF_OF: person_token(s, "trust", "clinician", "nurse-4")}, 201, "trust"),
    (lambda s: {**service_bearer(s, "screening"),
                ON_BEHALF_OF: person_token(s, "trust", "dpo", "dpo-1")}, 403, None),
    (lambda s: service_bearer(s, "reporting"), 403, None),
    (lambda s: bearer(s, "trust", "clinician"), 403, None),
], ids=["screening-alone", "mentoring-alone", "mentoring-for-partner-staff",
        "screening-for-clinician", "screening-for-dpo", "reporting", "a-person"])
def test_a_keyed_registration_answers_with_the_key_consent_serves_and_audits_both(
        consent: tuple[ConsentAdapters, TestClient, str], headers: Any, status: int,
        org: str | None) -> None:
    service, client, _subject_id = consent
    settings = service.settings
    before = len(audit_entries(service))
    response = client.post("/internal/v1/registrations", json={"nhs_number": "9990000034"},
                           headers=headers(settings))
    assert response.status_code == status, response.text
    added = audit_entries(service)[before:]
    if status != 201:
        assert added == [] and "key" not in response.text
        return
    body = response.json()
    key = service.keys.data_key(body["subject_id"])
    assert (body["key_id"], b64d(body["key"])) == (key.key_id, key.material)
    linked = service.database.metadata.tables["subject_orgs"]
    with service.database.read() as session:
        orgs = {r.org for r in session.execute(select(linked).where(
            linked.c.subject_id == body["subject_id"]))}
    assert orgs == {org}
    assert [e.action for e in added] == ["subject-registered", "data-key-served"]
    assert {e.subject_id for e in added} == {body["subject_id"]}
    assert len({e.actor for e in added}) == 1
    again = client.post("/internal/v1/registrations", json={"nhs_number": "9990000034"},
                        headers=headers(settings))
    assert again.json() == body  # the same person, the same key


def test_the_consent_client_acts_on_behalf_of_the_caller_with_a_cached_service_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(monkeypatch, tmp_path,
                            {"consent": f"sqlite:///{tmp_path / 'consent.db'}"})
    with issuing(settings) as settings, served_consent(settings) as (consent, consent_url):
        credentials = service_credentials("screening", settings)
        fetched: list[str] = []
        original = credentials._fetch

        def counting() -> tuple[str, float]:
            fetched.append("token")
            return original()

        monkeypatch.setattr(credentials, "_fetch", counting)
        client = ConsentClient(consent_url, credentials)
        verifier = runtime_module.token_verifier(settings)
        caller = verifier.verify(person_token(settings, subject="nurse-99"))

        subject_id, _key = client.register_keyed(NHS_NUMBER, caller)
        client.audit("screening-results-read", subject_id, caller)
        client.data_key(subject_id)
        client.audit("screening-enquiry-adopted", subject_id, None)

        entries = [(e.actor, e.actor_org, e.action) for e in audit_entries(consent)]
    assert fetched == ["token"]
    assert ("nurse-99 (via svc-screening)", "trust", "subject-registered") in entries
    assert ("nurse-99 (via svc-screening)", "trust", "screening-results-read") in entries
    assert ("svc-screening", "peerlink-platform", "data-key-served") in entries
    assert ("svc-screening", "peerlink-platform", "screening-enquiry-adopted") in entries

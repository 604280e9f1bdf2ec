"""The safeguarding pseudonym (for services only) and the person's safe-contact instructions
(sealed, published to every holder, every read and write audited), on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from services.consent.bootstrap import ConsentAdapters
from shared.auth import ON_BEHALF_OF
from shared.consent_client import ConsentClient
from shared.crypto import KeyShredded, UnknownSubject
from shared.events.consent import SafeContact, SafeContactUpdated
from shared.events.envelope import CloudEvent
from shared.issuer import development_issuer
from shared.runtime import service_credentials, token_verifier
from tests.support.consent import consent_on, served_consent
from tests.support.services import bearer, issuing, service_bearer, settings_for

NHS_NUMBER = "9434765919"
CONTACT = {"phone": "07700 900123", "times": "weekday mornings", "may_leave_message": False,
           "safe_to_call": True, "instructions": "say it is the pharmacy"}


@pytest.fixture
def consent(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[ConsentAdapters, TestClient]]:
    with consent_on(database_url, tmp_path, monkeypatch) as running:
        yield running.adapters, running.client


def _register(consent: tuple[ConsentAdapters, TestClient], org: str, role: str,
              **body: str) -> str:
    service, client = consent
    response = client.post("/v1/subjects", json=body or {"nhs_number": NHS_NUMBER},
                           headers=bearer(service.settings, org, role))
    assert response.status_code == 201
    return str(response.json()["subject_id"])


def _erase(service: ConsentAdapters, subject_id: str) -> None:
    subjects = service.database.metadata.tables["subjects"]
    with service.database.unit_of_work() as uow:
        service.keys.shred(uow.session, subject_id)
        uow.session.execute(update(subjects).where(subjects.c.subject_id == subject_id)
                            .values(erased_at=subjects.c.registered_at))


def _table(service: ConsentAdapters, name: str) -> list[Any]:
    table = service.database.metadata.tables[name]
    with service.database.read() as session:
        return list(session.execute(select(table)))


# --- the safeguarding pseudonym ---------------------------------------------------------------


def _pseudonym_url(subject_id: str) -> str:
    return f"/internal/v1/subjects/{subject_id}/safeguarding-pseudonym"


@pytest.mark.parametrize("caller, status", [
    (("service", "screening"), 200), (("service", "mentoring"), 200),
    (("service", "consent"), 403), (("service", "reporting"), 403),
    (("trust", "clinician"), 403), (("trust", "safeguarding-lead"), 403),
    (("partner-a", "partner-staff"), 403), (("trust", "dpo"), 403),
])
def test_the_pseudonym_is_for_the_services_that_keep_safeguarding_records(
        consent: tuple[ConsentAdapters, TestClient], caller: tuple[str, str],
        status: int) -> None:
    service, client = consent
    subject_id = _register(consent, "trust", "clinician")
    response = client.get(_pseudonym_url(subject_id), headers=bearer(service.settings, *caller))
    assert response.status_code == status
    expected = service.identifiers.pseudonyms.of_nhs_number(NHS_NUMBER)
    if status == 200:
        assert response.json() == {"pseudonym": expected}
    else:
        assert expected not in response.text


def test_the_pseudonym_follows_the_nhs_number_and_never_reaches_the_audit_trail(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    screening = service_bearer(service.settings, "screening")
    partner = bearer(service.settings, "partner-a", "partner-staff")
    subject_id = _register(consent, "partner-a", "partner-staff", local_id="CL-1")

    local = client.get(_pseudonym_url(subject_id), headers=screening).json()["pseudonym"]
    client.post(f"/v1/subjects/{subject_id}/nhs-number", json={"nhs_number": NHS_NUMBER},
                headers=partner)
    linked = client.get(_pseudonym_url(subject_id), headers=screening).json()["pseudonym"]

    pseudonyms = service.identifiers.pseudonyms
    assert local == pseudonyms.of_local_id("partner-a", "CL-1")
    assert linked == pseudonyms.of_nhs_number(NHS_NUMBER) != local
    served = [e for e in _table(service, "audit_log")
              if e.action == "safeguarding-pseudonym-served"]
    assert [(e.actor, e.subject_id) for e in served] == [("svc-screening", subject_id)] * 2
    assert not any(p in str(e) for e in _table(service, "audit_log") for p in (local, linked))


def test_a_subject_registered_before_pseudonyms_gets_one_when_first_asked(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    subject_id = _register(consent, "trust", "clinician")
    subjects = service.database.metadata.tables["subjects"]
    with service.database.unit_of_work() as uow:
        uow.session.execute(update(subjects).values(safeguarding_pseudonym=None))

    answer = client.get(_pseudonym_url(subject_id),
                        headers=service_bearer(service.settings, "mentoring"))

    expected = service.identifiers.pseudonyms.of_nhs_number(NHS_NUMBER)
    assert answer.json() == {"pseudonym": expected}
    assert [r.safeguarding_pseudonym for r in _table(service, "subjects")] == [expected]


def test_no_pseudonym_for_an_erased_or_unknown_subject(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    subject_id = _register(consent, "trust", "clinician")
    _erase(service, subject_id)
    headers = service_bearer(service.settings, "screening")

    erased = client.get(_pseudonym_url(subject_id), headers=headers)
    unknown = client.get(_pseudonym_url("sub_" + "0" * 32), headers=headers)

    assert (erased.status_code, unknown.status_code) == (410, 404)


# --- safe contact -----------------------------------------------------------------------------


def _contact_url(subject_id: str) -> str:
    return f"/v1/subjects/{subject_id}/safe-contact"


def test_a_safe_contact_update_is_sealed_published_and_read_back_audited(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    subject_id = _register(consent, "partner-a", "partner-staff", local_id="CL-2")
    staff = bearer(service.settings, "partner-a", "partner-staff")

    put = client.put(_contact_url(subject_id), json=CONTACT, headers=staff)
    got = client.get(_contact_url(subject_id),
                     headers=bearer(service.settings, "partner-a", "mentor-coordinator"))

    assert put.status_code == 200 and put.json()["subject_id"] == subject_id
    assert got.status_code == 200
    assert got.json()["safe_contact"] == CONTACT
    assert got.json()["updated_at"] == put.json()["updated_at"]
    published = [CloudEvent.from_bytes(r.payload) for r in _table(service, "outbox")
                 if r.event_type == SafeContactUpdated.event_type]
    assert len(published) == 1
    assert "07700" not in published[0].to_bytes().decode()
    payload = SafeContactUpdated.model_validate(published[0].data)
    assert (published[0].subject, payload.org) == (subject_id, "partner-a")
    assert payload.personal is not None
    opened = service.cipher.open(subject_id, SafeContactUpdated.event_type, payload.personal)
    assert isinstance(opened, dict)
    assert SafeContact.model_validate(opened["safe_contact"]) == SafeContact.model_validate(CONTACT)
    assert not any("07700" in str(row) for row in _table(service, "subjects"))
    [stored] = _table(service, "safe_contacts")
    assert (stored.subject_id, stored.org) == (subject_id, "partner-a")
    assert b"07700" not in stored.safe_contact_sealed
    entries = [(e.action, e.actor_org, e.subject_id) for e in _table(service, "audit_log")
               if e.action.startswith("safe-contact-")]
    assert entries == [("safe-contact-updated", "partner-a", subject_id),
                       ("safe-contact-read", "partner-a", subject_id)]
    assert not any("07700" in str(e) for e in _table(service, "audit_log"))


def test_nothing_recorded_reads_as_null_and_a_new_update_replaces_it(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    subject_id = _register(consent, "trust", "clinician")
    lead = bearer(service.settings, "trust", "safeguarding-lead")

    empty = client.get(_contact_url(subject_id), headers=lead)
    client.put(_contact_url(subject_id), json=CONTACT, headers=lead)
    client.put(_contact_url(subject_id), json={**CONTACT, "phone": "07700 900456"},
               headers=bearer(service.settings, "trust", "clinician"))
    latest = client.get(_contact_url(subject_id), headers=lead)

    assert empty.json() == {"subject_id": subject_id, "safe_contact": None, "updated_at": None}
    assert latest.json()["safe_contact"]["phone"] == "07700 900456"
    assert sum(r.event_type == SafeContactUpdated.event_type
               for r in _table(service, "outbox")) == 2


def test_each_organisation_reads_and_replaces_only_its_own_safe_contact(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    """An abuser at a partner registers the person they are looking for (a relationship comes
    with registering): they must neither read the safe number the Trust recorded nor replace
    it with their own."""
    service, client = consent
    subject_id = _register(consent, "trust", "clinician")
    trust = bearer(service.settings, "trust", "safeguarding-lead")
    client.put(_contact_url(subject_id), json=CONTACT, headers=trust)
    never_known = _register(consent, "partner-b", "partner-staff", nhs_number="4010232137")
    assert _register(consent, "partner-a", "partner-staff") == subject_id
    abuser = bearer(service.settings, "partner-a", "partner-staff")

    read = client.get(_contact_url(subject_id), headers=abuser)
    nothing = client.get(_contact_url(never_known),
                         headers=bearer(service.settings, "partner-b", "partner-staff"))
    own = {**CONTACT, "phone": "07700 900666"}
    put = client.put(_contact_url(subject_id), json=own, headers=abuser)
    trusts = client.get(_contact_url(subject_id), headers=trust)
    partners = client.get(_contact_url(subject_id), headers=abuser)

    assert read.json() == {"subject_id": subject_id, "safe_contact": None, "updated_at": None}
    assert nothing.json() == {"subject_id": never_known, "safe_contact": None,
                              "updated_at": None}
    assert read.headers.keys() == nothing.headers.keys()
    assert put.status_code == 200
    assert trusts.json()["safe_contact"] == CONTACT, "the Trust's number is the Trust's"
    assert partners.json()["safe_contact"] == own
    published = [SafeContactUpdated.model_validate(CloudEvent.from_bytes(r.payload).data)
                 for r in _table(service, "outbox")
                 if r.event_type == SafeContactUpdated.event_type]
    assert [p.org for p in published] == ["trust", "partner-a"]


def test_safe_contact_needs_a_relationship_a_role_that_acts_on_it_and_a_live_subject(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    subject_id = _register(consent, "trust", "clinician")
    url = _contact_url(subject_id)

    stranger = client.put(url, json=CONTACT,
                          headers=bearer(service.settings, "partner-a", "partner-staff"))
    stranger_read = client.get(url, headers=bearer(service.settings, "partner-a",
                                                   "mentor-coordinator"))
    dpo = client.get(url, headers=bearer(service.settings, "trust", "dpo"))
    bad = client.put(url, json={**CONTACT, "phone": "07"},
                     headers=bearer(service.settings, "trust", "clinician"))
    _erase(service, subject_id)
    erased = client.put(url, json=CONTACT, headers=bearer(service.settings, "trust", "clinician"))

    assert (stranger.status_code, stranger_read.status_code, dpo.status_code) == (404, 404, 403)
    assert (bad.status_code, bad.json()["details"][0]["field"]) == (422, "phone")
    assert (erased.status_code, erased.json()["error"]) == (410, "erased")
    assert not any(r.event_type == SafeContactUpdated.event_type
                   for r in _table(service, "outbox"))


def test_a_service_records_safe_contact_only_on_behalf_of_a_person(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    subject_id = _register(consent, "partner-a", "partner-staff")
    url = f"/internal{_contact_url(subject_id)}"
    person = development_issuer(service.settings).mint("partner-a", ["partner-staff"],
                                                       subject="advocate-7")

    def by(name: str, **extra: str) -> dict[str, str]:
        return {**service_bearer(service.settings, name), **extra}

    for_person = client.put(url, json=CONTACT, headers=by("mentoring", **{ON_BEHALF_OF: person}))
    alone = client.put(url, json=CONTACT, headers=by("mentoring"))
    reporting = client.put(url, json=CONTACT, headers=by("reporting", **{ON_BEHALF_OF: person}))
    directly = client.put(url, json=CONTACT,
                          headers=bearer(service.settings, "partner-a", "partner-staff"))

    assert for_person.status_code == 200
    assert (alone.status_code, reporting.status_code, directly.status_code) == (403, 403, 403)
    updates = [(e.actor, e.actor_org) for e in _table(service, "audit_log")
               if e.action == "safe-contact-updated"]
    assert updates == [("advocate-7 (via svc-mentoring)", "partner-a")]
    assert json.loads(client.get(_contact_url(subject_id), headers=bearer(
        service.settings, "partner-a", "partner-staff")).text)["safe_contact"] == CONTACT


# --- the calls services make (shared/consent_client.py) -------------------------------------


def test_the_consent_client_calls_made_by_screening_and_mentoring(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(monkeypatch, tmp_path,
                            {"consent": f"sqlite:///{tmp_path / 'consent.db'}"})
    with served_consent(settings) as (service, url), issuing(settings) as issued:
        client = ConsentClient(url, service_credentials("mentoring", issued))
        caller = token_verifier(issued).verify(development_issuer(issued).mint(
            "partner-a", ["partner-staff"], subject="advocate-3"))
        subject_id, _key = client.register_keyed(NHS_NUMBER, caller)

        client.update_safe_contact(subject_id, SafeContact.model_validate(CONTACT), caller)
        pseudonym = client.safeguarding_pseudonym(subject_id)
        with pytest.raises(UnknownSubject):
            client.safeguarding_pseudonym("sub_" + "0" * 32)
        _erase(service, subject_id)
        with pytest.raises(KeyShredded):
            client.safeguarding_pseudonym(subject_id)
        with pytest.raises(KeyShredded):
            client.update_safe_contact(subject_id, SafeContact.model_validate(CONTACT),
                                       caller)
    assert pseudonym == service.identifiers.pseudonyms.of_nhs_number(NHS_NUMBER)
    assert sum(r.event_type == SafeContactUpdated.event_type
               for r in _table(service, "outbox")) == 1

"""Registering people (by NHS number, or by a partner's own client identifier), linking an NHS
number later, and serving their data keys, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from services.consent.bootstrap import ConsentAdapters, master_key
from services.consent.domain.subjects import NhsNumberLookup
from services.consent.service_layer.key_admin import rotate_master_key
from shared.crypto import b64d, derive_key
from tests.support.consent import consent_on
from tests.support.services import bearer


@pytest.fixture
def consent(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[ConsentAdapters, TestClient]]:
    with consent_on(database_url, tmp_path, monkeypatch) as running:
        yield running.adapters, running.client


def test_a_person_is_registered_once(consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    headers = bearer(service.settings, "trust", "clinician")

    first = client.post("/v1/subjects", json={"nhs_number": "943 476 5919"}, headers=headers)
    again = client.post("/v1/subjects", json={"nhs_number": "9434765919"}, headers=headers)

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json()["subject_id"] == first.json()["subject_id"]
    assert first.json()["subject_id"].startswith("sub_")


def test_registering_a_known_person_reveals_nothing_to_another_organisation(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    """Regression (adversarial review, case 1): partner staff who knew a Trust patient's NHS
    number got 200 "already registered" and then the Trust's consents."""
    service, client = consent
    client.post("/v1/subjects", json={"nhs_number": "943 476 5919"},
                headers=bearer(service.settings, "trust", "clinician"))
    partner = bearer(service.settings, "partner-b", "partner-staff")

    known = client.post("/v1/subjects", json={"nhs_number": "943 476 5919"}, headers=partner)
    unknown = client.post("/v1/subjects", json={"nhs_number": "401 023 2137"}, headers=partner)

    assert (known.status_code, unknown.status_code) == (201, 201)
    assert set(known.json()) == set(unknown.json()) == {"subject_id"}
    assert dict(known.headers).keys() == dict(unknown.headers).keys()
    view = client.get(f"/v1/subjects/{known.json()['subject_id']}/consents", headers=partner)
    assert view.status_code == 200
    assert view.json()["history"] == []
    assert "trust" not in view.text


@pytest.mark.parametrize("nhs_number", ["9434765918", "12345", "94347659190", "abcdefghij"])
def test_an_invalid_nhs_number_is_a_422_naming_the_field(
        consent: tuple[ConsentAdapters, TestClient], nhs_number: str) -> None:
    service, client = consent
    response = client.post("/v1/subjects", json={"nhs_number": nhs_number},
                           headers=bearer(service.settings, "trust", "clinician"))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "nhs_number"
    assert nhs_number not in response.text


def test_data_keys_are_for_services_only_and_gone_after_shredding(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    subject_id = client.post("/v1/subjects", json={"nhs_number": "943 476 5919"},
                             headers=bearer(service.settings, "trust", "clinician")
                             ).json()["subject_id"]
    url = f"/v1/subjects/{subject_id}".replace("/v1/subjects", "/internal/v1/data-keys")

    assert client.get(url, headers=bearer(service.settings, "trust", "clinician")
                      ).status_code == 403
    served = client.get(url, headers=bearer(service.settings, "service", "screening"))
    assert served.status_code == 200
    assert len(b64d(served.json()["key"])) == 32

    with service.database.unit_of_work() as uow:
        assert service.keys.shred(uow.session, subject_id) == served.json()["key_id"]
    gone = client.get(url, headers=bearer(service.settings, "service", "screening"))
    assert gone.status_code == 410
    unknown = client.get("/internal/v1/data-keys/sub_" + "0" * 32,
                         headers=bearer(service.settings, "service", "screening"))
    assert unknown.status_code == 404


def test_the_nhs_number_is_stored_only_sealed(consent: tuple[ConsentAdapters, TestClient]
                                              ) -> None:
    service, client = consent
    client.post("/v1/subjects", json={"nhs_number": "9434765919"},
                headers=bearer(service.settings, "trust", "clinician"))
    with service.database.read() as session:
        dump = [str(row) for t in ("subjects", "outbox")
                for row in session.execute(service.database.metadata.tables[t].select())]
    assert dump
    assert not any("9434765919" in row for row in dump)


def test_two_organisations_registering_one_person_at_once_get_one_reference(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    """Two writers at once on the NHS-number uniqueness (issue 13's finding: an
    IntegrityError answered 500 in 10 of 10 pairs)."""
    service, client = consent
    callers = [bearer(service.settings, org, role) for org, role in (
        ("trust", "clinician"), ("partner-a", "partner-staff"))] * 3
    for nhs_number in ("9434765919", "4010232137", "9990000018", "9990000026", "9990000034"):
        barrier = threading.Barrier(len(callers))

        def register(headers: dict[str, str], number: str = nhs_number,
                     together: threading.Barrier = barrier) -> tuple[int, str]:
            together.wait()
            response = client.post("/v1/subjects", json={"nhs_number": number},
                                   headers=headers)
            return response.status_code, response.json().get("subject_id", response.text)

        with ThreadPoolExecutor(len(callers)) as pool:
            answers = list(pool.map(register, callers))

        assert {status for status, _ in answers} == {201}, answers
        assert len({subject for _, subject in answers}) == 1, answers
        orgs = service.database.metadata.tables["subject_orgs"]
        with service.database.read() as session:
            linked = session.execute(select(orgs.c.org).where(
                orgs.c.subject_id == answers[0][1])).scalars().all()
        assert sorted(linked) == ["partner-a", "trust"]


# --- registering by a partner's own client identifier ---------------------------------------


def _row(service: ConsentAdapters, subject_id: str) -> Any:
    table = service.database.metadata.tables["subjects"]
    with service.database.read() as session:
        return session.execute(select(table).where(table.c.subject_id == subject_id)).one()


def _audit(service: ConsentAdapters, action: str) -> list[Any]:
    table = service.database.metadata.tables["audit_log"]
    with service.database.read() as session:
        return list(session.execute(select(table).where(table.c.action == action)
                                    .order_by(table.c.seq)))


def test_a_local_id_names_one_person_at_its_own_organisation_only(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    partner_a = bearer(service.settings, "partner-a", "partner-staff")
    partner_b = bearer(service.settings, "partner-b", "partner-staff")

    first = client.post("/v1/subjects", json={"local_id": "CL-20931"}, headers=partner_a)
    again = client.post("/v1/subjects", json={"local_id": "CL-20931"}, headers=partner_a)
    elsewhere = client.post("/v1/subjects", json={"local_id": "CL-20931"}, headers=partner_b)
    new = client.post("/v1/subjects", json={"local_id": "CL-20932"}, headers=partner_a)

    assert {r.status_code for r in (first, again, elsewhere, new)} == {201}
    assert again.json() == first.json()
    assert elsewhere.json()["subject_id"] != first.json()["subject_id"]
    assert new.json()["subject_id"] != first.json()["subject_id"]
    assert set(first.json()) == set(again.json()) == set(new.json()) == {"subject_id"}
    assert dict(again.headers).keys() == dict(new.headers).keys()
    row = _row(service, first.json()["subject_id"])
    assert row.nhs_lookup is None and row.local_lookup is not None
    assert row.safeguarding_pseudonym == service.identifiers.pseudonyms.of_local_id(
        "partner-a", "CL-20931")
    assert "CL-20931" not in str(row)
    actions = _audit(service, "subject-registered")
    assert len(actions) == 4
    assert {a.detail for a in actions} == {'{"identified_by": "local-id"}'}


@pytest.mark.parametrize("body, field", [
    ({}, "nhs_number"),
    ({"nhs_number": "943 476 5919", "local_id": "CL-1"}, "local_id"),
    ({"local_id": ""}, "local_id"),
    ({"local_id": "x" * 65}, "local_id"),
    ({"local_id": "has space"}, "local_id"),
    ({"local_id": "-leading"}, "local_id"),
])
def test_registration_needs_exactly_one_valid_identifier(
        consent: tuple[ConsentAdapters, TestClient], body: dict[str, str], field: str) -> None:
    service, client = consent
    response = client.post("/v1/subjects", json=body,
                           headers=bearer(service.settings, "partner-a", "partner-staff"))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == field
    for value in body.values():
        assert not value or value not in response.text


def test_two_registrations_of_one_local_id_at_once_make_one_subject(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    """Two writers at once on the local-identifier uniqueness, on both databases."""
    service, client = consent
    headers = bearer(service.settings, "partner-a", "partner-staff")
    for local_id in ("CL-1", "CL-2", "CL-3", "CL-4"):
        barrier = threading.Barrier(4)

        def register(_: int, identifier: str = local_id,
                     together: threading.Barrier = barrier) -> tuple[int, str]:
            together.wait()
            response = client.post("/v1/subjects", json={"local_id": identifier},
                                   headers=headers)
            return response.status_code, response.json().get("subject_id", response.text)

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(register, range(4)))

        assert {status for status, _ in answers} == {201}, answers
        assert len({subject for _, subject in answers}) == 1, answers
    subjects = service.database.metadata.tables["subjects"]
    keys = service.database.metadata.tables["data_keys"]
    with service.database.read() as session:
        assert len(session.execute(select(subjects)).all()) == 4
        assert len(session.execute(select(keys)).all()) == 4


# --- linking an NHS number later --------------------------------------------------------------


def _reconciliations(client: TestClient, service: ConsentAdapters, org: str = "partner-a"
                     ) -> list[dict[str, Any]]:
    response = client.get("/v1/identity-reconciliations",
                          headers=bearer(service.settings, org, "dpo"))
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["identity_reconciliations"]
    return listed


def _resolve(client: TestClient, service: ConsentAdapters, reconciliation_id: str,
             resolution: str, org: str = "partner-a") -> Any:
    return client.post(f"/v1/identity-reconciliations/{reconciliation_id}/resolve",
                       json={"resolution": resolution, "reason": "checked with the client"},
                       headers=bearer(service.settings, org, "dpo"))


def test_an_nhs_number_linked_later_names_the_person_once_their_dpo_resolves_it(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    partner = bearer(service.settings, "partner-a", "partner-staff")
    subject_id = client.post("/v1/subjects", json={"local_id": "CL-7"},
                             headers=partner).json()["subject_id"]

    linked = client.post(f"/v1/subjects/{subject_id}/nhs-number",
                         json={"nhs_number": "943 476 5919"}, headers=partner)
    again = client.post(f"/v1/subjects/{subject_id}/nhs-number",
                        json={"nhs_number": "9434765919"}, headers=partner)

    assert (linked.status_code, again.status_code) == (200, 200)
    assert linked.json() == again.json() == {"subject_id": subject_id}
    row = _row(service, subject_id)
    assert (row.nhs_lookup, row.nhs_number_sealed) == (None, None), "not until resolved"
    assert row.safeguarding_pseudonym == service.identifiers.pseudonyms.of_nhs_number(
        "9434765919"), "repeat referrals are recognised at once"
    waiting = _reconciliations(client, service)
    assert [(r["subject_id"], r["nhs_number"]) for r in waiting] == [
        (subject_id, "9434765919")] * 2
    assert set(waiting[0]) == {"reconciliation_id", "subject_id", "nhs_number", "recorded_at"}
    assert _reconciliations(client, service, "trust") == []

    first = _resolve(client, service, waiting[0]["reconciliation_id"], "link")
    second = _resolve(client, service, waiting[1]["reconciliation_id"], "link")
    by_trust = client.post("/v1/subjects", json={"nhs_number": "9434765919"},
                           headers=bearer(service.settings, "trust", "clinician"))

    assert first.json() == {"reconciliation_id": waiting[0]["reconciliation_id"],
                            "subject_id": subject_id, "status": "linked"}
    assert second.json()["status"] == "linked"
    assert _reconciliations(client, service) == []
    assert by_trust.json()["subject_id"] == subject_id
    row = _row(service, subject_id)
    assert row.nhs_lookup is not None and "9434765919" not in str(row)
    outcomes = [a.detail for a in _audit(service, "nhs-number-linked")]
    assert all('"outcome": "needs-reconciliation"' in o for o in outcomes) and len(outcomes) == 2
    assert [a.actor_org for a in _audit(service, "identity-reconciliations-listed")] == [
        "partner-a", "trust", "partner-a"]
    resolved = _audit(service, "identity-reconciliation-resolved")
    assert len(resolved) == 2 and not any("9434765919" in a.detail for a in resolved)


@pytest.mark.parametrize("known_before", [True, False])
def test_registering_a_linked_number_never_finds_the_dummy_it_was_linked_to(
        consent: tuple[ConsentAdapters, TestClient], known_before: bool) -> None:
    """A partner registers a dummy by local id, links an NHS number to it, then registers the
    number: were the link applied at once, the answer would be the dummy exactly when nobody
    knew the number, telling whether the person is known to the programme."""
    service, client = consent
    partner = bearer(service.settings, "partner-a", "partner-staff")
    known = None
    if known_before:
        known = client.post("/v1/subjects", json={"nhs_number": "9434765919"},
                            headers=bearer(service.settings, "trust", "clinician")
                            ).json()["subject_id"]
    dummy = client.post("/v1/subjects", json={"local_id": "DUMMY-1"},
                        headers=partner).json()["subject_id"]

    link = client.post(f"/v1/subjects/{dummy}/nhs-number", json={"nhs_number": "9434765919"},
                       headers=partner)
    registered = client.post("/v1/subjects", json={"nhs_number": "9434765919"},
                             headers=partner)

    assert (link.status_code, registered.status_code) == (200, 201)
    assert registered.json()["subject_id"] != dummy
    if known is not None:
        assert registered.json()["subject_id"] == known
    assert _row(service, dummy).nhs_lookup is None


def test_a_resolution_is_the_dpos_of_the_asking_organisation_and_made_once(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    partner = bearer(service.settings, "partner-a", "partner-staff")
    trust_held = client.post("/v1/subjects", json={"nhs_number": "9434765919"},
                             headers=bearer(service.settings, "trust", "clinician")
                             ).json()["subject_id"]
    held, wrong = (client.post("/v1/subjects", json={"local_id": local_id}, headers=partner
                               ).json()["subject_id"] for local_id in ("CL-11", "CL-12"))
    local_pseudonym = _row(service, wrong).safeguarding_pseudonym
    client.post(f"/v1/subjects/{held}/nhs-number", json={"nhs_number": "9434765919"},
                headers=partner)
    client.post(f"/v1/subjects/{wrong}/nhs-number", json={"nhs_number": "4010232137"},
                headers=partner)
    assert _row(service, wrong).safeguarding_pseudonym != local_pseudonym
    by_subject = {r["subject_id"]: r["reconciliation_id"]
                  for r in _reconciliations(client, service)}

    elsewhere = _resolve(client, service, by_subject[held], "link", org="trust")
    staff = client.post(f"/v1/identity-reconciliations/{by_subject[held]}/resolve",
                        json={"resolution": "link", "reason": "x"}, headers=partner)
    merge = _resolve(client, service, by_subject[held], "link")
    rejected = _resolve(client, service, by_subject[wrong], "reject")
    twice = _resolve(client, service, by_subject[wrong], "link")

    assert (elsewhere.status_code, elsewhere.json()["error"]) == (
        404, "unknown-identity-reconciliation")
    assert staff.status_code == 403
    assert merge.json()["status"] == "awaiting-merge"
    assert _row(service, held).nhs_lookup is None
    assert _row(service, trust_held).nhs_lookup is not None
    assert rejected.json()["status"] == "rejected"
    assert _row(service, wrong).safeguarding_pseudonym == local_pseudonym
    assert _row(service, wrong).nhs_lookup is None
    assert twice.status_code == 404


def test_an_nhs_number_another_subject_holds_is_never_merged_nor_revealed(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    trust_held = client.post("/v1/subjects", json={"nhs_number": "9434765919"},
                             headers=bearer(service.settings, "trust", "clinician")
                             ).json()["subject_id"]
    partner = bearer(service.settings, "partner-a", "partner-staff")
    local, fresh = (client.post("/v1/subjects", json={"local_id": local_id}, headers=partner
                                ).json()["subject_id"] for local_id in ("CL-8", "CL-9"))
    before = (_row(service, trust_held), _row(service, local))

    conflict = client.post(f"/v1/subjects/{local}/nhs-number",
                           json={"nhs_number": "9434765919"}, headers=partner)
    applied = client.post(f"/v1/subjects/{fresh}/nhs-number",
                          json={"nhs_number": "4010232137"}, headers=partner)

    assert conflict.status_code == applied.status_code == 200
    assert set(conflict.json()) == set(applied.json()) == {"subject_id"}
    assert conflict.json()["subject_id"] == local
    assert dict(conflict.headers).keys() == dict(applied.headers).keys()
    assert trust_held not in conflict.text
    assert (_row(service, trust_held), _row(service, local)) == before
    table = service.database.metadata.tables["identity_reconciliations"]
    with service.database.read() as session:
        waiting = session.execute(select(table).where(table.c.subject_id == local)).one()
    assert (waiting.subject_id, waiting.other_subject_id, waiting.org, waiting.status,
            waiting.reason) == (local, trust_held, "partner-a", "open",
                                "nhs-number-held-by-another-subject")
    assert b"9434765919" not in waiting.nhs_number_sealed
    entry = _audit(service, "nhs-number-linked")[0]
    assert (entry.subject_id, entry.actor_org) == (local, "partner-a")
    assert waiting.reconciliation_id in entry.detail
    assert '"needs-reconciliation"' in entry.detail and trust_held not in entry.detail


def test_a_subject_with_another_nhs_number_keeps_it_until_reconciled(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    trust = bearer(service.settings, "trust", "clinician")
    subject_id = client.post("/v1/subjects", json={"nhs_number": "9434765919"},
                             headers=trust).json()["subject_id"]
    before = _row(service, subject_id)

    answer = client.post(f"/v1/subjects/{subject_id}/nhs-number",
                         json={"nhs_number": "4010232137"}, headers=trust)

    assert answer.status_code == 200 and answer.json() == {"subject_id": subject_id}
    assert _row(service, subject_id) == before
    table = service.database.metadata.tables["identity_reconciliations"]
    with service.database.read() as session:
        assert session.execute(select(table.c.reason)).scalar_one() == "nhs-number-differs"


def test_linking_needs_a_relationship_a_valid_number_and_a_live_subject(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    partner = bearer(service.settings, "partner-a", "partner-staff")
    subject_id = client.post("/v1/subjects", json={"local_id": "CL-10"},
                             headers=partner).json()["subject_id"]
    url = f"/v1/subjects/{subject_id}/nhs-number"

    stranger = client.post(url, json={"nhs_number": "9434765919"},
                           headers=bearer(service.settings, "partner-b", "partner-staff"))
    invalid = client.post(url, json={"nhs_number": "9434765918"}, headers=partner)
    coordinator = client.post(url, json={"nhs_number": "9434765919"},
                              headers=bearer(service.settings, "partner-a",
                                             "mentor-coordinator"))
    with service.database.unit_of_work() as uow:
        service.keys.shred(uow.session, subject_id)
        uow.session.execute(update(service.database.metadata.tables["subjects"]).values(
            erased_at=_row(service, subject_id).registered_at))
    erased = client.post(url, json={"nhs_number": "9434765919"}, headers=partner)

    assert stranger.status_code == 404
    assert (invalid.status_code, invalid.json()["details"][0]["field"]) == (422, "nhs_number")
    assert "9434765918" not in invalid.text
    assert coordinator.status_code == 403
    assert (erased.status_code, erased.json()["error"]) == (410, "erased")
    assert _row(service, subject_id).nhs_lookup is None


def test_registering_again_after_erasure_gives_a_new_subject(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    """Even when the erasure left the local look-up behind, the erased subject is released."""
    service, client = consent
    partner = bearer(service.settings, "partner-a", "partner-staff")
    erased = client.post("/v1/subjects", json={"local_id": "CL-11"},
                         headers=partner).json()["subject_id"]
    with service.database.unit_of_work() as uow:
        service.keys.shred(uow.session, erased)
        uow.session.execute(update(service.database.metadata.tables["subjects"]).values(
            erased_at=_row(service, erased).registered_at))

    again = client.post("/v1/subjects", json={"local_id": "CL-11"}, headers=partner)

    assert again.status_code == 201 and again.json()["subject_id"] != erased
    assert _row(service, erased).local_lookup is None


def test_one_nhs_number_resolved_for_two_subjects_at_once_links_one_and_keeps_the_other(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    """Two writers at once on the NHS-number uniqueness through links and their resolutions,
    on both databases."""
    service, client = consent
    partner = bearer(service.settings, "partner-a", "partner-staff")
    for n, nhs_number in enumerate(("9434765919", "4010232137", "9990000018")):
        pair = [client.post("/v1/subjects", json={"local_id": f"CL-{n}-{side}"},
                            headers=partner).json()["subject_id"] for side in "ab"]

        linking, resolving = threading.Barrier(2), threading.Barrier(2)

        def link(subject_id: str, number: str = nhs_number,
                 together: threading.Barrier = linking) -> tuple[int, Any]:
            together.wait()
            response = client.post(f"/v1/subjects/{subject_id}/nhs-number",
                                   json={"nhs_number": number}, headers=partner)
            return response.status_code, response.json()

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(link, pair))
        assert answers == [(200, {"subject_id": s}) for s in pair]
        waiting = {r["subject_id"]: r["reconciliation_id"]
                   for r in _reconciliations(client, service)}
        assert set(waiting) == set(pair)

        def resolve(subject_id: str, together: threading.Barrier = resolving,
                    ids: dict[str, str] = waiting) -> str:
            together.wait()
            answer = _resolve(TestClient(client.app), service, ids[subject_id], "link")
            assert answer.status_code == 200, answer.text
            return str(answer.json()["status"])

        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(resolve, pair))

        assert sorted(statuses) == ["awaiting-merge", "linked"], statuses
        holders = [s for s in pair if _row(service, s).nhs_lookup is not None]
        assert holders == [pair[statuses.index("linked")]]


def test_rotating_the_master_key_recomputes_local_look_ups(
        consent: tuple[ConsentAdapters, TestClient]) -> None:
    service, client = consent
    subject_id = client.post("/v1/subjects", json={"local_id": "CL-12"}, headers=bearer(
        service.settings, "partner-a", "partner-staff")).json()["subject_id"]
    new_master = bytes(range(32))

    with service.database.unit_of_work() as uow:
        done = rotate_master_key(uow, master_key(service.settings), new_master)

    assert (done.data_keys, done.lookups) == (1, 1)
    rotated = NhsNumberLookup(derive_key(new_master, "nhs-number lookup"))
    assert _row(service, subject_id).local_lookup == rotated.local_digest("partner-a", "CL-12")

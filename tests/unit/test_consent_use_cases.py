"""Consent's use cases for people, their consents and withdrawals, their identity and safe
contact, and the key store's administration (services/consent/service_layer/), with their
collaborators faked (tests/support/fakes_consent.py): rows written, events published with
their payload, what is audited, and who is refused."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import data_keys, metadata
from services.consent.domain.callers import (
    ForeignAuditAction,
    Organisations,
    audit_writer,
    referrer,
    registrar,
    safe_contact_recorder,
)
from services.consent.domain.purposes import InvalidRecipients
from services.consent.domain.subjects import NhsNumberLookup
from services.consent.domain.tracker import CascadeStatus
from services.consent.service_layer import consents, identity, key_admin, safe_contact, subjects
from shared.auth import NotPermitted
from shared.crypto import KeyShredded, KeyWrapper, UnknownSubject, derive_key
from shared.db import utcnow
from shared.events.cascade import ErasureApplied, WithdrawalApplied
from shared.events.consent import SafeContact
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import PURPOSES
from tests.support.fakes import memory_database, published
from tests.support.fakes_consent import (
    NHS_NUMBER,
    ORGANISATIONS,
    ConsentFakes,
    actions,
    audited,
    consent_fakes,
    person,
    registered,
    rows,
    service,
    via,
)

OTHER_NUMBER = "4010232137"
CONTACT = SafeContact(phone="07700 900123", times="weekday mornings", may_leave_message=False)


@pytest.fixture
def fakes() -> ConsentFakes:
    return consent_fakes()


def grant(fakes: ConsentFakes, subject_id: str, purpose: str = "peer-mentoring",
          org: str = "trust", recipients: tuple[str, ...] = ()) -> dict[str, object]:
    with fakes.database.unit_of_work() as uow:
        return consents.grant(uow, fakes.cipher, subject_id, purpose,  # type: ignore[arg-type]
                              "verbal", "Nurse Adebayo", person(org), recipients,
                              partners=fakes.partners, trail=fakes.trail, offered=PURPOSES)


def withdraw(fakes: ConsentFakes, subject_id: str, purposes: list[str] | None = None,
             deadline_seconds: float = 60.0, org: str = "trust") -> str:
    with fakes.database.unit_of_work() as uow:
        return consents.withdraw(uow, subject_id, purposes or ["all"], False, "verbal",
                                 person(org), deadline_seconds, trail=fakes.trail)


def erase(fakes: ConsentFakes, subject_id: str) -> None:
    subject_table = metadata.tables["subjects"]
    with fakes.database.unit_of_work() as uow:
        fakes.keys.shred(uow.session, subject_id)
        uow.session.execute(subject_table.update().where(
            subject_table.c.subject_id == subject_id).values(erased_at=utcnow()))


# --- who may do what (domain/callers.py) -----------------------------------------------------

def test_a_service_registering_alone_registers_for_the_one_trust() -> None:
    by = registrar(service("screening"), ORGANISATIONS)
    assert (by.org, by.service, by.org_kind) == ("trust", "screening", "nhs-trust")
    two_trusts = Organisations(trusts=frozenset({"trust", "trust-2"}), partners=frozenset())
    with pytest.raises(NotPermitted):
        registrar(service("screening"), two_trusts)


def test_a_person_through_a_service_is_audited_as_themselves_via_it() -> None:
    by = registrar(via("mentoring", person("partner-a", "partner-staff", subject="staff-3")),
                   ORGANISATIONS)
    assert (by.subject, by.org) == ("staff-3 (via svc-mentoring)", "partner-a")


def test_a_referral_and_a_referral_s_safe_contact_need_a_person_with_a_role() -> None:
    assert referrer(via("mentoring", person())).subject == "staff-1 (via svc-mentoring)"
    assert safe_contact_recorder(via("screening", person())).org == "trust"
    for decide in (referrer, safe_contact_recorder):
        with pytest.raises(NotPermitted, match="On-Behalf-Of"):
            decide(service("mentoring"))
        with pytest.raises(NotPermitted, match="roles"):
            decide(via("mentoring", person("trust", "dpo")))


def test_a_service_audits_only_its_own_actions() -> None:
    assert audit_writer(service("screening"), "screening-results-read").subject == \
        "svc-screening"
    assert audit_writer(via("mentoring", person()), "mentoring-referral-read").org == "trust"
    with pytest.raises(ForeignAuditAction, match="the screening service"):
        audit_writer(service("screening"), "mentoring-referral-read")
    with pytest.raises(NotPermitted):
        audit_writer(service("reporting"), "reporting-read")


# --- registering (subjects.py) ----------------------------------------------------------------

def test_registering_a_new_person_makes_a_key_a_relationship_and_two_events(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)

    assert subject_id.startswith("sub_") and fakes.keys.data_key(subject_id)
    [row] = rows(fakes.database, "subjects")
    assert row.registered_by_org == "trust" and row.nhs_lookup and row.nhs_number_sealed
    assert NHS_NUMBER.encode() not in row.nhs_number_sealed
    [event] = published(fakes.database, "subject-registered")
    assert event.subject == subject_id and event.data["org"] == "trust"
    assert event.data["personal"] is not None
    [related] = published(fakes.database, "relationship-established")
    assert related.data == {"org": "trust", "basis": "registered"}
    assert audited(fakes.database) == [
        ("staff-1", "subject-registered", subject_id, {"identified_by": "nhs-number"})]


def test_registering_again_finds_the_person_and_tells_nobody(fakes: ConsentFakes) -> None:
    first = registered(fakes)
    again = registered(fakes, person("partner-a", "partner-staff"))

    assert again == first
    assert len(published(fakes.database, "subject-registered")) == 1
    assert [e.data["org"] for e in published(fakes.database, "relationship-established")] \
        == ["trust", "partner-a"]
    assert actions(fakes.database) == ["subject-registered", "subject-registered"]


def test_a_local_id_names_a_person_at_its_organisation_only(fakes: ConsentFakes) -> None:
    at_a = registered(fakes, person("partner-a", "partner-staff"), local_id="CL-1")
    at_b = registered(fakes, person("partner-b", "partner-staff"), local_id="CL-1")

    assert at_a != at_b
    assert [e.data["personal"] for e in published(fakes.database, "subject-registered")] \
        == [None, None]
    assert audited(fakes.database)[0][3] == {"identified_by": "local-id"}


def test_an_erased_person_registered_again_is_a_new_subject(fakes: ConsentFakes) -> None:
    before = registered(fakes)
    erase(fakes, before)
    assert registered(fakes) != before


def test_a_data_key_served_is_audited_and_a_shredded_one_refused(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)

    key = subjects.serve_data_key(fakes.database, fakes.keys, subject_id, service("screening"),
                                  trail=fakes.trail)

    assert key == fakes.keys.data_key(subject_id)
    assert audited(fakes.database)[-1] == ("svc-screening", "data-key-served", subject_id, {})
    fakes.keys.shredded.add(subject_id)
    with pytest.raises(KeyShredded):
        subjects.serve_data_key(fakes.database, fakes.keys, subject_id, service("screening"),
                                trail=fakes.trail)
    with pytest.raises(UnknownSubject):
        subjects.serve_data_key(fakes.database, fakes.keys, "sub_" + "0" * 32,
                                service("screening"), trail=fakes.trail)


# --- consents (consents.py) -------------------------------------------------------------------

def test_granting_consent_records_it_publishes_it_sealed_and_audits_it(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)

    change = grant(fakes, subject_id, "partner-sharing", recipients=("partner-a",))

    assert (change["purpose"], change["action"], change["recipients"]) == (
        "partner-sharing", "granted", ["partner-a"])
    [event] = published(fakes.database, "consent-granted")
    assert event.data["consent_id"] == change["change_id"]
    assert (event.data["org"], event.data["recipients"]) == ("trust", ["partner-a"])
    assert "Nurse Adebayo" not in event.to_bytes().decode()
    assert audited(fakes.database)[-1][1:] == ("consent-granted", subject_id, {
        "purpose": "partner-sharing", "method": "verbal", "recipients": "partner-a"})


@pytest.mark.parametrize(("purpose", "recipients", "problem"), [
    ("evaluation", ("partner-a",), "only partner-sharing"),
    ("partner-sharing", (), "must name"),
    ("partner-sharing", ("trust",), "another configured DVA partner"),
])
def test_recipients_are_checked_before_the_person(fakes: ConsentFakes, purpose: str,
                                                   recipients: tuple[str, ...],
                                                   problem: str) -> None:
    with pytest.raises(InvalidRecipients, match=problem):
        grant(fakes, "sub_" + "0" * 32, purpose, recipients=recipients)
    assert rows(fakes.database, "consent_changes") == []


def test_consent_about_a_stranger_or_an_erased_person_is_refused(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    with pytest.raises(consents.SubjectNotFound):
        grant(fakes, subject_id, org="partner-a")
    erase(fakes, subject_id)
    with pytest.raises(consents.SubjectErased):
        grant(fakes, subject_id)
    assert published(fakes.database, "consent-granted") == []


def test_an_organisation_sees_its_own_consents_and_a_service_any_holder_s(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    grant(fakes, subject_id)

    with fakes.database.read() as session:
        own = consents.own_consents(session, subject_id, person())
        held = consents.holder_consents(session, subject_id, "partner-a", service("mentoring"))
        with pytest.raises(consents.SubjectNotFound):
            consents.own_consents(session, subject_id, person("partner-a", "partner-staff"))

    assert own["purposes"]["peer-mentoring"] == "granted"
    assert [c["recorded_by"] for c in own["history"]] == ["Nurse Adebayo"]
    assert held == {"relationship": False, "purposes": {
        "peer-mentoring": "not-recorded", "partner-sharing": "not-recorded",
        "evaluation": "not-recorded", "research": "not-recorded"}, "sharing_recipients": []}


def test_a_referral_to_a_partner_sharing_names_gives_it_a_relationship(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    grant(fakes, subject_id, "partner-sharing", recipients=("partner-a",))
    by = referrer(via("mentoring", person()))

    with fakes.database.unit_of_work() as uow:
        assert consents.establish_referral(uow, subject_id, "partner-a", by,
                                           partners=fakes.partners, trail=fakes.trail)

    [_, referral] = published(fakes.database, "relationship-established")
    assert referral.data == {"org": "partner-a", "basis": "referral"}
    assert audited(fakes.database)[-1] == ("staff-1 (via svc-mentoring)", "referral-made",
                                           subject_id, {"org": "partner-a"})


def test_a_referral_needs_a_partner_that_sharing_names(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    for to_org, refused in (("trust-2", consents.NotAPartner), ("partner-b", consents.NoSharing)):
        with pytest.raises(refused), fakes.database.unit_of_work() as uow:
            consents.establish_referral(uow, subject_id, to_org, person(),
                                        partners=fakes.partners, trail=fakes.trail)
    assert len(published(fakes.database, "relationship-established")) == 1


# --- withdrawals and their cascade (consents.py) ----------------------------------------------

def test_a_withdrawal_is_recorded_at_once_and_waits_for_its_services(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    grant(fakes, subject_id, "partner-sharing", recipients=("partner-a", "partner-b"))

    withdrawal_id = withdraw(fakes, subject_id, ["partner-sharing"])

    [row] = rows(fakes.database, "withdrawals")
    assert (row.withdrawal_id, row.status, row.erasure) == (withdrawal_id, "pending", False)
    [event] = published(fakes.database, "consent-withdrawn")
    assert event.data["purposes"] == ["partner-sharing"]
    assert event.data["recipients"] == ["partner-a", "partner-b"]
    with fakes.database.read() as session:
        state = consents.own_consents(session, subject_id, person())
        view = consents.withdrawal_view(session, withdrawal_id, "trust")
        pending = consents.withdrawals_with_status(session, "pending", "trust")
        assert consents.count_with_status(session, CascadeStatus.PENDING) == 1
        with pytest.raises(consents.WithdrawalNotFound):
            consents.withdrawal_view(session, withdrawal_id, "partner-a")
    assert state["purposes"]["partner-sharing"] == "withdrawn"
    assert set(view["services"]) == {"screening", "mentoring"}
    assert [w["withdrawal_id"] for w in pending] == [withdrawal_id]
    assert audited(fakes.database)[-1][3]["withdrawal_id"] == withdrawal_id


def acknowledge(fakes: ConsentFakes, subject_id: str, withdrawal_id: str, name: str,
                source: str | None = None) -> None:
    ack = WithdrawalApplied(service=name, withdrawal_id=withdrawal_id,
                            purposes=("peer-mentoring",), applied_at=utcnow())
    event = CloudEvent.wrap(ack, source=source or f"/peerlink/{name}", subject=subject_id)
    with fakes.database.unit_of_work() as uow:
        consents.acknowledge(uow, event, ack)


def test_the_last_service_s_acknowledgement_completes_the_withdrawal(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    withdrawal_id = withdraw(fakes, subject_id, ["peer-mentoring", "evaluation"])

    for name in ("mentoring", "mentoring"):
        acknowledge(fakes, subject_id, withdrawal_id, name)
    assert published(fakes.database, "withdrawal-completed") == []
    acknowledge(fakes, subject_id, withdrawal_id, "reporting")

    [completed] = published(fakes.database, "withdrawal-completed")
    assert completed.data["withdrawal_id"] == withdrawal_id
    assert completed.data["services"] == ["mentoring", "reporting"]
    assert len(rows(fakes.database, "withdrawal_acks")) == 2
    assert rows(fakes.database, "withdrawals")[0].status == "complete"


def test_an_acknowledgement_from_another_source_or_for_no_withdrawal_is_refused(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    withdrawal_id = withdraw(fakes, subject_id)
    with pytest.raises(consents.ForeignAcknowledgement):
        acknowledge(fakes, subject_id, withdrawal_id, "mentoring", "/peerlink/screening")
    with pytest.raises(consents.WithdrawalNotFound):
        acknowledge(fakes, subject_id, "wd_" + "0" * 32, "mentoring")
    assert rows(fakes.database, "withdrawal_acks") == []


def test_a_withdrawal_past_its_deadline_becomes_overdue_once(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    withdrawal_id = withdraw(fakes, subject_id, ["evaluation"], deadline_seconds=1)
    later = utcnow() + timedelta(seconds=2)

    with fakes.database.unit_of_work() as uow:
        assert consents.mark_overdue(uow, later) == 1
    with fakes.database.unit_of_work() as uow:
        assert consents.mark_overdue(uow, later) == 0

    [overdue] = published(fakes.database, "withdrawal-overdue")
    assert overdue.data["withdrawal_id"] == withdrawal_id
    assert overdue.data["pending_services"] == ["reporting"]


def test_an_erasure_acknowledgement_does_not_complete_the_withdrawal(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    withdrawal_id = withdraw(fakes, subject_id, ["evaluation"])
    ack = ErasureApplied(service="reporting", withdrawal_id=withdrawal_id,
                         purposes=("evaluation",), applied_at=utcnow(), retained_records=0)
    with fakes.database.unit_of_work() as uow:
        consents.acknowledge(uow, CloudEvent.wrap(ack, source="/peerlink/reporting",
                                                  subject=subject_id), ack)
    assert published(fakes.database, "withdrawal-completed") == []
    assert rows(fakes.database, "withdrawal_acks")[0].kind == "erasure-applied"


# --- identity (identity.py) -------------------------------------------------------------------

def test_an_nhs_number_linked_later_waits_for_the_dpo(fakes: ConsentFakes) -> None:
    staff = person("partner-a", "partner-staff")
    subject_id = registered(fakes, staff, local_id="CL-7")
    pseudonym_before = rows(fakes.database, "subjects")[0].safeguarding_pseudonym

    with fakes.database.unit_of_work() as uow:
        outcome = identity.link_nhs_number(uow, fakes.keys, fakes.identifiers, subject_id,
                                           NHS_NUMBER, staff, trail=fakes.trail)

    assert outcome == "needs-reconciliation"
    [row] = rows(fakes.database, "subjects")
    assert row.nhs_lookup is None
    assert row.safeguarding_pseudonym == fakes.identifiers.pseudonyms.of_nhs_number(NHS_NUMBER)
    assert row.safeguarding_pseudonym != pseudonym_before
    [rec] = rows(fakes.database, "identity_reconciliations")
    assert (rec.reason, rec.status, rec.org) == ("nhs-number-unclaimed", "open", "partner-a")
    assert audited(fakes.database)[-1][3] == {"outcome": "needs-reconciliation",
                                              "reconciliation_id": rec.reconciliation_id}


def test_linking_the_number_a_subject_has_changes_nothing(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    with fakes.database.unit_of_work() as uow:
        assert identity.link_nhs_number(uow, fakes.keys, fakes.identifiers, subject_id,
                                        NHS_NUMBER, person(), trail=fakes.trail) \
            == "already-linked"
    assert rows(fakes.database, "identity_reconciliations") == []


def test_the_dpo_lists_and_links_an_open_reconciliation(fakes: ConsentFakes) -> None:
    staff, dpo = person("partner-a", "partner-staff"), person("partner-a", "dpo")
    subject_id = registered(fakes, staff, local_id="CL-7")
    with fakes.database.unit_of_work() as uow:
        identity.link_nhs_number(uow, fakes.keys, fakes.identifiers, subject_id, NHS_NUMBER,
                                 staff, trail=fakes.trail)

    with fakes.database.unit_of_work() as uow:
        [listed] = identity.open_reconciliations(uow, fakes.keys, dpo, trail=fakes.trail)
    with fakes.database.unit_of_work() as uow:
        resolved = identity.resolve_reconciliation(
            uow, fakes.keys, fakes.identifiers, listed["reconciliation_id"], "link",
            "checked with the client", dpo, trail=fakes.trail)

    assert (listed["subject_id"], listed["nhs_number"]) == (subject_id, NHS_NUMBER)
    assert resolved == (subject_id, "linked")
    assert rows(fakes.database, "subjects")[0].nhs_lookup == \
        fakes.identifiers.lookup.digest(NHS_NUMBER)
    assert rows(fakes.database, "identity_reconciliations")[0].status == "linked"
    assert registered(fakes) == subject_id, "registering the number now finds the person"
    with pytest.raises(identity.ReconciliationNotFound), \
            fakes.database.unit_of_work() as uow:
        identity.resolve_reconciliation(uow, fakes.keys, fakes.identifiers,
                                        listed["reconciliation_id"], "link", "again", dpo,
                                        trail=fakes.trail)


def test_a_rejected_link_puts_the_pseudonym_back(fakes: ConsentFakes) -> None:
    staff, dpo = person("partner-a", "partner-staff"), person("partner-a", "dpo")
    subject_id = registered(fakes, staff, local_id="CL-7")
    before = rows(fakes.database, "subjects")[0].safeguarding_pseudonym
    with fakes.database.unit_of_work() as uow:
        identity.link_nhs_number(uow, fakes.keys, fakes.identifiers, subject_id, NHS_NUMBER,
                                 staff, trail=fakes.trail)
    [rec] = rows(fakes.database, "identity_reconciliations")

    with fakes.database.unit_of_work() as uow:
        assert identity.resolve_reconciliation(
            uow, fakes.keys, fakes.identifiers, rec.reconciliation_id, "reject",
            "another person", dpo, trail=fakes.trail) == (subject_id, "rejected")

    assert rows(fakes.database, "subjects")[0].safeguarding_pseudonym == before
    assert audited(fakes.database)[-1][3]["status"] == "rejected"


def test_the_safeguarding_pseudonym_is_served_to_services_until_erasure(
        fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    with fakes.database.unit_of_work() as uow:
        pseudonym = identity.safeguarding_pseudonym(uow, fakes.keys, fakes.identifiers,
                                                    subject_id, service("screening"),
                                                    trail=fakes.trail)
    assert pseudonym == fakes.identifiers.pseudonyms.of_nhs_number(NHS_NUMBER)
    assert audited(fakes.database)[-1][1:] == ("safeguarding-pseudonym-served", subject_id,
                                               {"found": True})
    erase(fakes, subject_id)
    with pytest.raises(identity.Erased), fakes.database.unit_of_work() as uow:
        identity.safeguarding_pseudonym(uow, fakes.keys, fakes.identifiers, subject_id,
                                        service("screening"), trail=fakes.trail)


# --- safe contact (safe_contact.py) -----------------------------------------------------------

def test_safe_contact_is_each_organisation_s_own_sealed_copy(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    registered(fakes, person("partner-a", "partner-staff"))

    with fakes.database.unit_of_work() as uow:
        at = safe_contact.update_safe_contact(uow, fakes.keys, subject_id, CONTACT, person(),
                                              trail=fakes.trail)
    with fakes.database.unit_of_work() as uow:
        own = safe_contact.read_safe_contact(uow, fakes.keys, subject_id, person(),
                                             trail=fakes.trail)
    with fakes.database.unit_of_work() as uow:
        other = safe_contact.read_safe_contact(uow, fakes.keys, subject_id,
                                               person("partner-a", "partner-staff"),
                                               trail=fakes.trail)

    assert (own.contact, own.updated_at) == (CONTACT, at)
    assert (other.contact, other.updated_at) == (None, None)
    [row] = rows(fakes.database, "safe_contacts")
    assert row.org == "trust" and b"07700" not in row.safe_contact_sealed
    [event] = published(fakes.database, "safe-contact-updated")
    assert event.data["org"] == "trust" and "07700" not in event.to_bytes().decode()
    assert actions(fakes.database)[-3:] == ["safe-contact-updated", "safe-contact-read",
                                            "safe-contact-read"]
    assert [d for *_, d in audited(fakes.database)[-2:]] == [{"recorded": True},
                                                             {"recorded": False}]


def test_safe_contact_of_an_erased_person_is_refused(fakes: ConsentFakes) -> None:
    subject_id = registered(fakes)
    erase(fakes, subject_id)
    with pytest.raises(identity.Erased), fakes.database.unit_of_work() as uow:
        safe_contact.update_safe_contact(uow, fakes.keys, subject_id, CONTACT, person(),
                                         trail=fakes.trail)
    assert rows(fakes.database, "safe_contacts") == []


# --- key administration (key_admin.py), on the real key store over memory --------------------

def test_rotation_rewraps_every_live_key_and_recomputes_the_lookups() -> None:
    old, new = os.urandom(32), os.urandom(32)
    fakes = consent_fakes()
    database = memory_database(metadata)
    keys = SqlDataKeyStore(database, KeyWrapper(derive_key(old, "data-key wrapping")))
    lookup = NhsNumberLookup(derive_key(old, "nhs-number lookup"))
    identifiers = subjects.Identifiers(lookup, fakes.identifiers.pseudonyms)
    with database.unit_of_work() as uow:
        kept = subjects.register_subject(uow, keys, identifiers, person(),
                                         nhs_number=NHS_NUMBER, trail=fakes.trail).subject_id
        shredded = subjects.register_subject(uow, keys, identifiers, person(),
                                             nhs_number=OTHER_NUMBER,
                                             trail=fakes.trail).subject_id
        key_before = keys.data_key_in(uow.session, kept)
        keys.shred(uow.session, shredded)

    with database.unit_of_work() as uow:
        done = key_admin.rotate_master_key(uow, old, new)

    assert (done.data_keys, done.lookups) == (1, 1)
    rotated = SqlDataKeyStore(database, KeyWrapper(derive_key(new, "data-key wrapping")))
    with database.read() as session:
        assert rotated.data_key_in(session, kept).material == key_before.material
    lookups = [r.nhs_lookup for r in rows(database, "subjects") if r.subject_id == kept]
    assert lookups == [NhsNumberLookup(derive_key(new, "nhs-number lookup"))
                       .digest(NHS_NUMBER)]


def test_shredding_is_reapplied_to_keys_a_restore_brought_back() -> None:
    fakes = consent_fakes()
    database = memory_database(metadata)
    keys = SqlDataKeyStore(database, KeyWrapper(os.urandom(32)))
    with database.unit_of_work() as uow:
        subject_id = subjects.register_subject(uow, keys, fakes.identifiers, person(),
                                               nhs_number=NHS_NUMBER,
                                               trail=fakes.trail).subject_id
        safe_contact_table = metadata.tables["safe_contacts"]
        uow.session.execute(safe_contact_table.insert().values(
            subject_id=subject_id, org="trust", safe_contact_sealed=b"sealed",
            updated_at=utcnow()))

    with database.unit_of_work() as uow:
        assert key_admin.reapply_shredding(uow, {subject_id}) == 1
    with database.unit_of_work() as uow:
        assert key_admin.reapply_shredding(uow, {subject_id}) == 0

    with database.read() as session:
        wrapped = session.execute(select(data_keys.c.wrapped_key)).scalar_one()
    [row] = rows(database, "subjects")
    assert wrapped is None and row.erased_at is not None
    assert (row.nhs_lookup, row.nhs_number_sealed, row.safeguarding_pseudonym) == (
        None, None, None)
    assert rows(database, "safe_contacts") == []

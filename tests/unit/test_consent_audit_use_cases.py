"""Consent's audit trail use cases (service_layer/audit.py) with the heads and keys faked:
entries appended in a keyed chain, read by the DPO (audited), written by services for their own
actions only, verified against the published heads, and the heads published when they move."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from services.consent.adapters.tables import audit_log
from services.consent.domain.audit import GENESIS
from services.consent.domain.callers import ForeignAuditAction
from services.consent.service_layer import audit
from shared.auth import NotPermitted
from tests.support.fakes_consent import (
    ConsentFakes,
    audited,
    consent_fakes,
    person,
    rows,
    service,
    via,
)

DPO = person("trust", "dpo", subject="dpo-1")
SUBJECT = "sub_" + "1" * 32


@pytest.fixture
def fakes() -> ConsentFakes:
    return consent_fakes()


def record(fakes: ConsentFakes, action: str = "subject-registered", org: str = "trust") -> None:
    with fakes.database.unit_of_work() as uow:
        fakes.trail.record(uow, person(org), action, SUBJECT, identified_by="nhs-number")


def test_each_entry_is_chained_to_the_previous_one(fakes: ConsentFakes) -> None:
    record(fakes)
    record(fakes, "consent-granted")

    first, second = rows(fakes.database, "audit_log")
    assert (first.seq, first.prev_hash, second.seq) == (1, GENESIS, 2)
    assert second.prev_hash == first.hash
    [head] = rows(fakes.database, "audit_head")
    assert (head.seq, head.hash) == (2, second.hash)


def test_the_dpo_reads_their_organisation_s_entries_and_the_read_shows(
        fakes: ConsentFakes) -> None:
    record(fakes)
    record(fakes, org="partner-a")

    entries = audit.read_trail(fakes.database, DPO, SUBJECT, trail=fakes.trail)

    assert [(e["actor_org"], e["action"]) for e in entries] == [
        ("trust", "subject-registered"), ("trust", "audit-read")]
    assert "seq" not in entries[0] and "hash" not in entries[0]


def test_a_service_records_its_own_accesses_naming_who_acted(fakes: ConsentFakes) -> None:
    with fakes.database.unit_of_work() as uow:
        audit.record_for_service(uow, service("screening"), "screening-enquiry-adopted",
                                 SUBJECT, {"enquiry": 3}, trail=fakes.trail)
        audit.record_for_service(uow, via("mentoring", person(subject="nurse-9")),
                                 "mentoring-referral-read", None, {}, trail=fakes.trail)

    assert audited(fakes.database) == [
        ("svc-screening", "screening-enquiry-adopted", SUBJECT, {"enquiry": 3}),
        ("nurse-9 (via svc-mentoring)", "mentoring-referral-read", None, {})]


@pytest.mark.parametrize(("caller", "action", "refused"), [
    (service("screening"), "mentoring-referral-read", ForeignAuditAction),
    (service("reporting"), "reporting-read", NotPermitted),
    (via("reporting", person()), "reporting-read", NotPermitted),
])
def test_a_service_never_records_what_it_may_not(fakes: ConsentFakes, caller: object,
                                                  action: str, refused: type[Exception]
                                                  ) -> None:
    with pytest.raises(refused), fakes.database.unit_of_work() as uow:
        audit.record_for_service(uow, caller, action, None, {},  # type: ignore[arg-type]
                                 trail=fakes.trail)
    assert rows(fakes.database, "audit_log") == []


def test_verification_agrees_with_the_published_heads_and_is_audited(
        fakes: ConsentFakes) -> None:
    record(fakes)
    publisher = audit.HeadPublisher(fakes.database, fakes.trail, fakes.heads.publish)
    assert publisher.publish_if_moved() is not None
    assert publisher.publish_if_moved() is None, "a head that did not move is not published"

    result = audit.verify(fakes.database, fakes.heads, DPO, trail=fakes.trail)

    assert (result.valid, result.heads_checked, result.chain.entries) == (True, 1, 1)
    assert audited(fakes.database)[-1][1:] == ("audit-verified", None,
                                               {"valid": True, "heads_checked": 1})


def test_unreadable_heads_leave_the_trail_unconfirmed(fakes: ConsentFakes) -> None:
    record(fakes)
    fakes.heads.available = False

    result = audit.verify(fakes.database, fakes.heads, DPO, trail=fakes.trail)

    assert result.chain.valid and not result.valid
    assert (result.heads_checked, result.heads_problem) == (None,
                                                            "the heads topic did not answer")
    assert audited(fakes.database)[-1][3] == {"valid": False, "heads_checked": None}


def test_an_altered_entry_fails_verification_where_it_was_altered(fakes: ConsentFakes) -> None:
    record(fakes)
    record(fakes, "consent-granted")
    with fakes.database.unit_of_work() as uow:
        uow.session.execute(update(audit_log).where(audit_log.c.seq == 2)
                            .values(action="consent-withdrawn"))

    result = audit.verify(fakes.database, fakes.heads, DPO, trail=fakes.trail)

    assert (result.valid, result.chain.first_broken_seq) == (False, 2)

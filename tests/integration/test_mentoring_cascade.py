"""Mentoring's part in the consent cascade, on both databases, with a real consent service.

The effects are called as the worker calls them, in one unit of work each: withdrawal of
peer-mentoring ends the active match as unplanned, cancels waitlisted referrals, keeps the
safe contact (records key) and gives the freed mentor to the next person waiting; withdrawal of
partner-sharing by the referrer takes the referral's details away from the recipients it
names; both reach only what rested on the withdrawing organisation's consent; erasure
deletes the personal data but keeps safeguarding concerns, flagged for the DPO. The wiring to
Kafka and the acknowledgements are covered in tests/e2e/test_mentoring_journey.py and
tests/e2e/test_cascade.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.api import build_api as mentoring_api
from services.mentoring.service_layer.cascade import MentoringCascade
from shared.events.envelope import CloudEvent
from tests.support.mentoring import PHONE, Mentoring, beside_consent

CONCERN = "said her ex-partner has been waiting outside the school gates"
BOTH = ("partner-a", "partner-b")


@pytest.fixture
def mentoring(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[Mentoring]:
    yield from beside_consent(database_url, tmp_path, monkeypatch)


# --- peer-mentoring withdrawn ----------------------------------------------------------------

def test_peer_mentoring_withdrawal_ends_cancels_keeps_the_safe_contact_and_frees_the_mentor(
        mentoring: Mentoring) -> None:
    mentor_id = mentoring.mentor(capacity=1)
    leaving = mentoring.person(sharing_with=BOTH)
    first = mentoring.refer(leaving)
    match_id = mentoring.match(first)["match_id"]
    second = mentoring.refer(leaving)               # the same person, waiting for a second
    assert mentoring.match(second)["status"] == "waitlisted"
    waiting = mentoring.person(sharing_with=BOTH)                    # someone else, referred later
    theirs = mentoring.refer(waiting)
    assert mentoring.match(theirs)["status"] == "waitlisted"
    before = len(mentoring.outbox())

    mentoring.withdraw(leaving, ("peer-mentoring",))

    [ended] = [m for m in mentoring.rows("matches") if m.match_id == match_id]
    assert (ended.status, ended.planned) == ("ended", False)
    assert mentoring.referral_row(first).status == "ended"
    assert mentoring.referral_row(second).status == "cancelled"
    for kept in (mentoring.referral_row(first), mentoring.referral_row(second)):
        assert (kept.safe_contact_sealed, kept.safe_contact_kept is not None) == (None, True)

    new = mentoring.outbox()[before:]
    assert [r.event_type for r in new] == ["mentoring-ended", "match-made"]
    ending = CloudEvent.from_bytes(new[0].payload)
    assert ending.subject == new[0].aggregate_id == leaving
    assert ending.data["match_id"] == match_id
    assert ending.data["planned"] is False
    assert b"consent withdrawn" not in new[0].payload  # the mentor sees only that it ended
    made = CloudEvent.from_bytes(new[1].payload)
    assert made.subject == waiting
    assert (made.data["referral_id"], made.data["mentor_id"]) == (theirs, mentor_id)
    assert made.data["waitlisted"] is True

    assert mentoring.referral(theirs)["mentor_id"] == mentor_id
    assert mentoring.referral_row(theirs).safe_contact_kept is not None
    assert mentoring.referral(theirs)["safe_contact"][
        "phone"] == PHONE
    # kept with the safeguarding records, still shown to the receiving coordinators only
    assert mentoring.referral(first)["safe_contact"][
        "phone"] == PHONE
    assert mentoring.referral_response(first, mentoring.clinician).json()["safe_contact"] is None


def test_withdrawing_again_changes_nothing(mentoring: Mentoring) -> None:
    mentoring.mentor(capacity=1)
    leaving = mentoring.person(sharing_with=BOTH)
    mentoring.match(mentoring.refer(leaving))
    mentoring.withdraw(leaving, ("peer-mentoring",))
    outbox, referrals = len(mentoring.outbox()), mentoring.rows("referrals")

    mentoring.withdraw(leaving, ("peer-mentoring",))
    assert len(mentoring.outbox()) == outbox
    assert mentoring.rows("referrals") == referrals


def test_withdrawing_another_purpose_leaves_mentoring_alone(mentoring: Mentoring) -> None:
    mentoring.mentor(capacity=1)
    person = mentoring.person(sharing_with=BOTH)
    referral_id = mentoring.refer(person)
    mentoring.match(referral_id)
    before = len(mentoring.outbox())

    mentoring.withdraw(person, ("evaluation",))
    assert len(mentoring.outbox()) == before
    row = mentoring.referral_row(referral_id)
    assert (row.status, row.sharing_withdrawn) == ("matched", False)
    assert row.safe_contact_kept is not None


# --- partner-sharing withdrawn -------------------------------------------------------------

def test_partner_sharing_withdrawal_takes_the_referral_from_the_named_recipient(
        mentoring: Mentoring) -> None:
    mentoring.mentor(capacity=1)
    person = mentoring.person(sharing_with=BOTH)
    referral_id = mentoring.refer(person)
    match_id = mentoring.match(referral_id)["match_id"]
    assert mentoring.referral_response(referral_id, mentoring.coordinator).status_code == 200

    mentoring.withdraw(person, ("partner-sharing",), recipients=("partner-a",))

    refused = mentoring.referral_response(referral_id, mentoring.coordinator)
    assert refused.status_code == 403
    assert PHONE not in refused.text
    assert "partner-sharing" in refused.json()["message"]
    assert mentoring.referral_response(referral_id,
                              mentoring.as_("partner-a", "partner-staff")).status_code == 403
    # the Trust referred: it still sees its referral
    kept = mentoring.referral_response(referral_id, mentoring.clinician)
    assert kept.status_code == 200
    assert (kept.json()["status"], kept.json()["match_id"]) == ("matched", None), \
        "the referrer sees the status, never the receiver's match"
    assert match_id
    # mentoring itself goes on: only sharing was withdrawn
    assert [m.status for m in mentoring.rows("matches")] == ["active"]


def test_partner_sharing_withdrawal_reaches_only_the_holders_referrals_to_the_recipients(
        mentoring: Mentoring) -> None:
    mentoring.mentor(org="partner-a", capacity=1)
    mentoring.mentor(org="partner-b", capacity=1)
    person = mentoring.person(sharing_with=BOTH)
    to_a = mentoring.refer(person, to_org="partner-a")
    to_b = mentoring.refer(person, to_org="partner-b")
    coordinator_b = mentoring.as_("partner-b", "mentor-coordinator")

    mentoring.withdraw(person, ("partner-sharing",), org="partner-b",
                       recipients=("partner-a",))  # another holder's consent: not the Trust's
    assert mentoring.referral_response(to_a, mentoring.coordinator).status_code == 200

    mentoring.withdraw(person, ("partner-sharing",), recipients=("partner-a",))
    assert mentoring.referral_response(to_a, mentoring.coordinator).status_code == 403
    assert mentoring.referral_row(to_a).sharing_withdrawn is True
    still = mentoring.referral_response(to_b, coordinator_b)
    assert still.status_code == 200
    assert still.json()["safe_contact"]["phone"] == PHONE
    assert mentoring.referral_row(to_b).sharing_withdrawn is False
    assert mentoring.match(to_b, "partner-b")["status"] == "matched"
    refused = mentoring.client.post(f"/v1/referrals/{to_a}/match",
                                    headers=mentoring.coordinator)
    assert refused.status_code == 403


def test_a_waitlisted_referral_is_not_handed_to_a_receiver_that_lost_sharing(
        mentoring: Mentoring) -> None:
    person = mentoring.person(sharing_with=BOTH)
    waiting = mentoring.refer(person)
    assert mentoring.match(waiting)["status"] == "waitlisted"
    mentoring.withdraw(person, ("partner-sharing",), recipients=("partner-a",))

    mentoring.mentor(capacity=1)  # partner-a gains a matchable mentor: its waitlist is tried
    assert mentoring.referral_row(waiting).status == "waitlisted"
    assert "match-made" not in [r.event_type for r in mentoring.outbox()]


def test_peer_mentoring_withdrawal_by_an_unrelated_organisation_leaves_the_match(
        mentoring: Mentoring) -> None:
    mentoring.mentor(capacity=1)
    person = mentoring.person(sharing_with=BOTH)
    referral_id = mentoring.refer(person)
    match_id = mentoring.match(referral_id)["match_id"]
    before = len(mentoring.outbox())

    mentoring.withdraw(person, ("peer-mentoring",), org="partner-b")
    assert [(m.match_id, m.status) for m in mentoring.rows("matches")] == [(match_id, "active")]
    assert mentoring.referral_row(referral_id).safe_contact_kept is not None
    assert len(mentoring.outbox()) == before

    mentoring.withdraw(person, ("peer-mentoring",), org="partner-a")  # the receiver's
    assert [m.status for m in mentoring.rows("matches")] == ["ended"]


# --- erasure -----------------------------------------------------------------------------

def test_erasure_deletes_personal_data_and_keeps_concerns_and_safe_contact_for_the_dpo(
        mentoring: Mentoring) -> None:
    mentoring.mentor(capacity=2)
    erased = mentoring.person(sharing_with=BOTH)
    referral_id = mentoring.refer(erased)
    match_id = mentoring.match(referral_id)["match_id"]
    concern_id = mentoring.concern(match_id, CONCERN)
    other = mentoring.person(sharing_with=BOTH)
    other_match = mentoring.match(mentoring.refer(other))["match_id"]
    other_concern = mentoring.concern(other_match, CONCERN)
    assert mentoring.dpo_queue() == []

    assert mentoring.erase(erased) == 1

    row = mentoring.referral_row(referral_id)
    assert (row.subject_id, row.safe_contact_sealed) == (None, None)
    assert row.safe_contact_kept is not None
    assert mentoring.referral(referral_id)["safe_contact"] is None
    [ended] = [m for m in mentoring.rows("matches") if m.match_id == match_id]
    assert (ended.status, ended.planned, ended.end_reason_sealed) == ("ended", False, None)
    concerns = {c.concern_id: c for c in mentoring.rows("safeguarding_concerns")}
    assert concerns[concern_id].subject_id == erased
    assert concerns[concern_id].flagged_for_dpo_at is not None
    assert concerns[other_concern].flagged_for_dpo_at is None
    [flagged] = mentoring.dpo_queue()
    assert flagged["id"] == concern_id
    assert flagged["flagged_for_dpo"] is True
    assert flagged["subject_id"] == erased
    assert erased not in {r.subject_id for r in mentoring.rows("referrals")}

    state = {t: mentoring.rows(t) for t in ("referrals", "matches", "safeguarding_concerns")}
    outbox = mentoring.outbox()
    assert mentoring.erase(erased) == 1
    assert {t: mentoring.rows(t) for t in state} == state
    assert mentoring.outbox() == outbox


def test_erasing_someone_with_no_concern_keeps_only_the_referrals_safe_contact(
        mentoring: Mentoring) -> None:
    mentoring.mentor(capacity=1)
    erased = mentoring.person(sharing_with=BOTH)
    referral_id = mentoring.refer(erased)
    assert mentoring.match(referral_id)["status"] == "matched"
    assert mentoring.erase(erased) == 0
    assert mentoring.referral_row(referral_id).subject_id is None
    assert mentoring.referral_row(referral_id).safe_contact_kept is not None
    assert mentoring.dpo_queue() == []


def test_erasure_frees_the_mentor_for_the_waitlist(mentoring: Mentoring) -> None:
    mentor_id = mentoring.mentor(capacity=1)
    erased = mentoring.person(sharing_with=BOTH)
    mentoring.match(mentoring.refer(erased))
    waiting = mentoring.refer(mentoring.person(sharing_with=BOTH))
    assert mentoring.match(waiting)["status"] == "waitlisted"

    mentoring.erase(erased)
    assert mentoring.referral(waiting)["mentor_id"] == mentor_id


# --- erasure as it really happens: the consent service shreds the key first ------------------

def erase_in_consent(mentoring: Mentoring, subject_id: str) -> MentoringAdapters:
    """Erase the person in the consent service (the data key is shredded there at once) and
    return a fresh mentoring service, like the worker, with no key cached."""
    response = mentoring.consent.post(
        f"/v1/subjects/{subject_id}/withdrawals",
        json={"purposes": ["all"], "erasure": True, "method": "verbal"},
        headers=mentoring.clinician)
    assert response.status_code == 202, response.text
    return MentoringAdapters(mentoring.service.settings)


def test_erasure_after_the_key_is_shredded_ends_the_active_match(
        mentoring: Mentoring) -> None:
    mentoring.mentor(capacity=1)
    erased = mentoring.person(sharing_with=BOTH)
    referral_id = mentoring.refer(erased)
    match_id = mentoring.match(referral_id)["match_id"]
    worker = erase_in_consent(mentoring, erased)

    with worker.database.unit_of_work() as uow:
        MentoringCascade(worker.cipher, worker.records, worker.rules).withdrawn(
            uow, erased, ("peer-mentoring", "partner-sharing"))
    assert mentoring.erase(erased, worker) == 0

    [ended] = [m for m in mentoring.rows("matches") if m.match_id == match_id]
    assert (ended.status, ended.planned) == ("ended", False)
    assert mentoring.referral_row(referral_id).subject_id is None


def test_a_kept_concern_is_still_readable_after_the_key_is_shredded(
        mentoring: Mentoring) -> None:
    mentoring.mentor(capacity=1)
    erased = mentoring.person(sharing_with=BOTH)
    match_id = mentoring.match(mentoring.refer(erased))["match_id"]
    concern_id = mentoring.concern(match_id, CONCERN)
    ended = mentoring.client.post(f"/v1/matches/{match_id}/end", json={"planned": True},
                                  headers=mentoring.coordinator)
    assert ended.status_code == 200, ended.text  # no active match: the erasure can run
    worker = erase_in_consent(mentoring, erased)

    assert mentoring.erase(erased, worker) == 1
    reader = MentoringAdapters(mentoring.service.settings)
    response = TestClient(mentoring_api(reader)).get(
        "/v1/safeguarding-concerns", params={"flagged_for_dpo": "true", "status": "open"},
        headers=mentoring.as_("trust", "dpo"))
    [concern] = response.json()["concerns"]
    assert concern["id"] == concern_id
    assert concern["concern_details"] == CONCERN

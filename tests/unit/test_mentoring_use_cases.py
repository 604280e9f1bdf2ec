"""Mentoring's use cases (services/mentoring/service_layer/mentoring.py) with their
collaborators in memory: state written, events published, who is refused and what is
audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.mentoring.adapters.tables import referrals
from services.mentoring.service_layer import mentoring
from services.mentoring.service_layer.commands import EndMatch, RecordOutcome, RecordSupervision
from services.mentoring.service_layer.errors import NotActive, NotFound
from shared.auth import NotPermitted
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.events.consent import SafeContact
from tests.support.fakes import consent_down, published
from tests.support.fakes_mentoring import (
    CLINICIAN,
    COORDINATOR,
    PARTNER_STAFF,
    PHONE,
    TODAY,
    MentoringWorld,
    caller,
    mentor_command,
    referral_command,
    session_command,
)

NEW_CONTACT = SafeContact(phone="07700 900419", times="after six", may_leave_message=True)
WEMWBS = [3] * 14


@pytest.fixture
def world() -> MentoringWorld:
    return MentoringWorld()


# --- mentors --------------------------------------------------------------------------------

def test_registering_a_mentor_writes_them_and_publishes_no_name(world: MentoringWorld) -> None:
    with world.database.unit_of_work() as uow:
        view = mentoring.register_mentor(uow, mentor_command(), "partner-a", TODAY, world.rules)

    assert (view["org"], view["matchable"], view["current_mentees"]) == ("partner-a", True, 0)
    assert world.row("mentors", mentor_id=view["id"]).display_name == "Robin Achterberg"
    [event] = published(world.database, "mentor-registered")
    assert event.subject == view["id"] and event.data["org"] == "partner-a"
    assert "display_name" not in event.data


def test_a_coordinator_registers_mentors_of_their_own_organisation_only(
        world: MentoringWorld) -> None:
    with pytest.raises(NotPermitted), world.database.unit_of_work() as uow:
        mentoring.register_mentor(uow, mentor_command("partner-b"), "partner-a", TODAY,
                                  world.rules)
    assert world.rows("mentors") == []


def test_a_new_mentor_is_matched_with_the_waitlist_at_once(world: MentoringWorld) -> None:
    referral_id = world.refer(world.person())
    assert world.match(referral_id)["status"] == "waitlisted"

    mentor_id = world.mentor()

    assert world.row("matches", referral_id=referral_id).mentor_id == mentor_id
    assert [e.data["waitlisted"] for e in published(world.database, "match-made")] == [True]


def test_mentors_are_listed_and_read_by_their_own_organisation_only(
        world: MentoringWorld) -> None:
    mine, theirs = world.mentor(), world.mentor("partner-b")
    with world.database.read() as session:
        listed = mentoring.list_mentors(session, "partner-a", TODAY, world.rules)
        one = mentoring.get_mentor(session, mine, "partner-a", TODAY, world.rules)
        with pytest.raises(NotFound):
            mentoring.get_mentor(session, theirs, "partner-a", TODAY, world.rules)
    assert [m["id"] for m in listed] == [mine]
    assert (one["id"], one["languages"]) == (mine, ["en"])


def test_supervision_keeps_the_latest_date_and_makes_the_mentor_matchable(
        world: MentoringWorld) -> None:
    mentor_id = world.mentor(supervision_held_on=None)
    referral_id = world.refer(world.person())
    world.match(referral_id)
    held_on = TODAY - timedelta(days=1)

    with world.database.unit_of_work() as uow:
        view = mentoring.record_supervision(uow, mentor_id, "partner-a",
                                            RecordSupervision(held_on=held_on), TODAY,
                                            world.rules, world.intervention)
    with world.database.unit_of_work() as uow:
        older = mentoring.record_supervision(
            uow, mentor_id, "partner-a", RecordSupervision(held_on=held_on - timedelta(days=9)),
            TODAY, world.rules, world.intervention)

    assert view["matchable"] is True and view["current_mentees"] == 1
    assert older["last_supervision_on"] == held_on
    assert world.row("referrals", referral_id=referral_id).status == "matched"


def test_a_status_change_is_published_once_and_rematches(world: MentoringWorld) -> None:
    mentor_id = world.mentor(status="paused")
    referral_id = world.refer(world.person())
    world.match(referral_id)

    for _ in range(2):
        with world.database.unit_of_work() as uow:
            view = mentoring.change_status(uow, mentor_id, "partner-a", "active", TODAY,
                                           world.rules)

    [event] = published(world.database, "mentor-status-changed")
    assert (event.data["previous_status"], event.data["status"]) == ("paused", "active")
    assert view["current_mentees"] == 1
    with pytest.raises(NotFound), world.database.unit_of_work() as uow:
        mentoring.change_status(uow, mentor_id, "partner-b", "left", TODAY, world.rules)


# --- referrals ------------------------------------------------------------------------------

def test_a_referral_is_written_sealed_and_published_without_the_contact_in_clear(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    view = mentoring.refer(world.database, world.consent, world.keys, world.cipher,
                           world.records, world.partners, referral_command(subject_id),
                           CLINICIAN, TODAY)

    assert (view["status"], view["safe_contact"], view["match_id"]) == ("referred", None, None)
    row = world.row("referrals", referral_id=view["id"])
    assert (row.subject_id, row.to_org, row.safe_contact_kept is not None) == (
        subject_id, "partner-a", True)
    [event] = published(world.database, "mentee-referred")
    assert event.subject == subject_id and PHONE not in event.model_dump_json()
    assert event.data["personal"]["ciphertext"]
    assert world.consent.referrals == [(subject_id, "trust", "partner-a")]


def test_a_referral_by_nhs_number_registers_the_person(world: MentoringWorld) -> None:
    command = referral_command(world.person()).model_copy(
        update={"subject_id": None, "nhs_number": next(world.numbers)})
    with pytest.raises(mentoring.ConsentRequired) as refused:
        mentoring.refer(world.database, world.consent, world.keys, world.cipher,
                        world.records, world.partners, command, CLINICIAN, TODAY)
    assert refused.value.error == "consent-required"  # registered now, with no consent yet
    assert world.rows("referrals") == []


@pytest.mark.parametrize(("change", "refusal"), [
    ({"referred_by_org": "partner-b"}, NotPermitted),
    ({"to_org": "trust"}, mentoring.NotAPartner),
])
def test_a_referral_for_another_organisation_or_to_a_non_partner_is_refused(
        world: MentoringWorld, change: dict[str, str], refusal: type[Exception]) -> None:
    command = referral_command(world.person()).model_copy(update=change)
    with pytest.raises(refusal) as refused:
        mentoring.refer(world.database, world.consent, world.keys, world.cipher,
                        world.records, world.partners, command, CLINICIAN, TODAY)
    if refusal is mentoring.NotAPartner:
        assert str(refused.value).endswith("partner-a, partner-b")
    assert world.rows("referrals") == []


@pytest.mark.parametrize(("peer_mentoring", "sharing_allowed", "error"), [
    (False, True, "consent-required"),
    (True, False, "sharing-required"),
])
def test_a_referral_needs_the_referrers_consents(
        world: MentoringWorld, peer_mentoring: bool, sharing_allowed: bool, error: str) -> None:
    subject_id = world.person(peer_mentoring=peer_mentoring)
    world.consent.sharing_allowed = sharing_allowed
    with pytest.raises(mentoring.ConsentRequired) as refused:
        world.refer(subject_id)
    assert refused.value.error == error
    assert world.rows("referrals") == [] and published(world.database) == []


def test_a_referral_of_someone_unknown_or_erased_writes_nothing(world: MentoringWorld) -> None:
    stranger = world.consent.register(next(world.numbers), caller("partner-b", "clinician"))
    with pytest.raises(UnknownSubject):
        world.refer(stranger)  # the Trust has no relationship with them
    erased = world.person()
    world.consent.shred(erased)
    with pytest.raises(KeyShredded):
        world.refer(erased)
    with consent_down(world.consent), pytest.raises(KeyStoreUnavailable):
        world.refer(world.person())
    assert world.rows("referrals") == []


def test_the_intake_shows_what_was_sent_to_the_caller_and_audits_each_person(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    first, second = world.refer(subject_id), world.refer(subject_id)
    world.refer(world.person(sharing_with=("partner-b",)), "partner-b")

    with world.database.read() as session:
        shown = mentoring.intake(session, world.consent, world.cipher, world.records,
                                 COORDINATOR, "referred")
        refused = mentoring.intake(session, world.consent, world.cipher, world.records,
                                   caller("partner-a", "clinician"), "referred")

    assert [r["id"] for r in shown] == [first, second]
    assert all(r["safe_contact"] is None for r in shown) and refused == []
    assert [(a.action, a.subject_id, a.detail) for a in world.consent.audited] == [
        ("mentoring-intake-read", subject_id, {"status": "referred"})]


def test_the_receiving_coordinator_reads_the_safe_contact_the_referrer_does_not(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    referral_id = world.refer(subject_id)
    with world.database.read() as session:
        receiver = mentoring.read_referral(session, world.consent, world.cipher,
                                           world.records, referral_id, COORDINATOR)
        referrer = mentoring.read_referral(session, world.consent, world.cipher,
                                           world.records, referral_id, CLINICIAN)
    assert receiver["safe_contact"]["phone"] == PHONE
    assert referrer["safe_contact"] is None
    assert [(a.action, a.subject_id) for a in world.consent.audited] == [
        ("mentoring-safe-contact-read", subject_id), ("mentoring-referral-read", subject_id)]


def test_a_referral_read_refused_is_audited_naming_no_one_to_a_stranger(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    referral_id = world.refer(subject_id)
    with world.database.read() as session:
        for who, refusal in ((caller("partner-b", "mentor-coordinator"), NotFound),
                             (caller("trust", "dpo"), NotPermitted)):
            with pytest.raises(refusal):
                mentoring.read_referral(session, world.consent, world.cipher, world.records,
                                        referral_id, who)
        with pytest.raises(NotFound):
            mentoring.read_referral(session, world.consent, world.cipher, world.records,
                                    "ref_missing", COORDINATOR)
    assert [(a.action, a.subject_id, a.detail["refusal"]) for a in world.consent.audited] == [
        ("mentoring-referral-refused", None, "hidden"),
        ("mentoring-referral-refused", subject_id, "refused"),
        ("mentoring-referral-refused", None, "hidden")]


def test_a_safe_contact_update_goes_to_consent_and_onto_the_referral(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    referral_id = world.refer(subject_id)
    answer = mentoring.update_safe_contact(world.database, world.consent, world.records,
                                           referral_id, NEW_CONTACT, PARTNER_STAFF)
    assert answer == {"id": referral_id, "safe_contact_updated": True}
    assert world.consent.safe_contacts[subject_id] == NEW_CONTACT
    row = world.row("referrals", referral_id=referral_id)
    assert row.safe_contact_org == "partner-a"
    with world.database.read() as session:
        view = mentoring.read_referral(session, world.consent, world.cipher, world.records,
                                       referral_id, COORDINATOR)
    assert view["safe_contact"]["phone"] == NEW_CONTACT.phone


def test_a_safe_contact_update_is_refused_to_strangers_and_after_erasure(
        world: MentoringWorld) -> None:
    referral_id = world.refer(world.person())
    with pytest.raises(NotFound):
        mentoring.update_safe_contact(world.database, world.consent, world.records,
                                      referral_id, NEW_CONTACT,
                                      caller("partner-b", "partner-staff"))
    with world.database.unit_of_work() as uow:
        uow.session.execute(referrals.update().values(subject_id=None))  # as erasure does
    with pytest.raises(NotActive):
        mentoring.update_safe_contact(world.database, world.consent, world.records,
                                      referral_id, NEW_CONTACT, CLINICIAN)
    assert world.consent.safe_contacts == {}


# --- matching -------------------------------------------------------------------------------

def test_a_match_is_made_with_the_receivers_mentor_and_published(
        world: MentoringWorld) -> None:
    mentor_id = world.mentor()
    subject_id = world.person()
    referral_id = world.refer(subject_id)

    matched = world.match(referral_id)
    again = world.match(referral_id)

    assert matched["mentor_id"] == mentor_id and again == matched
    [event] = published(world.database, "match-made")
    assert (event.subject, event.data["days_from_referral"]) == (subject_id, 0)
    assert world.row("referrals", referral_id=referral_id).status == "matched"


def test_only_the_receiving_coordinator_matches(world: MentoringWorld) -> None:
    referral_id = world.refer(world.person())
    for who, refusal in ((CLINICIAN, NotPermitted), (PARTNER_STAFF, NotPermitted),
                         (caller("partner-b", "mentor-coordinator"), NotFound)):
        with pytest.raises(refusal):
            world.match(referral_id, who)
    assert world.row("referrals", referral_id=referral_id).status == "referred"


def test_no_matchable_mentor_waitlists_naming_the_unmet_constraints(
        world: MentoringWorld) -> None:
    world.mentor(languages=["en"])
    referral_id = world.refer(world.person(), language="ur")
    assert world.match(referral_id) == {"status": "waitlisted",
                                        "unmet_constraints": ["language"]}
    assert world.row("referrals", referral_id=referral_id).waitlisted is True


def test_the_waitlist_is_matched_in_referral_order(world: MentoringWorld) -> None:
    first, second = world.refer(world.person()), world.refer(world.person())
    for referral_id in (first, second):
        world.match(referral_id)
    world.mentor()  # capacity 1: takes the first
    with world.database.unit_of_work() as uow:
        assert mentoring.match_waitlist(uow, TODAY, world.rules) == []
    assert world.row("referrals", referral_id=first).status == "matched"
    assert world.row("referrals", referral_id=second).status == "waitlisted"


# --- sessions, outcomes, endings ------------------------------------------------------------

def test_a_session_is_logged_and_published(world: MentoringWorld) -> None:
    subject_id, _, match_id = world.matched()
    with world.database.unit_of_work() as uow:
        logged = mentoring.log_session(uow, world.keys, world.cipher, world.records,
                                       world.consent, session_command(match_id), PARTNER_STAFF,
                                       world.intervention)
    assert (logged["match_id"], logged["safeguarding_concern_id"]) == (match_id, None)
    assert world.row("mentoring_sessions", session_id=logged["id"]).recorded_by_org \
        == "partner-a"
    [event] = published(world.database, "session-logged")
    assert (event.subject, event.data["attendance"]) == (subject_id, "attended")


def test_a_session_with_a_concern_puts_it_on_the_queue(world: MentoringWorld) -> None:
    _, referral_id, match_id = world.matched()
    command = session_command(match_id, safeguarding_concern=True,
                              concern_details="new threats")
    with world.database.unit_of_work() as uow:
        logged = mentoring.log_session(uow, world.keys, world.cipher, world.records,
                                       world.consent, command, COORDINATOR, world.intervention)
    concern = world.row("safeguarding_concerns", concern_id=logged["safeguarding_concern_id"])
    assert (concern.referral_id, concern.raised_by, concern.status) == (
        referral_id, COORDINATOR.subject, "open")
    assert [e.data["session_id"] for e in published(
        world.database, "safeguarding-concern-raised")] == [logged["id"]]


def test_sessions_are_refused_to_the_referrer_after_erasure_and_on_an_ended_match(
        world: MentoringWorld) -> None:
    subject_id, _, match_id = world.matched()
    with pytest.raises(NotPermitted), world.database.unit_of_work() as uow:
        mentoring.log_session(uow, world.keys, world.cipher, world.records, world.consent,
                              session_command(match_id), CLINICIAN, world.intervention)
    with world.database.unit_of_work() as uow:
        mentoring.end_active_match(uow, world.cipher, match_id, None,
                                   EndMatch(planned=True), TODAY)
    with pytest.raises(NotActive), world.database.unit_of_work() as uow:
        mentoring.log_session(uow, world.keys, world.cipher, world.records, world.consent,
                              session_command(match_id), COORDINATOR, world.intervention)
    world.consent.shred(subject_id)
    with pytest.raises(KeyShredded), world.database.unit_of_work() as uow:
        mentoring.log_session(uow, world.keys, world.cipher, world.records, world.consent,
                              session_command(match_id), COORDINATOR, world.intervention)
    assert world.rows("mentoring_sessions") == []


def test_an_outcome_is_scored_recorded_and_published(world: MentoringWorld) -> None:
    _, _, match_id = world.matched()
    command = RecordOutcome(match_id=match_id, timepoint="intake", instrument="WEMWBS",
                            items=WEMWBS)
    with world.database.unit_of_work() as uow:
        recorded = mentoring.record_outcome(uow, world.keys, command, COORDINATOR, TODAY)
    assert (recorded["raw_score"], recorded["recorded_on"]) == (42, TODAY.isoformat())
    assert world.row("outcomes", outcome_id=recorded["id"]).items == ",".join(["3"] * 14)
    [event] = published(world.database, "outcome-recorded")
    assert event.data["raw_score"] == 42
    with pytest.raises(NotFound), world.database.unit_of_work() as uow:
        mentoring.record_outcome(uow, world.keys, command.model_copy(
            update={"match_id": "mat_missing"}), COORDINATOR, TODAY)


def test_a_partners_case_system_records_on_its_own_matches_of_the_mentee_only(
        world: MentoringWorld) -> None:
    subject_id, _, match_id = world.matched()
    with world.database.unit_of_work() as uow:
        logged = mentoring.adopt_partner_record(
            uow, world.keys, world.cipher, world.records, world.consent,
            session_command(match_id), "partner-a", subject_id, TODAY)
    assert world.row("mentoring_sessions", session_id=logged["id"]).match_id == match_id
    for org, subject, refusal in (("partner-b", subject_id, NotFound),
                                  ("partner-a", "sub_" + "0" * 32, mentoring.NotTheMentee)):
        with pytest.raises(refusal), world.database.unit_of_work() as uow:
            mentoring.adopt_partner_record(
                uow, world.keys, world.cipher, world.records, world.consent,
                session_command(match_id), org, subject, TODAY)
    assert len(world.rows("mentoring_sessions")) == 1


def test_ending_a_match_seals_the_reason_and_gives_the_room_to_the_waitlist(
        world: MentoringWorld) -> None:
    subject_id, referral_id, match_id = world.matched()
    waiting = world.refer(world.person())
    world.match(waiting)

    with world.database.unit_of_work() as uow:
        ended = mentoring.end_match(uow, world.keys, world.cipher, match_id,
                                    EndMatch(planned=True, reason="goals met"), COORDINATOR,
                                    TODAY, world.rules)

    assert ended == {"match_id": match_id, "status": "ended", "planned": True,
                     "ended_on": TODAY.isoformat(), "feedback_given": False}
    assert world.row("matches", match_id=match_id).end_reason_sealed is not None
    assert world.row("referrals", referral_id=referral_id).status == "ended"
    assert world.row("referrals", referral_id=waiting).status == "matched"
    [event] = published(world.database, "mentoring-ended")
    assert event.subject == subject_id and "goals met" not in event.model_dump_json()
    with pytest.raises(NotActive), world.database.unit_of_work() as uow:
        mentoring.end_match(uow, world.keys, world.cipher, match_id, EndMatch(planned=True),
                            COORDINATOR, TODAY, world.rules)

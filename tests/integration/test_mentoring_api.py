"""The mentoring API on both databases, with a real consent service on a loopback port.

A referral is sent to one DVA partner and needs the referrer's peer-mentoring consent and,
to another organisation, the referrer's partner-sharing naming it; the whole journey (mentor,
supervision, referral, the partner's intake, match, sessions, outcomes, planned ending) is
recorded and published through the outbox with nothing personal in clear; a safeguarding
concern goes to the Trust's safeguarding lead; waitlisted referrals are matched in referral
order as soon as one of the receiving partner's mentors can take them; an organisation with
no relationship to a referral is told nothing; every read of identifiable data is audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.events.envelope import CloudEvent
from tests.support.mentoring import (
    DISPLAY_NAME,
    PHONE,
    TIMES,
    TODAY,
    Mentoring,
    beside_consent,
    mentor_body,
    referral_body,
    session_body,
)

CONCERN = "mentee described new threats from her brother-in-law"


@pytest.fixture
def mentoring(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[Mentoring]:
    yield from beside_consent(database_url, tmp_path, monkeypatch)


# --- consent ------------------------------------------------------------------------------

def test_a_referral_without_peer_mentoring_consent_is_refused_and_nothing_is_written(
        mentoring: Mentoring) -> None:
    subject_id = mentoring.person(consent=False)
    response = mentoring.client.post("/v1/referrals", json=referral_body(subject_id),
                                     headers=mentoring.clinician)

    assert response.status_code == 409
    assert "peer-mentoring consent" in response.json()["message"]
    assert PHONE not in response.text
    assert mentoring.count("referrals") == 0
    assert mentoring.outbox() == []


def test_a_referral_by_nhs_number_registers_the_person_and_needs_consent_too(
        mentoring: Mentoring) -> None:
    body = referral_body(nhs_number=next(mentoring.numbers))
    del body["subject_id"]
    response = mentoring.client.post("/v1/referrals", json=body, headers=mentoring.clinician)
    assert response.status_code == 409
    assert "consent" in response.json()["message"]
    assert mentoring.count("referrals") == 0


# --- the whole journey -----------------------------------------------------------------------

def test_the_full_journey_is_recorded_and_published_in_order(mentoring: Mentoring) -> None:
    coordinator, clinician = mentoring.coordinator, mentoring.clinician
    registered = mentoring.client.post("/v1/mentors", json=mentor_body(), headers=coordinator)
    assert registered.status_code == 201, registered.text
    mentor = registered.json()
    mentor_id = mentor["id"]
    assert mentor["matchable"] is False
    assert mentor["not_matchable_because"] == ["no supervision within 42 days"]

    supervised = mentoring.supervise(mentor_id, TODAY - timedelta(days=2))
    assert supervised["matchable"] is True
    assert supervised["last_supervision_on"] == (TODAY - timedelta(days=2)).isoformat()

    subject_id = mentoring.person()
    referred = mentoring.client.post("/v1/referrals", json=referral_body(
        subject_id, preferences={"mentor_gender": "female", "language": "ur",
                                 "mode": "in-person", "borough": "camden"}),
        headers=clinician)
    assert referred.status_code == 201, referred.text
    referral = referred.json()
    assert referral["status"] == "referred"
    assert referral["safe_contact"] is None  # not even to the referrer
    assert referral["to_org"] == "partner-a"
    referral_id = referral["id"]
    intake = mentoring.client.get("/v1/referrals", headers=coordinator)
    assert intake.status_code == 200, intake.text
    assert [r["id"] for r in intake.json()["referrals"]] == [referral_id]

    matched = mentoring.match(referral_id)
    assert matched["status"] == "matched"
    assert matched["mentor_id"] == mentor_id
    match_id = matched["match_id"]
    assert match_id
    assert mentoring.match(referral_id) == matched  # asking again changes nothing

    for attendance in ("attended", "did-not-attend"):
        logged = mentoring.client.post("/v1/sessions", json=session_body(
            match_id, attendance=attendance, mode="in-person"), headers=coordinator)
        assert logged.status_code == 201, logged.text
        assert logged.json()["attendance"] == attendance
        assert logged.json()["safeguarding_concern_id"] is None

    scores = {}
    for timepoint, items in (("intake", [2] * 7), ("exit", [4] * 7)):
        recorded = mentoring.client.post("/v1/outcomes", json={
            "match_id": match_id, "timepoint": timepoint, "instrument": "SWEMWBS",
            "items": items}, headers=coordinator)
        assert recorded.status_code == 201, recorded.text
        scores[timepoint] = (recorded.json()["raw_score"], recorded.json()["metric_score"])
    assert scores == {"intake": (14, 15.32), "exit": (28, 25.03)}

    ended = mentoring.end(match_id, planned=True)
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended"
    assert ended.json()["planned"] is True
    assert mentoring.referral(referral_id)["status"] == "ended"

    rows = mentoring.outbox()
    assert [r.event_type for r in rows] == [
        "mentor-registered", "supervision-recorded", "mentee-referred", "match-made",
        "session-logged", "session-logged", "outcome-recorded", "outcome-recorded",
        "mentoring-ended"]
    events = [CloudEvent.from_bytes(r.payload) for r in rows]
    assert [e.type for e in events] == [r.event_type for r in rows]
    for row, event in zip(rows[:2], events[:2], strict=True):  # the mentor's, then theirs
        assert row.aggregate_id == event.subject == mentor_id, row.event_type
    for row, event in zip(rows[2:], events[2:], strict=True):
        assert row.aggregate_id == event.subject == subject_id, row.event_type
    assert all(r.topic == "mentoring.events" for r in rows)
    assert events[3].data["match_id"] == match_id
    assert events[3].data["mentor_id"] == mentor_id
    assert [e.data["attendance"] for e in events[4:6]] == ["attended", "did-not-attend"]
    assert [(e.data["timepoint"], e.data["metric_score"]) for e in events[6:8]] == [
        ("intake", 15.32), ("exit", 25.03)]
    assert events[8].data["planned"] is True
    for row in rows:
        for secret in (DISPLAY_NAME, PHONE, "07700", TIMES, "goals met"):
            assert secret.encode() not in row.payload, (row.event_type, secret)


def test_mentor_status_changes_are_published_keyed_by_the_mentor(mentoring: Mentoring) -> None:
    mentor_id = mentoring.mentor()
    changed = mentoring.client.post(f"/v1/mentors/{mentor_id}/status",
                                    json={"status": "paused"}, headers=mentoring.coordinator)
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "paused"
    assert changed.json()["matchable"] is False
    last = mentoring.outbox()[-1]
    assert (last.event_type, last.aggregate_id) == ("mentor-status-changed", mentor_id)
    assert CloudEvent.from_bytes(last.payload).data["previous_status"] == "active"
    assert DISPLAY_NAME.encode() not in last.payload


# --- safeguarding ----------------------------------------------------------------------------

def test_a_safeguarding_concern_goes_on_the_trusts_queue_and_is_published(
        mentoring: Mentoring) -> None:
    mentoring.mentor()
    subject_id, _, match_id = mentoring.matched_person()
    logged = mentoring.client.post("/v1/sessions", json=session_body(
        match_id, safeguarding_concern=True, concern_details=CONCERN),
        headers=mentoring.coordinator)
    assert logged.status_code == 201, logged.text
    concern_id = logged.json()["safeguarding_concern_id"]
    assert concern_id

    queue = mentoring.client.get("/v1/safeguarding-concerns", params={"status": "open"},
                                 headers=mentoring.safeguarding_lead)
    assert queue.status_code == 200, queue.text
    [concern] = queue.json()["concerns"]
    assert concern["id"] == concern_id
    assert concern["match_id"] == match_id
    assert concern["subject_id"] == subject_id
    assert concern["concern_details"] == CONCERN
    assert concern["status"] == "open"
    assert concern["flagged_for_dpo"] is False

    for headers in (mentoring.clinician,  # a Trust clinician is not the safeguarding lead
                    mentoring.coordinator, mentoring.as_("partner-a", "partner-staff")):
        refused = mentoring.client.get("/v1/safeguarding-concerns",
                                       params={"status": "open"}, headers=headers)
        assert refused.status_code == 403
        assert CONCERN not in refused.text

    rows = mentoring.outbox()
    assert [r.event_type for r in rows[-2:]] == ["session-logged",
                                                 "safeguarding-concern-raised"]
    raised = CloudEvent.from_bytes(rows[-1].payload)
    assert raised.subject == rows[-1].aggregate_id == subject_id
    assert raised.data["concern_id"] == concern_id
    assert raised.data["personal"] is not None
    assert CloudEvent.from_bytes(rows[-2].payload).data["safeguarding_concern"] is True
    for row in rows:
        assert CONCERN.encode() not in row.payload
        assert b"brother-in-law" not in row.payload


@pytest.mark.parametrize("change", [
    {"safeguarding_concern": True},
    {"safeguarding_concern": True, "concern_details": "   "},
    {"safeguarding_concern": False, "concern_details": CONCERN},
    {"attendance": "maybe"},
    {"duration_minutes": -5},
])
def test_a_bad_session_is_a_422_and_nothing_is_written(mentoring: Mentoring,
                                                       change: dict[str, Any]) -> None:
    mentoring.mentor()
    _, _, match_id = mentoring.matched_person()
    before = mentoring.outbox()
    response = mentoring.client.post("/v1/sessions", json=session_body(match_id, **change),
                                     headers=mentoring.coordinator)
    assert response.status_code == 422
    assert CONCERN not in response.text
    assert mentoring.outbox() == before
    assert mentoring.count("mentoring_sessions") == 0
    assert mentoring.count("safeguarding_concerns") == 0


# --- the waitlist and automatic matching ----------------------------------------------------

def test_no_matchable_mentor_waitlists_naming_the_unmet_constraint(
        mentoring: Mentoring) -> None:
    mentoring.mentor(languages=["en"])
    referral_id = mentoring.refer(mentoring.person(), language="so")

    assert mentoring.match(referral_id) == {"status": "waitlisted",
                                            "unmet_constraints": ["language"]}
    referral = mentoring.referral(referral_id)
    assert referral["status"] == "waitlisted"
    assert referral["unmet_constraints"] == ["language"]
    assert referral["match_id"] is None
    assert "match-made" not in [r.event_type for r in mentoring.outbox()]


def test_with_no_mentor_at_all_the_reason_is_capacity(mentoring: Mentoring) -> None:
    referral_id = mentoring.refer(mentoring.person())
    waitlisted = mentoring.match(referral_id)
    assert waitlisted["status"] == "waitlisted"
    [reason] = waitlisted["unmet_constraints"]
    assert reason.startswith("capacity")


def test_a_newly_registered_suitable_mentor_is_matched_once_supervised(
        mentoring: Mentoring) -> None:
    """A mentor registered without supervision is not matchable until it is recorded; the
    waitlist is matched as soon as it is."""
    mentoring.mentor(languages=["en"])
    referral_id = mentoring.refer(mentoring.person(), language="so")
    assert mentoring.match(referral_id)["status"] == "waitlisted"

    registered = mentoring.client.post("/v1/mentors", json=mentor_body(languages=["en", "so"]),
                                       headers=mentoring.coordinator)
    assert registered.status_code == 201, registered.text
    somali_speaker = registered.json()["id"]
    assert mentoring.referral(referral_id)["status"] == "waitlisted"

    mentoring.supervise(somali_speaker, TODAY)
    referral = mentoring.referral(referral_id)
    assert referral["status"] == "matched"
    assert referral["mentor_id"] == somali_speaker
    made = [CloudEvent.from_bytes(r.payload) for r in mentoring.outbox()
            if r.event_type == "match-made"]
    assert [e.data["waitlisted"] for e in made] == [True]


def test_recording_supervision_matches_the_waitlist(mentoring: Mentoring) -> None:
    mentor_id = mentoring.mentor(supervised=False)
    mentoring.supervise(mentor_id, TODAY - timedelta(days=43))
    referral_id = mentoring.refer(mentoring.person())
    assert mentoring.match(referral_id)["status"] == "waitlisted"

    view = mentoring.supervise(mentor_id, TODAY - timedelta(days=1))
    assert view["matchable"] is True
    assert mentoring.referral(referral_id)["mentor_id"] == mentor_id
    assert view["current_mentees"] == 1


def test_setting_a_mentor_active_matches_the_waitlist(mentoring: Mentoring) -> None:
    mentor_id = mentoring.mentor(status="in-training")
    referral_id = mentoring.refer(mentoring.person())
    assert mentoring.match(referral_id)["status"] == "waitlisted"

    changed = mentoring.client.post(f"/v1/mentors/{mentor_id}/status",
                                    json={"status": "active"}, headers=mentoring.coordinator)
    assert changed.status_code == 200, changed.text
    referral = mentoring.referral(referral_id)
    assert (referral["status"], referral["mentor_id"]) == ("matched", mentor_id)


def test_a_match_ending_frees_capacity_for_the_waitlist_in_referral_order(
        mentoring: Mentoring) -> None:
    mentor_id = mentoring.mentor(capacity=1)
    _, _, first_match = mentoring.matched_person(mentor_id)
    second = mentoring.refer(mentoring.person())
    third = mentoring.refer(mentoring.person())
    # the third asks first: referral order, not the order of asking, decides
    for referral_id in (third, second):
        waiting = mentoring.match(referral_id)
        assert waiting["status"] == "waitlisted"
        assert waiting["unmet_constraints"][0].startswith("capacity")

    assert mentoring.end(first_match).status_code == 200
    assert mentoring.referral(second)["mentor_id"] == mentor_id
    assert mentoring.referral(third)["status"] == "waitlisted"

    assert mentoring.end(mentoring.referral(second)["match_id"]).status_code == 200
    assert mentoring.referral(third)["mentor_id"] == mentor_id


def test_a_referral_still_unsuitable_stays_waitlisted_when_room_appears(
        mentoring: Mentoring) -> None:
    mentor_id = mentoring.mentor(capacity=1, languages=["en"])
    _, _, match_id = mentoring.matched_person(mentor_id)
    needs_urdu = mentoring.refer(mentoring.person(), language="ur")
    anyone = mentoring.refer(mentoring.person())
    assert mentoring.match(needs_urdu)["status"] == "waitlisted"
    assert mentoring.match(anyone)["status"] == "waitlisted"

    assert mentoring.end(match_id).status_code == 200
    assert mentoring.referral(needs_urdu)["status"] == "waitlisted"
    assert mentoring.referral(needs_urdu)["unmet_constraints"] == ["language"]
    assert mentoring.referral(anyone)["mentor_id"] == mentor_id


# --- organisations ---------------------------------------------------------------------------

def test_regression_a_referral_goes_to_one_partner_whose_coordinators_alone_see_and_match_it(
        mentoring: Mentoring) -> None:
    """Adversarial finding: "a referral has no receiving organisation: the DVA partner's
    coordinator cannot see a referral sent to their service until someone matches it; the
    referrer matches across every partner's mentors". Now partner-a's coordinator sees it in
    the intake at once, partner-b's is told nothing and cannot match it, matching picks a
    partner-a mentor even when partner-b has a better one, and the referrer never sees the
    safe contact."""
    busy_a = mentoring.mentor("partner-a", capacity=3)
    _, _, first = mentoring.matched_person(busy_a)       # partner-a's mentor has one mentee
    idle_b = mentoring.mentor("partner-b", display_name="Bea", capacity=3)  # none: "better"
    subject_id = mentoring.person()
    referral_id = mentoring.refer(subject_id)
    b_coordinator = mentoring.as_("partner-b", "mentor-coordinator")

    listed = mentoring.client.get("/v1/referrals", headers=mentoring.coordinator).json()
    assert [r["id"] for r in listed["referrals"]] == [referral_id]
    assert mentoring.referral(referral_id, mentoring.coordinator)["safe_contact"]["phone"] \
        == PHONE

    for response in (mentoring.client.get(f"/v1/referrals/{referral_id}",
                                          headers=b_coordinator),
                     mentoring.client.post(f"/v1/referrals/{referral_id}/match",
                                           headers=b_coordinator)):
        assert response.status_code == 404
        assert response.json() == mentoring.client.get(
            "/v1/referrals/ref_00000000000000000000000000000000",
            headers=b_coordinator).json()
        assert PHONE not in response.text
    assert mentoring.client.get("/v1/referrals", headers=b_coordinator
                                ).json()["referrals"] == []

    by_referrer = mentoring.client.post(f"/v1/referrals/{referral_id}/match",
                                        headers=mentoring.clinician)
    assert by_referrer.status_code == 403
    assert mentoring.referral(referral_id)["status"] == "referred"

    matched = mentoring.match(referral_id)
    assert matched["status"] == "matched"
    assert matched["mentor_id"] == busy_a != idle_b
    seen = mentoring.referral(referral_id, mentoring.clinician)  # the Trust, the referrer
    assert (seen["status"], seen["match_id"], seen["mentor_id"], seen["safe_contact"]) == (
        "matched", None, None, None), "the referrer sees the status, never whom they meet"
    assert mentoring.referral(referral_id, mentoring.coordinator)["mentor_id"] == busy_a
    assert first != matched["match_id"]
    for path, body in (("/v1/sessions", session_body(matched["match_id"])),
                       (f"/v1/matches/{matched['match_id']}/end", {"planned": True})):
        assert mentoring.client.post(path, json=body, headers=b_coordinator
                                     ).status_code == 404


def test_the_waitlist_is_matched_with_the_receiving_partners_mentors_only(
        mentoring: Mentoring) -> None:
    referral_id = mentoring.refer(mentoring.person())
    assert mentoring.match(referral_id)["status"] == "waitlisted"
    mentoring.mentor("partner-b", display_name="Bea")    # room, but at another partner
    assert mentoring.referral(referral_id)["status"] == "waitlisted"
    mentor_id = mentoring.mentor("partner-a")
    assert mentoring.referral(referral_id)["mentor_id"] == mentor_id



def test_one_organisation_cannot_see_or_change_anothers_mentors_or_mentees(
        mentoring: Mentoring) -> None:
    theirs = mentoring.mentor("partner-a")
    _, referral_id, match_id = mentoring.matched_person(theirs)
    ours = mentoring.mentor("partner-b", display_name="Bea")
    b_coordinator = mentoring.as_("partner-b", "mentor-coordinator")
    b_staff = mentoring.as_("partner-b", "partner-staff")

    listed = mentoring.client.get("/v1/mentors", headers=b_coordinator)
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["mentors"]] == [ours]
    assert DISPLAY_NAME not in listed.text
    assert [m["id"] for m in mentoring.client.get(
        "/v1/mentors", headers=mentoring.coordinator).json()["mentors"]] == [theirs]

    assert mentoring.client.get(f"/v1/mentors/{theirs}", headers=b_coordinator
                                ).status_code == 404
    before = mentoring.outbox()
    for path, body in ((f"/v1/mentors/{theirs}/status", {"status": "left"}),
                       (f"/v1/mentors/{theirs}/supervision", {"held_on": TODAY.isoformat()})):
        response = mentoring.client.post(path, json=body, headers=b_coordinator)
        assert response.status_code == 404, path
        assert DISPLAY_NAME not in response.text
    assert mentoring.client.get(f"/v1/mentors/{theirs}", headers=mentoring.coordinator
                                ).json()["status"] == "active"

    for headers in (b_coordinator, b_staff):
        response = mentoring.client.get(f"/v1/referrals/{referral_id}", headers=headers)
        assert response.status_code == 404
        assert PHONE not in response.text
        assert mentoring.client.post(f"/v1/referrals/{referral_id}/match",
                                     headers=headers).status_code == 404
    for headers in (b_coordinator, b_staff):
        assert mentoring.client.post("/v1/sessions", json=session_body(match_id),
                                     headers=headers).status_code == 404
        assert mentoring.client.post("/v1/outcomes", json={
            "match_id": match_id, "timepoint": "intake", "instrument": "SWEMWBS",
            "items": [3] * 7}, headers=headers).status_code == 404
        assert mentoring.client.post(f"/v1/matches/{match_id}/end", json={"planned": True},
                                     headers=headers).status_code == 404
    assert mentoring.outbox() == before
    assert mentoring.count("mentoring_sessions") == 0


def test_safe_contact_is_shown_only_to_the_receiving_organisations_coordinators(
        mentoring: Mentoring) -> None:
    mentoring.mentor("partner-a")
    referral_id = mentoring.refer(mentoring.person())
    contact = {"phone": PHONE, "times": TIMES, "may_leave_message": False,
               "safe_to_call": None, "instructions": None}
    # before the match: the coordinator taking the referral from the intake calls safely
    assert mentoring.referral(referral_id, mentoring.coordinator)["safe_contact"] == contact
    assert mentoring.match(referral_id)["status"] == "matched"

    assert mentoring.referral(referral_id, mentoring.coordinator)["safe_contact"] == contact
    for headers in (mentoring.clinician, mentoring.as_("partner-a", "partner-staff")):
        seen = mentoring.referral(referral_id, headers)
        assert seen["safe_contact"] is None
        assert seen["status"] == "matched"
        assert PHONE not in str(seen)


def test_a_partner_referring_to_another_partner_sees_its_referral_but_never_safe_contact(
        mentoring: Mentoring) -> None:
    mentoring.mentor("partner-a")
    subject_id = mentoring.person(org="partner-b")
    referral_id = mentoring.refer(subject_id, org="partner-b", role="partner-staff")
    b_staff = mentoring.as_("partner-b", "partner-staff")
    refused = mentoring.client.post(f"/v1/referrals/{referral_id}/match", headers=b_staff)
    assert refused.status_code == 403
    assert "receiving organisation" in refused.json()["message"]
    assert mentoring.match(referral_id)["status"] == "matched"

    for headers in (b_staff, mentoring.as_("partner-b", "mentor-coordinator")):
        seen = mentoring.referral(referral_id, headers)
        assert (seen["status"], seen["safe_contact"]) == ("matched", None)
    assert mentoring.referral(referral_id, mentoring.coordinator)["safe_contact"]["phone"] \
        == PHONE


def test_a_partner_may_refer_to_its_own_service_without_sharing_consent(
        mentoring: Mentoring) -> None:
    mentoring.mentor("partner-a")
    subject_id = mentoring.person(org="partner-a", sharing_with=())
    referral_id = mentoring.refer(subject_id, org="partner-a", role="partner-staff")
    assert mentoring.match(referral_id)["status"] == "matched"
    assert mentoring.referral(referral_id, mentoring.coordinator)["safe_contact"]["phone"] \
        == PHONE


@pytest.mark.parametrize("to_org", ["trust", "partner-z"])
def test_a_referral_must_name_a_dva_partner(mentoring: Mentoring, to_org: str) -> None:
    response = mentoring.client.post("/v1/referrals", json=referral_body(
        mentoring.person(), to_org=to_org), headers=mentoring.clinician)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "to_org"
    assert "partner-a" in response.json()["message"]
    assert mentoring.count("referrals") == 0


@pytest.mark.parametrize("sharing_with", [(), ("partner-b",)])
def test_a_referral_to_another_organisation_needs_sharing_consent_naming_it(
        mentoring: Mentoring, sharing_with: tuple[str, ...]) -> None:
    subject_id = mentoring.person(sharing_with=sharing_with)
    response = mentoring.client.post("/v1/referrals", json=referral_body(subject_id),
                                     headers=mentoring.clinician)
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "sharing-required"
    assert "partner-a" in response.json()["message"]
    assert PHONE not in response.text
    assert mentoring.count("referrals") == 0
    assert mentoring.outbox() == []


def test_peer_mentoring_consent_is_the_referrers_own(mentoring: Mentoring) -> None:
    """Consent recorded by the Trust does not let partner-b refer the person."""
    number = next(mentoring.numbers)
    subject_ids = set()
    for org, role in (("trust", "clinician"), ("partner-b", "partner-staff")):
        registered = mentoring.consent.post("/v1/subjects", json={"nhs_number": number},
                                            headers=mentoring.as_(org, role))
        assert registered.status_code in (200, 201), registered.text
        subject_ids.add(registered.json()["subject_id"])
    [subject_id] = subject_ids
    mentoring.grant(subject_id, "trust", "peer-mentoring")
    mentoring.grant(subject_id, "partner-b", "partner-sharing", ["partner-a"])
    response = mentoring.client.post("/v1/referrals", json=referral_body(
        subject_id, "partner-b"), headers=mentoring.as_("partner-b", "partner-staff"))
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "consent-required"
    assert mentoring.count("referrals") == 0


def test_the_intake_lists_the_callers_organisation_only_by_status(mentoring: Mentoring) -> None:
    to_a = mentoring.refer(mentoring.person())
    to_b = mentoring.refer(mentoring.person(sharing_with=("partner-b",)), to_org="partner-b")
    waiting = mentoring.refer(mentoring.person())
    assert mentoring.match(waiting)["status"] == "waitlisted"

    def intake(org: str, role: str, status: str = "referred") -> list[str]:
        response = mentoring.client.get("/v1/referrals", params={"status": status},
                                        headers=mentoring.as_(org, role))
        assert response.status_code == 200, response.text
        assert PHONE not in response.text
        return [r["id"] for r in response.json()["referrals"]]

    for role in ("mentor-coordinator", "partner-staff"):
        assert intake("partner-a", role) == [to_a]
        assert intake("partner-a", role, "waitlisted") == [waiting]
        assert intake("partner-b", role) == [to_b]
    assert intake("partner-a", "mentor-coordinator", "matched") == []
    assert mentoring.client.get("/v1/referrals", headers=mentoring.clinician
                                ).status_code == 403


def test_reads_of_identifiable_data_are_audited_allowed_or_refused(
        mentoring: Mentoring) -> None:
    mentoring.mentor("partner-a")
    subject_id = mentoring.person()
    referral_id = mentoring.refer(subject_id)
    mentoring.referral(referral_id, mentoring.coordinator)
    mentoring.referral(referral_id, mentoring.clinician)
    hidden = mentoring.client.get(f"/v1/referrals/{referral_id}",
                                  headers=mentoring.as_("partner-b", "mentor-coordinator"))
    assert hidden.status_code == 404
    mentoring.client.get("/v1/referrals", headers=mentoring.coordinator)

    entries = audit_entries(mentoring, subject_id)
    assert [(e["action"], e["actor_org"]) for e in entries] == [
        ("mentoring-safe-contact-read", "partner-a"), ("mentoring-referral-read", "trust"),
        ("mentoring-intake-read", "partner-a")]
    [refusal] = [e for e in audit_entries(mentoring, None, "partner-b")
                 if e["action"] == "mentoring-referral-refused"]
    # partner-b's DPO sees the attempt, but not whom the referral is about
    assert refusal["subject_id"] is None
    assert refusal["detail"] == {"referral_id": referral_id, "refusal": "hidden"}
    for entry in entries:
        assert PHONE not in str(entry)


def audit_entries(mentoring: Mentoring, subject_id: str | None,
                  *orgs: str) -> list[dict[str, Any]]:
    """Mentoring's audit entries (about the person, if given) by people of ``orgs`` (every
    organisation by default), as each organisation's DPO reads them, oldest first."""
    found = []
    for org in orgs or tuple(mentoring.service.settings.organisations):
        response = mentoring.consent.get(
            "/v1/audit", params={"subject_id": subject_id} if subject_id else {},
            headers=mentoring.as_(org, "dpo"))
        assert response.status_code == 200, response.text
        found += [e for e in response.json()["entries"] if e["action"].startswith("mentoring-")]
    return sorted(found, key=lambda e: str(e["at"]))


@pytest.mark.parametrize(("org", "role"), [
    ("partner-b", "mentor-coordinator"),  # another organisation's mentor
    ("partner-a", "partner-staff"),       # a role that may not register mentors
    ("trust", "clinician"),
])
def test_who_may_register_a_mentor(mentoring: Mentoring, org: str, role: str) -> None:
    response = mentoring.client.post("/v1/mentors", json=mentor_body("partner-a"),
                                     headers=mentoring.as_(org, role))
    assert response.status_code == 403
    assert response.json()["message"]
    assert mentoring.count("mentors") == 0
    assert mentoring.outbox() == []


def test_referring_for_another_organisation_is_refused(mentoring: Mentoring) -> None:
    subject_id = mentoring.person()
    response = mentoring.client.post("/v1/referrals", json=referral_body(
        subject_id, "partner-a"), headers=mentoring.clinician)
    assert response.status_code == 403
    assert mentoring.count("referrals") == 0


# --- endings and outcomes ------------------------------------------------------------------

def test_ending_an_ended_match_is_a_409(mentoring: Mentoring) -> None:
    mentoring.mentor()
    _, _, match_id = mentoring.matched_person()
    assert mentoring.end(match_id).status_code == 200
    before = mentoring.outbox()

    again = mentoring.end(match_id, planned=False)
    assert again.status_code == 409
    assert "ended" in again.json()["message"]
    assert mentoring.outbox() == before


@pytest.mark.parametrize(("instrument", "items"), [
    ("SWEMWBS", [3] * 6),
    ("SWEMWBS", [3] * 8),
    ("WEMWBS", [3] * 13),
    ("SWEMWBS", [3] * 6 + [6]),
    ("SWEMWBS", [0] + [3] * 6),
    ("SWEMWBS", [True] + [3] * 6),
])
def test_an_incomplete_outcome_is_a_422_and_not_recorded(
        mentoring: Mentoring, instrument: str, items: list[Any]) -> None:
    mentoring.mentor()
    _, _, match_id = mentoring.matched_person()
    before = mentoring.outbox()
    response = mentoring.client.post("/v1/outcomes", json={
        "match_id": match_id, "timepoint": "intake", "instrument": instrument,
        "items": items}, headers=mentoring.coordinator)
    assert response.status_code == 422
    assert "items" in response.text
    assert mentoring.count("outcomes") == 0
    assert mentoring.outbox() == before


def test_wemwbs_is_scored_as_a_sum(mentoring: Mentoring) -> None:
    mentoring.mentor()
    _, _, match_id = mentoring.matched_person()
    for items, raw in (([1] * 14, 14), ([5] * 14, 70)):
        response = mentoring.client.post("/v1/outcomes", json={
            "match_id": match_id, "timepoint": "intake", "instrument": "WEMWBS",
            "items": items}, headers=mentoring.coordinator)
        assert response.status_code == 201, response.text
        assert (response.json()["raw_score"], response.json()["metric_score"]) == (raw, None)


def test_a_mentor_registered_already_supervised_takes_the_waitlist_at_once(
        mentoring: Mentoring) -> None:
    referral_id = mentoring.refer(mentoring.person())
    assert mentoring.match(referral_id)["status"] == "waitlisted"

    response = mentoring.client.post("/v1/mentors", json=mentor_body(
        supervision_held_on=(TODAY - timedelta(days=2)).isoformat()),
        headers=mentoring.coordinator)

    assert response.status_code == 201
    assert response.json()["matchable"] is True
    assert mentoring.referral(referral_id)["mentor_id"] == response.json()["id"]


def test_no_session_is_logged_on_an_ended_match(mentoring: Mentoring) -> None:
    _, _, match_id = mentoring.matched_person(mentoring.mentor())
    assert mentoring.end(match_id).status_code == 200
    sessions_before = mentoring.count("mentoring_sessions")

    response = mentoring.client.post("/v1/sessions", json=session_body(
        match_id, safeguarding_concern=True, concern_details="worried about her"),
        headers=mentoring.coordinator)

    assert response.status_code == 409
    assert mentoring.count("mentoring_sessions") == sessions_before


def test_a_dpo_sees_only_concerns_flagged_by_erasure(mentoring: Mentoring) -> None:
    _, _, match_id = mentoring.matched_person(mentoring.mentor())
    logged = mentoring.client.post("/v1/sessions", json=session_body(
        match_id, safeguarding_concern=True, concern_details="worried about her"),
        headers=mentoring.coordinator)
    assert logged.status_code == 201

    for org in ("trust", "partner-b"):
        seen = mentoring.client.get("/v1/safeguarding-concerns",
                                    params={"flagged_for_dpo": "false"},
                                    headers=mentoring.as_(org, "dpo"))
        assert seen.status_code == 200
        assert seen.json()["concerns"] == []
    assert len(mentoring.client.get("/v1/safeguarding-concerns",
                                    headers=mentoring.safeguarding_lead).json()["concerns"]) == 1

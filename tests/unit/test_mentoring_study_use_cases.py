"""The study's mentoring records over fakes (issue 16): which components a session covered,
what supervision covered, the mentee's feedback at the ending, adverse events (a serious one on
the safeguarding queue) and offers of mentoring recorded without personal data."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.mentoring.domain.intervention import DEFAULT_COMPONENTS, Intervention
from services.mentoring.service_layer import mentoring, offers, safeguarding
from services.mentoring.service_layer.adverse_events import record_adverse_event
from services.mentoring.service_layer.cascade import MentoringCascade
from services.mentoring.service_layer.commands import (
    EndMatch,
    RecordAdverseEvent,
    RecordOffer,
    RecordOutcome,
    RecordSupervision,
)
from services.mentoring.service_layer.errors import NotActive, NotFound, UnknownCodes
from shared.auth import NotPermitted, Principal
from shared.events.mentoring import (
    AdverseEventRecorded,
    MenteeFeedbackGiven,
    MentoringOffered,
    SessionComponentsRecorded,
)
from tests.support.fakes import published
from tests.support.fakes_mentoring import (
    CLINICIAN,
    COORDINATOR,
    PARTNER_STAFF,
    TODAY,
    TRUST_DPO,
    MentoringWorld,
    caller,
    session_command,
)


@pytest.fixture
def world() -> MentoringWorld:
    return MentoringWorld()


def log(world: MentoringWorld, match_id: str, **changes: object) -> dict[str, object]:
    with world.database.unit_of_work() as uow:
        return mentoring.log_session(uow, world.keys, world.cipher, world.records,
                                     world.consent, session_command(match_id, **changes),
                                     COORDINATOR, world.intervention)


# --- session components ---------------------------------------------------------------------

def test_the_components_a_session_covered_are_kept_and_published(world: MentoringWorld) -> None:
    subject_id, _, match_id = world.matched()
    logged = log(world, match_id, components=["safety-planning", "emotional-support"])

    assert logged["components"] == ["safety-planning", "emotional-support"]
    assert world.row("mentoring_sessions", session_id=logged["id"]).components == \
        "safety-planning,emotional-support"
    [event] = published(world.database, "session-components-recorded")
    payload = SessionComponentsRecorded.model_validate(event.data)
    assert event.subject == subject_id
    assert (payload.session_id, payload.components) == (
        logged["id"], ("safety-planning", "emotional-support"))


def test_a_session_without_components_publishes_none(world: MentoringWorld) -> None:
    _, _, match_id = world.matched()
    log(world, match_id)
    assert published(world.database, "session-components-recorded") == []


def test_a_component_not_configured_is_refused_naming_it_and_nothing_is_logged(
        world: MentoringWorld) -> None:
    _, _, match_id = world.matched()
    world.intervention = Intervention(components=("safety-planning",))
    with pytest.raises(UnknownCodes, match="emotional-support") as refused:
        log(world, match_id, components=["safety-planning", "emotional-support"])
    assert refused.value.field == "components"
    assert world.rows("mentoring_sessions") == []


def test_the_default_components_are_the_studys_six() -> None:
    assert DEFAULT_COMPONENTS == (
        "emotional-support", "understanding-abuse", "safety-planning", "social-connections",
        "practical-help", "goals-and-next-steps")


@pytest.mark.parametrize(("changes", "message"), [
    ({"attendance": "did-not-attend", "components": ["safety-planning"]}, "attended"),
    ({"components": ["safety-planning", "safety-planning"]}, "repeat"),
    ({"components": ["Safety Planning"]}, "pattern"),
])
def test_components_only_for_an_attended_session_each_once(changes: dict[str, object],
                                                           message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        session_command("mat_x", **changes)


# --- supervision --------------------------------------------------------------------------

def test_what_supervision_covered_is_kept_and_published_under_the_mentor(
        world: MentoringWorld) -> None:
    mentor_id = world.mentor()
    held_on = TODAY - timedelta(days=2)
    with world.database.unit_of_work() as uow:
        mentoring.record_supervision(uow, mentor_id, "partner-a", RecordSupervision(
            held_on=held_on, covered=["safeguarding", "boundaries"]), TODAY, world.rules,
            world.intervention)

    row = world.row("supervisions", mentor_id=mentor_id)
    assert (row.held_on, row.covered) == (held_on, "safeguarding,boundaries")
    [event] = published(world.database, "supervision-recorded")
    assert (event.subject, event.data["covered"]) == (mentor_id, ["safeguarding", "boundaries"])


def test_a_supervision_topic_not_configured_is_refused(world: MentoringWorld) -> None:
    mentor_id = world.mentor()
    with pytest.raises(UnknownCodes) as refused, world.database.unit_of_work() as uow:
        mentoring.record_supervision(uow, mentor_id, "partner-a", RecordSupervision(
            held_on=TODAY, covered=["gossip"]), TODAY, world.rules, world.intervention)
    assert refused.value.field == "covered"
    assert world.rows("supervisions") == []


# --- feedback at the ending ---------------------------------------------------------------

def test_the_mentees_feedback_at_the_ending_is_kept_its_comment_sealed(
        world: MentoringWorld) -> None:
    subject_id, _, match_id = world.matched()
    command = EndMatch.model_validate({"planned": True, "feedback": {
        "helped": 4, "made_worse": "no", "comment": "it helped me to go out again"}})
    with world.database.unit_of_work() as uow:
        ended = mentoring.end_active_match(uow, world.cipher, match_id, None, command, TODAY)

    assert ended["feedback_given"] is True
    row = world.row("mentee_feedback", match_id=match_id)
    assert (row.helped, row.made_worse, row.given_on) == (4, "no", TODAY)
    assert b"go out" not in row.comment_sealed
    [event] = published(world.database, "mentee-feedback-given")
    payload = MenteeFeedbackGiven.model_validate(event.data)
    assert (event.subject, payload.helped, payload.made_worse) == (subject_id, 4, "no")
    assert payload.personal is not None and "go out" not in event.to_bytes().decode()


@pytest.mark.parametrize("feedback", [{"helped": 0, "made_worse": "no"},
                                      {"helped": 6, "made_worse": "no"},
                                      {"helped": True, "made_worse": "no"},
                                      {"helped": 3, "made_worse": "maybe"},
                                      {"helped": 3}])
def test_feedback_outside_its_scales_is_refused(feedback: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="feedback"):
        EndMatch.model_validate({"planned": True, "feedback": feedback})


# --- timed follow-ups ---------------------------------------------------------------------

def follow_up(world: MentoringWorld, match_id: str, timepoint: str) -> dict[str, object]:
    command = RecordOutcome(match_id=match_id, timepoint=timepoint, instrument="SWEMWBS",
                            items=[4] * 7)
    with world.database.unit_of_work() as uow:
        return mentoring.record_outcome(uow, world.keys, command, COORDINATOR, TODAY)


def test_a_timed_follow_up_comes_after_the_exit_once_and_is_published_as_its_own_type(
        world: MentoringWorld) -> None:
    subject_id, _, match_id = world.matched()
    with pytest.raises(NotActive, match="not ended"):
        follow_up(world, match_id, "3-months")
    with world.database.unit_of_work() as uow:
        mentoring.end_active_match(uow, world.cipher, match_id, None, EndMatch(planned=True),
                                   TODAY)
    follow_up(world, match_id, "3-months")
    with pytest.raises(NotActive, match="already recorded"):
        follow_up(world, match_id, "3-months")
    follow_up(world, match_id, "6-months")

    events = published(world.database, "follow-up-recorded")
    assert [(e.subject, e.data["timepoint"]) for e in events] == [
        (subject_id, "3-months"), (subject_id, "6-months")]
    assert published(world.database, "outcome-recorded") == []  # v1 knows no timed ones
    assert {r.timepoint for r in world.rows("outcomes")} == {"3-months", "6-months"}


# --- adverse events -----------------------------------------------------------------------

def adverse(match_id: str, serious: bool, **changes: object) -> RecordAdverseEvent:
    return RecordAdverseEvent.model_validate({
        "match_id": match_id, "occurred_on": TODAY - timedelta(days=1), "kind": "distress",
        "serious": serious, "relatedness": "possibly-related",
        "details": "very upset after the session", **changes})


def record(world: MentoringWorld, command: RecordAdverseEvent,
           who: Principal = PARTNER_STAFF) -> dict[str, object]:
    with world.database.unit_of_work() as uow:
        return record_adverse_event(uow, world.keys, world.cipher, world.records,
                                    world.consent, command, who)


def test_an_adverse_event_is_logged_sealed_and_published_without_a_concern(
        world: MentoringWorld) -> None:
    subject_id, _, match_id = world.matched()
    logged = record(world, adverse(match_id, serious=False))

    assert logged["safeguarding_concern_id"] is None
    row = world.row("adverse_events", adverse_event_id=logged["id"])
    assert (row.kind, row.serious, row.relatedness) == ("distress", False, "possibly-related")
    assert b"upset" not in row.details_sealed
    [event] = published(world.database, "adverse-event-recorded")
    payload = AdverseEventRecorded.model_validate(event.data)
    assert (event.subject, payload.serious, payload.kind) == (subject_id, False, "distress")
    assert world.rows("safeguarding_concerns") == []


def test_a_serious_adverse_event_raises_a_concern_on_the_safeguarding_queue(
        world: MentoringWorld) -> None:
    subject_id, referral_id, match_id = world.matched()
    logged = record(world, adverse(match_id, serious=True, kind="self-harm"))

    concern = world.row("safeguarding_concerns", concern_id=logged["safeguarding_concern_id"])
    assert (concern.subject_id, concern.referral_id, concern.match_id, concern.status) == (
        subject_id, referral_id, match_id, "open")
    assert world.row("adverse_events", adverse_event_id=logged["id"]).concern_id == \
        concern.concern_id
    assert len(published(world.database, "safeguarding-concern-raised")) == 1


def test_only_the_receiving_organisation_logs_adverse_events(world: MentoringWorld) -> None:
    _, _, match_id = world.matched()
    for who in (CLINICIAN, caller("partner-b", "partner-staff")):
        with pytest.raises((NotPermitted, NotFound)):
            record(world, adverse(match_id, serious=True), who)
    assert world.rows("adverse_events") == [] and world.rows("safeguarding_concerns") == []


def test_an_adverse_event_may_not_be_dated_in_the_future() -> None:
    with pytest.raises(ValidationError, match="occurred_on must not be in the future"):
        adverse("mat_x", serious=False, occurred_on=TODAY + timedelta(days=400))
    assert adverse("mat_x", serious=False, occurred_on=TODAY).occurred_on == TODAY


# --- offers -------------------------------------------------------------------------------

def offer(org: str = "trust", **changes: Any) -> RecordOffer:
    return RecordOffer.model_validate({
        "org": org, "team": "north-cmht", "gender": "male", "age_band": "35-44",
        "offered_on": TODAY, "outcome": "declined", "decline_reason": "has-other-support",
        **changes})


def test_an_offer_may_not_be_dated_in_the_future() -> None:
    with pytest.raises(ValidationError, match="offered_on must not be in the future"):
        offer(offered_on=date.today() + timedelta(days=1))


def test_an_offer_declined_is_recorded_about_nobody(world: MentoringWorld) -> None:
    with world.database.unit_of_work() as uow:
        recorded = offers.record_offer(uow, offer(), CLINICIAN)

    assert (recorded["outcome"], recorded["decline_reason"]) == ("declined", "has-other-support")
    [event] = published(world.database, "mentoring-offered")
    assert event.subject is None
    assert MentoringOffered.model_validate(event.data).team == "north-cmht"
    assert world.consent.audited == [] and world.consent.referrals == []
    row = world.row("offers", offer_id=recorded["id"])
    assert (row.org, row.recorded_by, row.decline_reason) == (
        "trust", CLINICIAN.subject, "has-other-support")


@pytest.mark.parametrize(("who", "org"), [(CLINICIAN, "partner-a"), (TRUST_DPO, "trust")])
def test_an_offer_is_recorded_by_its_own_organisations_staff_only(
        world: MentoringWorld, who: Principal, org: str) -> None:
    with pytest.raises(NotPermitted), world.database.unit_of_work() as uow:
        offers.record_offer(uow, offer(org), who)
    assert world.rows("offers") == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"decline_reason": None}, "decline_reason is required"),
    ({"outcome": "accepted"}, "only then"),
    ({"outcome": "maybe", "decline_reason": None}, "outcome"),
    ({"decline_reason": "busy"}, "decline_reason"),
    ({"offered_on": TODAY + timedelta(days=400)}, "future"),
    ({"nhs_number": "9434765919"}, "Extra"),
])
def test_an_offer_is_refused_naming_the_problem(changes: dict[str, Any],
                                                message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        offer(**changes)


# --- erasure and subject access -------------------------------------------------------------

def test_erasure_removes_the_feedback_comment_and_adverse_details_and_export_shows_them(
        world: MentoringWorld) -> None:
    subject_id, _, match_id = world.matched()
    log(world, match_id, components=["practical-help"])
    logged = record(world, adverse(match_id, serious=False))
    with world.database.unit_of_work() as uow:
        mentoring.end_active_match(uow, world.cipher, match_id, None, EndMatch.model_validate(
            {"planned": True, "feedback": {"helped": 5, "made_worse": "no",
                                           "comment": "thank you"}}), TODAY)
    with world.database.read() as session:
        exported = safeguarding.export(session, world.cipher, world.records, subject_id,
                                       "partner-a")
    [match] = exported["matches"]
    assert match["sessions"][0]["components"] == ["practical-help"]
    assert match["feedback"]["comment"] == "thank you"
    assert [a["details"] for a in match["adverse_events"]] == ["very upset after the session"]

    with world.database.unit_of_work() as uow:
        MentoringCascade(world.cipher, world.records, world.rules,
                         today=lambda: TODAY).erase_as_decided(uow, subject_id, None, ())
    assert world.row("mentee_feedback", match_id=match_id).comment_sealed is None
    assert world.row("adverse_events", adverse_event_id=logged["id"]).details_sealed is None

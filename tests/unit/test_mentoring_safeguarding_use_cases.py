"""Mentoring's safeguarding use cases (services/mentoring/service_layer/safeguarding.py) with
their collaborators in memory: concerns from any contact, the lead's queue and its steps,
the MARAC projection and repeat flag, safe-contact copies and subject access."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.mentoring.adapters.tables import safeguarding_concerns
from services.mentoring.service_layer import mentoring, safeguarding
from services.mentoring.service_layer.commands import RaiseConcern
from services.mentoring.service_layer.errors import NotFound
from shared.auth import NotPermitted
from shared.crypto import UnknownSubject
from tests.support.fakes import published
from tests.support.fakes_mentoring import (
    CLINICIAN,
    COORDINATOR,
    LEAD,
    PHONE,
    TRUST_DPO,
    MentoringWorld,
    caller,
    session_command,
)

RAISED_ON = date.today()  # a concern's date is bounded by the real today
DETAILS = "said her ex-partner found the new address"
NEW_PHONE = "07700 900420"


@pytest.fixture
def world() -> MentoringWorld:
    return MentoringWorld()


def raise_concern(world: MentoringWorld, subject_id: str, by: Any = CLINICIAN,
                  **fields: Any) -> dict[str, Any]:
    command = RaiseConcern(subject_id=subject_id, raised_on=RAISED_ON, details=DETAILS,
                           **fields)
    return safeguarding.raise_concern(world.database, world.consent, world.cipher,
                                      world.records, command, by)


def step(world: MentoringWorld, concern_id: str, taken: Any, by: Any = LEAD,
         note: str | None = None) -> dict[str, Any]:
    with world.database.unit_of_work() as uow:
        return safeguarding.step(uow, world.records, concern_id, taken, by, note)


def queue(world: MentoringWorld, by: Any = LEAD, status: str | None = "open",
          flagged_for_dpo: bool | None = None) -> list[dict[str, Any]]:
    return safeguarding.queue(world.database, world.consent, world.records, by, status,
                              flagged_for_dpo)


# --- raising a concern ----------------------------------------------------------------------

def test_a_concern_from_any_contact_is_sealed_kept_with_the_latest_contact_and_published(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    referral_id = world.refer(subject_id)  # before any match: a waitlisted person

    raised = raise_concern(world, subject_id, referral_id=referral_id)

    assert (raised["status"], raised["safe_contact_kept"], raised["org"]) == (
        "open", True, "trust")
    assert "repeat" not in raised  # the raiser is never told of MARAC referrals
    row = world.row("safeguarding_concerns", concern_id=raised["id"])
    assert DETAILS.encode() not in row.details_sealed and row.safe_contact_org == "trust"
    [event] = published(world.database, "safeguarding-concern-raised")
    assert (event.subject, event.data["referral_id"]) == (subject_id, referral_id)
    assert DETAILS not in event.model_dump_json()


def test_a_concern_about_someone_the_organisation_does_not_know_is_unknown(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    for who, about in ((caller("partner-b", "partner-staff"), subject_id),
                       (CLINICIAN, "not-a-reference")):
        with pytest.raises(UnknownSubject):
            raise_concern(world, about, who)
    assert world.rows("safeguarding_concerns") == []


def test_a_concern_names_only_the_persons_own_referral_and_match(
        world: MentoringWorld) -> None:
    subject_id, referral_id, match_id = world.matched()
    other = world.person()
    with pytest.raises(safeguarding.NotRelated, match=r"^referral_id: "):
        raise_concern(world, other, referral_id=referral_id)
    with pytest.raises(safeguarding.NotRelated, match=r"^match_id: "):
        raise_concern(world, other, match_id=match_id)
    assert raise_concern(world, subject_id, COORDINATOR, match_id=match_id)["match_id"] \
        == match_id


def test_a_concern_after_a_marac_referral_within_a_year_is_a_repeat_for_the_lead_only(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    pseudonym = world.consent.safeguarding_pseudonym(subject_id)
    with world.database.unit_of_work() as uow:
        # re-registered since: linked by the safeguarding pseudonym alone
        safeguarding.marac_referral_projected(uow, "mrc_1", None, pseudonym,
                                              RAISED_ON - timedelta(days=200))
        safeguarding.marac_referral_projected(uow, "mrc_1", None, pseudonym, RAISED_ON)
    assert len(world.rows("marac_referrals")) == 1  # a redelivery is projected once

    raised = raise_concern(world, subject_id)

    [shown] = queue(world)
    assert (shown["id"], shown["repeat"]) == (raised["id"], True)
    assert published(world.database, "safeguarding-concern-raised")[0].data["repeat"] is True


# --- the queue and its steps ----------------------------------------------------------------

def test_the_lead_moves_a_concern_forward_one_step_at_a_time(world: MentoringWorld) -> None:
    concern_id = raise_concern(world, world.person())["id"]

    assert step(world, concern_id, "acknowledge")["status"] == "acknowledged"
    with pytest.raises(safeguarding.StepNotAllowed, match="the concern is acknowledged"):
        step(world, concern_id, "close", note="done")
    assert step(world, concern_id, "action", note="called the IDVA")["status"] == "actioned"

    [shown] = queue(world, status="actioned")
    assert [(h["status"], h["note"]) for h in shown["history"]] == [
        ("open", None), ("acknowledged", None), ("actioned", "called the IDVA")]


def test_only_the_trusts_safeguarding_lead_takes_a_step(world: MentoringWorld) -> None:
    concern_id = raise_concern(world, world.person())["id"]
    for who in (COORDINATOR, caller("partner-a", "safeguarding-lead")):
        with pytest.raises(NotPermitted):
            step(world, concern_id, "acknowledge", who)
    with pytest.raises(safeguarding.ConcernNotFound):
        step(world, "sgc_missing", "acknowledge")
    assert world.row("safeguarding_concerns", concern_id=concern_id).status == "open"


def test_the_queue_is_the_leads_with_contact_and_each_read_is_audited(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    world.refer(subject_id)
    raise_concern(world, subject_id)
    raise_concern(world, subject_id)
    world.consent.audited.clear()

    shown = queue(world)

    assert [c["safe_contact"]["phone"] for c in shown] == [PHONE, PHONE]
    assert [(a.action, a.subject_id, a.detail) for a in world.consent.audited] == [
        ("mentoring-concern-read", subject_id, {"concerns": 2}),
        ("mentoring-safe-contact-read", subject_id, {"concerns": 2})]


def test_a_dpo_sees_only_flagged_concerns_without_contact_and_others_are_refused(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    world.refer(subject_id)
    flagged, _ = raise_concern(world, subject_id)["id"], raise_concern(world, subject_id)
    with world.database.unit_of_work() as uow:
        uow.session.execute(safeguarding_concerns.update().where(
            safeguarding_concerns.c.concern_id == flagged).values(
            flagged_for_dpo_at=datetime.now(UTC)))  # as erasure flags it

    shown = queue(world, TRUST_DPO, flagged_for_dpo=False)  # a DPO's filter is forced

    assert [(c["id"], c["safe_contact"], c["repeat"]) for c in shown] == [(flagged, None, None)]
    with pytest.raises(NotPermitted):
        queue(world, COORDINATOR)
    assert world.consent.audited[-1].action == "mentoring-concerns-refused"
    assert world.consent.audited[-1].subject_id is None


def test_the_oldest_unacknowledged_concern_sets_the_queues_age(world: MentoringWorld) -> None:
    with world.database.read() as session:
        assert safeguarding.oldest_open_age_seconds(session, datetime.now(UTC)) == 0.0
    concern_id = raise_concern(world, world.person())["id"]
    later = datetime.now(UTC) + timedelta(minutes=10)
    with world.database.read() as session:
        assert safeguarding.oldest_open_age_seconds(session, later) >= 599
    step(world, concern_id, "acknowledge")
    with world.database.read() as session:
        assert safeguarding.oldest_open_age_seconds(session, later) == 0.0


# --- safe contact copies --------------------------------------------------------------------

def test_an_organisations_new_safe_contact_replaces_only_its_own_copies(
        world: MentoringWorld) -> None:
    subject_id = world.person(sharing_with=("partner-a", "partner-b"))
    to_a, to_b = world.refer(subject_id), world.refer(subject_id, "partner-b")
    theirs = raise_concern(world, subject_id, caller("partner-b", "partner-staff"))["id"]

    with world.database.unit_of_work() as uow:
        safeguarding.replace_contact(uow, world.records, subject_id, "partner-a",
                                     {"phone": NEW_PHONE, "times": "any",
                                      "may_leave_message": True})

    assert world.row("referrals", referral_id=to_a).safe_contact_org == "partner-a"
    untouched = world.row("referrals", referral_id=to_b)
    assert untouched.safe_contact_org is None
    kept = safeguarding.referral_contact(untouched, world.cipher, world.records)
    with world.database.read() as session:
        [concern] = safeguarding.concerns(session, "open", None, None, world.records, True)
    assert (concern["id"], concern["safe_contact"]["phone"]) == (theirs, PHONE)
    assert isinstance(kept, dict) and kept["phone"] == PHONE


# --- subject access -------------------------------------------------------------------------

def test_a_dpo_exports_what_is_held_for_their_organisation_and_it_is_audited(
        world: MentoringWorld) -> None:
    subject_id, referral_id, match_id = world.matched()
    with world.database.unit_of_work() as uow:
        mentoring.write_session(uow, world.cipher, world.records, world.consent,
                                session_command(match_id), "partner-a")
    raise_concern(world, subject_id, COORDINATOR)
    partner_dpo = caller("partner-a", "dpo")
    world.consent.audited.clear()

    exported = safeguarding.export_subject(world.database, world.consent, world.cipher,
                                           world.records, subject_id, partner_dpo)

    assert [r["id"] for r in exported["referrals"]] == [referral_id]
    [match] = exported["matches"]
    assert (match["id"], len(match["sessions"])) == (match_id, 1)
    assert [c["concern_details"] for c in exported["safeguarding_concerns"]] == [DETAILS]
    assert [(a.action, a.detail) for a in world.consent.audited] == [
        ("mentoring-subject-export", {"referrals": 1, "concerns": 1})]


def test_an_export_of_someone_the_organisation_does_not_know_is_not_found(
        world: MentoringWorld) -> None:
    subject_id = world.person()
    for about in (subject_id, "sub_" + "f" * 32):
        with pytest.raises(NotFound, match="person"):
            safeguarding.export_subject(world.database, world.consent, world.cipher,
                                        world.records, about, caller("partner-b", "dpo"))
    assert [(a.action, a.subject_id) for a in world.consent.audited] == [
        ("mentoring-export-refused", None)] * 2

"""Mentoring's part in the consent cascade (services/mentoring/service_layer/cascade.py) with
its collaborators in memory: withdrawal of peer-mentoring and of partner-sharing, and erasure
as the DPO decided it."""

from __future__ import annotations

from datetime import date

import pytest

from services.mentoring.service_layer.cascade import MENTORING_RECORDS, MentoringCascade
from services.mentoring.service_layer.commands import RaiseConcern
from services.mentoring.service_layer.safeguarding import raise_concern
from shared.events.consent import ErasureRequested
from tests.support.fakes import published
from tests.support.fakes_mentoring import CLINICIAN, PARTNER_STAFF, TODAY, MentoringWorld


@pytest.fixture
def world() -> MentoringWorld:
    return MentoringWorld()


def cascade(world: MentoringWorld) -> MentoringCascade:
    return MentoringCascade(world.cipher, world.records, world.rules, today=lambda: TODAY)


def concern(world: MentoringWorld, subject_id: str) -> str:
    command = RaiseConcern(subject_id=subject_id, raised_on=date.today(), details="threats")
    return str(raise_concern(world.database, world.consent, world.cipher, world.records,
                             command, CLINICIAN)["id"])


def test_withdrawing_peer_mentoring_ends_cancels_keeps_the_contact_and_frees_the_mentor(
        world: MentoringWorld) -> None:
    leaving, first, match_id = world.matched()
    second = world.refer(leaving)
    world.match(second)
    waiting = world.refer(world.person())
    world.match(waiting)

    with world.database.unit_of_work() as uow:
        cascade(world).withdrawn(uow, leaving, ("peer-mentoring",), "trust")

    ended = world.row("matches", match_id=match_id)
    assert (ended.status, ended.planned) == ("ended", False)
    assert [world.row("referrals", referral_id=r).status for r in (first, second, waiting)] \
        == ["ended", "cancelled", "matched"]
    assert world.row("referrals", referral_id=second).safe_contact_kept is not None
    [event] = published(world.database, "mentoring-ended")
    assert (event.data["match_id"], event.data["planned"]) == (match_id, False)


def test_a_withdrawal_by_another_holder_leaves_the_trusts_referrals_alone(
        world: MentoringWorld) -> None:
    subject_id, referral_id, match_id = world.matched()
    with world.database.unit_of_work() as uow:
        cascade(world).withdrawn(uow, subject_id, ("peer-mentoring", "partner-sharing"),
                                 "partner-b")
    assert world.row("matches", match_id=match_id).status == "active"
    assert world.row("referrals", referral_id=referral_id).sharing_withdrawn is False


def test_withdrawing_partner_sharing_reaches_only_the_recipients_named(
        world: MentoringWorld) -> None:
    subject_id = world.person(sharing_with=("partner-a", "partner-b"))
    to_a, to_b = world.refer(subject_id), world.refer(subject_id, "partner-b")
    with world.database.unit_of_work() as uow:
        cascade(world).withdrawn(uow, subject_id, ("partner-sharing",), "trust",
                                 ("partner-b",))
    assert world.row("referrals", referral_id=to_a).sharing_withdrawn is False
    assert world.row("referrals", referral_id=to_b).sharing_withdrawn is True
    assert world.row("referrals", referral_id=to_b).status == "referred"  # mentoring goes on


def test_erasure_deidentifies_but_keeps_and_flags_the_concerns(world: MentoringWorld) -> None:
    subject_id, referral_id, match_id = world.matched()
    concern_id = concern(world, subject_id)

    with world.database.unit_of_work() as uow:
        kept = cascade(world).erase(uow, subject_id)

    assert kept == 1
    assert world.row("referrals", referral_id=referral_id).subject_id is None
    assert world.row("matches", match_id=match_id).end_reason_sealed is None
    flagged = world.row("safeguarding_concerns", concern_id=concern_id)
    assert (flagged.subject_id, flagged.flagged_for_dpo_at is not None) == (subject_id, True)


def test_an_organisations_erasure_with_its_records_retained_keeps_them(
        world: MentoringWorld) -> None:
    subject_id, referral_id, match_id = world.matched()
    request = ErasureRequested(withdrawal_id="wdr_1", purposes=("peer-mentoring",),
                               method="written", org="trust", scope="organisation",
                               retained=(MENTORING_RECORDS,))
    with world.database.unit_of_work() as uow:
        assert cascade(world).erasure_requested(uow, subject_id, request) == 0
    assert world.row("referrals", referral_id=referral_id).subject_id == subject_id
    assert world.row("matches", match_id=match_id).status == "ended"


def test_an_organisations_erasure_reaches_only_the_referrals_it_made_or_received(
        world: MentoringWorld) -> None:
    subject_id = world.person(sharing_with=("partner-b",))
    to_b = world.refer(subject_id, "partner-b")
    world.consent.grant(subject_id, "partner-a", "peer-mentoring")
    partner_a_own = world.refer(subject_id, "partner-a", by=PARTNER_STAFF)

    with world.database.unit_of_work() as uow:
        cascade(world).erase_as_decided(uow, subject_id, "partner-b", ())

    assert world.row("referrals", referral_id=to_b).subject_id is None
    assert world.row("referrals", referral_id=partner_a_own).subject_id == subject_id

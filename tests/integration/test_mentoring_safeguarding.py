"""Safeguarding concerns from any contact, the lead's queue, repeats, safe contact, erasure as
the DPO decided it and subject access, on both databases, with a real consent service.

Consent's safeguarding-pseudonym and safe-contact endpoints are built beside this work; until
they are on this branch the test serves a minimal stand-in for each (``stand_ins``), and the
real ones when they are there. Consent events reach mentoring through the worker's own
handlers (``apply``), as from consent.events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from ops.demo import fake_nhs_numbers
from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.mentoring.adapters.tables import referrals, safeguarding_concerns
from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.api import build_api as mentoring_api
from services.mentoring.entrypoints.worker import (
    HolderCascadeParticipant,
    marac_referral_handlers,
    refresh_concern_gauge,
)
from services.mentoring.service_layer.cascade import MentoringCascade
from shared.db import utcnow
from shared.events.consent import ErasureRequested, SafeContactUpdated
from shared.events.envelope import CloudEvent, EventPayload
from shared.events.screening import MaracReferralRequired
from shared.kafka.consumer import EventApplier, InboundRecord
from shared.kafka.topics import events_topic
from tests.support.http import serving
from tests.support.services import bearer, issuing, settings_for

TODAY = date.today()
PHONE = "07700 900415"
NEW_PHONE = "07700 900416"
DETAILS = "said her ex-partner found the new address"
GAUGE = "peerlink_safeguarding_concern_oldest_open_age_seconds"


class NoDeadLetters:
    def send(self, consumer: str, record: InboundRecord, reason: str, message: str) -> None:
        raise AssertionError(f"dead-lettered: {reason}: {message}")


@dataclass
class World:
    service: MentoringAdapters
    client: TestClient
    consent: httpx.Client
    consent_service: ConsentAdapters
    numbers: Iterator[str] = field(default_factory=lambda: fake_nhs_numbers(random.Random()))
    offset: int = 0

    def as_(self, org: str, *roles: str) -> dict[str, str]:
        return bearer(self.service.settings, org, *roles)

    @property
    def lead(self) -> dict[str, str]:
        return self.as_("trust", "safeguarding-lead")

    @property
    def coordinator(self) -> dict[str, str]:
        return self.as_("partner-a", "mentor-coordinator")

    def person(self, org: str = "trust", nhs_number: str | None = None) -> str:
        role = "clinician" if org == "trust" else "partner-staff"
        headers = self.as_(org, role)
        response = self.consent.post("/v1/subjects", json={
            "nhs_number": nhs_number or next(self.numbers)}, headers=headers)
        assert response.status_code == 201, response.text
        subject_id = str(response.json()["subject_id"])
        for purpose, more in (("peer-mentoring", {}),
                              ("partner-sharing", {"recipients": ["partner-a"]})):
            if org != "trust" and purpose == "partner-sharing":
                continue
            granted = self.consent.post(f"/v1/subjects/{subject_id}/consents", json={
                "purpose": purpose, "method": "written", "recorded_by": "Dr Okafor", **more},
                headers=headers)
            assert granted.status_code == 201, granted.text
        return subject_id

    def mentor(self) -> str:
        done = (TODAY - timedelta(days=60)).isoformat()
        response = self.client.post("/v1/mentors", json={
            "org": "partner-a", "display_name": "Robin", "gender": "female",
            "languages": ["en"], "borough": "camden", "modes": ["phone"], "capacity": 5,
            "training_completed_on": done, "check_level": "enhanced",
            "check_completed_on": done, "supervision_held_on": TODAY.isoformat(),
            "status": "active"}, headers=self.coordinator)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def refer(self, subject_id: str) -> str:
        response = self.client.post("/v1/referrals", json={
            "subject_id": subject_id, "referred_by_org": "trust", "to_org": "partner-a",
            "safe_contact": {"phone": PHONE, "times": "after 6pm", "may_leave_message": False}},
            headers=self.as_("trust", "clinician"))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def match(self, referral_id: str) -> dict[str, Any]:
        response = self.client.post(f"/v1/referrals/{referral_id}/match",
                                    headers=self.coordinator)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def raise_concern(self, subject_id: str, headers: dict[str, str] | None = None,
                      **more: Any) -> httpx.Response:
        response: httpx.Response = self.client.post("/v1/safeguarding-concerns", json={
            "subject_id": subject_id, "raised_on": TODAY.isoformat(), "details": DETAILS,
            **more}, headers=headers or self.as_("trust", "clinician"))
        return response

    def concern(self, subject_id: str, headers: dict[str, str] | None = None,
                **more: Any) -> str:
        response = self.raise_concern(subject_id, headers, **more)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def queue(self, status: str | None = "open", headers: dict[str, str] | None = None
              ) -> dict[str, dict[str, Any]]:
        response = self.client.get("/v1/safeguarding-concerns",
                                   params={"status": status} if status else {},
                                   headers=headers or self.lead)
        assert response.status_code == 200, response.text
        return {c["id"]: c for c in response.json()["concerns"]}

    def step(self, concern_id: str, step: str, headers: dict[str, str] | None = None,
             note: str | None = None) -> httpx.Response:
        body = None if step == "acknowledge" else {"note": note or f"{step} note"}
        response: httpx.Response = self.client.post(
            f"/v1/safeguarding-concerns/{concern_id}/{step}", json=body,
            headers=headers or self.lead)
        return response

    def apply(self, payload: EventPayload, subject_id: str, topic: str = "consent") -> None:
        """Apply an event as the worker would, from ``<topic>.events``."""
        service = self.service
        if topic == "consent":
            handlers = HolderCascadeParticipant(
                MentoringCascade(service.cipher, service.records, service.rules),
                service.keys.evict, service.cipher, service.records).handlers()
        else:
            handlers = marac_referral_handlers()
        applier = EventApplier("mentoring", f"mentoring.{topic}", service.database, handlers,
                               NoDeadLetters(), halt_on_error=True)
        source = f"/peerlink/{topic}"
        event = CloudEvent.wrap(payload, source=source, subject=subject_id)
        applier.process(InboundRecord(events_topic(topic), 0, self.offset, subject_id.encode(),
                                      event.to_bytes()))
        self.offset += 1

    def outbox(self, event_type: str, consent: bool = False) -> list[CloudEvent]:
        database = self.consent_service.database if consent else self.service.database
        outbox = database.metadata.tables["outbox"]
        with database.read() as session:
            rows = session.execute(select(outbox).where(outbox.c.event_type == event_type)
                                   .order_by(outbox.c.seq)).all()
        return [CloudEvent.from_bytes(r.payload) for r in rows]

    def audit(self, subject_id: str) -> list[str]:
        response = self.consent.get("/v1/audit", params={"subject_id": subject_id},
                                    headers=self.as_("trust", "dpo"))
        assert response.status_code == 200, response.text
        return [entry["action"] for entry in response.json()["entries"]]


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[World]:
    settings = settings_for(monkeypatch, tmp_path, {
        "consent": f"sqlite:///{tmp_path / 'consent.db'}", "mentoring": database_url})
    with issuing(settings) as settings:
        consent_service = ConsentAdapters(settings)
        app = consent_api(consent_service)
        with serving(app) as consent_url, \
                httpx.Client(base_url=consent_url, timeout=10) as consent:
            service = MentoringAdapters(settings.model_copy(update={"consent_url": consent_url}))
            yield World(service, TestClient(mentoring_api(service)), consent, consent_service)
            service.database.dispose()


# --- concerns from any contact ---------------------------------------------------------------

def test_a_concern_is_raised_while_waitlisted_after_an_ending_and_at_withdrawal(
        world: World) -> None:
    waiting = world.person()
    waitlisted = world.refer(waiting)
    assert world.match(waitlisted)["status"] == "waitlisted"  # no mentor yet
    at_wait = world.concern(waiting, headers=world.coordinator, referral_id=waitlisted)

    world.mentor()
    ended = world.person()
    referral_id = world.refer(ended)
    match_id = world.match(referral_id)["match_id"]
    finished = world.client.post(f"/v1/matches/{match_id}/end", json={"planned": True},
                                 headers=world.coordinator)
    assert finished.status_code == 200, finished.text
    after_end = world.concern(ended, headers=world.coordinator, referral_id=referral_id,
                              match_id=match_id)

    leaving = world.person()
    world.match(world.refer(leaving))
    with world.service.database.unit_of_work() as uow:
        MentoringCascade(world.service.cipher, world.service.records, world.service.rules
                         ).withdrawn(uow, leaving, ("peer-mentoring",), "trust")
    at_withdrawal = world.concern(leaving, headers=world.as_("trust", "clinician"))

    queue = world.queue()
    for concern_id, subject_id in ((at_wait, waiting), (after_end, ended),
                                   (at_withdrawal, leaving)):
        shown = queue[concern_id]
        assert (shown["subject_id"], shown["status"], shown["repeat"]) == (
            subject_id, "open", False)
        assert shown["concern_details"] == DETAILS
        assert shown["safe_contact"]["phone"] == PHONE  # the latest known: the referral's
        assert [h["status"] for h in shown["history"]] == ["open"]
    assert (queue[after_end]["match_id"], queue[after_end]["referral_id"]) == (
        match_id, referral_id)
    assert queue[at_withdrawal]["org"] == "trust"
    [raised] = [e for e in world.outbox("safeguarding-concern-raised")
                if e.data["concern_id"] == at_wait]
    assert (raised.data["referral_id"], raised.data["match_id"], raised.data["org"],
            raised.data["repeat"]) == (waitlisted, None, "partner-a", False)
    assert DETAILS.encode() not in raised.to_bytes()


def test_a_concern_needs_a_relationship_and_names_the_field_it_refuses(world: World) -> None:
    person = world.person()
    referral_id = world.refer(person)
    unrelated = world.raise_concern(person, headers=world.as_("partner-b", "partner-staff"))
    unknown = world.raise_concern("sub_" + "0" * 32,
                                  headers=world.as_("partner-b", "partner-staff"))
    assert (unrelated.status_code, unrelated.json()) == (unknown.status_code, unknown.json())
    assert unrelated.status_code == 422

    other = world.person()
    wrong = world.raise_concern(other, headers=world.as_("trust", "clinician"),
                                referral_id=referral_id)
    assert wrong.status_code == 422
    assert "referral_id" in wrong.text and person not in wrong.text
    blank = world.raise_concern(person, details="  ")
    assert blank.status_code == 422 and "details" in blank.text
    refused = world.raise_concern(person, headers=world.as_("trust", "safeguarding-lead"))
    assert refused.status_code == 403
    assert world.queue() == {}


def test_a_safe_contact_given_with_the_concern_is_kept_and_shown_to_the_lead_only(
        world: World) -> None:
    person = world.person()
    concern_id = world.concern(person, headers=world.as_("trust", "clinician"), safe_contact={
        "phone": NEW_PHONE, "times": "mornings", "may_leave_message": False,
        "safe_to_call": True})
    assert world.queue()[concern_id]["safe_contact"]["phone"] == NEW_PHONE
    with world.service.database.unit_of_work() as uow:
        uow.session.execute(update(safeguarding_concerns).where(
            safeguarding_concerns.c.concern_id == concern_id).values(
            flagged_for_dpo_at=utcnow()))
    seen = world.queue(headers=world.as_("trust", "dpo"))[concern_id]
    assert (seen["safe_contact"], seen["safe_contact_kept"]) == (None, True)
    assert NEW_PHONE not in world.client.get("/v1/safeguarding-concerns", headers=world.as_(
        "trust", "dpo")).text
    audited = world.audit(person)
    assert "mentoring-concern-read" in audited
    assert audited.count("mentoring-safe-contact-read") == 1  # the lead's read, not the DPO's


# --- the queue's states ----------------------------------------------------------------------

ORDER = ("acknowledge", "action", "close")
ENTERS = {"acknowledge": "acknowledged", "action": "actioned", "close": "closed"}
STATES = ("open", "acknowledged", "actioned", "closed")


@pytest.mark.parametrize("state", STATES)
def test_every_step_from_every_state(world: World, state: str) -> None:
    """The lead takes each step only from the state before it; any other is 409 naming the
    concern's state; every other role is refused whatever the state."""
    person = world.person()
    concern_id = world.concern(person)
    for taken in ORDER[:STATES.index(state)]:
        assert world.step(concern_id, taken).status_code == 200
    for taken in ORDER:
        for org, role in (("partner-a", "mentor-coordinator"), ("partner-a", "partner-staff"),
                          ("trust", "clinician"), ("trust", "dpo"), ("partner-a", "dpo"),
                          ("trust", "ops-viewer")):
            refused = world.step(concern_id, taken, world.as_(org, role))
            assert refused.status_code == 403, (taken, org, role, refused.text)
        legal = STATES.index(state) == ORDER.index(taken)
        if not legal:
            response = world.step(concern_id, taken)
            assert response.status_code == 409, (state, taken, response.text)
            assert f"the concern is {state}" in response.json()["message"]
    if state != "closed":
        taken = ORDER[STATES.index(state)]
        moved = world.step(concern_id, taken)
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == ENTERS[taken]
        [shown] = world.queue(ENTERS[taken]).values()
        assert [h["status"] for h in shown["history"]] == ["open", *(
            ENTERS[t] for t in ORDER[:STATES.index(state) + 1])]
        assert all(h["by"] and h["at"] for h in shown["history"])
        assert [h["note"] for h in shown["history"][1:]] == [
            None if t == "acknowledge" else f"{t} note" for t in ORDER[:STATES.index(state) + 1]]
    assert world.step("sgc_" + "0" * 32, "acknowledge").status_code == 404


def test_a_note_is_required_to_action_or_close(world: World) -> None:
    concern_id = world.concern(world.person())
    assert world.step(concern_id, "acknowledge").status_code == 200
    response = world.client.post(f"/v1/safeguarding-concerns/{concern_id}/action",
                                 json={"note": ""}, headers=world.lead)
    assert response.status_code == 422 and "note" in response.text


def problems(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["details"]]


def test_a_blank_note_or_blank_concern_details_are_refused_naming_the_field(
        world: World) -> None:
    concern_id = world.concern(world.person())
    assert world.step(concern_id, "acknowledge").status_code == 200
    assert problems(world.step(concern_id, "action", note=" \n\t ")) == ["note"]
    assert world.step(concern_id, "action").status_code == 200
    assert problems(world.step(concern_id, "close", note="   ")) == ["note"]
    assert [h["status"] for h in world.queue("actioned")[concern_id]["history"]] == [
        "open", "acknowledged", "actioned"]  # nothing recorded by the refused steps

    assert problems(world.raise_concern(world.person(), details=" \n ")) == ["details"]
    world.mentor()
    match_id = world.match(world.refer(world.person()))["match_id"]
    logged = world.client.post("/v1/sessions", json={
        "match_id": match_id, "held_on": TODAY.isoformat(), "duration_minutes": 30,
        "mode": "phone", "attendance": "attended", "safeguarding_concern": True,
        "concern_details": "   "}, headers=world.coordinator)
    assert problems(logged) == ["concern_details"]
    assert world.queue() == {}  # neither refused concern reached the queue


# --- repeats ---------------------------------------------------------------------------------

def marac(raised_on: date, pseudonym: str | None) -> MaracReferralRequired:
    return MaracReferralRequired(
        referral_id=f"marac_{uuid.uuid4().hex}", org="trust", raised_on=raised_on,
        criteria_met=("visible-high-risk",), source="external",
        safeguarding_pseudonym=pseudonym)


def test_a_concern_after_a_marac_referral_within_12_months_is_a_repeat(world: World) -> None:
    person = world.person()
    world.apply(marac(TODAY - timedelta(days=400), None), person, "screening")
    first = world.concern(person)
    assert world.queue()[first]["repeat"] is False  # that referral was over 12 months ago
    world.apply(marac(TODAY - timedelta(days=100), None), person, "screening")
    concern_id = world.concern(person)
    assert world.queue()[concern_id]["repeat"] is True
    [raised] = [e for e in world.outbox("safeguarding-concern-raised")
                if e.data["concern_id"] == concern_id]
    assert raised.data["repeat"] is True


def test_a_repeat_is_recognised_by_pseudonym_after_re_registration(world: World) -> None:
    earlier = f"sub_{uuid.uuid4().hex}"  # the person's reference before erasure
    person = world.person(org="partner-a")  # registered again, as the partner's client
    pseudonym = world.service.consent.safeguarding_pseudonym(person)  # consent's, keyed
    assert pseudonym is not None
    world.apply(marac(TODAY - timedelta(days=30), pseudonym), earlier, "screening")
    concern_id = world.concern(person, headers=world.as_("partner-a", "partner-staff"))
    assert world.queue()[concern_id]["repeat"] is True


def test_raising_a_concern_does_not_tell_the_raiser_whether_it_is_a_repeat(
        world: World) -> None:
    """Any organisation with a relationship may raise a concern: its answer must not say
    whether the person had a MARAC referral, nor may its date range freely to narrow down
    when one was made. Only the safeguarding lead's queue shows the repeat flag."""
    person = world.person()
    partner = world.as_("partner-a", "partner-staff")
    world.refer(person)  # partner-a receives the referral: a relationship
    world.apply(marac(TODAY - timedelta(days=100), None), person, "screening")
    raised = world.raise_concern(person, headers=partner)
    assert raised.status_code == 201, raised.text
    assert "repeat" not in raised.json()
    assert world.queue()[raised.json()["id"]]["repeat"] is True

    for raised_on in (TODAY + timedelta(days=1), TODAY - timedelta(days=31),
                      TODAY - timedelta(days=400)):
        refused = world.raise_concern(person, headers=partner, raised_on=raised_on.isoformat())
        assert problems(refused) == ["raised_on"], raised_on
    oldest = world.raise_concern(person, headers=partner,
                                 raised_on=(TODAY - timedelta(days=30)).isoformat())
    assert oldest.status_code == 201, oldest.text
    assert "repeat" not in oldest.json()
    assert len(world.queue()) == 2


# --- safe contact ----------------------------------------------------------------------------

def test_safe_contact_survives_withdrawal_and_follows_safe_contact_updated(
        world: World) -> None:
    person = world.person()
    referral_id = world.refer(person)
    world.mentor()
    world.match(referral_id)
    concern_id = world.concern(person)
    with world.service.database.unit_of_work() as uow:
        MentoringCascade(world.service.cipher, world.service.records, world.service.rules
                         ).withdrawn(uow, person, ("peer-mentoring",), "trust")
    kept = world.client.get(f"/v1/referrals/{referral_id}", headers=world.coordinator)
    assert kept.json()["safe_contact"]["phone"] == PHONE

    contact = {"phone": NEW_PHONE, "times": "weekday mornings", "may_leave_message": True,
               "safe_to_call": True, "instructions": "ask for Sam"}
    world.apply(SafeContactUpdated(org="trust", personal=world.service.cipher.seal(
        person, SafeContactUpdated.event_type, {"safe_contact": contact})), person)

    assert world.client.get(f"/v1/referrals/{referral_id}", headers=world.coordinator
                            ).json()["safe_contact"] == contact
    assert world.queue()[concern_id]["safe_contact"] == contact
    referrer = world.client.get(f"/v1/referrals/{referral_id}",
                                headers=world.as_("trust", "clinician"))
    assert NEW_PHONE not in referrer.text
    assert "mentoring-safe-contact-read" in world.audit(person)


def test_either_end_updates_the_safe_contact_for_every_holder(world: World) -> None:
    person = world.person()
    referral_id = world.refer(person)
    contact = {"phone": NEW_PHONE, "times": "evenings", "may_leave_message": False}
    for headers in (world.as_("trust", "clinician"), world.as_("partner-a", "partner-staff")):
        response = world.client.put(f"/v1/referrals/{referral_id}/safe-contact", json=contact,
                                    headers=headers)
        assert response.status_code == 200, response.text
        assert NEW_PHONE not in response.text
    assert world.client.get(f"/v1/referrals/{referral_id}", headers=world.coordinator
                            ).json()["safe_contact"]["phone"] == NEW_PHONE
    held = world.consent.get(f"/v1/subjects/{person}/safe-contact",
                             headers=world.as_("trust", "safeguarding-lead"))
    assert held.status_code == 200, held.text
    assert held.json()["safe_contact"]["phone"] == NEW_PHONE  # consent tells every holder
    [published] = [e for e in world.outbox("safe-contact-updated", consent=True)
                   if e.data["org"] == "partner-a"]  # the receiver's copy
    assert published.subject == person
    hidden = world.client.put(f"/v1/referrals/{referral_id}/safe-contact", json=contact,
                              headers=world.as_("partner-b", "partner-staff"))
    assert hidden.status_code == 404
    bad = world.client.put(f"/v1/referrals/{referral_id}/safe-contact",
                           json={"phone": "1", "times": "x", "may_leave_message": False},
                           headers=world.as_("trust", "clinician"))
    assert bad.status_code == 422 and "phone" in bad.text and "1" not in bad.json()["message"]


ABUSER_PHONE = "07700 900999"


def contact_update(world: World, person: str, org: str, phone: str) -> SafeContactUpdated:
    contact = {"phone": phone, "times": "any time", "may_leave_message": True}
    return SafeContactUpdated(org=org, personal=world.service.cipher.seal(
        person, SafeContactUpdated.event_type, {"safe_contact": contact}))


def test_an_organisations_safe_contact_update_reaches_only_its_own_records(
        world: World) -> None:
    """An abuser working at a partner can register the person (a relationship of its own) and
    record their own number as the person's safe contact: it must not reach the Trust's
    referral or the concerns other organisations raised."""
    nhs_number = next(world.numbers)
    person = world.person(nhs_number=nhs_number)
    referral_id = world.refer(person)  # the Trust's, to partner-a
    trusts = world.concern(person, headers=world.as_("trust", "clinician"))
    partner_as = world.concern(person, headers=world.coordinator)
    assert world.person(org="partner-b", nhs_number=nhs_number) == person
    partner_bs = world.concern(person, headers=world.as_("partner-b", "partner-staff"))

    world.apply(contact_update(world, person, "partner-b", ABUSER_PHONE), person)
    shown = world.client.get(f"/v1/referrals/{referral_id}", headers=world.coordinator)
    assert shown.json()["safe_contact"]["phone"] == PHONE
    queue = world.queue()
    assert (queue[trusts]["safe_contact"]["phone"], queue[partner_as]["safe_contact"]["phone"]
            ) == (PHONE, PHONE)
    assert queue[partner_bs]["safe_contact"]["phone"] == ABUSER_PHONE  # its own copy

    # the receiver's copy reaches the referral it received and the concerns it raised only
    world.apply(contact_update(world, person, "partner-a", NEW_PHONE), person)
    shown = world.client.get(f"/v1/referrals/{referral_id}", headers=world.coordinator)
    assert shown.json()["safe_contact"]["phone"] == NEW_PHONE
    queue = world.queue()
    assert [queue[c]["safe_contact"]["phone"] for c in (trusts, partner_as, partner_bs)] == [
        PHONE, NEW_PHONE, ABUSER_PHONE]
    # a later concern of the Trust's takes the Trust's latest: the referral's, which either end
    # may update
    later = world.concern(person, headers=world.as_("trust", "clinician"))
    assert world.queue()[later]["safe_contact"]["phone"] == NEW_PHONE


def test_a_receiver_whose_sharing_was_withdrawn_no_longer_updates_the_referral(
        world: World) -> None:
    person = world.person()
    referral_id = world.refer(person)  # the Trust's, to partner-a

    def contact_on_referral() -> tuple[object, object, object]:
        with world.service.database.read() as session:
            row = session.execute(select(referrals).where(
                referrals.c.referral_id == referral_id)).one()
        return row.safe_contact_kept, row.safe_contact_sealed, row.safe_contact_org

    with world.service.database.unit_of_work() as uow:
        MentoringCascade(world.service.cipher, world.service.records, world.service.rules
                         ).withdrawn(uow, person, ("partner-sharing",), "trust", ("partner-a",))
    before = contact_on_referral()

    world.apply(contact_update(world, person, "partner-a", NEW_PHONE), person)

    assert contact_on_referral() == before
    assert before[2] != "partner-a"


def test_a_safe_contact_put_by_one_end_reaches_that_ends_records_through_consent(
        world: World) -> None:
    """The receiver's staff update the referral's safe contact: it is partner-a's copy,
    on this referral at once, and consent's event (naming partner-a) does not reach the
    Trust's own concern."""
    person = world.person()
    referral_id = world.refer(person)
    trusts = world.concern(person, headers=world.as_("trust", "clinician"))
    partner_as = world.concern(person, headers=world.coordinator)
    updated = world.client.put(f"/v1/referrals/{referral_id}/safe-contact", json={
        "phone": NEW_PHONE, "times": "evenings", "may_leave_message": False},
        headers=world.as_("partner-a", "partner-staff"))
    assert updated.status_code == 200, updated.text
    [published] = world.outbox("safe-contact-updated", consent=True)
    assert published.data["org"] == "partner-a"
    world.apply(SafeContactUpdated.model_validate(published.data), person)
    assert world.client.get(f"/v1/referrals/{referral_id}", headers=world.coordinator
                            ).json()["safe_contact"]["phone"] == NEW_PHONE
    queue = world.queue()
    assert (queue[trusts]["safe_contact"]["phone"], queue[partner_as]["safe_contact"]["phone"]
            ) == (PHONE, NEW_PHONE)


# --- erasure as decided, subject access -----------------------------------------------------

def erasure(org: str, scope: str, retained: tuple[str, ...] = ()) -> ErasureRequested:
    return ErasureRequested.model_validate({
        "withdrawal_id": f"wd_{uuid.uuid4().hex}", "purposes": ["peer-mentoring"],
        "method": "verbal", "org": org, "erasure_request_id": f"er_{uuid.uuid4().hex}",
        "scope": scope, "retained": list(retained)})


def test_erasure_of_one_organisations_records_keeps_the_others(world: World) -> None:
    person = world.person()
    trusts = world.refer(person)
    concern_id = world.concern(person, headers=world.coordinator)
    world.apply(erasure("partner-b", "organisation"), person)

    rows = world.service.database.metadata.tables["referrals"]
    with world.service.database.read() as session:
        kept = session.execute(select(rows).where(rows.c.referral_id == trusts)).one()
    assert (kept.subject_id, kept.status) == (person, "referred")
    assert world.queue()[concern_id]["flagged_for_dpo"] is False  # partner-a raised it

    world.apply(erasure("trust", "organisation", ("mentoring-records",)), person)
    with world.service.database.read() as session:
        kept = session.execute(select(rows).where(rows.c.referral_id == trusts)).one()
    assert (kept.subject_id, kept.status) == (person, "cancelled")  # kept: the DPO retained

    world.apply(erasure("partner-a", "subject"), person)
    with world.service.database.read() as session:
        erased = session.execute(select(rows).where(rows.c.referral_id == trusts)).one()
    assert erased.subject_id is None and erased.safe_contact_kept is not None
    assert world.queue()[concern_id]["flagged_for_dpo"] is True
    acks = world.outbox("erasure-applied")
    assert [a.data["retained_records"] for a in acks] == [0, 0, 1]  # partner-a's concern


def test_the_dpo_exports_what_mentoring_holds_for_their_organisation(world: World) -> None:
    world.mentor()
    person = world.person()
    referral_id = world.refer(person)
    match_id = world.match(referral_id)["match_id"]
    session = world.client.post("/v1/sessions", json={
        "match_id": match_id, "held_on": TODAY.isoformat(), "duration_minutes": 30,
        "mode": "phone", "attendance": "attended"}, headers=world.coordinator)
    assert session.status_code == 201, session.text
    concern_id = world.concern(person, headers=world.coordinator)

    exported = world.client.get(f"/v1/subjects/{person}/export",
                                headers=world.as_("partner-a", "dpo"))
    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert [r["id"] for r in body["referrals"]] == [referral_id]
    assert body["referrals"][0]["safe_contact"]["phone"] == PHONE
    assert [len(m["sessions"]) for m in body["matches"]] == [1]
    assert [c["id"] for c in body["safeguarding_concerns"]] == [concern_id]
    assert body["safeguarding_concerns"][0]["concern_details"] == DETAILS
    trust = world.client.get(f"/v1/subjects/{person}/export",
                             headers=world.as_("trust", "dpo")).json()
    assert [r["id"] for r in trust["referrals"]] == [referral_id]
    assert trust["safeguarding_concerns"] == []  # partner-a raised it
    assert "mentoring-subject-export" in world.audit(person)

    unrelated = world.client.get(f"/v1/subjects/{person}/export",
                                 headers=world.as_("partner-b", "dpo"))
    unknown = world.client.get("/v1/subjects/sub_" + "0" * 32 + "/export",
                               headers=world.as_("partner-b", "dpo"))
    assert unrelated.status_code == 404
    assert (unrelated.status_code, unrelated.json()) == (unknown.status_code, unknown.json())
    assert world.client.get(f"/v1/subjects/{person}/export",
                            headers=world.coordinator).status_code == 403


def flag_for_dpo(world: World, concern_id: str) -> None:
    with world.service.database.unit_of_work() as uow:
        uow.session.execute(update(safeguarding_concerns).where(
            safeguarding_concerns.c.concern_id == concern_id).values(
            flagged_for_dpo_at=utcnow()))


def test_the_leads_notes_are_shown_to_the_lead_only(world: World) -> None:
    """A partner's DPO sees the concerns its organisation raised, flagged by erasure, and in
    its subject access export: the states and times of the lead's steps, never the lead's
    notes, who took them, the repeat flag, or a safe contact that is not its own copy."""
    person = world.person()
    world.refer(person)  # the Trust's, to partner-a: its safe contact is the Trust's copy
    world.apply(marac(TODAY - timedelta(days=100), None), person, "screening")
    borrowed = world.concern(person, headers=world.coordinator)  # takes the referral's
    given = world.concern(person, headers=world.coordinator, safe_contact={
        "phone": NEW_PHONE, "times": "mornings", "may_leave_message": False})
    for concern_id in (borrowed, given):
        for taken in ORDER:
            assert world.step(concern_id, taken, note=f"lead's {taken} {concern_id}"
                              ).status_code == 200
        flag_for_dpo(world, concern_id)

    lead = world.queue("closed")[borrowed]
    assert [h["note"] for h in lead["history"]] == [
        None, None, f"lead's action {borrowed}", f"lead's close {borrowed}"]
    assert lead["repeat"] is True

    partner_dpo = world.as_("partner-a", "dpo")
    listed = world.client.get("/v1/safeguarding-concerns", params={"status": "closed"},
                              headers=partner_dpo)
    assert listed.status_code == 200, listed.text
    assert "lead's" not in listed.text
    seen = {c["id"]: c for c in listed.json()["concerns"]}
    assert set(seen) == {borrowed, given}
    assert [h["status"] for h in seen[borrowed]["history"]] == list(STATES)
    assert all(h["note"] is None and h["at"] for h in seen[borrowed]["history"])
    assert seen[borrowed]["repeat"] is None

    exported = world.client.get(f"/v1/subjects/{person}/export", headers=partner_dpo)
    assert exported.status_code == 200, exported.text
    assert "lead's" not in exported.text
    concerns = {c["id"]: c for c in exported.json()["safeguarding_concerns"]}
    history = concerns[borrowed]["history"]
    assert [(h["status"], h["org"], h["note"]) for h in history] == [
        ("open", "partner-a", None), ("acknowledged", "trust", None),
        ("actioned", "trust", None), ("closed", "trust", None)]
    assert all(h["at"] for h in history)
    assert history[0]["by"] and all(h["by"] is None for h in history[1:])
    assert concerns[borrowed]["repeat"] is None
    # the referral's safe contact is the Trust's copy; the one partner-a gave is its own
    assert (concerns[borrowed]["safe_contact"], concerns[borrowed]["safe_contact_kept"]) == (
        None, True)
    assert concerns[given]["safe_contact"]["phone"] == NEW_PHONE


def test_the_trusts_export_has_the_notes_the_trust_recorded(world: World) -> None:
    person = world.person()
    concern_id = world.concern(person, headers=world.as_("trust", "clinician"), safe_contact={
        "phone": NEW_PHONE, "times": "mornings", "may_leave_message": False})
    for taken in ORDER:
        assert world.step(concern_id, taken).status_code == 200
    exported = world.client.get(f"/v1/subjects/{person}/export",
                                headers=world.as_("trust", "dpo"))
    assert exported.status_code == 200, exported.text
    [concern] = exported.json()["safeguarding_concerns"]
    assert [h["note"] for h in concern["history"]] == [None, None, "action note", "close note"]
    assert all(h["by"] for h in concern["history"])
    assert concern["safe_contact"]["phone"] == NEW_PHONE


# --- the queue's gauge -----------------------------------------------------------------------

def test_the_gauge_shows_the_age_of_the_oldest_unacknowledged_concern(world: World) -> None:
    assert refresh_concern_gauge(world.service.database) == 0
    person = world.person()
    older, newer = world.concern(person), world.concern(person)
    with world.service.database.unit_of_work() as uow:
        table = safeguarding_concerns
        raised = uow.session.execute(select(table.c.raised_at).where(
            table.c.concern_id == older)).scalar_one()
        uow.session.execute(update(table).where(table.c.concern_id == older).values(
            raised_at=raised - timedelta(hours=30)))
    age = refresh_concern_gauge(world.service.database)
    assert 30 * 3600 <= age < 30 * 3600 + 120
    assert REGISTRY.get_sample_value(GAUGE) == age
    assert world.step(older, "acknowledge").status_code == 200
    assert refresh_concern_gauge(world.service.database) < 120
    assert world.step(newer, "acknowledge").status_code == 200
    assert refresh_concern_gauge(world.service.database) == 0

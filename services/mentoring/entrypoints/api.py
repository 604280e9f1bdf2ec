"""The mentoring service's HTTP API (port 8103).

Who may do what is decided in ``services.mentoring.domain.access``: coordinators see and
change only their own organisation's mentors; a referral is sent to one DVA partner, whose
coordinators take it from their intake, see its safe contact, match it with their own mentors
and record its sessions, outcomes and ending; the referrer sees its status; any other
organisation is answered as if it did not exist. Safeguarding concerns come from any contact
(by the staff of an organisation with a relationship with the person) and are worked through
the Trust's safeguarding lead's queue; a referral's safe contact is updated by the staff of
either end, as their organisation's copy; a DPO exports what mentoring holds about a person
for their organisation. Every read of identifiable data, allowed or refused, is audited (one
entry per person shown).
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query
from sqlalchemy.orm import Session

from services.mentoring.bootstrap import MentoringService
from services.mentoring.domain import access
from services.mentoring.service_layer import mentoring as use
from services.mentoring.service_layer import safeguarding
from services.mentoring.service_layer.commands import (
    ChangeMentorStatus,
    ConcernNote,
    EndMatch,
    LogSession,
    RaiseConcern,
    RecordOutcome,
    RecordSupervision,
    ReferMentee,
    RegisterMentor,
)
from shared.auth import NotPermitted, Principal
from shared.consent_client import SharingRequired
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.events.consent import SafeContact
from shared.http import ApiError, create_api, erased
from shared.http import errors as error_statuses
from shared.identity import SUBJECT_PATTERN
from shared.settings import PlatformSettings

ID = Path(max_length=40)
SUBJECT_ID = Path(pattern=SUBJECT_PATTERN, description="a subject reference")
REFERRERS = ("clinician", "partner-staff")
RECORDERS = ("mentor-coordinator", "partner-staff")
INTAKE = Literal["referred", "waitlisted", "matched"]
QUEUE_STATUS = Literal["open", "acknowledged", "actioned", "closed"]
MENTOR = error_statuses((404, "No mentor with this id in your organisation."))
REFERRAL = (404, "No referral with this id that your organisation made or received (the "
                 "same answer).")
MATCH = (404, "No match with this id that your organisation may record on.")
CONCERN = error_statuses((404, "No safeguarding concern with this id."),
                         (409, "The concern is not in the state this step leaves."))


def build_api(service: MentoringService) -> FastAPI:
    """The mentoring API wired to its service."""
    app = create_api("mentoring", title="Peerlink mentoring service",
                     description="Mentors, referrals to a DVA partner's intake, "
                                 "preference-aware matching with the partner's own mentors, "
                                 "sessions, safeguarding concerns, outcome measures and "
                                 "endings.",
                     readiness=[service.database.ping])
    auth = service.authorizer
    db = service.database
    audit = service.consent.audit

    @contextmanager
    def errors() -> Iterator[None]:
        try:
            yield
        except use.NotFound as exc:
            raise ApiError(404, "not-found", f"no {exc} with this id in your organisation"
                           ) from None
        except use.NotActive as exc:
            raise ApiError(409, "not-active", str(exc)) from None
        except KeyShredded:
            raise erased() from None
        except UnknownSubject:
            raise ApiError(422, "unknown-subject", "no registered person has this subject "
                           "reference", field="subject_id") from None
        except KeyStoreUnavailable:
            raise ApiError(503, "consent-unavailable", "the consent service is unavailable; "
                           "nothing was recorded or shown, try again") from None

    @contextmanager
    def safeguarding_errors() -> Iterator[None]:
        try:
            yield
        except safeguarding.ConcernNotFound:
            raise ApiError(404, "not-found", "no safeguarding concern with this id") from None
        except safeguarding.StepNotAllowed as exc:
            raise ApiError(409, "wrong-state", str(exc)) from None
        except safeguarding.NotRelated as exc:
            field, _, message = str(exc).partition(": ")
            raise ApiError(422, "not-related", message, field=field) from None

    def today() -> date:
        return date.today()

    def pseudonym_of(subject_id: str) -> str | None:
        return safeguarding.pseudonym_of(service.registry, subject_id)

    def enforce(decision: access.Decision, record: str) -> None:
        if decision.outcome == "hidden":
            raise use.NotFound(record)
        if decision.outcome == "refused":
            raise NotPermitted(decision.reason)

    def on_referral(session: Session, referral_id: str, caller: Principal,
                    action: access.Action) -> tuple[Any, access.Relationship]:
        """The referral and the caller's relationship to it, if ``action`` is allowed;
        otherwise NotFound (unknown, or nothing to the caller's organisation) or NotPermitted.
        """
        row = use.referral_row(session, referral_id)
        related = use.relationship_to(row, caller.org)
        enforce(access.decide(action, related, caller.roles), "referral")
        return row, related

    def on_match(session: Session, match_id: str, caller: Principal) -> None:
        """NotFound or NotPermitted unless the caller may record on the match; KeyShredded
        (410) once the mentee is erased, asked of consent and never the cache."""
        found = use.match_row(session, match_id, None)
        referral = use.referral_row(session, found.referral_id)
        related = use.relationship_to(referral, caller.org)
        enforce(access.decide("record", related, caller.roles), "match")
        use.require_live(service.keys, referral)

    def dva_partner(org: str) -> None:
        organisation = service.settings.organisations.get(org)
        if organisation is None or organisation.kind != "dva-partner":
            partners = sorted(o for o, c in service.settings.organisations.items()
                              if c.kind == "dva-partner")
            raise ApiError(422, "not-a-partner", "to_org must name a DVA partner organisation: "
                           f"{', '.join(partners)}", field="to_org")

    # --- mentors ---------------------------------------------------------------------------

    @app.post("/v1/mentors", status_code=201)
    def register_mentor(body: RegisterMentor, caller: Annotated[
            Principal, Depends(auth.require("mentor-coordinator"))]) -> dict[str, Any]:
        """Register a mentor of the coordinator's own organisation."""
        if body.org != caller.org:
            raise NotPermitted("coordinators register mentors of their own organisation only")
        with db.unit_of_work() as uow:
            return use.change_and_rematch(uow, caller.org, today(), service.rules,
                                          lambda: use.register_mentor(uow, body))

    @app.get("/v1/mentors")
    def list_mentors(caller: Annotated[Principal, Depends(auth.require("mentor-coordinator"))]
                     ) -> dict[str, Any]:
        """The coordinator's own organisation's mentors."""
        with db.read() as session:
            rows = use.mentors_of(session, caller.org)
            return {"mentors": [use.mentor_view(session, r, today(), service.rules)
                                for r in rows]}

    @app.get("/v1/mentors/{mentor_id}", responses=MENTOR)
    def get_mentor(mentor_id: Annotated[str, ID], caller: Annotated[
            Principal, Depends(auth.require("mentor-coordinator"))]) -> dict[str, Any]:
        """One mentor of the coordinator's organisation."""
        with errors(), db.read() as session:
            return use.mentor_view(session, use.mentor_row(session, mentor_id, caller.org),
                                   today(), service.rules)

    @app.post("/v1/mentors/{mentor_id}/supervision", responses=MENTOR)
    def supervision(mentor_id: Annotated[str, ID], body: RecordSupervision, caller: Annotated[
            Principal, Depends(auth.require("mentor-coordinator"))]) -> dict[str, Any]:
        """Record supervision; waitlisted referrals are matched if the mentor now can take them."""
        with errors(), db.unit_of_work() as uow:
            return use.change_and_rematch(uow, caller.org, today(), service.rules, lambda:
                                          use.record_supervision(uow, mentor_id, caller.org,
                                                                 body.held_on))

    @app.post("/v1/mentors/{mentor_id}/status", responses=MENTOR)
    def status(mentor_id: Annotated[str, ID], body: ChangeMentorStatus, caller: Annotated[
            Principal, Depends(auth.require("mentor-coordinator"))]) -> dict[str, Any]:
        """Change a mentor's status; becoming matchable matches waitlisted referrals."""
        with errors(), db.unit_of_work() as uow:
            return use.change_and_rematch(uow, caller.org, today(), service.rules, lambda:
                                          use.change_status(uow, mentor_id, caller.org,
                                                            body.status))

    # --- referrals ---------------------------------------------------------------------------

    @app.post("/v1/referrals", status_code=201, responses=error_statuses(410, (
        409, "The referrer's peer-mentoring consent is not active, or its partner-sharing does "
        "not name the receiving organisation.")))
    def refer(body: ReferMentee, caller: Annotated[Principal, Depends(auth.require(*REFERRERS))]
              ) -> dict[str, Any]:
        """Refer a person to a DVA partner's intake; needs the referrer's peer-mentoring
        consent and, to another organisation, the referrer's partner-sharing naming it."""
        if body.referred_by_org != caller.org:
            raise NotPermitted("you may refer only on behalf of your own organisation")
        dva_partner(body.to_org)
        with errors():
            subject_id = service.resolve_subject(body.nhs_number, body.subject_id, caller)
            referrer = service.consent.consents(subject_id, caller.org)
            if not referrer.relationship:
                raise UnknownSubject()
            if not referrer.granted("peer-mentoring"):
                raise ApiError(409, "consent-required", "peer-mentoring consent recorded by "
                               "your organisation is not active for this person: record it "
                               "before referring")
            if body.to_org != caller.org:
                try:
                    service.consent.establish_referral(subject_id, body.to_org, caller)
                except SharingRequired:
                    raise ApiError(409, "sharing-required", "partner-sharing consent recorded "
                                   f"by your organisation does not name {body.to_org}: record "
                                   "the person's consent to share with it before referring"
                                   ) from None
            with db.unit_of_work() as uow:
                referral_id = use.refer(uow, service.cipher, service.records, body,
                                        subject_id, today())
                return use.referral_view(uow.session, use.referral_row(uow.session,
                                                                       referral_id),
                                         service.cipher, service.records,
                                         show_safe_contact=False,
                                         viewer_org=caller.org)

    @app.get("/v1/referrals")
    def intake(caller: Annotated[Principal, Depends(auth.require(*RECORDERS))],
               status: Annotated[INTAKE, Query(description="referred (new), waitlisted or "
                                                         "matched")] = "referred"
               ) -> dict[str, Any]:
        """The caller's organisation's intake: referrals sent to it, oldest first, without
        safe contact (it is shown on the referral itself, to coordinators)."""
        with errors(), db.read() as session:
            rows = [r for r in use.intake(session, caller.org, status)
                    if access.decide("read-referral", use.relationship_to(r, caller.org),
                                     caller.roles).allowed]
            views = [use.referral_view(session, r, service.cipher, service.records,
                                       show_safe_contact=False, viewer_org=caller.org)
                     for r in rows]
            for subject_id in dict.fromkeys(r.subject_id for r in rows if r.subject_id):
                audit("mentoring-intake-read", subject_id, caller, status=status)
        return {"status": status, "referrals": views}

    @app.get("/v1/referrals/{referral_id}", responses=error_statuses(REFERRAL))
    def get_referral(referral_id: Annotated[str, ID], caller: Annotated[
            Principal, Depends(auth.require(*REFERRERS, "mentor-coordinator"))]
                     ) -> dict[str, Any]:
        """A referral: to the referrer (status and preferences) and to the receiving
        organisation (with safe contact for its coordinators)."""
        with errors(), db.read() as session:
            try:
                row = use.referral_row(session, referral_id)
            except use.NotFound:
                audit("mentoring-referral-refused", None, caller, referral_id=referral_id,
                      refusal="hidden")
                raise
            related = use.relationship_to(row, caller.org)
            decision = access.decide("read-referral", related, caller.roles)
            if not decision.allowed:
                # an organisation with no relationship is not told whom the referral is
                # about, not even through its own DPO's view of the audit trail
                audit("mentoring-referral-refused",
                      None if decision.outcome == "hidden" else row.subject_id, caller,
                      referral_id=referral_id, refusal=decision.outcome)
                enforce(decision, "referral")
            contact = access.decide("read-safe-contact", related, caller.roles).allowed
            view = use.referral_view(session, row, service.cipher, service.records,
                                     show_safe_contact=contact, viewer_org=caller.org)
            audit("mentoring-safe-contact-read" if contact else "mentoring-referral-read",
                  row.subject_id, caller, referral_id=row.referral_id)
            return view

    @app.post("/v1/referrals/{referral_id}/match", responses=error_statuses(REFERRAL, (
        409, "The referral is no longer waiting to be matched.")))
    def match(referral_id: Annotated[str, ID], caller: Annotated[
            Principal, Depends(auth.require(*REFERRERS, "mentor-coordinator"))]
              ) -> dict[str, Any]:
        """Match with the receiving organisation's best matchable mentor, or waitlist naming
        the unmet constraints; the receiving organisation's coordinators only."""
        with errors(), db.unit_of_work() as uow:
            on_referral(uow.session, referral_id, caller, "match")
            return use.match(uow, referral_id, today(), service.rules)

    # --- sessions, concerns, outcomes, endings -----------------------------------------

    @app.post("/v1/sessions", status_code=201, responses=error_statuses(MATCH, 410, (
        409, "The match has ended: sessions are logged on active matches only.")))
    def log_session(body: LogSession, caller: Annotated[
            Principal, Depends(auth.require(*RECORDERS))]) -> dict[str, Any]:
        """Log a session; a safeguarding concern goes to the Trust's safeguarding lead."""
        with errors(), db.unit_of_work() as uow:
            on_match(uow.session, body.match_id, caller)
            return use.log_session(uow, service.cipher, service.records, body, caller.org,
                                   pseudonym_of, raised_by=caller.subject)

    @app.put("/v1/referrals/{referral_id}/safe-contact", responses=error_statuses(REFERRAL, 410, (
        409, "The person was erased: their safe contact no longer changes.")))
    def update_safe_contact(referral_id: Annotated[str, ID], body: SafeContact, caller: Annotated[
            Principal, Depends(auth.require(*REFERRERS, "mentor-coordinator"))]
                            ) -> dict[str, Any]:
        """Replace the caller's organisation's copy of the person's safe contact (staff of the
        referral's either end): recorded with consent, which tells mentoring (and every
        holder) of that organisation's copy, and on this referral at once."""
        with errors():
            with db.read() as session:
                row, _related = on_referral(session, referral_id, caller,
                                            "update-safe-contact")
            if row.subject_id is None:
                raise use.NotActive("the person was erased: their safe contact is kept for "
                                    "the data protection officer and no longer changes")
            service.registry.update_safe_contact(row.subject_id, body, caller)
            with db.unit_of_work() as uow:
                safeguarding.update_referral_contact(uow, service.records, referral_id, body,
                                                     caller.org)
        return {"id": referral_id, "safe_contact_updated": True}

    @app.post("/v1/safeguarding-concerns", status_code=201, responses=error_statuses(410))
    def raise_concern(body: RaiseConcern, caller: Annotated[
            Principal, Depends(auth.require(*sorted(access.CONCERN_RAISERS)))]
                      ) -> dict[str, Any]:
        """Raise a concern from any contact (waitlisted, after an ending, at withdrawal) about
        a person the caller's organisation has a relationship with; it goes to the Trust's
        safeguarding lead's queue at once."""
        with errors(), safeguarding_errors():
            # what is not a subject reference names no one: answered as an unknown person,
            # and never put in a URL of the consent service
            if not re.fullmatch(SUBJECT_PATTERN, body.subject_id) or not (
                    service.consent.consents(body.subject_id, caller.org).relationship):
                raise UnknownSubject()
            pseudonym = pseudonym_of(body.subject_id)
            with db.unit_of_work() as uow:
                concern = safeguarding.Concern(
                    subject_id=body.subject_id, org=caller.org, raised_on=body.raised_on,
                    details=body.details, raised_by=caller.subject,
                    referral_id=body.referral_id, match_id=body.match_id,
                    safe_contact=None if body.safe_contact is None
                    else body.safe_contact.model_dump())
                safeguarding.check_related(uow.session, concern)
                return safeguarding.raise_concern(uow, service.cipher, service.records,
                                                  concern, pseudonym)

    def take_step(concern_id: str, taken: access.ConcernStep, caller: Principal,
                  note: str | None) -> dict[str, Any]:
        if not access.may_step(taken, caller.org_kind, caller.roles):
            raise NotPermitted("only the Trust's safeguarding lead moves a concern on the "
                               "queue")
        with safeguarding_errors(), db.unit_of_work() as uow:
            return safeguarding.step(uow, service.records, concern_id, taken, caller, note)

    lead = auth.require("safeguarding-lead")

    @app.post("/v1/safeguarding-concerns/{concern_id}/acknowledge", responses=CONCERN)
    def acknowledge(concern_id: Annotated[str, ID],
                    caller: Annotated[Principal, Depends(lead)]) -> dict[str, Any]:
        """The safeguarding lead has seen the concern (open to acknowledged)."""
        return take_step(concern_id, "acknowledge", caller, None)

    @app.post("/v1/safeguarding-concerns/{concern_id}/action", responses=CONCERN)
    def action(concern_id: Annotated[str, ID], body: ConcernNote,
               caller: Annotated[Principal, Depends(lead)]) -> dict[str, Any]:
        """The concern was acted on (acknowledged to actioned), with a short note."""
        return take_step(concern_id, "action", caller, body.note)

    @app.post("/v1/safeguarding-concerns/{concern_id}/close", responses=CONCERN)
    def close(concern_id: Annotated[str, ID], body: ConcernNote,
              caller: Annotated[Principal, Depends(lead)]) -> dict[str, Any]:
        """The concern is closed (actioned to closed), with a short note."""
        return take_step(concern_id, "close", caller, body.note)

    @app.get("/v1/safeguarding-concerns")
    def safeguarding_queue(caller: Annotated[Principal, Depends(auth.require(
                               "safeguarding-lead", "dpo"))],
                           status: Annotated[QUEUE_STATUS | None, Query()] = "open",
                           flagged_for_dpo: Annotated[bool | None, Query()] = None
                           ) -> dict[str, Any]:
        """The Trust's safeguarding lead's queue, with each concern's state history, repeat
        flag and safe contact; a DPO sees only those flagged by erasure (a partner's DPO,
        those its own organisation raised), without the safe contact."""
        scope = access.concern_scope(caller.org, caller.org_kind, caller.roles)
        with errors():
            if scope is None:
                audit("mentoring-concerns-refused", None, caller)
                raise NotPermitted("the safeguarding queue belongs to the Trust's "
                                   "safeguarding lead")
            contact = access.shows_concern_safe_contact(scope)
            with db.read() as session:
                shown = safeguarding.concerns(session, status, True if scope.flagged_only
                                              else flagged_for_dpo, scope.org,
                                              service.records, contact)
            for subject_id in dict.fromkeys(c["subject_id"] for c in shown):
                audit("mentoring-concern-read", subject_id, caller,
                      concerns=sum(c["subject_id"] == subject_id for c in shown))
            for subject_id in dict.fromkeys(c["subject_id"] for c in shown
                                            if c["safe_contact"] is not None):
                audit("mentoring-safe-contact-read", subject_id, caller,
                      concerns=sum(c["subject_id"] == subject_id
                                   and c["safe_contact"] is not None for c in shown))
        return {"concerns": shown}

    @app.get("/v1/subjects/{subject_id}/export", responses=error_statuses((
        404, "Nothing held about this person for your organisation (as for an unknown "
        "person).")))
    def subject_export(subject_id: Annotated[str, SUBJECT_ID], caller: Annotated[
            Principal, Depends(auth.require(*sorted(access.SUBJECT_EXPORTERS)))]
                       ) -> dict[str, Any]:
        """Subject access: everything mentoring holds about the person for the DPO's own
        organisation, decrypted (a person it has no relationship with is not found)."""
        with errors():
            try:
                related = service.consent.consents(subject_id, caller.org).relationship
            except (UnknownSubject, KeyShredded):
                related = False
            if not related:
                audit("mentoring-export-refused", None, caller)
                raise use.NotFound("person")
            with db.read() as session:
                exported = safeguarding.export(session, service.cipher, service.records,
                                               subject_id, caller.org)
            audit("mentoring-subject-export", subject_id, caller,
                  referrals=len(exported["referrals"]),
                  concerns=len(exported["safeguarding_concerns"]))
        return exported

    @app.post("/v1/outcomes", status_code=201, responses=error_statuses(MATCH, 410))
    def outcome(body: RecordOutcome, caller: Annotated[
            Principal, Depends(auth.require(*RECORDERS))]) -> dict[str, Any]:
        """Score and record WEMWBS (sum of 14) or SWEMWBS (raw sum and metric score)."""
        with errors(), db.unit_of_work() as uow:
            on_match(uow.session, body.match_id, caller)
            return use.record_outcome(uow, body, caller.org, today())

    @app.post("/v1/matches/{match_id}/end", responses=error_statuses(MATCH, 410, (
        409, "The match has already ended.")))
    def end(match_id: Annotated[str, ID], body: EndMatch, caller: Annotated[
            Principal, Depends(auth.require(*RECORDERS))]) -> dict[str, Any]:
        """End a match, planned or unplanned; the mentor's room goes to the waitlist."""
        with errors(), db.unit_of_work() as uow:
            on_match(uow.session, match_id, caller)
            ended = use.end_match(uow, service.cipher, match_id, caller.org, body, today())
            use.match_waitlist(uow, today(), service.rules, caller.org)
            return ended

    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(MentoringService(settings))

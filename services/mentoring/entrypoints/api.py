"""The mentoring service's HTTP API (port 8103).

Coordinators see and change only their own organisation's mentors; a referral is visible to
the referring organisation and to the matched mentor's organisation, and safe-contact details
only to the matched mentor's coordinator.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query

from services.mentoring.bootstrap import MentoringService
from services.mentoring.service_layer import mentoring as use
from services.mentoring.service_layer.commands import (
    ChangeMentorStatus,
    EndMatch,
    LogSession,
    RecordOutcome,
    RecordSupervision,
    ReferMentee,
    RegisterMentor,
)
from shared.auth import NotPermitted, Principal
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.http import ApiError, create_api
from shared.settings import PlatformSettings

ID = Path(max_length=40)
REFERRERS = ("clinician", "partner-staff")
RECORDERS = ("mentor-coordinator", "partner-staff")


def build_api(service: MentoringService) -> FastAPI:
    """The mentoring API wired to its service."""
    app = create_api("mentoring", title="Peerlink mentoring service",
                     description="Mentors, referrals, preference-aware matching, sessions, "
                                 "safeguarding concerns, outcome measures and endings.",
                     readiness=[service.database.ping])
    auth = service.authorizer
    db = service.database

    @contextmanager
    def errors() -> Iterator[None]:
        try:
            yield
        except use.NotFound as exc:
            raise ApiError(404, "not-found", f"no {exc} with this id in your organisation"
                           ) from None
        except use.NotActive as exc:
            raise ApiError(409, "not-active", str(exc)) from None
        except (UnknownSubject, KeyShredded):
            raise ApiError(422, "unknown-subject", "no registered person has this subject "
                           "reference", field="subject_id") from None
        except KeyStoreUnavailable:
            raise ApiError(503, "consent-unavailable", "the consent service is unavailable; "
                           "nothing was recorded, try again") from None

    def today() -> date:
        return date.today()

    # --- mentors ---------------------------------------------------------------------------

    @app.post("/v1/mentors", status_code=201)
    def register_mentor(body: RegisterMentor, caller: Annotated[
            Principal, Depends(auth.require("mentor-coordinator"))]) -> dict[str, Any]:
        """Register a mentor of the coordinator's own organisation."""
        if body.org != caller.org:
            raise NotPermitted("coordinators register mentors of their own organisation only")
        with db.unit_of_work() as uow:
            mentor_id = use.register_mentor(uow, body)
            use.match_waitlist(uow, today(), service.rules)
            return use.mentor_view(uow.session, use.mentor_row(uow.session, mentor_id,
                                                               caller.org), today(),
                                   service.rules)

    @app.get("/v1/mentors")
    def list_mentors(caller: Annotated[Principal, Depends(auth.require("mentor-coordinator"))]
                     ) -> dict[str, Any]:
        """The coordinator's own organisation's mentors."""
        with db.read() as session:
            rows = use.mentors_of(session, caller.org)
            return {"mentors": [use.mentor_view(session, r, today(), service.rules)
                                for r in rows]}

    @app.get("/v1/mentors/{mentor_id}")
    def get_mentor(mentor_id: Annotated[str, ID], caller: Annotated[
            Principal, Depends(auth.require("mentor-coordinator"))]) -> dict[str, Any]:
        """One mentor of the coordinator's organisation."""
        with errors(), db.read() as session:
            return use.mentor_view(session, use.mentor_row(session, mentor_id, caller.org),
                                   today(), service.rules)

    @app.post("/v1/mentors/{mentor_id}/supervision")
    def supervision(mentor_id: Annotated[str, ID], body: RecordSupervision, caller: Annotated[
            Principal, Depends(auth.require("mentor-coordinator"))]) -> dict[str, Any]:
        """Record supervision; waitlisted referrals are matched if the mentor now can take them."""
        with errors(), db.unit_of_work() as uow:
            use.record_supervision(uow, mentor_id, caller.org, body.held_on)
            use.match_waitlist(uow, today(), service.rules)
            return use.mentor_view(uow.session, use.mentor_row(uow.session, mentor_id,
                                                               caller.org), today(),
                                   service.rules)

    @app.post("/v1/mentors/{mentor_id}/status")
    def status(mentor_id: Annotated[str, ID], body: ChangeMentorStatus, caller: Annotated[
            Principal, Depends(auth.require("mentor-coordinator"))]) -> dict[str, Any]:
        """Change a mentor's status; becoming matchable matches waitlisted referrals."""
        with errors(), db.unit_of_work() as uow:
            use.change_status(uow, mentor_id, caller.org, body.status)
            use.match_waitlist(uow, today(), service.rules)
            return use.mentor_view(uow.session, use.mentor_row(uow.session, mentor_id,
                                                               caller.org), today(),
                                   service.rules)

    # --- referrals ---------------------------------------------------------------------------

    @app.post("/v1/referrals", status_code=201)
    def refer(body: ReferMentee, caller: Annotated[Principal, Depends(auth.require(*REFERRERS))]
              ) -> dict[str, Any]:
        """Refer a person for peer mentoring; needs active peer-mentoring consent."""
        if body.referred_by_org != caller.org:
            raise NotPermitted("you may refer only on behalf of your own organisation")
        with errors():
            subject_id = service.resolve_subject(body.nhs_number, body.subject_id, caller)
            if not service.may_mentor(subject_id, caller):
                raise ApiError(409, "consent-required", "peer-mentoring consent is not active "
                               "for this person: record it before referring")
            with db.unit_of_work() as uow:
                referral_id = use.refer(uow, service.cipher, body, subject_id, today())
                return use.referral_view(uow.session, use.referral_row(uow.session,
                                                                       referral_id),
                                         service.cipher, show_safe_contact=False)

    def visible_referral(session: Any, referral_id: str, caller: Principal) -> tuple[Any, bool]:
        """The referral if the caller may see it, and whether they may see safe contact."""
        row = use.referral_row(session, referral_id)
        matched = use.match_of(session, referral_id)
        mentor_org = matched.org if matched else None
        referrer = caller.org == row.referred_by_org
        mentor_side = mentor_org == caller.org
        if not (referrer or mentor_side):
            raise use.NotFound("referral")
        if row.sharing_withdrawn and not referrer:
            raise NotPermitted("partner-sharing consent was withdrawn: this referral's "
                               "details are no longer shared with your organisation")
        return row, mentor_side and "mentor-coordinator" in caller.roles

    @app.get("/v1/referrals/{referral_id}")
    def get_referral(referral_id: Annotated[str, ID], caller: Annotated[
            Principal, Depends(auth.require(*REFERRERS, "mentor-coordinator"))]
                     ) -> dict[str, Any]:
        """A referral: to the referrer and the matched mentor's organisation."""
        with errors(), db.read() as session:
            row, show_contact = visible_referral(session, referral_id, caller)
            return use.referral_view(session, row, service.cipher, show_contact)

    @app.post("/v1/referrals/{referral_id}/match")
    def match(referral_id: Annotated[str, ID], caller: Annotated[
            Principal, Depends(auth.require(*REFERRERS, "mentor-coordinator"))]
              ) -> dict[str, Any]:
        """Match with the best matchable mentor, or waitlist naming the unmet constraints."""
        with errors(), db.unit_of_work() as uow:
            visible_referral(uow.session, referral_id, caller)
            return use.match(uow, referral_id, today(), service.rules)

    # --- sessions, concerns, outcomes, endings -----------------------------------------

    @app.post("/v1/sessions", status_code=201)
    def log_session(body: LogSession, caller: Annotated[
            Principal, Depends(auth.require(*RECORDERS))]) -> dict[str, Any]:
        """Log a session; a safeguarding concern goes to the Trust's safeguarding lead."""
        with errors(), db.unit_of_work() as uow:
            return use.log_session(uow, service.cipher, service.records, body, caller.org)

    @app.get("/v1/safeguarding-concerns")
    def safeguarding_queue(caller: Annotated[Principal, Depends(auth.require("clinician",
                                                                               "dpo"))],
                           status: Annotated[Literal["open", "closed"] | None, Query()] = "open",
                           flagged_for_dpo: Annotated[bool | None, Query()] = None
                           ) -> dict[str, Any]:
        """The Trust's safeguarding lead's queue; a DPO sees only those flagged by erasure."""
        organisation = service.settings.organisations.get(caller.org)
        trust_clinician = "clinician" in caller.roles and organisation is not None \
            and organisation.kind == "nhs-trust"
        if not trust_clinician:
            if "dpo" not in caller.roles:
                raise NotPermitted("the safeguarding queue belongs to the Trust's "
                                   "safeguarding lead")
            flagged_for_dpo = True
        with errors(), db.unit_of_work() as uow:
            return {"concerns": use.concerns(uow, status, flagged_for_dpo, service.records)}

    @app.post("/v1/outcomes", status_code=201)
    def outcome(body: RecordOutcome, caller: Annotated[
            Principal, Depends(auth.require(*RECORDERS))]) -> dict[str, Any]:
        """Score and record WEMWBS (sum of 14) or SWEMWBS (raw sum and metric score)."""
        with errors(), db.unit_of_work() as uow:
            return use.record_outcome(uow, body, caller.org, today())

    @app.post("/v1/matches/{match_id}/end")
    def end(match_id: Annotated[str, ID], body: EndMatch, caller: Annotated[
            Principal, Depends(auth.require(*RECORDERS))]) -> dict[str, Any]:
        """End a match, planned or unplanned; the mentor's room goes to the waitlist."""
        with errors(), db.unit_of_work() as uow:
            ended = use.end_match(uow, service.cipher, match_id, caller.org, body, today())
            use.match_waitlist(uow, today(), service.rules)
            return ended

    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(MentoringService(settings))

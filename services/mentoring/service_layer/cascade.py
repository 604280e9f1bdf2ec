"""Mentoring's part in the consent cascade.

Consents are recorded per holder organisation, so a withdrawal reaches only what rested on
that holder's consent. Withdrawal of ``peer-mentoring`` by an organisation: active matches of
the referrals it made or received end as unplanned with reason "consent withdrawn" (the
mentor sees only that it ended) and its open referrals are cancelled; their safe contact is
kept, under the records key, with the safeguarding records (still shown only to the roles
that act on it). Withdrawal of ``partner-sharing`` by an organisation: the recipients it
names lose the details of the referrals that organisation made to them. Erasure, as the DPO
decided it: of the person everywhere (scope ``subject``) or of one organisation's records
only (scope ``organisation``); personal data deleted, except that organisation's mentoring
records when the DPO retained ``mentoring-records``; safeguarding concerns and safe contact
are always kept (records key) and flagged for the data protection officer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import and_, func, or_, select, update

from services.mentoring.adapters.tables import (
    adverse_events,
    matches,
    mentee_feedback,
    referrals,
    safeguarding_concerns,
)
from services.mentoring.domain.matching import EligibilityRules
from services.mentoring.service_layer import safeguarding
from services.mentoring.service_layer.commands import EndMatch
from services.mentoring.service_layer.mentoring import (
    CONSENT_WITHDRAWN,
    end_active_match,
    match_waitlist,
)
from shared.crypto import PersonalDataCipher, RecordCipher
from shared.db import UnitOfWork, utcnow
from shared.events.consent import ErasureRequested
from shared.events.vocabulary import Purpose

MENTORING_RECORDS = "mentoring-records"


class MentoringCascade:
    """The effects, with what they need to end matches and refill mentors' room."""

    def __init__(self, cipher: PersonalDataCipher, records: RecordCipher,
                 rules: EligibilityRules, today: Callable[[], date] = date.today) -> None:
        self._cipher = cipher
        self._records = records
        self._rules = rules
        self._today = today

    def _stop_mentoring(self, uow: UnitOfWork, subject_id: str, org: str | None) -> None:
        """End and cancel the person's mentoring that ``org`` referred or received (all of it
        when ``org`` is None); its safe contact moves under the records key."""
        session = uow.session
        theirs = referrals.c.subject_id == subject_id
        if org is not None:
            theirs = and_(theirs, or_(referrals.c.referred_by_org == org,
                                      referrals.c.to_org == org))
        active = session.execute(
            select(matches.c.match_id).join(referrals, referrals.c.referral_id
                                            == matches.c.referral_id)
            .where(theirs, matches.c.status == "active")
        ).scalars().all()
        for match_id in active:
            end_active_match(uow, self._cipher, match_id, None,
                             EndMatch(planned=False, reason=CONSENT_WITHDRAWN), self._today())
        session.execute(update(referrals).where(
            theirs, referrals.c.status.in_(("referred", "waitlisted"))).values(status="cancelled"))
        safeguarding.keep_contacts(uow, self._cipher, self._records, theirs)
        if active:
            match_waitlist(uow, self._today(), self._rules)

    def withdrawn(self, uow: UnitOfWork, subject_id: str, purposes: tuple[Purpose, ...],
                  org: str | None = None, recipients: tuple[str, ...] = ()) -> None:
        """Apply a withdrawal of peer-mentoring and/or partner-sharing recorded by ``org`` (the
        holder; None: an event that named none, applied to all the person's referrals); for
        partner-sharing, ``recipients`` are the organisations that lost access (none named:
        every organisation the holder referred to)."""
        if "partner-sharing" in purposes:
            shared = and_(referrals.c.subject_id == subject_id,
                          referrals.c.to_org != referrals.c.referred_by_org)
            if org is not None:
                shared = and_(shared, referrals.c.referred_by_org == org)
            if recipients:
                shared = and_(shared, referrals.c.to_org.in_(recipients))
            uow.session.execute(update(referrals).where(shared).values(sharing_withdrawn=True))
        if "peer-mentoring" in purposes:
            self._stop_mentoring(uow, subject_id, org)

    def erase(self, uow: UnitOfWork, subject_id: str) -> int:
        """Erase the person everywhere, nothing retained beyond safeguarding records."""
        return self.erase_as_decided(uow, subject_id, None, ())

    def erase_as_decided(self, uow: UnitOfWork, subject_id: str, org: str | None,
                         retained: tuple[str, ...]) -> int:
        """Delete the person's personal data held for ``org`` (everyone's when None), except
        its mentoring records when ``retained`` names them; concerns and safe contact are
        kept and flagged for the DPO (each concern carries the person's safe contact; the
        referral's stays under the records key on the de-identified referral). Returns the
        concerns kept, as the DPO lists them."""
        session = uow.session
        self._stop_mentoring(uow, subject_id, org)
        theirs = referrals.c.subject_id == subject_id
        raised = safeguarding_concerns.c.subject_id == subject_id
        if org is not None:
            theirs = and_(theirs, or_(referrals.c.referred_by_org == org,
                                      referrals.c.to_org == org))
            raised = and_(raised, safeguarding_concerns.c.org == org)
        if MENTORING_RECORDS not in retained:
            mine = select(referrals.c.referral_id).where(theirs)
            session.execute(update(matches).where(matches.c.referral_id.in_(mine))
                            .values(end_reason_sealed=None))
            ended = select(matches.c.match_id).where(matches.c.referral_id.in_(mine))
            session.execute(update(mentee_feedback).where(mentee_feedback.c.match_id.in_(ended))
                            .values(comment_sealed=None))
            session.execute(update(adverse_events).where(adverse_events.c.match_id.in_(ended))
                            .values(details_sealed=None))
            # the safe contact stays (records key) on the de-identified referral, for the DPO
            session.execute(update(referrals).where(theirs).values(subject_id=None))
        session.execute(update(safeguarding_concerns).where(
            raised, safeguarding_concerns.c.flagged_for_dpo_at.is_(None))
            .values(flagged_for_dpo_at=utcnow()))
        return int(session.execute(select(func.count()).select_from(safeguarding_concerns)
                                   .where(raised)).scalar_one())

    def erasure_requested(self, uow: UnitOfWork, subject_id: str,
                          request: ErasureRequested) -> int:
        """Apply the DPO's decision: the scope and the record kinds retained."""
        org = request.org if request.scope == "organisation" else None
        return self.erase_as_decided(uow, subject_id, org, tuple(request.retained))

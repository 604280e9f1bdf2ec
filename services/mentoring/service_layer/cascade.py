"""Mentoring's part in the consent cascade.

Consents are recorded per holder organisation, so a withdrawal reaches only what rested on
that holder's consent. Withdrawal of ``peer-mentoring`` by an organisation: active matches of
the referrals it made or received end as unplanned with reason "consent withdrawn" (the
mentor sees only that it ended), its open referrals are cancelled and their safe-contact
details deleted. Withdrawal of ``partner-sharing`` by an organisation: the recipients it names
lose the details of the referrals that organisation made to them. Erasure: all personal data
deleted; safeguarding concerns kept and flagged for the data protection officer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import and_, func, or_, select, update

from services.mentoring.adapters.tables import matches, referrals, safeguarding_concerns
from services.mentoring.domain.matching import EligibilityRules
from services.mentoring.service_layer.commands import EndMatch
from services.mentoring.service_layer.mentoring import (
    CONSENT_WITHDRAWN,
    end_match,
    match_waitlist,
)
from shared.crypto import PersonalDataCipher
from shared.db import UnitOfWork, utcnow
from shared.events.vocabulary import Purpose


class MentoringCascade:
    """The effects, with what they need to end matches and refill mentors' room."""

    def __init__(self, cipher: PersonalDataCipher, rules: EligibilityRules,
                 today: Callable[[], date] = date.today) -> None:
        self._cipher = cipher
        self._rules = rules
        self._today = today

    def _stop_mentoring(self, uow: UnitOfWork, subject_id: str, org: str | None) -> None:
        """End, cancel and forget the person's mentoring that ``org`` referred or received
        (all of it when ``org`` is None)."""
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
            end_match(uow, self._cipher, match_id, None,
                      EndMatch(planned=False, reason=CONSENT_WITHDRAWN), self._today())
        session.execute(update(referrals).where(
            theirs, referrals.c.status.in_(("referred", "waitlisted"))).values(status="cancelled"))
        session.execute(update(referrals).where(theirs).values(safe_contact_sealed=None))
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
        """Delete the person's personal data; returns the concerns kept for the DPO."""
        session = uow.session
        self._stop_mentoring(uow, subject_id, None)
        mine = select(referrals.c.referral_id).where(referrals.c.subject_id == subject_id)
        session.execute(update(matches).where(matches.c.referral_id.in_(mine))
                        .values(end_reason_sealed=None))
        session.execute(update(referrals).where(referrals.c.subject_id == subject_id)
                        .values(subject_id=None, safe_contact_sealed=None))
        session.execute(update(safeguarding_concerns).where(
            safeguarding_concerns.c.subject_id == subject_id,
            safeguarding_concerns.c.flagged_for_dpo_at.is_(None))
            .values(flagged_for_dpo_at=utcnow()))
        return int(session.execute(select(func.count()).select_from(safeguarding_concerns)
                                   .where(safeguarding_concerns.c.subject_id == subject_id)
                                   ).scalar_one())

"""Mentoring's part in the consent cascade.

Withdrawal of ``peer-mentoring``: an active match ends as unplanned with reason "consent
withdrawn" (the mentor sees only that it ended), open referrals are cancelled and safe-contact
details deleted. Withdrawal of ``partner-sharing``: partner organisations lose access to the
person's referral details. Erasure: all personal data deleted; safeguarding concerns kept and
flagged for the data protection officer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import func, select, update

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

    def _stop_mentoring(self, uow: UnitOfWork, subject_id: str) -> None:
        session = uow.session
        active = session.execute(
            select(matches.c.match_id).join(referrals, referrals.c.referral_id
                                            == matches.c.referral_id)
            .where(referrals.c.subject_id == subject_id, matches.c.status == "active")
        ).scalars().all()
        for match_id in active:
            end_match(uow, self._cipher, match_id, None,
                      EndMatch(planned=False, reason=CONSENT_WITHDRAWN), self._today())
        session.execute(update(referrals).where(
            referrals.c.subject_id == subject_id,
            referrals.c.status.in_(("referred", "waitlisted"))).values(status="cancelled"))
        session.execute(update(referrals).where(referrals.c.subject_id == subject_id)
                        .values(safe_contact_sealed=None))
        if active:
            match_waitlist(uow, self._today(), self._rules)

    def withdrawn(self, uow: UnitOfWork, subject_id: str,
                  purposes: tuple[Purpose, ...]) -> None:
        """Apply a withdrawal of peer-mentoring and/or partner-sharing."""
        if "partner-sharing" in purposes:
            uow.session.execute(update(referrals).where(referrals.c.subject_id == subject_id)
                                .values(sharing_withdrawn=True))
        if "peer-mentoring" in purposes:
            self._stop_mentoring(uow, subject_id)

    def erase(self, uow: UnitOfWork, subject_id: str) -> int:
        """Delete the person's personal data; returns the concerns kept for the DPO."""
        session = uow.session
        self._stop_mentoring(uow, subject_id)
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

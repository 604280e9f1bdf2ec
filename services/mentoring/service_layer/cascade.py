"""Mentoring's part in the consent cascade, with the data it holds so far.

Mentoring records no referrals yet (issue 5 adds them, and with them the effects: ending
matches, cancelling waitlisted referrals, deleting safe-contact details). Until then there is
nothing to change, and the acknowledgement says so truthfully.
"""

from __future__ import annotations

from shared.db import UnitOfWork
from shared.events.vocabulary import Purpose


def withdrawn(_uow: UnitOfWork, _subject_id: str, _purposes: tuple[Purpose, ...]) -> None:
    """No mentoring data about the person exists yet: nothing to stop."""


def erase(_uow: UnitOfWork, _subject_id: str) -> int:
    """No mentoring data about the person exists yet: nothing to delete or retain."""
    return 0

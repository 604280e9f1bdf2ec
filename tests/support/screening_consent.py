"""What screening's tests read of the consent service's safeguarding side.

``pseudonym_in`` is the safeguarding pseudonym consent holds for a person (it serves the same
at ``/internal/v1/subjects/{id}/safeguarding-pseudonym``). ``DirectSafeguarding`` is screening's
``SafeguardingRegistry`` port answered from consent's database, for the access-matrix harness,
which builds the consent API out of reach of screening's HTTP client.
"""

from __future__ import annotations

from sqlalchemy import select

from services.consent.adapters.tables import subjects
from services.consent.bootstrap import ConsentAdapters
from shared.auth import Principal
from shared.crypto import KeyShredded, UnknownSubject
from shared.events.consent import SafeContact


def pseudonym_in(consent: ConsentAdapters, subject_id: str) -> str | None:
    """The pseudonym consent recorded for a registered person; raises ``UnknownSubject`` or
    ``KeyShredded``."""
    with consent.database.read() as session:
        row = session.execute(select(subjects).where(
            subjects.c.subject_id == subject_id)).first()
    if row is None:
        raise UnknownSubject()
    if row.erased_at is not None:
        raise KeyShredded()
    pseudonym: str | None = row.safeguarding_pseudonym
    return pseudonym


class DirectSafeguarding:
    """Screening's ``SafeguardingRegistry`` port answered from consent's database."""

    def __init__(self, consent: ConsentAdapters) -> None:
        self.consent = consent
        self.safe_contacts: list[tuple[str, SafeContact]] = []

    def safeguarding_pseudonym(self, subject_id: str) -> str | None:
        """As consent would answer."""
        return pseudonym_in(self.consent, subject_id)

    def update_safe_contact(self, subject_id: str, contact: SafeContact,
                            caller: Principal) -> None:
        """Recorded for the matrix, which checks who may act, not what consent publishes."""
        self.safe_contacts.append((subject_id, contact))

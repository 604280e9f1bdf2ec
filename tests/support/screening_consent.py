"""The consent service's safeguarding endpoints, for screening's tests until consent serves
them (the safeguarding pseudonym and the safe contact are being built there).

``consent_api_with_safeguarding`` is the real consent API with two routes added only where
consent has none of its own: the pseudonym (a keyed hash of the NHS number's lookup digest,
so a re-registration of the same NHS number gets the same one; 410 once erased) and the safe
contact update (recorded in ``app.state.safe_contacts`` for the test to read). Once consent
serves them, its own routes are used. ``DirectSafeguarding`` is the same port read straight
from consent's database, for harnesses that build the consent API out of reach.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import FastAPI, HTTPException
from sqlalchemy import select

from services.consent.adapters.tables import subjects
from services.consent.bootstrap import ConsentService
from services.consent.entrypoints.api import build_api as consent_api
from shared.auth import Principal
from shared.crypto import KeyShredded, UnknownSubject
from shared.events.consent import SafeContact

TEST_PSEUDONYM_KEY = b"screening-tests-safeguarding-pseudonym"
PSEUDONYM_PATH = "/internal/v1/subjects/{subject_id}/safeguarding-pseudonym"
SAFE_CONTACT_PATH = "/internal/v1/subjects/{subject_id}/safe-contact"


def pseudonym_in(consent: ConsentService, subject_id: str) -> str | None:
    """The test pseudonym of a registered person; raises ``UnknownSubject`` or
    ``KeyShredded``."""
    with consent.database.read() as session:
        row = session.execute(select(subjects).where(
            subjects.c.subject_id == subject_id)).first()
    if row is None:
        raise UnknownSubject()
    if row.erased_at is not None:
        raise KeyShredded()
    if row.nhs_lookup is None:
        return None
    return hmac.new(TEST_PSEUDONYM_KEY, row.nhs_lookup.encode(), hashlib.sha256).hexdigest()


def consent_api_with_safeguarding(consent: ConsentService) -> FastAPI:
    """The consent API, with the safeguarding routes it does not serve yet."""
    app = consent_api(consent)
    served = {getattr(route, "path", None) for route in app.routes}
    app.state.safe_contacts = []

    if PSEUDONYM_PATH not in served:
        @app.get(PSEUDONYM_PATH, include_in_schema=False)
        def pseudonym(subject_id: str) -> dict[str, Any]:
            try:
                return {"pseudonym": pseudonym_in(consent, subject_id)}
            except UnknownSubject:
                raise HTTPException(404) from None
            except KeyShredded:
                raise HTTPException(410) from None

    if SAFE_CONTACT_PATH not in served:
        @app.put(SAFE_CONTACT_PATH, include_in_schema=False)
        def safe_contact(subject_id: str, body: dict[str, Any]) -> dict[str, Any]:
            app.state.safe_contacts.append((subject_id, SafeContact.model_validate(body)))
            return {}

    return app


class DirectSafeguarding:
    """Screening's ``SafeguardingRegistry`` port answered from consent's database."""

    def __init__(self, consent: ConsentService) -> None:
        self.consent = consent
        self.safe_contacts: list[tuple[str, SafeContact]] = []

    def safeguarding_pseudonym(self, subject_id: str) -> str | None:
        """As consent would answer."""
        return pseudonym_in(self.consent, subject_id)

    def update_safe_contact(self, subject_id: str, contact: SafeContact,
                            caller: Principal) -> None:
        """Recorded for the test."""
        self.safe_contacts.append((subject_id, contact))

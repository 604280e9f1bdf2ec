"""What screening holds about one person: the results a caller may see, and the subject
access export for the DPO of an organisation with a relationship; each read audited."""

from __future__ import annotations

from typing import Any

from services.screening.domain import access
from services.screening.service_layer import risk
from services.screening.service_layer.permissions import (
    NotFound,
    check_role,
    has_relationship,
    readable_orgs,
)
from services.screening.service_layer.ports import AuditTrail
from services.screening.service_layer.screenings import (
    RESULTS_READ,
    RESULTS_REFUSED,
    record_orgs,
    screenings_of,
)
from shared.auth import Principal
from shared.crypto import PersonalDataCipher, RecordCipher
from shared.db import Database

EXPORTED = "screening-subject-exported"
EXPORT_REFUSED = "screening-export-refused"


class NothingHeld(NotFound):
    """Nothing held about the person for the caller's organisation (as for an unknown
    person)."""

    def __init__(self) -> None:
        super().__init__("nothing held about this person for your organisation")


def results(caller: Principal, subject_id: str, *, database: Database,
            cipher: PersonalDataCipher, records: RecordCipher,
            audit: AuditTrail) -> dict[str, Any]:
    """A person's screening and risk results that the caller may see: their own
    organisation's, and those another organisation shared with theirs. Nothing shows whether
    anyone else holds records (possibly empty), and the audit entry is the same read either
    way, since the caller's own DPO reads it."""
    with database.unit_of_work() as uow:
        check_role(access.READ_RESULTS, caller, audit, RESULTS_REFUSED, subject_id)
        visible = readable_orgs(uow, caller, subject_id, record_orgs(uow, subject_id))
        audit.audit(RESULTS_READ, subject_id, caller)
        return {"subject_id": subject_id,
                "screenings": screenings_of(uow, subject_id, cipher, visible),
                "risk_assessments": risk.assessments_of(uow, subject_id, cipher, records,
                                                        visible)}


def export(caller: Principal, subject_id: str, *, database: Database,
           cipher: PersonalDataCipher, records: RecordCipher,
           audit: AuditTrail) -> dict[str, Any]:
    """Subject access: everything screening holds about the person for the DPO's own
    organisation (screenings with notes, risk assessments with answers, MARAC referrals with
    safe contact), opened. Needs a relationship with the person, else ``NothingHeld``;
    audited."""
    with database.unit_of_work() as uow:
        check_role(access.EXPORT_SUBJECT, caller, audit, EXPORT_REFUSED, subject_id)
        if not access.may_export(caller.roles, relationship=has_relationship(
                uow, subject_id, caller.org)):
            # as for an unknown person (mentoring answers the same): nothing held
            audit.audit(EXPORT_REFUSED, subject_id, caller)
            raise NothingHeld()
        own = frozenset({caller.org})
        exported = {
            "subject_id": subject_id, "org": caller.org,
            "screenings": screenings_of(uow, subject_id, cipher, own),
            "risk_assessments": risk.assessments_of(uow, subject_id, cipher, records, own),
            "marac_referrals": risk.referrals_of(uow, records, cipher, subject_id,
                                                 caller.org)}
        audit.audit(EXPORTED, subject_id, caller)
        return exported

"""Which of Peerlink's services may call which consent endpoint, and how.

``alone``: with the service's own token (a worker, no person). ``for_person``: with the
service's token and the person's (on-behalf-of): consent then decides and audits as that
person, via the service. Reporting holds no personal data and calls nothing: it is in no row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ServiceAccess:
    """The services admitted at one endpoint."""

    alone: frozenset[str] = frozenset()
    for_person: frozenset[str] = frozenset()


SEALED_FIELD_HOLDERS: Final = frozenset({"screening", "mentoring"})
"""Services that hold people's sealed fields and so need their data keys."""

SERVICE_ACCESS: Final[dict[str, ServiceAccess]] = {
    # GET /internal/v1/data-keys/{id}: the keys that open people's sealed fields.
    "data-key": ServiceAccess(alone=SEALED_FIELD_HOLDERS),
    # POST /internal/v1/audit: accesses a service made for a person, or on its own.
    "audit": ServiceAccess(alone=SEALED_FIELD_HOLDERS, for_person=SEALED_FIELD_HOLDERS),
    # POST /v1/subjects: registering for the person's organisation; screening's worker
    # registers the Trust record system's people for the Trust.
    "register": ServiceAccess(alone=frozenset({"screening"}),
                              for_person=frozenset({"screening", "mentoring"})),
    # GET /internal/v1/subjects/{id}/consents?org=: mentoring decides whether the referring
    # (or receiving) organisation's own consents let it mentor; the organisation is named in
    # the query, so the service asks alone.
    "holder-consents": ServiceAccess(alone=frozenset({"mentoring"})),
    # POST /internal/v1/subjects/{id}/relationships: a referral is a person's act, so mentoring
    # makes it only on behalf of the referrer, whose organisation is the holder.
    "referral": ServiceAccess(for_person=frozenset({"mentoring"})),
    # GET /internal/v1/subjects/{id}/safeguarding-pseudonym: the services that keep
    # safeguarding records (MARAC referrals, concerns) link them by it, from their workers too.
    "safeguarding-pseudonym": ServiceAccess(alone=SEALED_FIELD_HOLDERS),
    # PUT /internal/v1/subjects/{id}/safe-contact: a referral's safe contact, recorded for the
    # person making it, whose organisation must have a relationship with the person referred.
    "safe-contact": ServiceAccess(for_person=SEALED_FIELD_HOLDERS),
}

AUDIT_ACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "screening": ("screening-", "marac-"),
    "mentoring": ("mentoring-",),
}
"""The audit actions each service may write (their prefixes): a service records what it did
itself, never an action another service would record."""


def may_audit(service: str, action: str) -> bool:
    """Whether ``service`` may write an audit entry with ``action``."""
    return action.startswith(AUDIT_ACTIONS.get(service, ()))


REFERRERS: Final = frozenset({"clinician", "partner-staff"})
"""The people who may refer someone to a DVA partner (mentoring's referrers)."""

SAFE_CONTACT_ROLES: Final = frozenset({"clinician", "safeguarding-lead", "partner-staff",
                                       "mentor-coordinator"})
"""The people who act on a person's safe-contact instructions (referrers, the safeguarding
lead, the receiving coordinators), and so may read and update them."""

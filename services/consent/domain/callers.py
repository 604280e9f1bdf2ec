"""Which of Peerlink's services may call which consent endpoint, and how.

``alone``: with the service's own token (a worker, no person). ``for_person``: with the
service's token and the person's (on-behalf-of): consent then decides and audits as that
person, via the service. Reporting holds no personal data and calls nothing: it is in no row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from shared.auth import NotPermitted, Principal


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
    # POST /internal/v1/registrations: registering (as at POST /v1/subjects) and the person's
    # data key in one answer, for the services that seal people's fields.
    "register-keyed": ServiceAccess(alone=frozenset({"screening"}) & SEALED_FIELD_HOLDERS,
                                    for_person=SEALED_FIELD_HOLDERS),
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


class ForeignAuditAction(ValueError):
    """An audit action another service would record, not the writer's own."""

    def __init__(self, writer: str) -> None:
        super().__init__(f"action: the {writer} service records only its own actions")


REFERRERS: Final = frozenset({"clinician", "partner-staff"})
"""The people who may refer someone to a DVA partner (mentoring's referrers)."""

SAFE_CONTACT_ROLES: Final = frozenset({"clinician", "safeguarding-lead", "partner-staff",
                                       "mentor-coordinator"})
"""The people who act on a person's safe-contact instructions (referrers, the safeguarding
lead, the receiving coordinators), and so may read and update them."""


@dataclass(frozen=True)
class Organisations:
    """The configured organisations, by kind."""

    trusts: frozenset[str]
    partners: frozenset[str]

    @classmethod
    def of(cls, kinds: Mapping[str, str]) -> Organisations:
        """From each organisation's kind (``nhs-trust`` or ``dva-partner``)."""
        return cls(trusts=frozenset(o for o, kind in kinds.items() if kind == "nhs-trust"),
                   partners=frozenset(o for o, kind in kinds.items() if kind == "dva-partner"))


def audited_as(caller: Principal) -> Principal:
    """Who the audit trail names: the person and organisation who acted, via the service
    (from the verified tokens), or the service acting alone."""
    if caller.via is None:
        return caller
    return Principal(subject=f"{caller.subject} (via svc-{caller.via})", org=caller.org,
                     roles=caller.roles, org_kind=caller.org_kind, via=caller.via)


def registrar(caller: Principal, organisations: Organisations) -> Principal:
    """Who registers a person: the caller as audited, or, for a service registering alone,
    the one NHS Trust (the Trust's record system's people)."""
    if not caller.is_service:
        return audited_as(caller)
    if len(organisations.trusts) != 1:
        raise NotPermitted("a service may register alone only for the one NHS Trust")
    (trust,) = organisations.trusts
    return Principal(subject=caller.subject, org=trust, roles=frozenset(),
                     org_kind="nhs-trust", service=caller.service)


REGISTERING_ROLES: Final = frozenset({"clinician", "partner-staff"})
"""The people who register a person as their organisation's own."""


def keyed_registrar(caller: Principal, organisations: Organisations) -> Principal:
    """Who registers a person at ``POST /internal/v1/registrations`` (``registrar``), once
    the calling service may: alone, or for a person with a registering role; else
    ``NotPermitted``."""
    access = SERVICE_ACCESS["register-keyed"]
    if caller.via is None and caller.service not in access.alone:
        raise NotPermitted(f"the {caller.service} service may not register on its own")
    if caller.via is not None:
        if caller.via not in access.for_person:
            raise NotPermitted(f"the {caller.via} service may not register for a person")
        if not caller.has_any(REGISTERING_ROLES):
            needed = ", ".join(sorted(REGISTERING_ROLES))
            raise NotPermitted(f"registering needs one of the roles: {needed}")
    return registrar(caller, organisations)


def referrer(caller: Principal) -> Principal:
    """The person making a referral through a service, as audited; ``NotPermitted`` unless
    a person with a referrer's role is named (on-behalf-of)."""
    if caller.via is None:
        raise NotPermitted("a referral is made by a person: send the referrer's token "
                           "(Peerlink-On-Behalf-Of)")
    if not caller.has_any(REFERRERS):
        needed = ", ".join(sorted(REFERRERS))
        raise NotPermitted(f"making a referral needs one of the roles: {needed}")
    return audited_as(caller)


def safe_contact_recorder(caller: Principal) -> Principal:
    """The person a service records safe contact for, as audited; ``NotPermitted`` unless a
    person acting on safe-contact instructions is named (on-behalf-of)."""
    if caller.via is None:
        raise NotPermitted("safe contact is recorded for a person: send their token "
                           "(Peerlink-On-Behalf-Of)")
    if not caller.has_any(SAFE_CONTACT_ROLES):
        needed = ", ".join(sorted(SAFE_CONTACT_ROLES))
        raise NotPermitted(f"recording safe contact needs one of the roles: {needed}")
    return audited_as(caller)


def audit_writer(caller: Principal, action: str) -> Principal:
    """Who an audit entry a service writes names, as audited: ``NotPermitted`` for a service
    not admitted alone or for a person, ``ForeignAuditAction`` for another service's action."""
    access = SERVICE_ACCESS["audit"]
    if caller.via is None and caller.service not in access.alone:
        raise NotPermitted(f"the {caller.service} service may not audit on its own")
    if caller.via is not None and caller.via not in access.for_person:
        raise NotPermitted(f"the {caller.via} service may not audit for a person")
    writer = caller.via or caller.service or ""
    if not may_audit(writer, action):
        raise ForeignAuditAction(writer)
    return audited_as(caller)

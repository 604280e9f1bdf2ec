"""Access decisions that need more than the rules (``domain.access``): the caller's role,
refused and audited; the organisation a caller records for; and, from screening's projection
of relationships and partner sharing (kept by ``cascade``), the organisations whose records
of a person a caller may read."""

from __future__ import annotations

from sqlalchemy import select

from services.screening.adapters.tables import partner_sharing, relationships
from services.screening.domain import access
from services.screening.service_layer.ports import AuditTrail
from shared.auth import NotPermitted, Principal
from shared.db import UnitOfWork

GRANTED = "granted"
"""The state of partner sharing the holder has granted (and not withdrawn)."""


class NotFound(LookupError):
    """Nothing here for the caller: no such record, or none they may see (the same answer)."""


def check_role(action: str, caller: Principal, audit: AuditTrail, refused: str,
               subject_id: str | None) -> None:
    """Refuse (and audit as ``refused``) a caller whose role may not attempt ``action``."""
    if not access.role_allowed(action, caller.roles):
        audit.audit(refused, subject_id, caller)
        needed = ", ".join(sorted(access.RULES[action].roles))
        raise NotPermitted(f"this action needs one of the roles: {needed}")


def check_recording(action: str, caller: Principal, org: str) -> None:
    """Refuse a caller who may not record ``org``'s record for ``action``."""
    if not access.may_record(action, caller.roles, caller.org, org):
        raise NotPermitted("you may record only for your own organisation")


def has_relationship(uow: UnitOfWork, subject_id: str, org: str) -> bool:
    """Whether ``org`` has a relationship with the person."""
    return uow.session.execute(select(relationships.c.org).where(
        relationships.c.subject_id == subject_id, relationships.c.org == org)).first() \
        is not None


def holders_sharing_with(uow: UnitOfWork, subject_id: str, recipient: str) -> frozenset[str]:
    """The organisations whose records of the person are actively shared with ``recipient``."""
    return frozenset(uow.session.execute(select(partner_sharing.c.holder_org).where(
        partner_sharing.c.subject_id == subject_id,
        partner_sharing.c.recipient_org == recipient,
        partner_sharing.c.state == GRANTED)).scalars())


def readable_orgs(uow: UnitOfWork, caller: Principal, subject_id: str,
                  holders: frozenset[str]) -> frozenset[str]:
    """Of the organisations holding records of the person, those the caller may read."""
    relationship = has_relationship(uow, subject_id, caller.org)
    shared = holders_sharing_with(uow, subject_id, caller.org)
    return frozenset(org for org in holders if access.may_read(
        caller.org, caller.roles, org, relationship=relationship, shared=org in shared))

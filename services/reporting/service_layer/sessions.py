"""Dashboard sessions: an opaque id in the browser, only its SHA-256 hash in the database.

Signing in with an ops-viewer token opens a session that lasts until the earlier of the
configured lifetime and the token's own expiry, and grants ops-viewer only (whatever else the
token carried) for the token's organisation. Signing out revokes it, so the cookie stops
working at once; the token itself is never kept.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, insert, select, update

from services.reporting.adapters.tables import dashboard_sessions
from shared.auth import NotAuthenticated, NotPermitted, Principal, role_refusal
from shared.db import Database, utcnow

SESSION_ROLE: Final = "ops-viewer"
"""The one role a dashboard session grants."""
PURGE_AFTER: Final = timedelta(days=1)
"""Sessions expired for longer than this are deleted at the next sign-in."""
MAX_ID_LENGTH: Final = 128
"""Longer cookie values are refused without a database lookup."""
MAX_SUBJECT_LENGTH: Final = 200
ENDED: Final = "the session is not valid or has ended; sign in again"


def id_hash(session_id: str) -> str:
    """What the database keeps of a session id: its SHA-256, in hex."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class OpenedSession:
    """A new session: the id goes into the cookie and is not kept anywhere else."""

    session_id: str
    expires_at: datetime


@dataclass(frozen=True)
class ActiveSession:
    """A valid session: who it acts for (ops-viewer only) and until when."""

    principal: Principal
    expires_at: datetime


class DashboardSessions:
    """Opens, looks up and revokes dashboard sessions in the reporting database."""

    def __init__(self, database: Database, lifetime_seconds: int,
                 org_kinds: Mapping[str, str]) -> None:
        self._database = database
        self._lifetime = timedelta(seconds=lifetime_seconds)
        self._org_kinds = dict(org_kinds)

    def open(self, caller: Principal, token_expires_at: datetime) -> OpenedSession:
        """A session for an ops-viewer ``caller``, ending no later than their token does.

        Sessions that expired more than a day ago are purged in the same transaction.
        """
        if not caller.has_any(frozenset({SESSION_ROLE})):
            raise NotPermitted(f"a dashboard session needs the {SESSION_ROLE} role")
        if len(caller.subject) > MAX_SUBJECT_LENGTH:
            raise NotAuthenticated("the token's subject is too long for a dashboard session")
        now = utcnow()
        expires_at = min(now + self._lifetime, token_expires_at)
        if expires_at <= now:
            raise NotAuthenticated("the bearer token has expired")
        session_id = secrets.token_urlsafe(32)
        with self._database.unit_of_work() as uow:
            uow.session.execute(delete(dashboard_sessions).where(
                dashboard_sessions.c.expires_at < now - PURGE_AFTER))
            uow.session.execute(insert(dashboard_sessions).values(
                id_hash=id_hash(session_id), org=caller.org, subject=caller.subject,
                created_at=now, expires_at=expires_at, revoked_at=None))
        return OpenedSession(session_id, expires_at)

    def lookup(self, session_id: str) -> ActiveSession:
        """The session a cookie names; ``NotAuthenticated`` if unknown, expired or revoked."""
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            raise NotAuthenticated(ENDED)
        with self._database.read() as session:
            row = session.execute(select(dashboard_sessions).where(
                dashboard_sessions.c.id_hash == id_hash(session_id))).first()
        if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
            raise NotAuthenticated(ENDED)
        kind = self._org_kinds.get(row.org)
        if kind is None or role_refusal({SESSION_ROLE}, kind):
            raise NotAuthenticated(ENDED)
        principal = Principal(subject=row.subject, org=row.org,
                              roles=frozenset({SESSION_ROLE}), org_kind=kind)
        return ActiveSession(principal, row.expires_at)

    def is_active(self, session_id: str) -> bool:
        """Whether the session is still valid (neither expired nor revoked)."""
        try:
            self.lookup(session_id)
        except NotAuthenticated:
            return False
        return True

    def revoke(self, session_id: str) -> bool:
        """End a session now; False if there was no such unrevoked session."""
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            return False
        with self._database.unit_of_work() as uow:
            result = uow.session.execute(update(dashboard_sessions).where(
                dashboard_sessions.c.id_hash == id_hash(session_id),
                dashboard_sessions.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
        return bool(result.rowcount)  # type: ignore[attr-defined]

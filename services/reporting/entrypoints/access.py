"""Who may read the reporting API: a bearer token, or a signed-in dashboard session.

Bearer tokens are verified by the shared ``Authorizer`` as everywhere else. Without one, the
``peerlink_session`` cookie is looked up (by hash) in the reporting database; a session acts
as an ops-viewer of its organisation and nothing more (``service_layer.viewing``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import jwt
from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials

from services.reporting.service_layer.sessions import DashboardSessions
from services.reporting.service_layer.viewing import Access, still_valid
from shared.auth import NotAuthenticated, Principal
from shared.db import utcnow
from shared.http import Authorizer, BearerCredentials, holding_any

SESSION_COOKIE: Final = "peerlink_session"


def token_expiry(token: str) -> datetime:
    """The expiry of a token that has already been verified."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(int(claims["exp"]), UTC)


class ReportingAccess:
    """FastAPI dependencies admitting a bearer token or a dashboard session."""

    def __init__(self, authorizer: Authorizer, sessions: DashboardSessions) -> None:
        self._authorizer = authorizer
        self.sessions = sessions

    def authenticate(self, request: Request,
                     credentials: HTTPAuthorizationCredentials | None) -> Access:
        """The caller from the bearer token if one is sent, else from the session cookie."""
        if credentials is not None and credentials.scheme.lower() == "bearer":
            principal = self._authorizer.principal(credentials)
            return Access(principal, token_expiry(credentials.credentials))
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            raise NotAuthenticated("a bearer token or a signed-in session is required")
        active = self.sessions.lookup(session_id)
        return Access(active.principal, active.expires_at, session_id)

    def still_valid(self, access: Access) -> bool:
        """Whether an earlier ``authenticate`` still holds (for long-lived responses)."""
        return still_valid(self.sessions, access, utcnow())

    def check(self, access: Access, *roles: str) -> Principal:
        """The caller, if they hold any of ``roles``; else ``NotPermitted``."""
        return holding_any(access.principal, roles)

    def require(self, *roles: str) -> Callable[..., Principal]:
        """A dependency admitting callers with any of ``roles``, by token or by session."""

        def dependency(request: Request, credentials: BearerCredentials) -> Principal:
            return self.check(self.authenticate(request, credentials), *roles)

        return dependency

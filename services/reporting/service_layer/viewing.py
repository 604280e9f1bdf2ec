"""Who may view reporting's figures: ops-viewers, by a bearer token or by a dashboard session
(which grants ops-viewer only), for as long as the token or the session lasts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.reporting.service_layer.sessions import SESSION_ROLE, DashboardSessions
from shared.auth import Principal

VIEWER: Final = SESSION_ROLE
"""The role that views the figures, the dashboard and the release stream."""


@dataclass(frozen=True)
class Access:
    """An authenticated caller, until when, and the session id if they came by cookie."""

    principal: Principal
    expires_at: datetime
    session_id: str | None = None


def still_valid(sessions: DashboardSessions, access: Access, now: datetime) -> bool:
    """Whether an earlier authentication still holds (for long-lived responses): the session
    it came by is neither revoked nor expired, or the token it came by has not expired."""
    if access.session_id is not None:
        return sessions.is_active(access.session_id)
    return now < access.expires_at

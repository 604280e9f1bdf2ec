"""The mentoring service's HTTP API (port 8103), assembled from one router per resource
(``routes/``).

Who may do what is decided in ``services.mentoring.domain.access`` and applied by the use
cases: coordinators see and change only their own organisation's mentors; a referral is sent
to one DVA partner, whose coordinators take it from their intake, see its safe contact, match
it with their own mentors and record its sessions, outcomes and ending; the referrer sees its
status; any other organisation is answered as if it did not exist. Safeguarding concerns come
from any contact (by the staff of an organisation with a relationship with the person) and
are worked through the Trust's safeguarding lead's queue; a referral's safe contact is
updated by the staff of either end, as their organisation's copy; a DPO exports what
mentoring holds about a person for their organisation. Every read of identifiable data,
allowed or refused, is audited (one entry per person shown).
"""

from fastapi import FastAPI

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.routes import (
    adverse_events,
    caseload,
    concerns,
    matches,
    mentors,
    offers,
    outcomes,
    referrals,
    sessions,
    subjects,
)
from shared.http import add_routes, create_api
from shared.settings import PlatformSettings

ROUTERS = (mentors, offers, referrals, sessions, concerns, adverse_events, subjects, outcomes,
           matches, caseload)
"""The routers in the order the OpenAPI document lists their paths."""


def build_api(adapters: MentoringAdapters) -> FastAPI:
    """The mentoring API wired to its adapters."""
    app = create_api("mentoring", title="Peerlink mentoring service",
                     description="Mentors, referrals to a DVA partner's intake, "
                                 "preference-aware matching with the partner's own mentors, "
                                 "sessions, safeguarding concerns, outcome measures and "
                                 "endings.",
                     readiness=[adapters.database.ping])
    add_routes(app, *(resource.router(adapters) for resource in ROUTERS))
    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(MentoringAdapters(settings))

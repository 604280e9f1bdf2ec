"""The mentoring service's HTTP API (port 8103)."""

from __future__ import annotations

from fastapi import FastAPI

from services.mentoring.bootstrap import MentoringService
from shared.http import create_api
from shared.settings import PlatformSettings


def build_api(service: MentoringService) -> FastAPI:
    """The mentoring API: health, readiness and metrics until its resources land (issue 5)."""
    return create_api("mentoring", title="Peerlink mentoring service",
                      description="Mentors, referrals, matching, sessions, safeguarding, "
                                  "outcomes and endings.",
                      readiness=[service.database.ping])


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(MentoringService(settings))

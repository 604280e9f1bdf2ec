"""The release stream: server-sent ``release`` events with the release time, at connect and
whenever it changes, while the caller's token or session lasts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.access import ReportingAccess
from services.reporting.service_layer.read_model import latest_release_time
from services.reporting.service_layer.viewing import VIEWER, Access
from shared.db import Database, utcnow
from shared.http import BearerCredentials

POLL_SECONDS: Final = 0.5
KEEPALIVE_SECONDS: Final = 15.0


def release_stream(request: Request, database: Database, expires_at: datetime,
                   still_valid: Callable[[], bool] = lambda: True) -> AsyncIterator[str]:
    """Server-sent events: the release time at connect and whenever it changes, while the
    caller's token or session lasts (a session signed out elsewhere ends the stream)."""

    async def events() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        last: str | None = None
        first = True
        quiet_since = time.monotonic()
        while not await request.is_disconnected() and utcnow() < expires_at:
            if not await asyncio.to_thread(still_valid):
                break
            latest = await asyncio.to_thread(latest_release_time, database)
            released_at = latest.isoformat() if latest is not None else None
            if first or released_at != last:
                first, last = False, released_at
                quiet_since = time.monotonic()
                yield f"event: release\ndata: {json.dumps({'released_at': released_at})}\n\n"
            elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return events()


def router(adapters: ReportingAdapters, access: ReportingAccess) -> APIRouter:
    """``GET /v1/releases/stream``."""
    routes = APIRouter()

    @routes.get("/v1/releases/stream", response_class=StreamingResponse,
                responses={200: {"content": {"text/event-stream": {}}}})
    def releases_stream(request: Request, credentials: BearerCredentials) -> StreamingResponse:
        """Server-sent ``release`` events: the release time at connect and at every release."""
        caller: Access = access.authenticate(request, credentials)
        access.check(caller, VIEWER)
        return StreamingResponse(
            release_stream(request, adapters.database, caller.expires_at,
                           lambda: access.still_valid(caller)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return routes

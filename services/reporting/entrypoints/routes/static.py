"""The dashboard's own static files: only those named here are reachable under /static/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR: Final = Path(__file__).parent.with_name("static")
STATIC_FILES: Final = {"dashboard.js": "text/javascript; charset=utf-8",
                       "dashboard.css": "text/css; charset=utf-8",
                       "favicon.svg": "image/svg+xml"}


def _serving(name: str) -> Callable[[], FileResponse]:
    def serve() -> FileResponse:
        return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name],
                            headers={"Cache-Control": "no-cache",
                                     "X-Content-Type-Options": "nosniff"})
    serve.__doc__ = f"The dashboard's {name}."
    return serve


def router() -> APIRouter:
    """``GET /static/<name>`` for each of the dashboard's files (not in the OpenAPI
    document)."""
    routes = APIRouter()
    for name in STATIC_FILES:  # only these files: nothing else under static/ is reachable
        routes.add_api_route(f"/static/{name}", _serving(name), methods=["GET"],
                             include_in_schema=False)
    return routes

"""The HTTP side every service shares: app factory, errors, auth dependencies, health, metrics.

Errors are JSON ``{"error": ..., "message": ..., "details": [{"field", "problem"}]}`` and never
echo the values a caller sent, since those may be personal data.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.auth import ON_BEHALF_OF, NotAuthenticated, NotPermitted, Principal, TokenVerifier
from shared.logging import scrub
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS

ReadinessCheck = Callable[[], None]
_bearer = HTTPBearer(auto_error=False)


class ApiError(Exception):
    """An error with an HTTP status that names the field and the problem."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field


def erased() -> ApiError:
    """410 for a write about a person whose data key was shredded: nothing more may be
    recorded about them (``KeyShredded``)."""
    return ApiError(410, "erased", "this person's records were erased; nothing more can be "
                    "recorded about them")


def error_body(error: str, message: str,
               details: Iterable[dict[str, str]] = ()) -> dict[str, Any]:
    """The JSON body of every error response."""
    body: dict[str, Any] = {"error": error, "message": message}
    details = list(details)
    if details:
        body["details"] = details
    return body


def _validation_details(exc: RequestValidationError) -> list[dict[str, str]]:
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in {"body", "query", "path", "header"}:
            loc = loc[1:] or [loc[0]]
        problem = str(err.get("msg", "is not valid"))
        if err.get("type") == "extra_forbidden" and not _safe_name(loc[-1]):
            loc, problem = loc[:-1] or ["body"], "has a field that is not accepted"
        if err.get("type") == "json_invalid":
            loc, problem = ["body"], "the body is not valid JSON"
        details.append({"field": ".".join(loc) or "body", "problem": problem})
    return details


def _safe_name(name: str) -> bool:
    """Whether a caller's field name may be echoed: an identifier with no run of digits."""
    return name.isidentifier() and scrub(name) == name and not any(
        name[i:i + 3].isdigit() for i in range(len(name) - 2))


def _route_label(request: Request) -> str:
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


def create_api(service: str, *, title: str, description: str,
               readiness: Iterable[ReadinessCheck] = (), version: str = "1.0.0") -> FastAPI:
    """A FastAPI app with health, readiness, metrics, error handling and request metrics."""
    app = FastAPI(title=title, description=description, version=version)
    checks = list(readiness)

    @app.middleware("http")
    async def _measure(request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = _route_label(request)
        HTTP_REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(service, request.method, route).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        fields = ", ".join(d["field"] for d in details)
        return JSONResponse(status_code=422, content=error_body(
            "validation-failed", f"invalid request: {fields}", details))

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        details = [{"field": exc.field, "problem": exc.message}] if exc.field else []
        return JSONResponse(status_code=exc.status,
                            content=error_body(exc.error, exc.message, details))

    @app.exception_handler(NotAuthenticated)
    async def _unauthenticated(_request: Request, exc: NotAuthenticated) -> JSONResponse:
        return JSONResponse(status_code=401, content=error_body("not-authenticated", str(exc)),
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(NotPermitted)
    async def _forbidden(_request: Request, exc: NotPermitted) -> JSONResponse:
        return JSONResponse(status_code=403, content=error_body("forbidden", str(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code,
                            content=error_body("http-error", str(exc.detail)))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        failing = []
        for check in checks:
            try:
                check()
            except Exception:
                failing.append(getattr(check, "__name__", "check"))
        status = 503 if failing else 200
        return JSONResponse(status_code=status, content={
            "status": "not-ready" if failing else "ready", "failing": failing})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


class Authorizer:
    """FastAPI dependencies that authenticate the bearer token and check who may call.

    A person calls with their own token. A service calls with its own token, alone (a worker)
    or on behalf of a person, whose token it forwards in ``Peerlink-On-Behalf-Of``: then the
    caller is that person, ``via`` the service, and only endpoints that admit that service
    for people accept it.
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    def principal(self, credentials: HTTPAuthorizationCredentials | None,
                  on_behalf_of: str | None = None) -> Principal:
        """The caller from the bearer token, and the person a service acts for."""
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise NotAuthenticated("a bearer token is required (Authorization: Bearer <token>)")
        caller = self._verifier.verify(credentials.credentials)
        if on_behalf_of is None:
            return caller
        if not caller.is_service:
            raise NotPermitted("only a service may act on behalf of someone")
        person = self._verifier.verify(on_behalf_of)
        if person.is_service:
            raise NotAuthenticated("the on-behalf-of token must be a person's")
        return replace(person, via=caller.service)

    def _caller(self, request: Request,
                credentials: HTTPAuthorizationCredentials | None) -> Principal:
        return self.principal(credentials, request.headers.get(ON_BEHALF_OF))

    def require(self, *roles: str, via: Iterable[str] = (),
                services: Iterable[str] = ()) -> Callable[..., Principal]:
        """A dependency admitting people with any of ``roles``: directly, or through one of
        the services ``via`` acting on their behalf; and the ``services`` acting alone."""
        allowed, through, alone = frozenset(roles), frozenset(via), frozenset(services)

        def dependency(request: Request, credentials: Annotated[
                HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
            caller = self._caller(request, credentials)
            if caller.service is not None:
                if caller.service in alone:
                    return caller
                needed = ", ".join(sorted(allowed))
                raise NotPermitted(f"this action needs one of the roles: {needed} (a person's:"
                                   " a service may not take it on its own)")
            if caller.via is not None and caller.via not in through:
                raise NotPermitted(f"the {caller.via} service may not act for a person here")
            if not caller.has_any(allowed):
                needed = ", ".join(sorted(allowed))
                raise NotPermitted(f"this action needs one of the roles: {needed}")
            return caller

        return dependency

    def require_service(self, *names: str, on_behalf: bool = False
                        ) -> Callable[..., Principal]:
        """A dependency admitting only the named services' own tokens (never a person's);
        with ``on_behalf``, such a service may also act for a person (the caller is then the
        person, ``via`` the service)."""
        allowed = frozenset(names)

        def dependency(request: Request, credentials: Annotated[
                HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
            caller = self._caller(request, credentials)
            acting = caller.service or caller.via
            if acting is None:
                raise NotPermitted("this endpoint is for Peerlink's services, not people")
            if caller.via is not None and not on_behalf:
                raise NotPermitted("this endpoint does not act on behalf of a person")
            if acting not in allowed:
                raise NotPermitted(f"the {acting} service may not call this endpoint")
            return caller

        return dependency

"""The HTTP side every service shares: app factory, errors, auth dependencies, health, metrics.

Errors are JSON ``{"error": ..., "message": ..., "details": [{"field", "problem"}]}``
(``ErrorBody``) and never echo the values a caller sent, since those may be personal data.
Every operation's OpenAPI entry lists the error statuses it can return: those every route can
(401, 403, 422, 500, 503 ...) are added by ``create_api``; a route names its own with
``responses=errors(404, 409, ...)``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.auth import ON_BEHALF_OF, NotAuthenticated, NotPermitted, Principal, TokenVerifier
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.logging import scrub
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger(__name__)
ReadinessCheck = Callable[[], None]
_bearer = HTTPBearer(auto_error=False)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""A route's ``Authorization: Bearer`` credentials, if the caller sent any."""
RETRY_AFTER_SECONDS: Final = 5
"""How long a 503 asks the caller to wait before trying again (``Retry-After``)."""
SQLITE_UNAVAILABLE: Final = ("database is locked", "database table is locked",
                              "database is busy", "unable to open database file",
                              "disk I/O error")
"""What SQLite says when the database cannot be reached or written for now."""
DATABASE_UNAVAILABLE: Final = "the database is not answering; try again shortly"
DEPENDENCY_UNAVAILABLE: Final = "a service this request needs is not answering; try again shortly"
CONSENT_UNAVAILABLE: Final = ("the consent service is unavailable; nothing was recorded or "
                              "shown, try again")


class ErrorDetail(BaseModel):
    """One field's problem."""

    field: str = Field(description="the field, dotted from the request's top (a body field "
                                   "such as hark.afraid, a parameter's name), or body")
    problem: str = Field(description="what is wrong with it; never the value sent")


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str = Field(description="a stable code: not-authenticated, forbidden, not-found, "
                                   "validation-failed, unavailable, ...")
    message: str = Field(description="what went wrong, for people; never a value the caller "
                                     "sent")
    details: list[ErrorDetail] = Field(default=[], description="each field with a problem "
                                                                "(absent when none is named)")


STATUS_DESCRIPTIONS: Final[dict[int, str]] = {
    400: "The body could not be read (it is not UTF-8 text).",
    401: "No bearer token, or one that is invalid, expired or refused "
         "(`WWW-Authenticate: Bearer`).",
    403: "The caller's role, organisation or service may not do this.",
    404: "Nothing here: no such record, or none the caller's organisation may see (the same "
         "answer either way).",
    409: "The request conflicts with the record's current state.",
    410: "The person was erased: nothing more can be recorded about them.",
    422: "The request is not valid: `details` names each field and its problem (never the "
         "value sent).",
    500: "An unexpected error on the server; nothing of it is shown.",
    503: "The service's database, or a service it depends on, is not answering: nothing was "
         "done; try again after `Retry-After` seconds.",
}
"""What each error status means, unless a route says more precisely."""
RETRY_AFTER_HEADER: Final = {"Retry-After": {
    "description": "seconds to wait before trying again", "schema": {"type": "integer"}}}
_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
_ERROR_REF: Final = "#/components/schemas/ErrorBody"
_FASTAPI_VALIDATION: Final = ("HTTPValidationError", "ValidationError")


def errors(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` entries for error statuses, each with the ``ErrorBody`` schema:
    a status alone has its usual description, ``(status, description)`` says what it means
    for this route (``errors(404, (409, "the referral is not active"))``)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (
            entry, STATUS_DESCRIPTIONS[entry])
        responses[status] = {"model": ErrorBody, "description": description,
                             **({"headers": RETRY_AFTER_HEADER} if status == 503 else {})}
    return responses


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


@contextmanager
def subject_errors() -> Iterator[None]:
    """Map what the consent service says of a person to HTTP: erased (410) or no such
    registered person (422, naming ``subject_id``). An unavailable consent service is a 503
    for every route (``create_api``)."""
    try:
        yield
    except KeyShredded:
        raise erased() from None
    except UnknownSubject:
        raise ApiError(422, "unknown-subject", "no registered person has this subject "
                       "reference", field="subject_id") from None


def error_body(error: str, message: str,
               details: Iterable[dict[str, str]] = ()) -> dict[str, Any]:
    """The JSON body of every error response."""
    body: dict[str, Any] = {"error": error, "message": message}
    details = list(details)
    if details:
        body["details"] = details
    return body


def unavailable(message: str, error: str = "unavailable") -> JSONResponse:
    """A 503 with ``Retry-After``: something this request needs is not answering."""
    return JSONResponse(status_code=503, content=error_body(error, message),
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def database_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the database did not answer (no connection, a dropped
    one, a pool timeout, SQLite's lock), not that the statement was wrong."""
    if isinstance(exc, OperationalError) and isinstance(exc.orig, sqlite3.OperationalError):
        # SQLite says "no such table" as an OperationalError too: a server fault, not a wait
        return str(exc.orig).startswith(SQLITE_UNAVAILABLE)
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _error_response(status: int, description: str) -> dict[str, Any]:
    """An OpenAPI response object with the ``ErrorBody`` schema."""
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
            **({"headers": RETRY_AFTER_HEADER} if status == 503 else {})}


def _common_statuses(operation: dict[str, Any]) -> list[int]:
    """The error statuses any operation like this one can return, whatever its handler does."""
    parameters = operation.get("parameters", [])
    statuses = [500, 503]
    if operation.get("security"):
        statuses += [401, 403]
    if parameters or "requestBody" in operation:
        statuses.append(422)
    if "requestBody" in operation:
        statuses.append(400)
    if any(p.get("in") == "path" for p in parameters):
        statuses.append(404)  # a path parameter that does not name a record, or any route
    return sorted(statuses)


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with every operation's common error statuses (``ErrorBody``, and
    ``Retry-After`` on 503), in place of FastAPI's own 422 schema, which our handler never
    returns."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, schema in error_schema.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas.setdefault("ErrorBody", error_schema)
    for path_item in document.setdefault("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in _common_statuses(operation):
                given = responses.get(str(status))
                if given is None or _is_fastapi_validation(given):
                    responses[str(status)] = _error_response(status, STATUS_DESCRIPTIONS[status])
            operation["responses"] = dict(sorted(responses.items()))
    for name in _FASTAPI_VALIDATION:  # HTTPValidationError first: it refers to the other
        others = {other: schema for other, schema in schemas.items() if other != name}
        if f'"#/components/schemas/{name}"' not in json.dumps([document["paths"], others]):
            schemas.pop(name, None)
    return document


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


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
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

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
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.status == 503 else None
        return JSONResponse(status_code=exc.status,
                            content=error_body(exc.error, exc.message, details), headers=retry)

    @app.exception_handler(NotAuthenticated)
    async def _unauthenticated(_request: Request, exc: NotAuthenticated) -> JSONResponse:
        return JSONResponse(status_code=401, content=error_body("not-authenticated", str(exc)),
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(NotPermitted)
    async def _forbidden(_request: Request, exc: NotPermitted) -> JSONResponse:
        return JSONResponse(status_code=403, content=error_body("forbidden", str(exc)))

    @app.exception_handler(SQLAlchemyError)
    async def _database(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc
        # the class only: a database error's text carries the statement and its parameters
        log.warning("the database did not answer (%s)", type(exc).__name__)
        return unavailable(DATABASE_UNAVAILABLE)

    @app.exception_handler(KeyStoreUnavailable)
    async def _dependency(_request: Request, exc: KeyStoreUnavailable) -> JSONResponse:
        log.warning("the consent service did not answer (%s)", type(exc).__name__)
        return unavailable(CONSENT_UNAVAILABLE, "consent-unavailable")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, _exc: Exception) -> JSONResponse:
        # Starlette logs the exception and re-raises it after this response is sent
        return JSONResponse(status_code=500, content=error_body(
            "internal-error", "an unexpected error on the server"))

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


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Put the routers' routes themselves in ``app``, in order (not ``include_router``'s lazy
    branch), so that each request is labelled with its route's path in the HTTP metrics and
    every endpoint is listed in ``app.routes``."""
    for router in routers:
        app.router.routes.extend(router.routes)


def holding_any(caller: Principal, roles: Iterable[str]) -> Principal:
    """The caller, if they hold any of ``roles``; else ``NotPermitted`` naming the roles."""
    allowed = frozenset(roles)
    if not caller.has_any(allowed):
        raise NotPermitted(f"this action needs one of the roles: {', '.join(sorted(allowed))}")
    return caller


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

        def dependency(request: Request, credentials: BearerCredentials) -> Principal:
            caller = self._caller(request, credentials)
            if caller.service is not None:
                if caller.service in alone:
                    return caller
                needed = ", ".join(sorted(allowed))
                raise NotPermitted(f"this action needs one of the roles: {needed} (a person's:"
                                   " a service may not take it on its own)")
            if caller.via is not None and caller.via not in through:
                raise NotPermitted(f"the {caller.via} service may not act for a person here")
            return holding_any(caller, allowed)

        return dependency

    def require_service(self, *names: str, on_behalf: bool = False
                        ) -> Callable[..., Principal]:
        """A dependency admitting only the named services' own tokens (never a person's);
        with ``on_behalf``, such a service may also act for a person (the caller is then the
        person, ``via`` the service)."""
        allowed = frozenset(names)

        def dependency(request: Request, credentials: BearerCredentials) -> Principal:
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

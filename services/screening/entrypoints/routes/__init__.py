"""The screening API's routers, one per resource, and what they share: the subject reference
in a path, and who may call (the roles of an action's rule, or any role)."""

from collections.abc import Callable

from fastapi import Path

from services.screening.domain import access
from shared.auth import ROLES, Principal
from shared.http import Authorizer, errors
from shared.identity import SUBJECT_PATTERN

SUBJECT_ID = Path(pattern=SUBJECT_PATTERN, description="a subject reference")
ID = Path(max_length=40)
ERASED = errors(410)
"""A write about an erased person."""


def roles_of(authorizer: Authorizer, action: str) -> Callable[..., Principal]:
    """Admits the roles that may attempt ``action`` (``access.RULES``)."""
    return authorizer.require(*sorted(access.RULES[action].roles))


def anyone(authorizer: Authorizer) -> Callable[..., Principal]:
    """Admits every role: the use case decides what the caller sees."""
    return authorizer.require(*sorted(ROLES))

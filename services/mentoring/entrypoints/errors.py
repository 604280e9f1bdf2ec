"""How the mentoring API answers what its use cases refuse, in one place; and the refusals
its routes document that more than one resource shares."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from services.mentoring.service_layer import mentoring, safeguarding
from services.mentoring.service_layer.errors import NotActive, NotFound, UnknownCodes
from shared.http import ApiError, subject_errors

REFERRAL: Final = (404, "No referral with this id that your organisation made or received "
                        "(the same answer).")
MATCH: Final = (404, "No match with this id that your organisation may record on.")


@contextmanager
def errors() -> Iterator[None]:
    """Map the use cases' refusals to HTTP (an erased or unknown person as
    ``subject_errors`` does; ``NotPermitted`` and an unavailable consent service are mapped
    for every route by ``create_api``)."""
    with subject_errors():
        try:
            yield
        except NotFound as exc:
            raise ApiError(404, "not-found", f"no {exc} with this id in your organisation"
                           ) from None
        except NotActive as exc:
            raise ApiError(409, "not-active", str(exc)) from None
        except UnknownCodes as exc:
            message = str(exc).partition(": ")[2]
            raise ApiError(422, "unknown-code", message, field=exc.field) from None
        except mentoring.NotAPartner as exc:
            raise ApiError(422, "not-a-partner", str(exc), field="to_org") from None
        except mentoring.ConsentRequired as exc:
            raise ApiError(409, exc.error, str(exc)) from None
        except safeguarding.ConcernNotFound:
            raise ApiError(404, "not-found", "no safeguarding concern with this id") from None
        except safeguarding.StepNotAllowed as exc:
            raise ApiError(409, "wrong-state", str(exc)) from None
        except safeguarding.NotRelated as exc:
            field, _, message = str(exc).partition(": ")
            raise ApiError(422, "not-related", message, field=field) from None

"""``/internal/v1/data-keys``: people's data keys, for the services holding their sealed
fields."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.callers import SERVICE_ACCESS
from services.consent.entrypoints.routes._common import SUBJECT_ID
from services.consent.service_layer.subjects import serve_data_key
from shared.auth import Principal
from shared.crypto import KeyShredded, UnknownSubject, b64e
from shared.http import ApiError


class DataKeyOut(BaseModel):
    """A subject's data key, for the services that hold people's sealed fields only."""

    key_id: str
    key: str


def router(adapters: ConsentAdapters) -> APIRouter:
    """Serving data keys."""
    routes = APIRouter()
    holders = SERVICE_ACCESS["data-key"].alone

    @routes.get("/internal/v1/data-keys/{subject_id}", response_model=DataKeyOut,
                include_in_schema=False)
    def data_key(subject_id: Annotated[str, SUBJECT_ID],
                 caller: Annotated[Principal, Depends(
                     adapters.authorizer.require_service(*holders))]) -> DataKeyOut:
        try:
            key = serve_data_key(adapters.database, adapters.keys, subject_id, caller,
                                 trail=adapters.trail)
        except KeyShredded:
            raise ApiError(410, "key-shredded", "this subject was erased") from None
        except UnknownSubject:
            raise ApiError(404, "unknown-subject", "no subject has this reference",
                           field="subject_id") from None
        return DataKeyOut(key_id=key.key_id, key=b64e(key.material))

    return routes

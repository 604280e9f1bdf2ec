"""Adverse events: something harmful that happened to a mentee during the mentoring, with its
seriousness and relatedness; a serious one also goes to the Trust's safeguarding lead."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from sqlalchemy import update

from services.mentoring.adapters.tables import adverse_events
from services.mentoring.service_layer import mentoring, safeguarding
from services.mentoring.service_layer.commands import RecordAdverseEvent
from services.mentoring.service_layer.ports import LiveKeys, SafeguardingRegistry
from services.mentoring.service_layer.publishing import publish
from shared.auth import Principal
from shared.crypto import KeyShredded, PersonalDataCipher, RecordCipher
from shared.db import UnitOfWork, utcnow
from shared.events.mentoring import AdverseEventRecorded


def record_adverse_event(uow: UnitOfWork, keys: LiveKeys, cipher: PersonalDataCipher,
                         records: RecordCipher, registry: SafeguardingRegistry,
                         command: RecordAdverseEvent, caller: Principal) -> dict[str, Any]:
    """Log an adverse event on a match the caller may record on (during or after the
    mentoring); a serious one raises a safeguarding concern on the Trust's queue at once."""
    mentoring.check_recordable(uow.session, keys, command.match_id, caller)
    found = mentoring.match_row(uow.session, command.match_id, None)
    referral = mentoring.referral_row(uow.session, found.referral_id)
    event_id = f"adv_{uuid.uuid4().hex}"
    sealed = None
    if referral.subject_id is not None:
        with contextlib.suppress(KeyShredded):
            sealed = cipher.seal(referral.subject_id, AdverseEventRecorded.event_type,
                                 {"details": command.details})
    uow.session.execute(adverse_events.insert().values(
        adverse_event_id=event_id, match_id=found.match_id, org=found.org,
        occurred_on=command.occurred_on, kind=command.kind, serious=command.serious,
        relatedness=command.relatedness,
        details_sealed=sealed.model_dump_json().encode() if sealed else None,
        recorded_by_org=caller.org, recorded_at=utcnow()))
    publish(uow, AdverseEventRecorded(
        adverse_event_id=event_id, match_id=found.match_id, org=found.org,
        occurred_on=command.occurred_on, kind=command.kind, serious=command.serious,
        relatedness=command.relatedness, personal=sealed), referral.subject_id)
    concern_id = None
    if command.serious and referral.subject_id is not None:
        concern_id = safeguarding.put_on_queue(uow, cipher, records, safeguarding.Concern(
            subject_id=referral.subject_id, org=found.org, raised_on=command.occurred_on,
            details=f"Serious adverse event ({command.kind}, {command.relatedness}): "
                    f"{command.details}", raised_by=caller.subject,
            referral_id=referral.referral_id, match_id=found.match_id),
            safeguarding.pseudonym_of(registry, referral.subject_id))["id"]
        uow.session.execute(update(adverse_events).where(
            adverse_events.c.adverse_event_id == event_id).values(concern_id=concern_id))
    return {"id": event_id, "match_id": found.match_id,
            "occurred_on": command.occurred_on.isoformat(), "kind": command.kind,
            "serious": command.serious, "relatedness": command.relatedness,
            "safeguarding_concern_id": concern_id}

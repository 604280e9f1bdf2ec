"""The event catalogue: every event type and version, its payload model and its topic."""

from __future__ import annotations

import re

from shared.events import audit, cascade, consent, mentoring, screening
from shared.events.envelope import SCHEMA_URN_PREFIX, CloudEvent, EventPayload
from shared.kafka.topics import AUDIT_HEADS, CASCADE_ACKS, events_topic

MODELS: tuple[type[EventPayload], ...] = (
    consent.SubjectRegistered,
    consent.RelationshipEstablished,
    consent.ConsentGranted,
    consent.ConsentWithdrawn,
    consent.ErasureRequested,
    consent.WithdrawalCompleted,
    consent.WithdrawalOverdue,
    consent.SubjectKeyShredded,
    consent.SafeContactUpdated,
    audit.AuditHeadPublished,
    screening.EnquiryDue,
    screening.ScreeningCompleted,
    screening.ScreeningDeclined,
    screening.ScreeningNotSafe,
    screening.EnquiryNotAsked,
    screening.EnquiryAcceptability,
    screening.TeamTrainingRecorded,
    screening.RiskAssessed,
    screening.MaracReferralRequired,
    mentoring.MentorRegistered,
    mentoring.MentorStatusChanged,
    mentoring.MenteeReferred,
    mentoring.MatchMade,
    mentoring.SessionLogged,
    mentoring.SessionComponentsRecorded,
    mentoring.SupervisionRecorded,
    mentoring.MenteeFeedbackGiven,
    mentoring.AdverseEventRecorded,
    mentoring.MentoringOffered,
    mentoring.SafeguardingConcernRaised,
    mentoring.OutcomeRecorded,
    mentoring.FollowUpRecorded,
    mentoring.MentoringEnded,
    cascade.WithdrawalApplied,
    cascade.ErasureApplied,
)
"""Every payload model, each type and version once, grouped by publisher."""

CATALOGUE: dict[str, type[EventPayload]] = {model.event_type: model for model in MODELS}
"""The payload model of each event type (its latest version)."""

_BY_VERSION: dict[tuple[str, int], type[EventPayload]] = {
    (model.event_type, model.version): model for model in MODELS}

OWN_TOPIC: dict[str, str] = {audit.AuditHeadPublished.event_type: AUDIT_HEADS}
"""Event types published on a topic of their own rather than their publisher's."""

PARTNER_INBOUND_TYPES: tuple[str, ...] = ("screening-completed", "session-logged",
                                          "outcome-recorded")
"""Event types partner systems may put on ``partner.<org>.inbound`` for adoption."""


class UnknownEventType(ValueError):
    """An event type, or a version of one, that the catalogue does not hold."""


def payload_model(event_type: str, version: int = 1) -> type[EventPayload]:
    """The payload model of one event type and version."""
    model = _BY_VERSION.get((event_type, version))
    if model is not None:
        return model
    if event_type in CATALOGUE:
        raise UnknownEventType(f"event type {event_type!r} has no version {version}")
    raise UnknownEventType(f"unknown event type {event_type!r}")


def schema_version(event: CloudEvent) -> int:
    """The payload version an envelope's ``dataschema`` names; 1 when it names none."""
    if event.dataschema is None:
        return 1
    found = re.fullmatch(rf"{re.escape(SCHEMA_URN_PREFIX)}:{re.escape(event.type)}:(\d+)",
                         event.dataschema, flags=re.ASCII)
    if found is None:
        raise UnknownEventType(
            f"dataschema {event.dataschema!r} does not name a version of {event.type!r}")
    return int(found.group(1))


def parse_payload(event: CloudEvent) -> EventPayload:
    """Validate an envelope's ``data`` against its type and version's model.

    Raises ``UnknownEventType`` or ``pydantic.ValidationError`` (both ``ValueError``).
    """
    return payload_model(event.type, schema_version(event)).model_validate(event.data)


def topic_for(event_type: str) -> str:
    """The topic an event type is published on: its own, its publisher's, or
    ``cascade.acks``."""
    publisher = payload_model(event_type).publisher
    if event_type in OWN_TOPIC:
        return OWN_TOPIC[event_type]
    return CASCADE_ACKS if publisher == "any" else events_topic(publisher)

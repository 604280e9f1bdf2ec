"""The event contract: the CloudEvents envelope, one payload model per event type and version,
the catalogue that maps types to models and topics, and the shared vocabularies.

Payload models live in ``consent``, ``screening``, ``mentoring`` (by publisher), ``cascade``
(acknowledgements from every service) and ``audit`` (the consent audit chain's heads, on a
topic of their own); ``python -m shared.events.export`` regenerates the
checked-in JSON Schemas and AsyncAPI document from them.
"""

from shared.events.catalogue import (
    CATALOGUE,
    MODELS,
    PARTNER_INBOUND_TYPES,
    UnknownEventType,
    parse_payload,
    payload_model,
    schema_version,
    topic_for,
)
from shared.events.envelope import CloudEvent, EncryptedBlock, EventPayload, schema_urn

__all__ = [
    "CATALOGUE",
    "MODELS",
    "PARTNER_INBOUND_TYPES",
    "CloudEvent",
    "EncryptedBlock",
    "EventPayload",
    "UnknownEventType",
    "parse_payload",
    "payload_model",
    "schema_urn",
    "schema_version",
    "topic_for",
]

"""How mentoring's use cases publish: each event through the outbox of the unit of work
that wrote its state, as CloudEvents from mentoring's source on its events topic."""

from typing import Final

from shared.db import UnitOfWork
from shared.events.envelope import CloudEvent, EventPayload
from shared.kafka.topics import events_topic

SOURCE: Final = "/peerlink/mentoring"


def publish(uow: UnitOfWork, payload: EventPayload, key: str | None) -> None:
    """Put ``payload`` in the outbox, keyed by ``key`` (the person, or the mentor)."""
    uow.publish(CloudEvent.wrap(payload, source=SOURCE, subject=key),
                events_topic("mentoring"), aggregate_type=payload.event_type.split("-")[0])

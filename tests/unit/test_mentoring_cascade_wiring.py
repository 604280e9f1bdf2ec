"""The mentoring worker applies a consent withdrawal with the holder organisation and the
recipients the event names, and acknowledges it in the same unit of work."""

from __future__ import annotations

from typing import Any

from services.mentoring.entrypoints.worker import HolderCascadeParticipant
from shared.events.consent import ConsentWithdrawn
from shared.events.envelope import CloudEvent


class Recorder:
    """Stands in for the cascade effects and the unit of work."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.published: list[CloudEvent] = []

    def withdrawn(self, _uow: Any, subject_id: str, purposes: tuple[str, ...],
                  org: str | None = None, recipients: tuple[str, ...] = ()) -> None:
        self.calls.append((subject_id, purposes, org, recipients))

    def erase(self, _uow: Any, _subject_id: str) -> int:
        return 0

    def publish(self, event: CloudEvent, _topic: str, aggregate_type: str) -> None:
        self.published.append(event)


def test_a_withdrawal_reaches_the_effect_with_its_holder_and_recipients() -> None:
    recorder = Recorder()
    participant = HolderCascadeParticipant(recorder, lambda _subject: None)  # type: ignore[arg-type]
    payload = ConsentWithdrawn(withdrawal_id="wd_1", purposes=("partner-sharing", "evaluation"),
                               erasure=False, method="verbal", org="partner-b",
                               recipients=("partner-a",))
    event = CloudEvent.wrap(payload, source="/peerlink/consent", subject="sub_1")

    participant.handlers()["consent-withdrawn"](recorder, event, payload)  # type: ignore[arg-type]

    assert recorder.calls == [("sub_1", ("partner-sharing",), "partner-b", ("partner-a",))]
    [ack] = recorder.published
    assert (ack.type, ack.subject, ack.data["service"]) == ("withdrawal-applied", "sub_1",
                                                            "mentoring")


def test_a_withdrawal_of_other_purposes_is_not_applied_or_acknowledged() -> None:
    recorder = Recorder()
    participant = HolderCascadeParticipant(recorder, lambda _subject: None)  # type: ignore[arg-type]
    payload = ConsentWithdrawn(withdrawal_id="wd_2", purposes=("evaluation",), erasure=False,
                               method="verbal", org="trust")
    event = CloudEvent.wrap(payload, source="/peerlink/consent", subject="sub_1")
    participant.handlers()["consent-withdrawn"](recorder, event, payload)  # type: ignore[arg-type]
    assert (recorder.calls, recorder.published) == ([], [])

"""The mentoring worker applies a consent withdrawal with the holder organisation and the
recipients the event names, and an erasure as the DPO decided it (scope, retained kinds),
and acknowledges each in the same unit of work."""

from __future__ import annotations

from typing import Any

from services.mentoring.entrypoints.worker import HolderCascadeParticipant
from shared.crypto import RecordCipher
from shared.events.consent import ConsentWithdrawn, ErasureRequested
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

    def erasure_requested(self, _uow: Any, subject_id: str, request: ErasureRequested) -> int:
        self.calls.append((subject_id, request.scope, request.org, request.retained))
        return 2

    def publish(self, event: CloudEvent, _topic: str, aggregate_type: str) -> None:
        self.published.append(event)


def participant_of(recorder: Recorder) -> HolderCascadeParticipant:
    return HolderCascadeParticipant(recorder, lambda _subject: None,  # type: ignore[arg-type]
                                    None, RecordCipher(bytes(32)))  # type: ignore[arg-type]


def test_a_withdrawal_reaches_the_effect_with_its_holder_and_recipients() -> None:
    recorder = Recorder()
    participant = participant_of(recorder)
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
    participant = participant_of(recorder)
    payload = ConsentWithdrawn(withdrawal_id="wd_2", purposes=("evaluation",), erasure=False,
                               method="verbal", org="trust")
    event = CloudEvent.wrap(payload, source="/peerlink/consent", subject="sub_1")
    participant.handlers()["consent-withdrawn"](recorder, event, payload)  # type: ignore[arg-type]
    assert (recorder.calls, recorder.published) == ([], [])


def test_an_erasure_reaches_the_effect_with_its_scope_and_retained_kinds() -> None:
    recorder = Recorder()
    payload = ErasureRequested(withdrawal_id="wd_3", purposes=("peer-mentoring",),
                               method="written", org="partner-a", erasure_request_id="er_1",
                               scope="organisation", retained=("mentoring-records",))
    event = CloudEvent.wrap(payload, source="/peerlink/consent", subject="sub_1")
    participant_of(recorder).handlers()["erasure-requested"](
        recorder, event, payload)  # type: ignore[arg-type]
    assert recorder.calls == [("sub_1", "organisation", "partner-a", ("mentoring-records",))]
    [ack] = recorder.published
    assert (ack.type, ack.data["retained_records"]) == ("erasure-applied", 2)

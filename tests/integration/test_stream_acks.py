"""A worker's agent acknowledges records only once they are applied: a batch that is still
being retried when the worker stops (or crashes) is delivered again, never committed unapplied
(found by review: faust's ``take_events`` acknowledged a whole batch as its agent stopped)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import faust

from shared.kafka.consumer import BatchInterrupted, InboundRecord, Outcome, StalledRecord
from shared.stream import StreamWorker


class Applier:
    """Applies every batch, or stalls on every one; keeps the offsets of each attempt."""

    def __init__(self, stall: bool) -> None:
        self.stall = stall
        self.attempts: list[list[int]] = []

    def process_batch(self, records: Sequence[InboundRecord]) -> list[Outcome]:
        self.attempts.append([record.offset for record in records])
        if self.stall:
            raise BatchInterrupted(0, records[0]) from StalledRecord("stalled")
        return [Outcome.APPLIED] * len(records)


def _acks_after(applier: Applier, batch: bool) -> tuple[list[bool], list[bool]]:
    """Five records put at once: which were acknowledged while the agent ran, and after."""
    app = faust.App("peerlink-acks-test", broker="kafka://127.0.0.1:1", store="memory://",
                    web_enabled=False, autodiscover=False)
    worker = StreamWorker("test", app, batch_records=200)
    worker.consume("consent_events", ["consent.events"], applier,  # type: ignore[arg-type]
                   halt_on_error=True, batch=batch)
    agent = next(iter(app.agents.values()))

    async def run() -> tuple[list[bool], list[bool]]:
        messages: list[Any] = []
        async with agent.test_context() as context:
            for n in range(5):
                sent = await context.put(key=b"k", value=b"v%d" % n, partition=0, wait=False)
                messages.append(sent.message)
            await asyncio.sleep(1.0)
            running = [message.acked for message in messages]
        await asyncio.sleep(0.2)
        return running, [message.acked for message in messages]

    return asyncio.run(run())


def test_a_batch_still_retried_when_the_agent_stops_is_not_acknowledged() -> None:
    applier = Applier(stall=True)
    running, stopped = _acks_after(applier, batch=True)
    assert applier.attempts  # it was being retried
    assert running == [False] * 5
    assert stopped == [False] * 5


def test_a_one_at_a_time_agent_stalled_on_its_first_record_acknowledges_nothing() -> None:
    applier = Applier(stall=True)
    running, stopped = _acks_after(applier, batch=False)
    assert {tuple(offsets) for offsets in applier.attempts} == {(0,)}
    assert running == stopped == [False] * 5


def test_the_records_waiting_together_are_applied_as_one_batch_then_acknowledged() -> None:
    applier = Applier(stall=False)
    running, stopped = _acks_after(applier, batch=True)
    assert sum(len(offsets) for offsets in applier.attempts) == 5
    assert len(applier.attempts) < 5  # they were waiting together: fewer calls than records
    assert running == stopped == [True] * 5


def test_one_at_a_time_each_record_is_applied_alone_then_acknowledged() -> None:
    applier = Applier(stall=False)
    running, _ = _acks_after(applier, batch=False)
    assert applier.attempts == [[0], [1], [2], [3], [4]]
    assert running == [True] * 5

"""The withdrawal tracker's state machine, given acknowledgements and clock steps, expect a
status and the transitions each step caused."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from services.consent.domain.tracker import CascadeStatus, Transition, WithdrawalCascade
from shared.events.vocabulary import ServiceName

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DEADLINE_SECONDS = 60
NONE, COMPLETED, OVERDUE = Transition.NONE, Transition.COMPLETED, Transition.BECAME_OVERDUE
ERASURE: frozenset[ServiceName] = frozenset({"consent", "screening", "mentoring", "reporting"})


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


@dataclass(frozen=True)
class Ack:
    """A service acknowledges, with its effect applied at ``second``."""

    service: ServiceName
    second: float


@dataclass(frozen=True)
class Check:
    """The tracker's clock ticks at ``second`` and checks the deadline."""

    second: float


Step = Ack | Check


@dataclass(frozen=True)
class Given:
    required: frozenset[ServiceName]
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Expect:
    transitions: tuple[Transition, ...]
    status: CascadeStatus
    completed_at: float | None = None
    pending: frozenset[ServiceName] = frozenset()


def new_cascade(required: frozenset[ServiceName]) -> WithdrawalCascade:
    return WithdrawalCascade(required=required, requested_at=T0,
                             deadline_at=at(DEADLINE_SECONDS))


def run(cascade: WithdrawalCascade, steps: tuple[Step, ...]) -> tuple[Transition, ...]:
    transitions = []
    for step in steps:
        if isinstance(step, Ack):
            transitions.append(cascade.acknowledge(step.service, at(step.second)))
        else:
            transitions.append(cascade.check_deadline(at(step.second)))
    return tuple(transitions)


MENTORING: frozenset[ServiceName] = frozenset({"mentoring"})
SHARING: frozenset[ServiceName] = frozenset({"screening", "mentoring"})

CASES = [
    pytest.param(
        Given(SHARING),
        Expect((), CascadeStatus.PENDING, pending=SHARING),
        id="nothing-acknowledged-is-pending"),
    pytest.param(
        Given(SHARING, (Ack("screening", 5),)),
        Expect((NONE,), CascadeStatus.PENDING, pending=MENTORING),
        id="one-of-two-is-still-pending"),
    pytest.param(
        Given(SHARING, (Ack("screening", 5), Ack("mentoring", 9))),
        Expect((NONE, COMPLETED), CascadeStatus.COMPLETE, completed_at=9),
        id="the-last-required-acknowledgement-completes"),
    pytest.param(
        Given(SHARING, (Ack("mentoring", 20), Ack("screening", 10))),
        Expect((NONE, COMPLETED), CascadeStatus.COMPLETE, completed_at=20),
        id="completed-at-is-the-latest-applied-at-not-the-last-received"),
    pytest.param(
        Given(ERASURE, (Ack("consent", 1), Ack("reporting", 4), Ack("screening", 2),
                        Ack("mentoring", 3))),
        Expect((NONE, NONE, NONE, COMPLETED), CascadeStatus.COMPLETE, completed_at=4),
        id="erasure-completes-when-all-four-acknowledged"),
    pytest.param(
        Given(SHARING, (Ack("screening", 5), Ack("screening", 8))),
        Expect((NONE, NONE), CascadeStatus.PENDING, pending=MENTORING),
        id="a-duplicate-does-not-count-as-another-service"),
    pytest.param(
        Given(MENTORING, (Ack("mentoring", 5), Ack("mentoring", 9), Ack("mentoring", 30))),
        Expect((COMPLETED, NONE, NONE), CascadeStatus.COMPLETE, completed_at=5),
        id="duplicates-after-completion-change-nothing"),
    pytest.param(
        Given(MENTORING, (Ack("reporting", 3),)),
        Expect((NONE,), CascadeStatus.PENDING, pending=MENTORING),
        id="an-unrequired-service-does-not-complete"),
    pytest.param(
        Given(MENTORING, (Ack("reporting", 30), Ack("mentoring", 10))),
        Expect((NONE, COMPLETED), CascadeStatus.COMPLETE, completed_at=10),
        id="an-unrequired-service-does-not-move-completed-at"),
    pytest.param(
        Given(MENTORING, (Check(0), Check(DEADLINE_SECONDS - 1))),
        Expect((NONE, NONE), CascadeStatus.PENDING, pending=MENTORING),
        id="before-the-deadline-nothing-happens"),
    pytest.param(
        Given(MENTORING, (Check(DEADLINE_SECONDS),)),
        Expect((OVERDUE,), CascadeStatus.OVERDUE, pending=MENTORING),
        id="at-the-deadline-it-becomes-overdue"),
    pytest.param(
        Given(MENTORING, (Check(DEADLINE_SECONDS + 1), Check(DEADLINE_SECONDS + 2),
                          Check(3600))),
        Expect((OVERDUE, NONE, NONE), CascadeStatus.OVERDUE, pending=MENTORING),
        id="after-the-deadline-overdue-only-once"),
    pytest.param(
        Given(SHARING, (Ack("screening", 5), Check(DEADLINE_SECONDS))),
        Expect((NONE, OVERDUE), CascadeStatus.OVERDUE, pending=MENTORING),
        id="partly-acknowledged-still-becomes-overdue"),
    pytest.param(
        Given(MENTORING, (Check(DEADLINE_SECONDS), Ack("mentoring", 90))),
        Expect((OVERDUE, COMPLETED), CascadeStatus.COMPLETE, completed_at=90),
        id="overdue-completes-when-the-late-service-acknowledges"),
    pytest.param(
        Given(SHARING, (Check(DEADLINE_SECONDS), Ack("screening", 70))),
        Expect((OVERDUE, NONE), CascadeStatus.OVERDUE, pending=MENTORING),
        id="overdue-stays-overdue-until-the-last-one"),
    pytest.param(
        Given(SHARING, (Check(DEADLINE_SECONDS), Ack("screening", 70), Check(80),
                        Ack("mentoring", 95), Check(100))),
        Expect((OVERDUE, NONE, NONE, COMPLETED, NONE), CascadeStatus.COMPLETE,
               completed_at=95),
        id="overdue-then-caught-up-then-checked-again"),
    pytest.param(
        Given(MENTORING, (Ack("mentoring", 10), Check(DEADLINE_SECONDS), Check(600))),
        Expect((COMPLETED, NONE, NONE), CascadeStatus.COMPLETE, completed_at=10),
        id="complete-never-becomes-overdue"),
]


@pytest.mark.parametrize(("given", "expect"), CASES)
def test_withdrawal_cascade(given: Given, expect: Expect) -> None:
    cascade = new_cascade(given.required)

    transitions = run(cascade, given.steps)

    assert transitions == expect.transitions
    assert cascade.status is expect.status
    assert cascade.pending == expect.pending
    assert cascade.completed_at == (None if expect.completed_at is None
                                    else at(expect.completed_at))


def test_every_acknowledgement_is_recorded_the_first_one_counts() -> None:
    cascade = new_cascade(MENTORING)

    run(cascade, (Ack("reporting", 3), Ack("mentoring", 5), Ack("mentoring", 8),
                  Ack("reporting", 9)))

    assert cascade.acknowledged == {"reporting": at(3), "mentoring": at(5)}


@pytest.mark.parametrize(
    "order", [pytest.param(p, id="-".join(p)) for p in itertools.permutations(sorted(ERASURE))])
def test_completed_exactly_once_on_the_last_distinct_service_whatever_the_order(
        order: tuple[ServiceName, ...]) -> None:
    cascade = new_cascade(ERASURE)
    # every service acknowledges twice (a redelivery), interleaved with deadline checks
    steps: list[Step] = []
    for i, service in enumerate(order):
        steps += [Ack(service, 10 + i), Check(10 + i), Ack(service, 30 + i)]

    transitions = run(cascade, tuple(steps))

    assert transitions.count(COMPLETED) == 1
    assert transitions.count(OVERDUE) == 0
    assert transitions.index(COMPLETED) == 3 * (len(order) - 1)
    assert cascade.completed_at == at(10 + len(order) - 1)

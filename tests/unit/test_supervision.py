"""The restart policy of ``peerlink up``: back-off that doubles up to a cap, a crash window
that gives up, and crashes spread out that never do."""

from __future__ import annotations

from ops.supervision import GiveUp, Restart, RestartPolicy


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def crash_after(policy: RestartPolicy, clock: Clock, name: str, ran_for: float
                ) -> Restart | GiveUp:
    """Start ``name``, let it run ``ran_for`` seconds, then it dies."""
    policy.started(name)
    clock.now += ran_for
    decision = policy.exited(name)
    if isinstance(decision, Restart):
        clock.now += decision.delay_seconds
    return decision


def test_back_off_doubles_from_one_second_then_five_crashes_in_a_minute_give_up() -> None:
    clock = Clock()
    policy = RestartPolicy(clock=clock)
    decisions = [crash_after(policy, clock, "reporting-worker", 2.0) for _ in range(5)]
    assert decisions == [Restart(1.0), Restart(2.0), Restart(4.0), Restart(8.0),
                         GiveUp(crashes=5, window_seconds=60.0)]


def test_back_off_is_capped_at_thirty_seconds() -> None:
    clock = Clock()
    policy = RestartPolicy(clock=clock)
    # runs 20 s each time: never 5 crashes within 60 s, never long enough to count as stable
    delays = [crash_after(policy, clock, "screening-api", 20.0) for _ in range(8)]
    assert delays == [Restart(d) for d in (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0)]


def test_crashes_spread_out_never_stop_the_platform_and_start_the_back_off_again() -> None:
    clock = Clock()
    policy = RestartPolicy(clock=clock)
    decisions = [crash_after(policy, clock, "consent-worker", 61.0) for _ in range(10)]
    assert decisions == [Restart(1.0)] * 10


def test_four_quick_crashes_then_a_quiet_minute_do_not_give_up() -> None:
    clock = Clock()
    policy = RestartPolicy(clock=clock)
    for _ in range(4):
        crash_after(policy, clock, "mentoring-worker", 0.5)
    clock.now += 60.0
    assert isinstance(crash_after(policy, clock, "mentoring-worker", 0.5), Restart)


def test_each_process_has_its_own_window_and_back_off() -> None:
    clock = Clock()
    policy = RestartPolicy(clock=clock)
    for _ in range(4):
        crash_after(policy, clock, "screening-worker", 0.5)
    assert crash_after(policy, clock, "screening-api", 0.5) == Restart(1.0)
    assert isinstance(crash_after(policy, clock, "screening-worker", 0.5), GiveUp)

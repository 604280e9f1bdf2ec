"""When ``peerlink up`` restarts a process that died, and when it gives up.

A process that exits while the platform is meant to be up is restarted after a back-off that
doubles with each crash in a row (1 s, 2 s, 4 s ... capped at 30 s); one that ran for a while
(``stable_seconds``) before it died starts the sequence again. Too many crashes of one process
in a short window (5 within 60 s) mean restarting will not help: the platform stops.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Restart:
    """Start the process again after ``delay_seconds``."""

    delay_seconds: float


@dataclass(frozen=True)
class GiveUp:
    """Stop the platform: ``crashes`` crashes within ``window_seconds``."""

    crashes: int
    window_seconds: float


class RestartPolicy:
    """Back-off and crash-window bookkeeping for each supervised process, by name."""

    def __init__(self, *, first_delay: float = 1.0, max_delay: float = 30.0,
                 max_crashes: int = 5, window_seconds: float = 60.0,
                 stable_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._first = first_delay
        self._max = max_delay
        self._max_crashes = max_crashes
        self._window = window_seconds
        self._stable = stable_seconds
        self._clock = clock
        self._started: dict[str, float] = {}
        self._streak: dict[str, int] = {}
        self._crashes: dict[str, deque[float]] = {}

    def started(self, name: str) -> None:
        """``name`` was (re)started now."""
        self._started[name] = self._clock()

    def exited(self, name: str) -> Restart | GiveUp:
        """``name`` died unexpectedly now: when to restart it, or that the platform stops."""
        now = self._clock()
        crashes = self._crashes.setdefault(name, deque())
        crashes.append(now)
        while crashes and crashes[0] <= now - self._window:
            crashes.popleft()
        if len(crashes) >= self._max_crashes:
            return GiveUp(len(crashes), self._window)
        ran_for = now - self._started.get(name, now)
        streak = 1 if ran_for >= self._stable else self._streak.get(name, 0) + 1
        self._streak[name] = streak
        return Restart(min(self._max, self._first * 2 ** (streak - 1)))

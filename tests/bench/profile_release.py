"""Where a reporting release's time and memory go (B1, B2, B5, B6):
``python -m tests.bench.profile_release``.

Applies ``bench_stream``'s realistic events (``PEERLINK_BENCH_PROFILE_EVENTS``, default 10,000,
then twice and four times as many) to a fresh SQLite read model with the worker's own applier,
then, as the worker does with its ``Remembered``: a first release (timed), one more event and
the next release under cProfile (the functions taking the most time of their own), and after
one more a release from an empty memory under ``tracemalloc`` (its peak, what stays held
after it, which is what a worker carries from one release to the next, and the lines holding
that). The text goes to ``docs/profiles/reporting-release.txt``. No test asserts a time or a
size.
"""

from __future__ import annotations

import cProfile
import gc
import io
import os
import platform
import pstats
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

from ops.migrations import migrate
from services.reporting.adapters.tables import metadata as reporting_metadata
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules
from services.reporting.domain.people import Remembered
from services.reporting.service_layer.read_model import business_handlers, publish_release
from shared.db import Database
from shared.kafka.consumer import EventApplier, InboundRecord
from tests.bench.bench_pipeline import NoDeadLetters
from tests.bench.bench_platform import commit
from tests.bench.bench_stream import realistic_events

EVENTS = int(os.environ.get("PEERLINK_BENCH_PROFILE_EVENTS", "10000"))
OUT = Path(__file__).resolve().parents[2] / "docs" / "profiles" / "reporting-release.txt"
MB = 1024 * 1024
OURS = ("/services/", "/shared/")


def _here(filename: str) -> bool:
    return any(part in filename for part in OURS)


def measure(events: int, folder: Path) -> list[str]:
    """Time and memory of releases over ``events`` events, as lines of text."""
    url = f"sqlite:///{folder / f'reporting-{events}.db'}"
    migrate("reporting", url)
    db = Database(url, reporting_metadata)
    applier = EventApplier("reporting", "bench", db, business_handlers(), NoDeadLetters())
    workload = realistic_events(events, date.today())
    records = [InboundRecord(r.topic, 0, n, r.key, r.value)
               for n, r in enumerate(workload.records)]
    last, final = records.pop(), records.pop()
    for start in range(0, len(records), 200):
        applier.process_batch(records[start:start + 200])
    policy, rules, remembered = DisclosurePolicy(), OutcomeRules(), Remembered()
    started = time.perf_counter()
    publish_release(db, policy, rules, remembered=remembered)
    first = time.perf_counter() - started
    applier.process_batch([last])
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.runcall(publish_release, db, policy, rules, remembered=remembered)
    following = time.perf_counter() - started
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(14)
    own = [line for line in text.getvalue().splitlines()
           if line.strip() and line.strip()[0].isdigit() and "function calls" not in line]
    del remembered
    gc.collect()
    tracemalloc.start(6)
    fresh = Remembered()
    applier.process_batch([final])  # something new, or the release is served again
    publish_release(db, policy, rules, remembered=fresh, now=None)
    _, peak = tracemalloc.get_traced_memory()
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    db.engine.dispose()
    lines = [f"== {events:,} events, {workload.people:,} people",
             f"first release {first:.2f} s; the next, after one more event, {following:.2f} s "
             "(wall clock, the second under cProfile)",
             "the next release's functions by their own time (cProfile: ncalls tottime "
             "percall cumtime percall function):", *(f"  {line.strip()}" for line in own),
             f"a release from an empty memory under tracemalloc: peak {peak / MB:,.0f} MB; "
             f"held after it (kept until the next release) {held / MB:,.0f} MB, by line:"]
    for stat in snapshot.statistics("traceback")[:10]:
        frames = [f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback
                  if _here(f.filename)] or [str(stat.traceback[-1])]
        lines.append(f"  {stat.size / MB:7.1f} MB {stat.count:>9,} blocks  "
                     + " <- ".join(reversed(frames[-3:])))
    return lines


def main() -> int:
    """Measure at three sizes, print and write the text."""
    lines = [f"reporting releases: time and memory (issue 15: B1, B2, B5, B6), commit "
             f"{commit()}",
             f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, {platform.platform()}; load average "
             + " ".join(f"{x:.2f}" for x in os.getloadavg()),
             f"command: python -m tests.bench.profile_release "
             f"(PEERLINK_BENCH_PROFILE_EVENTS={EVENTS}); lines are file:line, innermost "
             "first", ""]
    with tempfile.TemporaryDirectory(prefix="peerlink-profile-release-") as tmp:
        for events in (EVENTS, 2 * EVENTS, 4 * EVENTS):
            found = measure(events, Path(tmp))
            print("\n".join(found), flush=True)
            lines += [*found, ""]
    OUT.write_text("\n".join(lines))
    print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

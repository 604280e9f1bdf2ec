"""B5, issue 15: ``peerlink reporting rebuild`` replaying ``PEERLINK_BENCH_REBUILD_EVENTS``
(default 1,000,000) realistic events into an empty read model, with its progress bar.

The events are those of ``bench_stream`` (fake people's journeys, in date order), pre-loaded
onto a local Tansu broker. The rebuild runs as the operator runs it, in its own process
(``python -m ops.cli reporting rebuild --progress``) on a fresh SQLite database; its progress
bar is read as it draws. Reported: the replay (from the first bar to the last, which includes
the 3 s without records that ends a replay on Tansu), the release the rebuild publishes at the
end, the whole command, and the peak RSS of the process. One table is printed with the
machine and the commit; JSON goes to ``PEERLINK_BENCH_OUT`` if set. No test asserts a time.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from ops.broker import LocalBroker, free_port
from ops.migrations import migrate
from shared.kafka.producer import create_topics
from shared.kafka.topics import registry
from shared.settings import PlatformSettings
from tests.bench.bench_stream import (
    PARTITIONS,
    RssSampler,
    _child_env,
    _commit,
    _load,
    preload,
    print_table,
    realistic_events,
)

EVENTS = int(os.environ.get("PEERLINK_BENCH_REBUILD_EVENTS", "1000000"))
TIMEOUT_SECONDS = float(os.environ.get("PEERLINK_BENCH_REBUILD_TIMEOUT", "1200"))
TARGET_SECONDS = 120.0
BAR = re.compile(rb"([\d,]+) records(?: of [\d,]+ records)?, ([\d,]+)/s")


def rebuild(bootstrap: str, folder: Path) -> dict[str, Any]:
    """Run the rebuild command; the times of its first and last bar, its end, its peak RSS."""
    db = folder / "rebuilt.db"
    url = f"sqlite:///{db}"
    migrate("reporting", url)
    env = {**_child_env(), "PEERLINK_KAFKA_BOOTSTRAP": bootstrap,
           "PEERLINK_VAR_DIR": str(folder), "PEERLINK_ENV": "development",
           "PEERLINK_TOPIC_PARTITIONS": str(PARTITIONS)}
    argv = [sys.executable, "-m", "ops.cli", "reporting", "rebuild", "--progress",
            "--database-url", url]
    started = time.perf_counter()
    first = last = None
    read = 0
    process = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stderr is not None and process.stdout is not None
    with RssSampler([process.pid]) as sampler:
        buffer = b""
        deadline = started + TIMEOUT_SECONDS
        while True:
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:
                break
            buffer = (buffer + chunk)[-4096:]
            bars = BAR.findall(buffer)
            if bars:
                now = time.perf_counter()
                first = first or now
                count = int(bars[-1][0].replace(b",", b""))
                if count > read:
                    read, last = count, now
            if time.perf_counter() > deadline:
                process.kill()
                break
        output = process.stdout.read().decode()
        code = process.wait()
        ended = time.perf_counter()
    return {"code": code, "output": output.strip(), "tail": buffer.decode(errors="replace")
            .replace("\r", "\n").strip().splitlines()[-3:],
            "read": read, "first_bar": None if first is None else first - started,
            "replay": None if first is None or last is None else last - first,
            "release": None if last is None else ended - last, "whole": ended - started,
            "peak_rss_mb": sampler.peak(process.pid)}


def main() -> None:
    """Pre-load, rebuild, print the table."""
    load_start, commit = _load(), _commit()
    generating = time.perf_counter()
    workload = realistic_events(EVENTS, date.today())
    generated = time.perf_counter() - generating
    with tempfile.TemporaryDirectory(prefix="peerlink-bench-rebuild-") as tmp, \
            LocalBroker(free_port(), Path(tmp) / "broker.log") as broker:
        folder = Path(tmp)
        create_topics(broker.bootstrap, registry(PlatformSettings().organisations), PARTITIONS)
        loaded = preload(broker.bootstrap, workload.records)
        print(f"pre-loaded {EVENTS:,} events ({workload.people:,} people) in {loaded:.1f} s "
              f"(generated in {generated:.1f} s)", flush=True)
        del workload.records
        result = rebuild(broker.bootstrap, folder)
    replay = result["replay"]
    rate = f"{result['read'] / replay:,.0f} records/s" if replay else "-"
    met = result["code"] == 0 and result["read"] >= EVENTS and \
        result["whole"] < TARGET_SECONDS
    rows = [
        ["B5", f"rebuild, {EVENTS:,} events ({workload.people:,} people), whole command",
         f"{result['whole']:.0f} s, exit {result['code']}, {result['read']:,} records read",
         "under 2 minutes, with a progress bar", "yes" if met else "no"],
        ["B5", "of which the replay (first bar to last, with the idle wait that ends it)",
         f"{replay:.0f} s, {rate}" if replay else "-", "", ""],
        ["B5", "of which the release at the end",
         f"{result['release']:.0f} s" if result["release"] is not None else "-", "", ""],
        ["B5", "peak RSS of the rebuild process",
         f"{result['peak_rss_mb']:.0f} MB" if result["peak_rss_mb"] else "-", "", ""],
    ]
    print()
    print_table(rows)
    print(f"progress bar, last lines: {result['tail']}")
    print(f"command said: {result['output']}")
    machine = (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, {platform.platform()}; load average at start "
               f"{load_start}, at end {_load()}")
    print(machine)
    print(f"commit: {commit}")
    out = os.environ.get("PEERLINK_BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps({"events": EVENTS, "people": workload.people,
                                         "preload_seconds": loaded, **result,
                                         "rows": [dict(zip(["id", "what", "figure", "target",
                                                            "met"], row, strict=True))
                                                  for row in rows],
                                         "machine": machine, "commit": commit}, indent=2))


if __name__ == "__main__":
    main()

"""``peerlink reporting``: the read model's administration (rebuilding it from the log)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from shared.settings import platform_settings


def cmd_reporting_rebuild(args: argparse.Namespace) -> int:
    """Replay the log into an empty reporting read model."""
    from services.reporting.entrypoints.rebuild import rebuild

    draw = args.progress or sys.stderr.isatty()
    summary = rebuild(platform_settings(), args.database_url,
                      ProgressBar(sys.stderr) if draw else None)
    if draw:
        print(file=sys.stderr)  # the bar's line ends
    skipped = ", ".join(f"{n} {r}" for r, n in sorted(summary.skipped.items())) or "none"
    print(f"replayed {summary.records} records, applied {summary.applied}, skipped {skipped}; "
          "a release with the rebuilt figures is published")
    return 0


class ProgressBar:
    """``[#####.....]  52% 520,000 of 1,000,000 records, 9,800/s`` on one line, redrawn at
    most every 0.2 s; without a total (the local broker does not say), the count and rate."""

    WIDTH = 30

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._started = time.monotonic()
        self._drawn = 0.0

    def __call__(self, read: int, total: int | None) -> None:
        """Draw the bar for ``read`` records of ``total``."""
        now = time.monotonic()
        if now - self._drawn < 0.2 and read != total:
            return
        self._drawn = now
        rate = read / max(now - self._started, 1e-6)
        if total:
            done = min(read / total, 1.0)
            bar = "#" * round(done * self.WIDTH)
            line = f"[{bar:.<{self.WIDTH}}] {done:4.0%} {read:,} of {total:,} records"
        else:
            line = f"{read:,} records"
        self._out.write(f"\r{line}, {rate:,.0f}/s ")
        self._out.flush()


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``peerlink reporting rebuild``."""
    reporting = commands.add_parser("reporting", help="reporting read model")
    reporting_sub = reporting.add_subparsers(dest="action", required=True)
    rebuild = reporting_sub.add_parser(
        "rebuild", help="replay the log from the beginning into an empty read model")
    rebuild.add_argument("--database-url", default=None,
                         help="rebuild into this database (default: the reporting database; "
                              "stop the reporting workers first)")
    rebuild.add_argument("--progress", action="store_true",
                         help="draw the progress bar even when stderr is not a terminal")
    rebuild.set_defaults(func=cmd_reporting_rebuild)

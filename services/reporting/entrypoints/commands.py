"""``peerlink reporting``: the read model's administration (rebuilding it from the log)."""

from __future__ import annotations

import argparse
from typing import Any

from shared.settings import platform_settings


def cmd_reporting_rebuild(args: argparse.Namespace) -> int:
    """Replay the log into an empty reporting read model."""
    from services.reporting.entrypoints.rebuild import rebuild

    summary = rebuild(platform_settings(), args.database_url)
    skipped = ", ".join(f"{n} {r}" for r, n in sorted(summary.skipped.items())) or "none"
    print(f"replayed {summary.records} records, applied {summary.applied}, skipped {skipped}; "
          "a release with the rebuilt figures is published")
    return 0


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``peerlink reporting rebuild``."""
    reporting = commands.add_parser("reporting", help="reporting read model")
    reporting_sub = reporting.add_subparsers(dest="action", required=True)
    rebuild = reporting_sub.add_parser(
        "rebuild", help="replay the log from the beginning into an empty read model")
    rebuild.add_argument("--database-url", default=None,
                         help="rebuild into this database (default: the reporting database; "
                              "stop the reporting workers first)")
    rebuild.set_defaults(func=cmd_reporting_rebuild)

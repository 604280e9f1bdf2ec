"""The one table ``make bench`` ends with: every bench's rows, from the JSON each wrote.

Each bench (``bench_pipeline``, ``bench_stream``, ``bench_rebuild``, ``bench_platform``) writes
its rows (id, what, figure, target, met?) and its machine and commit to ``PEERLINK_BENCH_OUT``;
``python -m tests.bench.summary FOLDER [BENCH...]`` prints them as one Markdown table, B1 to B7
in order, with the machine and commits under it. A bench expected (all four unless named) that
did not write its file is named as missing, and the command then fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BENCHES = ("pipeline", "stream", "rebuild", "platform")
"""The benches ``make bench`` runs, each writing ``FOLDER/<name>.json``."""
HEADER = ("id", "what", "figure", "target", "met?")


def rows_of(folder: Path, benches: tuple[str, ...] = BENCHES
            ) -> tuple[list[list[str]], list[str]]:
    """Every bench's rows, in id order (a bench's own order kept within an id), and a line per
    bench saying where and on what it ran, or that it wrote nothing."""
    rows: list[tuple[str, int, list[str]]] = []
    notes: list[str] = []
    for name in benches:
        path = folder / f"{name}.json"
        if not path.exists():
            notes.append(f"{name}: missing (no {path}; the bench failed or was not run)")
            continue
        found: dict[str, Any] = json.loads(path.read_text())
        for n, row in enumerate(found["rows"]):
            cells = [str(row[key]) for key in ("id", "what", "figure", "target", "met")]
            rows.append((cells[0], n, cells))
        notes.append(f"{name}: {found['machine']}; commit {found['commit']}")
    return [cells for _, _, cells in sorted(rows, key=lambda r: (r[0], r[1]))], notes


def table(rows: list[list[str]]) -> str:
    """A Markdown table, columns padded."""
    lines = [list(HEADER), *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    rule = ["-" * w for w in widths]
    return "\n".join("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths,
                                                                         strict=True)) + " |"
                     for line in [lines[0], rule, *lines[1:]])


def main(argv: list[str]) -> int:
    """Print the table of ``argv[0]``'s JSON files (the benches named after it, or all);
    1 when one is missing."""
    rows, notes = rows_of(Path(argv[0]), tuple(argv[1:]) or BENCHES)
    print()
    print("make bench: every figure (issue 15's table)")
    print()
    print(table(rows))
    print()
    for note in notes:
        print(note)
    return 1 if any(": missing" in note for note in notes) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

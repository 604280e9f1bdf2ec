"""``make bench`` ends with one table: every bench's rows in id order, a missing bench named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench import summary


def write(folder: Path, name: str, *rows: tuple[str, str]) -> None:
    (folder / f"{name}.json").write_text(json.dumps({
        "rows": [{"id": i, "what": w, "figure": "1/s", "target": "", "met": ""} for i, w in rows],
        "machine": f"machine of {name}", "commit": "abc123"}))


def test_every_bench_s_rows_come_in_one_table_by_id(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "pipeline", ("pipeline", "relay"))
    write(tmp_path, "stream", ("B1", "bare"), ("B6", "memory"), ("B1", "worker"))
    write(tmp_path, "rebuild", ("B5", "rebuild"))
    write(tmp_path, "platform", ("B4", "ingest"), ("B2", "freshness"))
    assert summary.main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    body = [line.split("|")[2].strip() for line in lines if line.startswith("| B")
            or line.startswith("| pipeline")]
    assert body == ["bare", "worker", "freshness", "ingest", "rebuild", "memory", "relay"]
    assert sum(line.startswith("| id") for line in lines) == 1
    assert "stream: machine of stream; commit abc123" in lines


def test_a_bench_that_wrote_nothing_is_named_and_fails_the_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "stream", ("B1", "bare"))
    assert summary.main([str(tmp_path), "stream", "rebuild"]) == 1
    out = capsys.readouterr().out
    assert "rebuild: missing" in out and "| B1 " in out
    assert summary.main([str(tmp_path), "stream"]) == 0

"""The progress bar of ``peerlink reporting rebuild``."""

from __future__ import annotations

import io

from services.reporting.entrypoints.commands import ProgressBar


def test_with_a_total_it_draws_the_share_done_on_one_line() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    bar(250, 1000)
    bar(1000, 1000)  # the last is always drawn, however soon after the one before
    drawn = out.getvalue().split("\r")[1:]
    assert drawn[0].startswith("[" + "#" * 8 + "." * 22 + "]  25% 250 of 1,000 records, ")
    assert drawn[1].startswith("[" + "#" * 30 + "] 100% 1,000 of 1,000 records, ")
    assert "\n" not in out.getvalue()


def test_without_a_total_it_counts_and_draws_at_most_every_fifth_of_a_second() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    bar(1_000_000, None)
    bar(1_000_500, None)  # too soon: not drawn
    drawn = out.getvalue().split("\r")[1:]
    assert len(drawn) == 1
    assert drawn[0].startswith("1,000,000 records, ")
    assert drawn[0].rstrip().endswith("/s")

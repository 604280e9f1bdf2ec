"""The reporting worker's release spacing: releases take at most a third of its time."""

from __future__ import annotations

from services.reporting.entrypoints.worker import ReleaseSpacing


def test_the_first_release_is_due_at_once() -> None:
    assert ReleaseSpacing().due(0.0)


def test_a_release_is_followed_by_twice_its_duration_without_one() -> None:
    spacing = ReleaseSpacing()
    spacing.took(3.0, ended=100.0)
    assert not spacing.due(105.9)
    assert spacing.due(106.0)


def test_quick_releases_leave_the_cadence_alone() -> None:
    spacing = ReleaseSpacing()
    spacing.took(0.01, ended=50.0)
    assert spacing.due(50.02)  # the 5 s timer is what spaces them


def test_the_share_sets_the_gap() -> None:
    spacing = ReleaseSpacing(share=0.5)
    spacing.took(2.0, ended=10.0)
    assert not spacing.due(11.9)
    assert spacing.due(12.0)

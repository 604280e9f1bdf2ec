"""Keeping the read model: contributions in, releases out."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.reporting.adapters.tables import contributions, evaluation_consents, releases
from services.reporting.domain.contributions import DIMENSIONS, contributions_of
from services.reporting.service_layer.cascade import is_excluded
from shared.db import Database, UnitOfWork, utcnow
from shared.events.envelope import CloudEvent, EventPayload
from shared.kafka.consumer import Handler

Cell = dict[str, Any]
COUNTED_EVENTS: tuple[str, ...] = (
    "screening-completed", "screening-declined", "screening-not-safe", "enquiry-due",
    "marac-referral-required", "mentee-referred", "match-made", "session-logged",
    "mentoring-ended", "outcome-recorded")
"""The business events that contribute to the figures."""


def apply_event(uow: UnitOfWork, event: CloudEvent, payload: EventPayload) -> None:
    """Store what an event contributes, keyed by the person it is about (unless they are out)."""
    if event.subject is None or is_excluded(uow, event.subject):
        return
    rows = [dict(asdict(c), subject_id=event.subject, source_event=event.dedup_key)
            for c in contributions_of(payload)]
    if rows:
        uow.session.execute(contributions.insert(), rows)


def business_handlers() -> dict[str, Handler]:
    """The handler of every counted event."""
    return dict.fromkeys(COUNTED_EVENTS, apply_event)


def clear(uow: UnitOfWork) -> None:
    """Empty the read model (before a rebuild)."""
    for table in (contributions, evaluation_consents, releases,
                  contributions.metadata.tables["inbox"]):
        uow.session.execute(delete(table))


def aggregate_cells(session: Session, opt_in: bool = False) -> list[Cell]:
    """Sum every measure by month and every dimension (unrounded, internal only).

    Opt-out (the default) counts everyone who has not withdrawn ``evaluation``; opt-in counts
    only people whose ``evaluation`` consent is granted.
    """
    keys = [contributions.c[d] for d in ("month", *DIMENSIONS)]
    query = (select(*keys, contributions.c.measure, func.sum(contributions.c.value).label("n"))
             .group_by(*keys, contributions.c.measure)
             .order_by(*keys, contributions.c.measure))
    counted = _counted(opt_in)
    if counted is not None:
        query = query.where(counted)
    return [dict(row._mapping) for row in session.execute(query)]


def _counted(opt_in: bool) -> Any:
    """Who counts: everyone not withdrawn (opt-out), or only those who consented (opt-in)."""
    if not opt_in:
        return None
    return contributions.c.subject_id.in_(select(evaluation_consents.c.subject_id).where(
        evaluation_consents.c.state == "granted"))


def individual_values(session: Session, opt_in: bool = False) -> dict[str, list[Cell]]:
    """Per-person values behind medians and changes (internal only, never published raw):
    days from referral to match, and each person's SWEMWBS change from intake to exit."""
    dims = [contributions.c[d] for d in ("month", *DIMENSIONS)]
    query = select(contributions.c.subject_id, contributions.c.measure,
                   contributions.c.value, *dims).where(contributions.c.measure.in_(
                       ("days_to_match", "swemwbs_intake", "swemwbs_exit"))
                   ).order_by(contributions.c.id)
    counted = _counted(opt_in)
    if counted is not None:
        query = query.where(counted)
    days: list[Cell] = []
    latest: dict[tuple[str, str], Cell] = {}
    for row in session.execute(query):
        cell = {d: row._mapping[d] for d in ("month", *DIMENSIONS)}
        if row.measure == "days_to_match":
            days.append({**cell, "n": int(row.value)})
        else:
            latest[(row.subject_id, row.measure)] = {**cell, "n": int(row.value)}
    changes = [
        {**exit_cell, "n": exit_cell["n"] - latest[(subject, "swemwbs_intake")]["n"]}
        for (subject, measure), exit_cell in latest.items()
        if measure == "swemwbs_exit" and (subject, "swemwbs_intake") in latest
    ]
    return {"days_to_match": days, "swemwbs_changes": changes}


def publish_release(database: Database, now: datetime | None = None, keep: int = 100,
                    opt_in: bool = False) -> datetime:
    """Snapshot the aggregates as a new release, keeping the newest ``keep``; returns its time."""
    released_at = now or utcnow()
    with database.unit_of_work() as uow:
        cells = aggregate_cells(uow.session, opt_in)
        for cell in cells:
            cell["n"] = int(cell["n"])
        snapshot = {"cells": cells, **individual_values(uow.session, opt_in)}
        newest = uow.session.execute(releases.insert().values(
            released_at=released_at, cells=json.dumps(snapshot, separators=(",", ":")))
            .returning(releases.c.release_id)).scalar_one()
        uow.session.execute(delete(releases).where(releases.c.release_id <= newest - keep))
    return released_at


def latest_release(database: Database) -> tuple[datetime, dict[str, list[Cell]]] | None:
    """The newest release's time and snapshot, or None before the first release."""
    with database.read() as session:
        row = session.execute(select(releases.c.released_at, releases.c.cells)
                              .order_by(releases.c.release_id.desc()).limit(1)).first()
    if row is None:
        return None
    return row.released_at, json.loads(row.cells)


def latest_release_time(database: Database) -> datetime | None:
    """When the newest release was published (cheap: the snapshot is not loaded)."""
    with database.read() as session:
        released_at: datetime | None = session.execute(
            select(releases.c.released_at).order_by(releases.c.release_id.desc()).limit(1)
        ).scalar()
    return released_at

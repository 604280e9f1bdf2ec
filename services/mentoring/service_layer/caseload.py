"""A mentor coordinator's caseload: their organisation's active matches with what is due
next, the follow-ups due after endings, and the mentors whose supervision or check falls due.
Only the caller's own organisation's; references, not personal data."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.mentoring.adapters.tables import (
    matches,
    mentoring_sessions,
    mentors,
    outcomes,
    referrals,
)
from services.mentoring.domain.caseload import Due, follow_ups_due, mentor_dues, next_session
from services.mentoring.domain.matching import EligibilityRules
from shared.auth import Principal
from shared.events.vocabulary import FOLLOW_UPS


def caseload(session: Session, caller: Principal, today: date, rules: EligibilityRules,
             session_every: timedelta) -> dict[str, Any]:
    """What is due on the caller's organisation's caseload, soonest first."""
    org = caller.org
    held = dict(session.execute(
        select(mentoring_sessions.c.match_id, func.max(mentoring_sessions.c.held_on))
        .join(matches, matches.c.match_id == mentoring_sessions.c.match_id)
        .where(matches.c.org == org, mentoring_sessions.c.attendance == "attended")
        .group_by(mentoring_sessions.c.match_id)).all())
    taken: dict[str, set[str]] = {}
    for match_id, timepoint in session.execute(
            select(outcomes.c.match_id, outcomes.c.timepoint)
            .join(matches, matches.c.match_id == outcomes.c.match_id)
            .where(matches.c.org == org)).all():
        taken.setdefault(match_id, set()).add(timepoint)
    rows = session.execute(
        select(matches, referrals.c.subject_id)
        .join(referrals, referrals.c.referral_id == matches.c.referral_id)
        .where(matches.c.org == org)).all()
    active, follow_ups = [], []
    for row in rows:
        if row.subject_id is None:  # erased: nothing more is recorded about them
            continue
        if row.status == "active":
            due = [next_session(row.matched_on, held.get(row.match_id), session_every)]
            if "intake" not in taken.get(row.match_id, set()):
                due.append(Due("intake", row.matched_on))
            active.append({"match_id": row.match_id, "referral_id": row.referral_id,
                           "mentor_id": row.mentor_id,
                           "matched_on": row.matched_on.isoformat(),
                           "due": [d.view(today) for d in sorted(due, key=lambda d: d.due_on)]})
        elif row.ended_on is not None and row.planned:  # an unplanned ending may be a
            # withdrawal: nobody asks them to follow up
            for due_follow_up in follow_ups_due(row.ended_on, taken.get(row.match_id, set()),
                                                dict(FOLLOW_UPS), today):
                follow_ups.append({"match_id": row.match_id, "referral_id": row.referral_id,
                                   "ended_on": row.ended_on.isoformat(),
                                   **due_follow_up.view(today)})
    mentors_due = []
    for mentor in session.execute(select(mentors).where(
            mentors.c.org == org, mentors.c.status.in_(("active", "in-training")))):
        dues = mentor_dues(mentor.last_supervision_on, mentor.check_completed_on, rules, today)
        if dues:
            mentors_due.append({"mentor_id": mentor.mentor_id, "status": mentor.status,
                                "due": [d.view(today) for d in dues]})
    active.sort(key=lambda m: m["due"][0]["due_on"])
    follow_ups.sort(key=lambda f: f["due_on"])
    mentors_due.sort(key=lambda m: m["due"][0]["due_on"])
    return {"org": org, "as_of": today.isoformat(), "active_matches": active,
            "follow_ups_due": follow_ups, "mentors_due": mentors_due}


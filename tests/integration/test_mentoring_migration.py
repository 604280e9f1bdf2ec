"""Migration 0003 on both databases: referrals made before it that were matched take the
matched mentor's organisation as their receiving organisation; unmatched ones keep none and
are in nobody's intake (nor matched by anyone)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

import services.mentoring.adapters.migrations as migrations
from ops.migrations import migrate


def test_matched_referrals_take_the_matched_organisation_as_receiver(database_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(next(iter(migrations.__path__)))))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "0002_mentoring")
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            for referral_id in ("ref_matched", "ref_waiting"):
                connection.execute(text(
                    "INSERT INTO referrals (referral_id, subject_id, referred_by_org, "
                    "referred_on, mentor_gender, status, waitlisted, sharing_withdrawn) "
                    "VALUES (:id, 'sub_1', 'trust', :on, 'any', :status, false, false)"),
                    {"id": referral_id, "on": date(2026, 11, 1),
                     "status": "matched" if referral_id == "ref_matched" else "waitlisted"})
            connection.execute(text(
                "INSERT INTO matches (match_id, referral_id, mentor_id, org, matched_on, "
                "status) VALUES ('mat_1', 'ref_matched', 'mnt_1', 'partner-b', :on, 'active')"),
                {"on": date(2026, 11, 2)})

        migrate("mentoring", database_url)

        with engine.connect() as connection:
            rows = {r.referral_id: r.to_org for r in connection.execute(text(
                "SELECT referral_id, to_org FROM referrals"))}
        assert rows == {"ref_matched": "partner-b", "ref_waiting": None}
    finally:
        engine.dispose()

"""The research extract and research figures for the study's researchers at the sponsoring
Trust: research-consented people only, every one taken logged (who, when, how many people, a
digest of what was handed over) for the DPO."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from services.reporting.adapters.tables import (
    contributions,
    evaluation_consents,
    research_consents,
    research_extracts,
)
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules
from services.reporting.domain.people import Fact
from services.reporting.domain.research import extract_rows, research_figures
from services.reporting.service_layer.read_model import stream_facts
from shared.auth import NotPermitted, Principal
from shared.db import Database, UnitOfWork, utcnow

EXTRACT_METHOD = (
    "People who consented to research (taking part in the study's data collection), apart "
    "from consent to the service, with the records of each organisation that recorded their "
    "research consent; a person who withdraws research consent (at an organisation: its "
    "records), or evaluation, or is erased, is in no extract taken after. Each person once, "
    "under the study's pseudonym, with their quarter of entry, the stages of the feasibility "
    "funnel they reached, their most recent mentoring episode (episode_ cells), and how "
    "many of that episode's sessions covered each component.")
FIGURES_METHOD = (
    "The research-consented people only, all time, each once; every figure rounded and "
    "suppressed like the programme's own figures. Session components are shares of the "
    "sessions that had components recorded.")


def check_sponsor(caller: Principal, sponsor: str | None) -> None:
    """Research data is for the sponsoring Trust's own staff only."""
    if sponsor is None or caller.org != sponsor:
        raise NotPermitted("research data is for the sponsoring Trust only")


def research_facts(session: Session) -> list[Fact]:
    """Every contribution an organisation holds about a person whose research consent it
    holds (each organisation's consent covers its own records), of people who have not
    withdrawn evaluation."""
    c, r, e = contributions.c, research_consents.c, evaluation_consents.c
    granted = exists().where(r.subject_id == c.subject_id, r.org == c.org,
                             r.state == "granted")
    out = exists().where(e.subject_id == c.subject_id, e.state == "withdrawn")
    return list(stream_facts(session, among=and_(granted, ~out)))


def _logged(uow: UnitOfWork, caller: Principal, kind: str, people: int,
            handed_over: Any) -> dict[str, Any]:
    digest = hashlib.sha256(json.dumps(handed_over, sort_keys=True, default=str)
                            .encode()).hexdigest()
    taken_at = utcnow()
    entry: dict[str, Any] = {"extract_id": f"rx_{uuid.uuid4().hex}", "org": caller.org,
                             "taken_by": caller.subject, "kind": kind, "people": people,
                             "digest": digest}
    uow.session.execute(research_extracts.insert().values(**entry, taken_at=taken_at))
    return {**entry, "taken_at": taken_at.isoformat()}


def take_extract(database: Database, key: bytes, caller: Principal,
                 sponsor: str | None) -> dict[str, Any]:
    """The pseudonymised person-level extract, logged."""
    check_sponsor(caller, sponsor)
    with database.unit_of_work() as uow:
        rows = extract_rows(research_facts(uow.session), key)
        entry = _logged(uow, caller, "extract", len(rows), rows)
    return {"extract_id": entry["extract_id"], "taken_at": entry["taken_at"],
            "people": len(rows), "digest": entry["digest"], "method": EXTRACT_METHOD,
            "rows": rows}


def take_figures(database: Database, table: str, group_by: str, policy: DisclosurePolicy,
                 rules: OutcomeRules, caller: Principal, sponsor: str | None
                 ) -> dict[str, Any]:
    """A research table of the research-consented people, disclosure-controlled, logged."""
    check_sponsor(caller, sponsor)
    with database.unit_of_work() as uow:
        facts = research_facts(uow.session)
        rows = research_figures(facts, table, group_by, policy, rules)
        entry = _logged(uow, caller, f"figures-{table}", len({f.subject for f in facts}),
                        rows)
    return {"extract_id": entry["extract_id"], "taken_at": entry["taken_at"],
            "group_by": group_by, "rows": rows, "digest": entry["digest"],
            "method": f"{FIGURES_METHOD} {policy.method}"}


def extracts_taken(database: Database, caller: Principal, sponsor: str | None
                   ) -> list[dict[str, Any]]:
    """Every research extract and research figures taken, newest first (for the sponsoring
    Trust's DPO)."""
    check_sponsor(caller, sponsor)
    with database.read() as session:
        rows = session.execute(select(research_extracts)
                               .order_by(research_extracts.c.taken_at.desc()))
        return [{**row._mapping, "taken_at": row.taken_at.isoformat()} for row in rows]

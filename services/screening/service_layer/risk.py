"""Risk assessments and the MARAC referral queue.

A MARAC referral is raised on the safeguarding lead's queue at once, whatever the consent
state, with an IDVA referral to go with it.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select, update

from services.screening.adapters.tables import marac_referrals, risk_assessments
from services.screening.domain.access import MaracView
from services.screening.domain.risk import MaracDecision, marac_decision
from services.screening.service_layer.commands import RecordRiskAssessment
from shared.crypto import PersonalDataCipher
from shared.db import UnitOfWork, utcnow
from shared.events.envelope import CloudEvent, EncryptedBlock
from shared.events.screening import MaracReferralRequired, RiskAssessed
from shared.kafka.topics import events_topic

SOURCE = "/peerlink/screening"
SEALED_CONTEXT = "screening.risk-assessment"


class ReferralNotFound(LookupError):
    """No MARAC referral has this id."""


def previous_referral_dates(uow: UnitOfWork, subject_id: str) -> list[date]:
    """When MARAC referrals were raised for the person before."""
    return [row.raised_on for row in uow.session.execute(
        select(marac_referrals.c.raised_on).where(marac_referrals.c.subject_id == subject_id))]


def record_risk_assessment(uow: UnitOfWork, cipher: PersonalDataCipher,
                           command: RecordRiskAssessment, subject_id: str, org: str,
                           raised_by: str, escalation_incidents: int) -> dict[str, Any]:
    """Score the checklist, apply the MARAC criteria, raise a referral when required."""
    judgement = command.professional_judgement
    decision: MaracDecision = marac_decision(
        command.answers, judgement.referral, command.incidents_last_12_months,
        command.assessed_on, previous_referral_dates(uow, subject_id), escalation_incidents)
    assessment_id = f"dash_{uuid.uuid4().hex}"
    personal = {"answers": list(command.answers), "reasons": judgement.reasons}
    sealed = cipher.seal(subject_id, SEALED_CONTEXT, personal)
    uow.session.execute(risk_assessments.insert().values(
        assessment_id=assessment_id, subject_id=subject_id, org=org,
        assessed_on=command.assessed_on, dash_score=decision.score,
        incidents_last_12_months=command.incidents_last_12_months,
        professional_referral=judgement.referral, criteria_met=",".join(decision.criteria_met),
        marac_referral_required=decision.referral_required,
        sealed=sealed.model_dump_json().encode(), recorded_at=utcnow()))
    event_personal = cipher.seal(subject_id, RiskAssessed.event_type,
                                 {"answers": list(command.answers),
                                  "professional_judgement_reasons": judgement.reasons})
    _publish(uow, RiskAssessed(
        org=org, assessment_id=assessment_id, assessed_on=command.assessed_on,
        dash_score=decision.score, incidents_last_12_months=command.incidents_last_12_months,
        criteria_met=decision.criteria_met,
        marac_referral_required=decision.referral_required, personal=event_personal),
        subject_id)
    referral_id = None
    if decision.referral_required:
        referral_id = f"marac_{uuid.uuid4().hex}"
        uow.session.execute(marac_referrals.insert().values(
            referral_id=referral_id, subject_id=subject_id, assessment_id=assessment_id,
            org=org, raised_on=command.assessed_on, raised_by=raised_by,
            criteria_met=",".join(decision.criteria_met), idva_referral_required=True,
            status="open"))
        _publish(uow, MaracReferralRequired(
            org=org, referral_id=referral_id, assessment_id=assessment_id,
            raised_on=command.assessed_on, criteria_met=decision.criteria_met), subject_id)
    return {"id": assessment_id, "subject_id": subject_id, "score": decision.score,
            "criteria_met": list(decision.criteria_met),
            "marac_referral_required": decision.referral_required,
            "marac_referral_id": referral_id,
            "idva_referral_required": decision.referral_required}


def _publish(uow: UnitOfWork, payload: RiskAssessed | MaracReferralRequired,
             subject_id: str) -> None:
    uow.publish(CloudEvent.wrap(payload, source=SOURCE, subject=subject_id),
                events_topic("screening"), aggregate_type="risk")


def referral_view(row: Any) -> dict[str, Any]:
    """A MARAC referral as the queue shows it."""
    return {"id": row.referral_id, "subject_id": row.subject_id,
            "assessment_id": row.assessment_id, "org": row.org,
            "raised_on": row.raised_on.isoformat(), "raised_by": row.raised_by,
            "criteria_met": row.criteria_met.split(","),
            "idva_referral_required": row.idva_referral_required, "status": row.status,
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "flagged_for_dpo": row.flagged_for_dpo_at is not None}


def referrals(uow: UnitOfWork, view: MaracView, org: str, caller_subject: str,
              status: str | None, flagged_for_dpo: bool | None) -> list[dict[str, Any]]:
    """The part of the queue that ``view`` shows a caller of ``org``, oldest first, filtered.

    The safeguarding lead sees every referral, whoever raised it (none is raised out of their
    sight); a clinician only those they raised at their organisation; a DPO only their
    organisation's referrals flagged for them.
    """
    query = select(marac_referrals).order_by(marac_referrals.c.raised_on,
                                             marac_referrals.c.referral_id)
    if view is MaracView.RAISED_BY_CALLER:
        query = query.where(marac_referrals.c.org == org,
                            marac_referrals.c.raised_by == caller_subject)
    elif view is MaracView.FLAGGED_FOR_DPO:
        query = query.where(marac_referrals.c.org == org,
                            marac_referrals.c.flagged_for_dpo_at.is_not(None))
    if status is not None:
        query = query.where(marac_referrals.c.status == status)
    if flagged_for_dpo is not None:
        flagged = marac_referrals.c.flagged_for_dpo_at
        query = query.where(flagged.is_not(None) if flagged_for_dpo else flagged.is_(None))
    return [referral_view(row) for row in uow.session.execute(query)]


def mark_sent(uow: UnitOfWork, referral_id: str) -> dict[str, Any]:
    """Record that the referral (and its IDVA referral) went to the MARAC; idempotent."""
    row = uow.session.execute(select(marac_referrals).where(
        marac_referrals.c.referral_id == referral_id)).first()
    if row is None:
        raise ReferralNotFound()
    if row.status != "sent":
        uow.session.execute(update(marac_referrals).where(
            marac_referrals.c.referral_id == referral_id).values(status="sent",
                                                                 sent_at=utcnow()))
    return referral_view(uow.session.execute(select(marac_referrals).where(
        marac_referrals.c.referral_id == referral_id)).one())


def assessments_of(uow: UnitOfWork, subject_id: str, cipher: PersonalDataCipher,
                   orgs: frozenset[str]) -> list[dict[str, Any]]:
    """The risk assessments of one person held by ``orgs``, newest first, answers decrypted."""
    rows = uow.session.execute(select(risk_assessments).where(
        risk_assessments.c.subject_id == subject_id,
        risk_assessments.c.org.in_(sorted(orgs))).order_by(
        risk_assessments.c.assessed_on.desc()))
    views = []
    for row in rows:
        answers: Any = None
        reasons: Any = None
        if row.sealed is not None:
            opened = cipher.open(subject_id, SEALED_CONTEXT,
                                 EncryptedBlock.model_validate_json(row.sealed))
            if isinstance(opened, dict):
                answers, reasons = opened["answers"], opened["reasons"]
            else:
                answers = reasons = opened.marker
        views.append({
            "id": row.assessment_id, "org": row.org, "assessed_on": row.assessed_on.isoformat(),
            "score": row.dash_score, "incidents_last_12_months": row.incidents_last_12_months,
            "criteria_met": [c for c in row.criteria_met.split(",") if c],
            "marac_referral_required": row.marac_referral_required, "answers": answers,
            "professional_judgement": {"referral": row.professional_referral,
                                       "reasons": reasons}})
    return views

"""Events the screening service publishes on ``screening.events`` (version 1).

Routine enquiry (HARK plus lifetime abuse) and the SafeLives DASH checklist with its MARAC
referral criteria. The reporting attributes travel in clear; notes and answers do not.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Self

from pydantic import Field, model_validator

from shared.events.envelope import EncryptedBlock, EventPayload
from shared.events.vocabulary import (
    AbuserRelationship,
    AgeBand,
    Comfort,
    Gender,
    Label,
    MaracCriteria,
    MaracReferralSource,
    NotAskedReason,
    OrgId,
    RecordId,
    TrainingLevel,
    YesNoUnsure,
)

HARK_QUESTIONS = 4
DASH_QUESTIONS = 24
VISIBLE_HIGH_RISK = 14
"""DASH "yes" answers from which a MARAC referral is required (visible high risk)."""


class EnquiryDue(EventPayload):
    """A person was assessed and should be asked about abuse: the denominator of coverage."""

    event_type: ClassVar[str] = "enquiry-due"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "screening"

    org: OrgId = Field(description="organisation whose team should ask")
    team: Label = Field(description="team that should ask")
    due_on: date = Field(description="date the enquiry fell due")


class Enquiry(EventPayload):
    """What every routine enquiry records, whatever its outcome."""

    screening_id: RecordId = Field(description="the screening record")
    org: OrgId = Field(description="organisation that made the enquiry")
    team: Label = Field(description="team that made the enquiry")
    borough: Label = Field(description="the person's borough")
    gender: Gender = Field(description="the person's gender")
    age_band: AgeBand = Field(description="the person's age band")
    asked_on: date = Field(description="date of the enquiry")
    asked_by_role: Label = Field(description="professional role of who asked")
    training_level: TrainingLevel = Field(description="DVA training level of who asked")
    private: bool = Field(description="whether it happened in a private discussion (NICE QS116)")
    personal: EncryptedBlock | None = Field(
        default=None, description='sealed plaintext keys: "notes" (free text)')


class ScreeningCompleted(Enquiry):
    """The person was asked (outcome ``asked``): counts as screened for prevalence."""

    event_type: ClassVar[str] = "screening-completed"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "screening"

    hark_score: int = Field(ge=0, le=HARK_QUESTIONS, description="HARK yes answers")
    current_abuse: bool = Field(description="HARK positive (score >= 1)")
    past_abuse: YesNoUnsure = Field(description="lifetime abuse")
    disclosed: bool = Field(description="current abuse or past abuse")
    abuser_relationship: AbuserRelationship | None = Field(
        default=None, description="relationship to the abuser, when disclosed")
    affected_mental_health: YesNoUnsure | None = Field(
        default=None, description="whether the person believes it affected their mental health")

    @model_validator(mode="after")
    def _derived(self) -> Self:
        if self.current_abuse != (self.hark_score >= 1):
            raise ValueError("current_abuse must be true exactly when hark_score >= 1")
        if self.disclosed != (self.current_abuse or self.past_abuse == "yes"):
            raise ValueError("disclosed must be true exactly when current or past abuse is")
        return self


class ScreeningDeclined(Enquiry):
    """The person was asked and declined to answer."""

    event_type: ClassVar[str] = "screening-declined"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "screening"


class ScreeningNotSafe(Enquiry):
    """The person was not asked because it was not safe (for example, accompanied)."""

    event_type: ClassVar[str] = "screening-not-safe"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "screening"


class EnquiryNotAsked(Enquiry):
    """An enquiry that was due was not made, for a coded reason: the study's measure of what
    stands in the way of asking."""

    event_type: ClassVar[str] = "enquiry-not-asked"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "screening"

    reason: NotAskedReason = Field(description="why the enquiry was not made")


class EnquiryAcceptability(EventPayload):
    """The person's answer to "Was it all right to be asked?" after an enquiry in which they
    were asked (answered or declined): the study's measure of the acceptability of routine
    enquiry."""

    event_type: ClassVar[str] = "enquiry-acceptability-recorded"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "screening"

    screening_id: RecordId = Field(description="the enquiry it is about")
    org: OrgId = Field(description="organisation that made the enquiry")
    team: Label = Field(description="team that made the enquiry")
    borough: Label = Field(description="the person's borough")
    gender: Gender = Field(description="the person's gender")
    age_band: AgeBand = Field(description="the person's age band")
    asked_on: date = Field(description="date of the enquiry")
    acceptable: YesNoUnsure = Field(description='"Was it all right to be asked?"')
    comfort: Comfort | None = Field(
        default=None, description="how comfortable being asked, 1 (not at all) to 5, if said")


class TeamTrainingRecorded(EventPayload):
    """How many of a team's staff are trained in routine enquiry, as of a date; about staff,
    not about any person in the programme (no subject)."""

    event_type: ClassVar[str] = "team-training-recorded"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "screening"
    about_a_person: ClassVar[bool] = False

    org: OrgId = Field(description="organisation of the team")
    team: Label = Field(description="the team")
    as_of: date = Field(description="the date the figures are as of")
    staff: int = Field(ge=1, le=10_000, description="staff in the team who may make an enquiry")
    trained: int = Field(ge=0, le=10_000,
                         description="of them, trained in routine enquiry (level 1 or above)")

    @model_validator(mode="after")
    def _within(self) -> Self:
        if self.trained > self.staff:
            raise ValueError("trained may not exceed staff")
        return self


class RiskRecord(EventPayload):
    """Who a risk record belongs to, for reporting: the organisation, and the rest if known."""

    org: OrgId = Field(description="organisation that assessed the risk")
    team: Label | None = Field(default=None, description="team that assessed, if known")
    borough: Label | None = Field(default=None, description="the person's borough, if known")
    gender: Gender | None = Field(default=None, description="the person's gender, if known")
    age_band: AgeBand | None = Field(default=None, description="the person's age band, if known")


class RiskAssessed(RiskRecord):
    """A SafeLives DASH checklist was completed and the MARAC criteria applied."""

    event_type: ClassVar[str] = "risk-assessed"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "screening"

    assessment_id: RecordId = Field(description="the risk assessment")
    assessed_on: date = Field(description="date of the assessment")
    dash_score: int = Field(ge=0, le=DASH_QUESTIONS, description="DASH yes answers")
    incidents_last_12_months: int = Field(ge=0, description="incidents in the last 12 months")
    criteria_met: MaracCriteria = Field(description="MARAC referral criteria met")
    marac_referral_required: bool = Field(description="whether any criterion was met")
    personal: EncryptedBlock | None = Field(
        default=None,
        description='sealed plaintext keys: "answers" (24 of yes|no|dont-know), '
                    '"professional_judgement_reasons" (free text)')

    @model_validator(mode="after")
    def _criteria(self) -> Self:
        if self.marac_referral_required != bool(self.criteria_met):
            raise ValueError("marac_referral_required must be true exactly when a criterion is met")
        if ("visible-high-risk" in self.criteria_met) != (self.dash_score >= VISIBLE_HIGH_RISK):
            raise ValueError(f"visible-high-risk is met exactly when dash_score >= "
                             f"{VISIBLE_HIGH_RISK}")
        return self


class MaracReferralRequired(RiskRecord):
    """A MARAC referral, with its IDVA referral, must be made; kept whatever the consent."""

    event_type: ClassVar[str] = "marac-referral-required"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "screening"

    referral_id: RecordId = Field(description="the MARAC referral on the safeguarding queue")
    assessment_id: RecordId | None = Field(
        default=None, description="the risk assessment that required it (none for a referral "
                                  "made outside Peerlink)")
    raised_on: date = Field(description="date the referral was raised")
    criteria_met: MaracCriteria = Field(min_length=1, description="MARAC referral criteria met")
    source: MaracReferralSource = Field(default="dash",
                                        description="dash, judgement or external")
    safeguarding_pseudonym: str | None = Field(
        default=None, min_length=16, max_length=100,
        description="keyed pseudonym of the person's NHS number (HMAC under the safeguarding "
                    "key): links referrals across re-registration, so a repeat is recognised")

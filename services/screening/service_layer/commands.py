"""Commands the screening service accepts, from its API and from partner topics alike."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.screening.domain.enquiry import check_hark_presence
from services.screening.domain.risk import DASH_QUESTIONS, DashAnswer
from shared.db import utcnow
from shared.events.consent import SafeContact
from shared.events.vocabulary import (
    AbuserRelationship,
    AgeBand,
    Comfort,
    Gender,
    Label,
    NotAskedReason,
    OrgId,
    ScreeningOutcome,
    TrainingLevel,
    YesNoUnsure,
)
from shared.identity import SUBJECT_PATTERN, PersonRef


def _not_in_future(day: date) -> date:
    if day > utcnow().date():
        raise ValueError("the date may not be in the future")
    return day


class HarkIn(BaseModel):
    """The four HARK questions about a partner or ex-partner within the last year."""

    model_config = ConfigDict(extra="forbid")

    humiliated: bool = Field(description="humiliated or emotionally abused")
    afraid: bool = Field(description="afraid of a partner or ex-partner")
    raped: bool = Field(description="raped or forced into any kind of sexual activity")
    kicked: bool = Field(description="kicked, hit, slapped or otherwise physically hurt")


class AcceptabilityIn(BaseModel):
    """The person's view of being asked, after an enquiry in which they were asked."""

    model_config = ConfigDict(extra="forbid")

    acceptable: YesNoUnsure = Field(description='"Was it all right to be asked?"')
    comfort: Comfort | None = Field(
        default=None, description="how comfortable being asked, 1 (not at all) to 5")


class RecordScreening(PersonRef):
    """Record a routine enquiry (``POST /v1/screenings``)."""

    org: OrgId = Field(description="organisation whose team asked")
    team: Label = Field(description="team that asked")
    borough: Label = Field(description="the person's borough")
    gender: Gender = Field(description="the person's gender")
    age_band: AgeBand = Field(description="the person's age band")
    asked_on: date = Field(description="date of the enquiry")
    asked_by_role: Label = Field(description="professional role of who asked")
    training_level: TrainingLevel = Field(description="DVA training level of who asked (1, 2, 3)")
    private: bool = Field(description="whether it was a private discussion (NICE QS116)")
    outcome: ScreeningOutcome = Field(
        description="asked, declined, not-safe-to-ask, or not-asked (with not_asked_reason)")
    not_asked_reason: NotAskedReason | None = Field(
        default=None, description="why the enquiry was not made: required when not-asked")
    acceptability: AcceptabilityIn | None = Field(
        default=None, description="the person's view of being asked, when asked or declined")
    hark: HarkIn | None = Field(default=None, description="required when asked, else absent")
    past_abuse: YesNoUnsure | None = Field(default=None, description="lifetime abuse, when asked")
    abuser_relationship: AbuserRelationship | None = Field(
        default=None, description="relationship to the abuser, when abuse was disclosed")
    affected_mental_health: YesNoUnsure | None = Field(
        default=None, description="whether the person believes it affected their mental health")
    notes: str | None = Field(
        default=None, max_length=4000,
        description="free text; personal data, encrypted at rest and in events")

    @model_validator(mode="after")
    def _outcome_rules(self) -> RecordScreening:
        problem = check_hark_presence(self.outcome, self.hark is not None)
        if problem:
            raise ValueError(problem)
        if self.outcome == "asked" and self.past_abuse is None:
            raise ValueError("past_abuse is required when the outcome is asked")
        if self.outcome != "asked" and (self.past_abuse or self.abuser_relationship
                                        or self.affected_mental_health):
            raise ValueError("past_abuse, abuser_relationship and affected_mental_health "
                             "are only recorded when the outcome is asked")
        if (self.outcome == "not-asked") != (self.not_asked_reason is not None):
            raise ValueError("not_asked_reason is required when the outcome is not-asked, "
                             "and only then")
        if self.acceptability is not None and self.outcome not in ("asked", "declined"):
            raise ValueError("acceptability is only recorded when the person was asked "
                             "(outcome asked or declined)")
        return self


class RecordEnquiryDue(PersonRef):
    """Someone was assessed and should be asked (``POST /v1/enquiries/due``)."""

    org: OrgId = Field(description="organisation whose team should ask")
    team: Label = Field(description="team that should ask")
    due_on: date = Field(description="date the enquiry fell due")


class RecordTeamTraining(BaseModel):
    """How many of a team's staff are trained in routine enquiry (``POST /v1/team-training``):
    about staff, not about anyone in the programme."""

    model_config = ConfigDict(extra="forbid")

    org: OrgId = Field(description="organisation of the team")
    team: Label = Field(description="the team")
    as_of: date = Field(description="the date the figures are as of (not in the future)")
    staff: int = Field(ge=1, le=10_000, description="staff in the team who may make an enquiry")
    trained: int = Field(ge=0, le=10_000,
                         description="of them, trained in routine enquiry (level 1 or above)")

    _as_of = field_validator("as_of")(_not_in_future)

    @model_validator(mode="after")
    def _within(self) -> RecordTeamTraining:
        if self.trained > self.staff:
            raise ValueError("trained may not exceed staff")
        return self


class ProfessionalJudgement(BaseModel):
    """A practitioner's own view; it can add a MARAC referral, never remove one."""

    model_config = ConfigDict(extra="forbid")

    referral: bool = Field(description="whether the practitioner refers on judgement")
    reasons: str | None = Field(default=None, max_length=4000,
                                description="required when referral is true; personal data")

    @model_validator(mode="after")
    def _reasons_recorded(self) -> ProfessionalJudgement:
        if self.referral and not (self.reasons and self.reasons.strip()):
            raise ValueError("reasons are required when referring on professional judgement")
        return self


class RecordRiskAssessment(PersonRef):
    """A SafeLives DASH risk checklist (``POST /v1/risk-assessments``)."""

    answers: list[DashAnswer] = Field(
        min_length=DASH_QUESTIONS, max_length=DASH_QUESTIONS,
        description="the 24 DASH answers in checklist order: yes, no or dont-know")
    professional_judgement: ProfessionalJudgement = Field(
        default_factory=lambda: ProfessionalJudgement(referral=False),
        description="a referral on professional judgement, with reasons")
    incidents_last_12_months: int = Field(ge=0, le=1000,
                                          description="incidents in the last 12 months")
    assessed_on: date = Field(description="date of the assessment")
    safe_contact: SafeContact | None = Field(
        default=None, description="how the person may be contacted safely, for the MARAC and "
                                  "IDVA referral; personal data, sealed")


class RecordJudgementReferral(PersonRef):
    """A MARAC referral on professional judgement alone, when the DASH could not be completed
    (``POST /v1/marac-referrals``)."""

    reasons: str = Field(min_length=1, max_length=4000,
                         description="why the practitioner refers; personal data, sealed")
    incidents_last_12_months: int = Field(ge=0, le=1000,
                                          description="incidents in the last 12 months")
    partial_answers: list[DashAnswer] = Field(
        default_factory=list, max_length=DASH_QUESTIONS - 1,
        description="the DASH answers given, in checklist order (0 to 23)")
    not_completed_reason: str = Field(
        min_length=1, max_length=1000,
        description="why the checklist was not completed; personal data, sealed")
    referred_on: date = Field(description="date of the referral (not in the future)")
    safe_contact: SafeContact | None = Field(
        default=None, description="how the person may be contacted safely; personal data")

    _referred_on = field_validator("referred_on")(_not_in_future)

    @field_validator("reasons", "not_completed_reason")
    @classmethod
    def _written(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class RecordExternalReferral(BaseModel):
    """A MARAC referral made outside Peerlink, recorded so a repeat is recognised
    (``POST /v1/marac-referrals/external``)."""

    model_config = ConfigDict(extra="forbid")

    subject_id: str = Field(pattern=SUBJECT_PATTERN, description="the person's reference")
    referred_on: date = Field(description="date the referral was made (not in the future)")
    referring_agency: Label = Field(description="who referred, for example police")
    safe_contact: SafeContact | None = Field(
        default=None, description="how the person may be contacted safely; personal data")

    _referred_on = field_validator("referred_on")(_not_in_future)

"""Commands the mentoring service accepts, from its API and from partner topics alike."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.mentoring.domain.outcomes import ITEMS
from shared.events.consent import SafeContact
from shared.events.vocabulary import (
    AdverseEventKind,
    AgeBand,
    Attendance,
    Comfort,
    Component,
    ContactMode,
    ContactModes,
    Gender,
    Instrument,
    Label,
    LanguageTag,
    LanguageTags,
    MentorGenderPreference,
    MentorStatus,
    OfferDeclineReason,
    OfferOutcome,
    OrgId,
    OutcomeTimepoint,
    RecordId,
    Relatedness,
    YesNoUnsure,
)
from shared.identity import PersonRef

RAISED_ON_WINDOW: Final = timedelta(days=30)
"""How far back a concern's ``raised_on`` may be: today or up to 30 days before."""


def _not_in_future(value: date, info: ValidationInfo) -> date:
    if value > date.today():
        raise ValueError(f"{info.field_name} must not be in the future")
    return value


NotInFuture = Annotated[date, AfterValidator(_not_in_future)]
"""A date today or before."""


def _not_blank(value: str, field: str) -> str:
    if not value.strip():
        raise ValueError(f"{field} must not be blank")
    return value


class Strict(BaseModel):
    """No unknown fields."""

    model_config = ConfigDict(extra="forbid")


class RegisterMentor(Strict):
    """A trained mentor with lived experience (``POST /v1/mentors``)."""

    org: OrgId = Field(description="the DVA organisation the mentor belongs to")
    display_name: str = Field(min_length=1, max_length=100,
                              description="the name the mentor uses; never leaves this service")
    gender: Gender = Field(description="the mentor's gender")
    languages: LanguageTags = Field(description="languages the mentor mentors in (BCP 47)")
    borough: Label = Field(description="the borough the mentor meets people in")
    modes: ContactModes = Field(description="in-person, phone and/or video")
    capacity: int = Field(ge=0, le=50, description="how many mentees at once")
    training_completed_on: date | None = Field(default=None, description="training completed")
    check_level: Label | None = Field(default=None, description="criminal record check level")
    check_completed_on: date | None = Field(default=None, description="date of the check")
    supervision_held_on: date | None = Field(default=None,
                                             description="the latest supervision, if any")
    status: MentorStatus = Field(default="in-training", description="status at registration")


def _distinct(values: list[str], field: str) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError(f"{field} must not repeat a code")
    return values


class RecordSupervision(Strict):
    """A supervision session held (``POST /v1/mentors/{id}/supervision``)."""

    held_on: date = Field(description="date of the supervision")
    covered: list[Component] = Field(
        default_factory=list, max_length=30,
        description="what it covered: codes from the configured supervision topics")

    @field_validator("covered")
    @classmethod
    def _covered_once(cls, value: list[str]) -> list[str]:
        return _distinct(value, "covered")


class ChangeMentorStatus(Strict):
    """``POST /v1/mentors/{id}/status``."""

    status: MentorStatus = Field(description="in-training, active, paused or left")


class Preferences(Strict):
    """The mentee's preferences: hard constraints for matching."""

    mentor_gender: MentorGenderPreference = Field(default="any", description="mentor's gender")
    language: LanguageTag | None = Field(default=None, description="language wanted")
    mode: ContactMode | None = Field(default=None, description="in-person, phone or video")
    borough: Label | None = Field(default=None, description="borough for in-person meetings")

    @model_validator(mode="after")
    def _borough_for_in_person(self) -> Preferences:
        if self.mode == "in-person" and self.borough is None:
            raise ValueError("borough is required when the mode is in-person")
        return self


class ReferMentee(PersonRef):
    """A referral for peer mentoring (``POST /v1/referrals``); needs peer-mentoring consent."""

    referred_by_org: OrgId = Field(description="the referring organisation")
    to_org: OrgId = Field(description="the DVA partner organisation the referral is sent to: "
                                      "its coordinators take it from their intake and match "
                                      "it with their own mentors")
    preferences: Preferences = Field(default_factory=Preferences,
                                     description="the mentee's preferences")
    safe_contact: SafeContact = Field(description="safe ways and times to contact")


class LogSession(Strict):
    """A mentoring session (``POST /v1/sessions``)."""

    match_id: RecordId = Field(description="the match")
    held_on: date = Field(description="date of the session")
    duration_minutes: int = Field(ge=0, le=1440, description="length in minutes")
    mode: ContactMode = Field(description="in-person, phone or video")
    attendance: Attendance = Field(description="attended, did-not-attend, cancelled-by-...")
    safeguarding_concern: bool = Field(default=False, description="a concern was raised")
    concern_details: str | None = Field(default=None, max_length=4000, validate_default=True,
                                        description="what the concern is; personal data")
    components: list[Component] = Field(
        default_factory=list, max_length=30,
        description="which of the intervention's configured components an attended session "
                    "covered")

    @field_validator("components")
    @classmethod
    def _components_once(cls, value: list[str]) -> list[str]:
        return _distinct(value, "components")

    @field_validator("concern_details")
    @classmethod
    def _details_not_blank(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("safeguarding_concern") and not (value or "").strip():
            raise ValueError("concern_details are required (not blank) when a safeguarding "
                             "concern is raised")
        return value

    @model_validator(mode="after")
    def _details_with_concern(self) -> LogSession:
        if not self.safeguarding_concern and self.concern_details:
            raise ValueError("concern_details are only recorded with a safeguarding concern")
        if self.components and self.attendance != "attended":
            raise ValueError("components are only recorded for a session that was attended")
        return self


class RecordOutcome(Strict):
    """An outcome measure (``POST /v1/outcomes``); complete responses only."""

    match_id: RecordId = Field(description="the match")
    timepoint: OutcomeTimepoint = Field(
        description="intake, exit, 3-months, 6-months or 12-months (after the exit; the "
                    "match must have ended), or follow-up (untimed)")
    instrument: Instrument = Field(description="WEMWBS (14 items) or SWEMWBS (7 items)")
    items: list[StrictInt] = Field(description="item scores, 1 to 5, in questionnaire order")
    recorded_on: date | None = Field(default=None, description="date; today when absent")

    @model_validator(mode="after")
    def _complete(self) -> RecordOutcome:
        expected = ITEMS[self.instrument]
        if len(self.items) != expected:
            raise ValueError(f"items: {self.instrument} has exactly {expected} items")
        if any(not 1 <= i <= 5 for i in self.items):
            raise ValueError("items: every item must be from 1 to 5")
        return self


class MenteeFeedback(Strict):
    """The mentee's view of the mentoring, at its ending."""

    helped: Comfort = Field(description="how much it helped, 1 (not at all) to 5 (a lot)")
    made_worse: YesNoUnsure = Field(description="whether anything made things worse")
    comment: str | None = Field(default=None, max_length=2000,
                                description="in the mentee's words; personal data, sealed")


class EndMatch(Strict):
    """``POST /v1/matches/{id}/end``."""

    planned: bool = Field(description="whether the ending was planned")
    reason: str | None = Field(default=None, max_length=2000,
                               description="why it ended; personal data, encrypted")
    ended_on: date | None = Field(default=None, description="date; today when absent")
    feedback: MenteeFeedback | None = Field(
        default=None, description="the mentee's feedback, if they gave it")


class RecordAdverseEvent(Strict):
    """Something harmful happened to a mentee (``POST /v1/adverse-events``); a serious one
    also goes to the Trust's safeguarding lead."""

    match_id: RecordId = Field(description="the match it happened in")
    occurred_on: NotInFuture = Field(description="date it happened (not in the future)")
    kind: AdverseEventKind = Field(description="what happened")
    serious: bool = Field(description="whether it is serious")
    relatedness: Relatedness = Field(description="whether it is related to the mentoring")
    details: str = Field(min_length=1, max_length=4000,
                         description="what happened; personal data, sealed")

    @field_validator("details")
    @classmethod
    def _details_not_blank(cls, value: str) -> str:
        return _not_blank(value, "details")


class RecordOffer(Strict):
    """Peer mentoring was offered (``POST /v1/offers``): no personal data, since someone
    who declines has consented to nothing."""

    org: OrgId = Field(description="organisation that made the offer (the caller's)")
    team: Label = Field(description="team that made the offer")
    gender: Gender = Field(description="the person's gender")
    age_band: AgeBand = Field(description="the person's age band")
    offered_on: NotInFuture = Field(description="date of the offer (not in the future)")
    outcome: OfferOutcome = Field(description="accepted, declined or undecided")
    decline_reason: OfferDeclineReason | None = Field(
        default=None, description="why it was declined: required when declined, else absent")

    @model_validator(mode="after")
    def _reason(self) -> RecordOffer:
        if (self.outcome == "declined") != (self.decline_reason is not None):
            raise ValueError("decline_reason is required when the outcome is declined, and "
                             "only then")
        return self


class RaiseConcern(Strict):
    """A safeguarding concern from any contact (``POST /v1/safeguarding-concerns``)."""

    subject_id: RecordId = Field(description="the person's subject reference")
    raised_on: date = Field(description="date the concern was raised: today or in the 30 "
                                        "days before")
    details: str = Field(min_length=1, max_length=4000,
                         description="what the concern is; personal data, sealed")
    referral_id: RecordId | None = Field(default=None,
                                         description="the mentoring referral, if any")
    match_id: RecordId | None = Field(default=None, description="the match, if any")
    safe_contact: SafeContact | None = Field(
        default=None, description="safe ways to contact; the latest known when absent")

    @field_validator("details")
    @classmethod
    def _details_not_blank(cls, value: str) -> str:
        return _not_blank(value, "details")

    @field_validator("raised_on")
    @classmethod
    def _recent(cls, value: date) -> date:
        # bounded, so that raising concerns cannot be used to probe when something happened
        today = date.today()
        if value > today:
            raise ValueError("raised_on must not be in the future")
        if value < today - RAISED_ON_WINDOW:
            raise ValueError(f"raised_on must be within the last {RAISED_ON_WINDOW.days} days")
        return value


class ConcernNote(Strict):
    """A short note on a step of the safeguarding queue (action and close)."""

    note: str = Field(min_length=1, max_length=1000,
                      description="what was done or why it closed; sealed")

    @field_validator("note")
    @classmethod
    def _note_not_blank(cls, value: str) -> str:
        return _not_blank(value, "note")

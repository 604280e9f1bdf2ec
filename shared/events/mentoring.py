"""Events the mentoring service publishes on ``mentoring.events`` (version 1).

The envelope's ``subject`` is the mentee's reference, except for mentor events, where it is
the mentor's ``mentor_id``. Safe-contact details, concern details and ending reasons are
sealed in ``personal``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events.envelope import EncryptedBlock, EventPayload
from shared.events.vocabulary import (
    AdverseEventKind,
    AgeBand,
    Attendance,
    Comfort,
    Component,
    ContactMode,
    ContactModes,
    FollowUpTimepoint,
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
    RecordId,
    Relatedness,
    Timepoint,
    YesNoUnsure,
)

SCALE_ITEMS: dict[Instrument, int] = {"WEMWBS": 14, "SWEMWBS": 7}
"""Items per wellbeing instrument; each item is scored 1 to 5 and only complete sets count."""


class MentorRegistered(EventPayload):
    """A mentor joined a DVA organisation's programme. Subject: the mentor_id."""

    event_type: ClassVar[str] = "mentor-registered"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    mentor_id: RecordId = Field(description="the mentor")
    org: OrgId = Field(description="DVA organisation the mentor belongs to")
    gender: Gender = Field(description="the mentor's gender")
    languages: LanguageTags = Field(description="languages the mentor mentors in")
    borough: Label = Field(description="borough the mentor meets people in")
    modes: ContactModes = Field(description="ways the mentor meets mentees")
    capacity: int = Field(ge=0, description="how many mentees the mentor can take at once")
    training_completed_on: date | None = Field(
        default=None, description="date mentor training was completed")
    check_level: Label | None = Field(default=None, description="criminal record check level")
    check_completed_on: date | None = Field(
        default=None, description="date of the criminal record check")
    status: MentorStatus = Field(description="status at registration")


class MentorStatusChanged(EventPayload):
    """A mentor's status changed. Subject: the mentor_id."""

    event_type: ClassVar[str] = "mentor-status-changed"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    mentor_id: RecordId = Field(description="the mentor")
    org: OrgId = Field(description="DVA organisation the mentor belongs to")
    previous_status: MentorStatus = Field(description="status before the change")
    status: MentorStatus = Field(description="status after the change")


class MentoringPreferences(BaseModel):
    """What the mentee asked for in a mentor; absent values mean no preference."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mentor_gender: MentorGenderPreference = Field(
        default="any", description="gender of mentor wanted")
    language: LanguageTag | None = Field(default=None, description="language wanted")
    mode: ContactMode | None = Field(default=None, description="way of meeting wanted")
    borough: Label | None = Field(default=None, description="borough for in-person meetings")


class MenteeReferred(EventPayload):
    """A person was referred for peer mentoring, with consent."""

    event_type: ClassVar[str] = "mentee-referred"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    referral_id: RecordId = Field(description="the referral")
    referred_by_org: OrgId = Field(description="organisation that referred (referral source)")
    to_org: OrgId | None = Field(
        default=None, description="DVA partner organisation the referral was sent to (its "
                                  "intake); absent from referrals published before it was "
                                  "recorded")
    referred_on: date = Field(description="date of the referral")
    preferences: MentoringPreferences = Field(description="the mentee's preferences")
    borough: Label | None = Field(default=None, description="the mentee's borough, if known")
    gender: Gender | None = Field(default=None, description="the mentee's gender, if known")
    age_band: AgeBand | None = Field(default=None, description="the mentee's age band, if known")
    personal: EncryptedBlock | None = Field(
        default=None,
        description='sealed plaintext keys: "safe_contact" {"phone", "times", '
                    '"may_leave_message"}')


class MatchMade(EventPayload):
    """A referral was matched with a mentor."""

    event_type: ClassVar[str] = "match-made"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    match_id: RecordId = Field(description="the match")
    referral_id: RecordId = Field(description="the referral matched")
    mentor_id: RecordId = Field(description="the mentor matched")
    org: OrgId = Field(description="the mentor's organisation")
    matched_on: date = Field(description="date of the match")
    days_from_referral: int = Field(ge=0, description="days from referral to match")
    waitlisted: bool = Field(description="whether the referral waited on the waitlist")


class SessionLogged(EventPayload):
    """A mentoring session was held, missed or cancelled."""

    event_type: ClassVar[str] = "session-logged"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    session_id: RecordId = Field(description="the session")
    match_id: RecordId = Field(description="the match the session belongs to")
    org: OrgId = Field(description="the mentor's organisation")
    held_on: date = Field(description="date of the session")
    duration_minutes: int = Field(ge=0, le=1440, description="length of the session")
    mode: ContactMode = Field(description="how the session was held")
    attendance: Attendance = Field(description="whether it took place, and who cancelled")
    safeguarding_concern: bool = Field(description="whether a safeguarding concern was raised")


class SessionComponentsRecorded(EventPayload):
    """Which of the intervention's components an attended session covered: what the
    mentoring consisted of, and its fidelity."""

    event_type: ClassVar[str] = "session-components-recorded"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    session_id: RecordId = Field(description="the session")
    match_id: RecordId = Field(description="the match the session belongs to")
    org: OrgId = Field(description="the mentor's organisation")
    held_on: date = Field(description="date of the session")
    components: tuple[Component, ...] = Field(
        min_length=1, max_length=30, description="the configured components it covered")


class SupervisionRecorded(EventPayload):
    """A mentor's supervision was held, and what it covered. Subject: the mentor_id."""

    event_type: ClassVar[str] = "supervision-recorded"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    mentor_id: RecordId = Field(description="the mentor")
    org: OrgId = Field(description="the mentor's organisation")
    held_on: date = Field(description="date of the supervision")
    covered: tuple[Component, ...] = Field(
        max_length=30, description="the configured supervision topics it covered")


class MenteeFeedbackGiven(EventPayload):
    """The mentee's view of the mentoring, given at its ending."""

    event_type: ClassVar[str] = "mentee-feedback-given"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    match_id: RecordId = Field(description="the match that ended")
    org: OrgId = Field(description="the mentor's organisation")
    given_on: date = Field(description="date of the feedback")
    helped: Comfort = Field(description="how much it helped, 1 (not at all) to 5 (a lot)")
    made_worse: YesNoUnsure = Field(description="whether anything made things worse")
    personal: EncryptedBlock | None = Field(
        default=None, description='sealed plaintext keys: "comment" (free text)')


class AdverseEventRecorded(EventPayload):
    """Something harmful happened to a mentee during the mentoring; a serious one also
    raises a safeguarding concern."""

    event_type: ClassVar[str] = "adverse-event-recorded"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    adverse_event_id: RecordId = Field(description="the adverse event")
    match_id: RecordId = Field(description="the match it happened in")
    org: OrgId = Field(description="the mentor's organisation")
    occurred_on: date = Field(description="date it happened")
    kind: AdverseEventKind = Field(description="what happened")
    serious: bool = Field(description="whether it is serious")
    relatedness: Relatedness = Field(description="whether it is related to the mentoring")
    personal: EncryptedBlock | None = Field(
        default=None, description='sealed plaintext keys: "details" (free text)')


class MentoringOffered(EventPayload):
    """Peer mentoring was offered to someone, and what they said: without personal data (no
    subject), since someone who declines has not consented to anything."""

    event_type: ClassVar[str] = "mentoring-offered"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"
    about_a_person: ClassVar[bool] = False

    offer_id: RecordId = Field(description="the offer")
    org: OrgId = Field(description="organisation that made the offer")
    team: Label = Field(description="team that made the offer")
    gender: Gender = Field(description="the person's gender")
    age_band: AgeBand = Field(description="the person's age band")
    offered_on: date = Field(description="date of the offer")
    outcome: OfferOutcome = Field(description="accepted, declined or undecided")
    decline_reason: OfferDeclineReason | None = Field(
        default=None, description="why it was declined, when it was")

    @model_validator(mode="after")
    def _reason(self) -> Self:
        if (self.outcome == "declined") != (self.decline_reason is not None):
            raise ValueError("decline_reason is given exactly when the outcome is declined")
        return self


class SafeguardingConcernRaised(EventPayload):
    """A safeguarding concern went to the Trust's safeguarding lead; kept on erasure."""

    event_type: ClassVar[str] = "safeguarding-concern-raised"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    concern_id: RecordId = Field(description="the concern on the safeguarding queue")
    match_id: RecordId | None = Field(
        default=None, description="the match it arose in, if it arose in one (a concern may "
                                  "come from any contact: waitlisted, ended, at withdrawal)")
    session_id: RecordId | None = Field(default=None, description="the session, if any")
    referral_id: RecordId | None = Field(default=None,
                                         description="the mentoring referral, if any")
    org: OrgId = Field(description="organisation that raised the concern")
    raised_on: date = Field(description="date the concern was raised")
    repeat: bool = Field(default=False, description="the person had a MARAC referral in the "
                                                    "12 months before (SafeLives repeat)")
    personal: EncryptedBlock | None = Field(
        default=None, description='sealed plaintext keys: "concern_details" (free text)')


class _Scored(EventPayload):
    """A complete WEMWBS or SWEMWBS response, scored."""

    outcome_id: RecordId = Field(description="the outcome measure")
    match_id: RecordId = Field(description="the match it was recorded in")
    org: OrgId = Field(description="the mentor's organisation")
    recorded_on: date = Field(description="date of the response")
    instrument: Instrument = Field(description="the wellbeing scale used")
    items: tuple[Annotated[int, Field(ge=1, le=5)], ...] = Field(
        min_length=7, max_length=14, description="item scores, 1 to 5, in the scale's order")
    raw_score: int = Field(ge=7, le=70, description="sum of the items (WEMWBS total)")
    metric_score: float | None = Field(
        default=None, ge=7, le=35, description="SWEMWBS metric score from the Warwick table")

    @model_validator(mode="after")
    def _scored(self) -> Self:
        if len(self.items) != SCALE_ITEMS[self.instrument]:
            raise ValueError(f"{self.instrument} has {SCALE_ITEMS[self.instrument]} items")
        if self.raw_score != sum(self.items):
            raise ValueError("raw_score must be the sum of the items")
        if (self.metric_score is None) != (self.instrument == "WEMWBS"):
            raise ValueError("metric_score is given for SWEMWBS only")
        return self


class OutcomeRecorded(_Scored):
    """A complete WEMWBS or SWEMWBS response was scored, at intake, at exit or untimed."""

    event_type: ClassVar[str] = "outcome-recorded"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    timepoint: Timepoint = Field(description="point in the mentoring it measures")


class FollowUpRecorded(_Scored):
    """A complete WEMWBS or SWEMWBS response at a timed follow-up, 3, 6 or 12 months after the
    exit (a type of its own: ``outcome-recorded`` v1's consumers know only its timepoints)."""

    event_type: ClassVar[str] = "follow-up-recorded"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    timepoint: FollowUpTimepoint = Field(description="months after the exit")


class MentoringEnded(EventPayload):
    """A match ended, planned or not; the mentor is never told a consent reason."""

    event_type: ClassVar[str] = "mentoring-ended"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "mentoring"

    match_id: RecordId = Field(description="the match that ended")
    org: OrgId = Field(description="the mentor's organisation")
    ended_on: date = Field(description="date the mentoring ended")
    planned: bool = Field(description="planned or unplanned ending")
    personal: EncryptedBlock | None = Field(
        default=None, description='sealed plaintext keys: "reason" (free text)')

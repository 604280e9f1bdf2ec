"""The fixed vocabularies and shared field types of the event contract, in one place.

Services import these for their APIs and domain rules too, so a value that is valid in one
place is valid everywhere.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Annotated, Final, Literal, TypeVar, get_args

from pydantic import AfterValidator, BeforeValidator, Field

Purpose = Literal["peer-mentoring", "partner-sharing", "evaluation", "research"]
"""Every consent purpose Peerlink knows; a deployment offers those it configures
(``PEERLINK_CONSENT_PURPOSES``)."""
ConsentMethod = Literal["verbal", "written", "electronic"]
ServiceName = Literal["consent", "screening", "mentoring", "reporting"]

def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


ScreeningOutcome = Literal["asked", "declined", "not-safe-to-ask", "not-asked"]
NotAskedReason = Literal["no-private-space", "not-alone", "no-time", "staff-not-trained",
                         "too-unwell", "other"]
"""Why an enquiry that was due was not made (other than it not being safe, which is an
outcome of its own)."""
Comfort = Annotated[int, Field(ge=1, le=5), BeforeValidator(_not_a_boolean)]
"""How comfortable the person was being asked, 1 (not at all) to 5 (completely)."""
YesNoUnsure = Literal["yes", "no", "unsure"]
AbuserRelationship = Literal["partner", "ex-partner", "family-member", "other"]
AgeBand = Literal["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
Gender = Literal["female", "male", "non-binary", "other", "not-stated"]
TrainingLevel = Annotated[Literal[1, 2, 3], BeforeValidator(_not_a_boolean)]
"""A DVA training level; strict, so that ``true`` is not read as 1."""
MaracCriterion = Literal[
    "visible-high-risk", "professional-judgement", "potential-escalation", "repeat"]
MaracReferralSource = Literal["dash", "judgement", "external"]
"""How a MARAC referral came to be recorded: from a DASH meeting a criterion, on
professional judgement alone (a DASH could not be completed), or made outside Peerlink (most
come from the police) and recorded so that a repeat is recognised."""
ErasureScope = Literal["subject", "organisation"]
"""What an approved erasure removes: the person everywhere (their data key is shredded; no
other organisation holds them independently), or only the deciding organisation's records."""
RetainedKind = Literal["screenings", "risk-assessments", "mentoring-records"]
"""Record kinds a DPO may keep under another lawful basis when approving an erasure
(``approve-except-retained``). Safeguarding records (MARAC referrals with their DASH, concerns,
safe contact) are always kept: they do not rest on consent."""

MentorStatus = Literal["in-training", "active", "paused", "left"]
MentorGenderPreference = Literal["any", "female", "male", "non-binary", "other"]
ContactMode = Literal["in-person", "phone", "video"]
Attendance = Literal["attended", "did-not-attend", "cancelled-by-mentee", "cancelled-by-mentor"]
Timepoint = Literal["intake", "exit", "follow-up"]
"""When an outcome measure in ``outcome-recorded`` v1 was taken (``follow-up`` untimed)."""
FollowUpTimepoint = Literal["3-months", "6-months", "12-months"]
"""A timed follow-up after the exit (``follow-up-recorded``)."""
OutcomeTimepoint = Literal["intake", "exit", "3-months", "6-months", "12-months", "follow-up"]
"""Every timepoint an outcome measure may be recorded at."""
FOLLOW_UPS: Final[Mapping[str, int]] = MappingProxyType(
    {"3-months": 3, "6-months": 6, "12-months": 12})
"""The timed follow-ups, with their months after the exit."""
Component = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,59}$")]
"""A code from a configured list (the intervention's components, supervision's topics)."""
OfferOutcome = Literal["accepted", "declined", "undecided"]
OfferDeclineReason = Literal["not-wanted-now", "has-other-support", "no-time",
                             "confidentiality-worries", "prefers-professional-support", "other"]
AdverseEventKind = Literal["distress", "self-harm", "abuse-escalation", "boundary-breach",
                           "confidentiality-breach", "other"]
Relatedness = Literal["related", "possibly-related", "unrelated", "not-known"]
"""Whether an adverse event is related to the mentoring."""
Instrument = Literal["WEMWBS", "SWEMWBS"]

PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
"""Every consent purpose, in the order ``["all"]`` expands to."""
ACKNOWLEDGED_BY: Final[Mapping[Purpose, frozenset[ServiceName]]] = MappingProxyType({
    "peer-mentoring": frozenset({"mentoring"}),
    "partner-sharing": frozenset({"screening", "mentoring"}),
    "evaluation": frozenset({"reporting"}),
    "research": frozenset({"reporting"}),
})
"""The services whose withdrawal-applied a withdrawal of each purpose waits for: the one home
of this rule, read by the consent service's tracker and by every worker's cascade.

| purpose          | meaning                                                | must acknowledge     |
| peer-mentoring   | referral to, matching with, contact by a peer mentor   | mentoring            |
| partner-sharing  | sharing screening and risk information with partners   | screening, mentoring |
| evaluation       | inclusion in the programme's evaluation and dashboards | reporting            |
| research         | taking part in the study's data collection (extracts)  | reporting            |
"""
ERASURE_ACKNOWLEDGED_BY: Final[frozenset[ServiceName]] = frozenset(get_args(ServiceName))
"""An approved erasure request waits for every service's erasure-applied."""


def purposes_acknowledged_by(service: ServiceName) -> frozenset[Purpose]:
    """The purposes whose withdrawal ``service`` must act on and acknowledge."""
    return frozenset(p for p, services in ACKNOWLEDGED_BY.items() if service in services)

_Item = TypeVar("_Item", bound=Hashable)


def _distinct(values: tuple[_Item, ...]) -> tuple[_Item, ...]:
    if len(set(values)) != len(values):
        raise ValueError("values must be distinct")
    return values


_UNIQUE = Field(json_schema_extra={"uniqueItems": True})

OrgId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
"""An organisation's configured identifier (``trust``, ``partner-a``), as in topic names."""
RecordId = Annotated[str, Field(min_length=1, max_length=100)]
"""The identifier a service gave one of its records (never a subject reference)."""
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 .,'&()/_-]{0,99}$"
Label = Annotated[str, Field(min_length=1, max_length=100, pattern=LABEL_PATTERN)]
"""A short de-identified label: a team, a borough, a role, a check level, an agency.

Labels are free text from staff and partners that reporting groups by and exports as CSV, so
they are held to a safe pattern: a letter or digit first (never ``=``, ``+``, ``-`` or ``@``,
which start a spreadsheet formula), then letters, digits, spaces and ``. , ' & ( ) / _ -``;
at most 100 characters, as the database columns hold."""
LanguageTag = Annotated[str, Field(min_length=2, max_length=35)]
"""A BCP 47 language tag such as ``en`` or ``ur``."""

Purposes = Annotated[tuple[Purpose, ...], Field(min_length=1), _UNIQUE,
                     AfterValidator(_distinct)]
ServiceNames = Annotated[tuple[ServiceName, ...], Field(min_length=1), _UNIQUE,
                         AfterValidator(_distinct)]
OrgIds = Annotated[tuple[OrgId, ...], _UNIQUE, AfterValidator(_distinct)]
"""Distinct organisation identifiers (may be empty)."""
RelationshipBasis = Literal["registered", "referral"]
"""How an organisation came to have a relationship with a person: it registered them as its
own patient or client, or it received a referral for them."""
MaracCriteria = Annotated[tuple[MaracCriterion, ...], _UNIQUE, AfterValidator(_distinct)]
RetainedKinds = Annotated[tuple[RetainedKind, ...], _UNIQUE, AfterValidator(_distinct)]
ContactModes = Annotated[tuple[ContactMode, ...], Field(min_length=1), _UNIQUE,
                         AfterValidator(_distinct)]
LanguageTags = Annotated[tuple[LanguageTag, ...], Field(min_length=1), _UNIQUE,
                         AfterValidator(_distinct)]

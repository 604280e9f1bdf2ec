"""Who may see and do what in screening: the rules as data, and the decisions, free of I/O.

A person has one subject reference across the programme; every record belongs to the
organisation that made it (its ``org``). A caller always sees their own organisation's records.
Reading another organisation's records needs both a relationship between the caller's
organisation and the person (it registered them, or received a referral for them) and active
``partner-sharing`` consent, recorded by the record's holder, that names the caller's
organisation. Nothing a caller is shown reveals whether another organisation holds records.

The role policy (which roles exist at which kind of organisation) is ``shared.auth``'s; a
token for a role its organisation may not hold never gets this far.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final


class Scope(Enum):
    """Which records an action reaches, once the caller's role is allowed."""

    OWN_ORG = "own-org"
    """Records of the caller's own organisation only (``org`` in the body is the caller's)."""
    OWN_OR_SHARED = "own-or-shared"
    """The caller's own organisation's records, and another's with relationship and sharing."""
    MARAC_QUEUE = "marac-queue"
    """The Trust's MARAC queue: the whole queue, the caller's own referrals, or the referrals
    flagged for the DPO, by role (``MARAC_VIEW``)."""
    RELATED_OWN_ORG = "related-own-org"
    """The caller's own organisation's records of a person it has a relationship with."""


@dataclass(frozen=True)
class Rule:
    """The roles that may attempt an action and the records it reaches."""

    roles: frozenset[str]
    scope: Scope


RECORD_SCREENING: Final = "record-screening"
RECORD_ENQUIRY_DUE: Final = "record-enquiry-due"
RECORD_TEAM_TRAINING: Final = "record-team-training"
RECORD_RISK_ASSESSMENT: Final = "record-risk-assessment"
READ_RESULTS: Final = "read-results"
READ_MARAC_QUEUE: Final = "read-marac-queue"
MARK_REFERRAL_SENT: Final = "mark-referral-sent"
RECORD_JUDGEMENT_REFERRAL: Final = "record-judgement-referral"
RECORD_EXTERNAL_REFERRAL: Final = "record-external-referral"
EXPORT_SUBJECT: Final = "export-subject"

RULES: Final[dict[str, Rule]] = {
    # the Trust's clinicians (the Trust's record system records through the worker, from
    # Kafka: a service has no role, so none records through the API)
    RECORD_SCREENING: Rule(frozenset({"clinician"}), Scope.OWN_ORG),
    RECORD_ENQUIRY_DUE: Rule(frozenset({"clinician"}), Scope.OWN_ORG),
    # staff trained per team (about staff only): the clinicians who ask, and the safeguarding
    # lead who runs the training, for their own organisation's teams
    RECORD_TEAM_TRAINING: Rule(frozenset({"clinician", "safeguarding-lead"}), Scope.OWN_ORG),
    RECORD_RISK_ASSESSMENT: Rule(frozenset({"clinician"}), Scope.OWN_ORG),
    # identifiable results: clinicians and the safeguarding lead for their own organisation's
    # records, partner staff for what a holder shared with their organisation
    READ_RESULTS: Rule(frozenset({"clinician", "safeguarding-lead", "partner-staff"}),
                       Scope.OWN_OR_SHARED),
    READ_MARAC_QUEUE: Rule(frozenset({"safeguarding-lead", "clinician", "dpo"}),
                           Scope.MARAC_QUEUE),
    MARK_REFERRAL_SENT: Rule(frozenset({"safeguarding-lead"}), Scope.MARAC_QUEUE),
    # a referral on judgement alone is the assessing clinician's; a referral another agency
    # made (the police) reaches the Trust's safeguarding lead as often as its clinicians
    RECORD_JUDGEMENT_REFERRAL: Rule(frozenset({"clinician"}), Scope.OWN_ORG),
    RECORD_EXTERNAL_REFERRAL: Rule(frozenset({"clinician", "safeguarding-lead"}),
                                   Scope.OWN_ORG),
    # subject access (UK GDPR Art 15): the DPO of an organisation with a relationship, for
    # what screening holds for that organisation
    EXPORT_SUBJECT: Rule(frozenset({"dpo"}), Scope.RELATED_OWN_ORG),
}
"""Every screening action: the roles that may attempt it, and what it reaches."""


class MaracView(Enum):
    """How much of the MARAC queue a caller sees."""

    ALL = "all"
    """Every referral, whoever raised it (the Trust's safeguarding lead: no referral is
    raised out of their sight)."""
    RAISED_BY_CALLER = "raised-by-caller"
    """Only the referrals the caller raised (a clinician)."""
    FLAGGED_FOR_DPO = "flagged-for-dpo"
    """Only the caller's organisation's referrals flagged for the DPO (a person asked for
    erasure). The queue is the Trust's, so a partner's DPO sees an empty list."""


MARAC_VIEW: Final[tuple[tuple[str, MaracView], ...]] = (
    ("safeguarding-lead", MaracView.ALL),
    ("clinician", MaracView.RAISED_BY_CALLER),
    ("dpo", MaracView.FLAGGED_FOR_DPO),
)
"""The widest view wins when a caller holds several of these roles (listed widest first)."""


def role_allowed(action: str, roles: Iterable[str]) -> bool:
    """Whether any of ``roles`` may attempt ``action``."""
    return bool(RULES[action].roles & frozenset(roles))


def may_record(action: str, roles: Iterable[str], caller_org: str, record_org: str) -> bool:
    """Whether a caller may record ``record_org``'s record: an allowed role, own organisation."""
    assert RULES[action].scope is Scope.OWN_ORG
    return role_allowed(action, roles) and caller_org == record_org


def may_read(caller_org: str, roles: Iterable[str], record_org: str, *,
             relationship: bool, shared: bool) -> bool:
    """Whether a caller may read one record of a person.

    ``relationship``: the caller's organisation has a relationship with the person.
    ``shared``: ``partner-sharing`` from the record's holder names the caller's organisation
    and is active (granted, not withdrawn).
    """
    if not role_allowed(READ_RESULTS, roles):
        return False
    if record_org == caller_org:
        return True
    return relationship and shared


def sees_safe_contact(view: MaracView) -> bool:
    """Whether a queue view shows referrals' safe contact and assessment: the safeguarding
    lead's, and the raising clinician's (their own referrals); never the DPO's (need to know:
    the DPO decides on keeping the record, not on contacting the person)."""
    return view in (MaracView.ALL, MaracView.RAISED_BY_CALLER)


def may_export(roles: Iterable[str], *, relationship: bool) -> bool:
    """Whether a caller may export what screening holds about a person for their
    organisation: the DPO, with a relationship."""
    return role_allowed(EXPORT_SUBJECT, roles) and relationship


def marac_view(roles: Iterable[str]) -> MaracView | None:
    """The part of the MARAC queue a caller sees, or None when their role sees none of it."""
    held = frozenset(roles)
    for role, view in MARAC_VIEW:
        if role in held:
            return view
    return None

"""Who may do what on which mentoring record, as data (ARCHITECTURE.md, "Who may see and do
what"; DOMAIN.md section 7, Caldicott principle 4).

A referral belongs to the organisation that made it (the referrer) and is sent to one DVA
partner (the receiver, ``to_org``). The receiver's coordinators take it from their intake,
see its safe-contact details (before and after the match), match it with their own mentors
and record its sessions, outcomes and ending; its partner staff see it and record. The
referrer sees the status and the non-sensitive fields, never the safe contact, and does not
match. Once the referrer withdraws partner-sharing naming the receiver, the receiver is
refused the details (mentoring itself goes on, so it still records). Every other
organisation is told nothing: the same 404 as for a referral that does not exist.

The safeguarding concerns queue is the Trust's: its safeguarding lead sees every concern; a
data protection officer sees only the concerns flagged for them by erasure, the Trust's DPO
the whole queue's, a partner's DPO those raised by their own organisation. A concern may be
raised from any contact (waitlisted, after an ending, at withdrawal) by the staff of an
organisation with a relationship with the person. It moves only forward, open, acknowledged,
actioned, closed, and only the Trust's safeguarding lead moves it: the receiving
organisation's coordinator may not acknowledge theirs, since "acknowledged" means the lead has
seen it (the oldest unacknowledged concern is what the safeguarding alert watches). The
safe contact on a concern is shown to the safeguarding lead only.

A person's subject access export is their own organisation's DPO's, for a person their
organisation has a relationship with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

Relationship = Literal["referrer", "receiver", "withdrawn", "none"]
"""What the caller's organisation is to a referral (see ``relationship``)."""

Action = Literal["read-referral", "read-safe-contact", "update-safe-contact", "match", "record"]
"""``read-referral``: status and non-sensitive fields; ``read-safe-contact``: the safe
number and times as well; ``update-safe-contact``: replace them (the person told staff of
either end); ``match``: with a mentor; ``record``: sessions, outcomes, ending."""

RELATIONSHIPS: Final[tuple[Relationship, ...]] = get_args(Relationship)
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)

COORDINATOR: Final = frozenset({"mentor-coordinator"})
RECEIVING_STAFF: Final = frozenset({"mentor-coordinator", "partner-staff"})
REFERRING_STAFF: Final = frozenset({"clinician", "partner-staff", "mentor-coordinator"})
NOBODY: Final[frozenset[str]] = frozenset()

RULES: Final[dict[tuple[Action, Relationship], frozenset[str]]] = {
    ("read-referral", "referrer"): REFERRING_STAFF,
    ("read-referral", "receiver"): RECEIVING_STAFF,
    ("read-referral", "withdrawn"): NOBODY,
    ("read-referral", "none"): NOBODY,
    ("read-safe-contact", "referrer"): NOBODY,
    ("read-safe-contact", "receiver"): COORDINATOR,
    ("read-safe-contact", "withdrawn"): NOBODY,
    ("read-safe-contact", "none"): NOBODY,
    ("update-safe-contact", "referrer"): REFERRING_STAFF,
    ("update-safe-contact", "receiver"): RECEIVING_STAFF,
    ("update-safe-contact", "withdrawn"): NOBODY,
    ("update-safe-contact", "none"): NOBODY,
    ("match", "referrer"): NOBODY,
    ("match", "receiver"): COORDINATOR,
    ("match", "withdrawn"): NOBODY,
    ("match", "none"): NOBODY,
    ("record", "referrer"): NOBODY,
    ("record", "receiver"): RECEIVING_STAFF,
    ("record", "withdrawn"): RECEIVING_STAFF,
    ("record", "none"): NOBODY,
}
"""The roles that may take each action, by the caller organisation's relationship to the
record. A role outside the cell is refused (403) when its organisation knows of the record,
and told nothing (404) when it does not."""

SHARING_WITHDRAWN: Final = ("partner-sharing consent was withdrawn: this referral's details "
                            "are no longer shared with your organisation")
REFUSALS: Final[dict[tuple[Action, Relationship], str]] = {
    ("read-referral", "referrer"): "your role may not read referrals",
    ("read-referral", "receiver"): "your role may not read referrals",
    ("read-referral", "withdrawn"): SHARING_WITHDRAWN,
    ("read-safe-contact", "referrer"): "safe-contact details are shown only to the receiving "
                                       "organisation's mentor coordinators",
    ("read-safe-contact", "receiver"): "safe-contact details are shown only to mentor "
                                       "coordinators",
    ("read-safe-contact", "withdrawn"): SHARING_WITHDRAWN,
    ("update-safe-contact", "referrer"): "your role may not change safe-contact details",
    ("update-safe-contact", "receiver"): "your role may not change safe-contact details",
    ("update-safe-contact", "withdrawn"): SHARING_WITHDRAWN,
    ("match", "referrer"): "only the receiving organisation's mentor coordinators match a "
                           "referral",
    ("match", "receiver"): "only mentor coordinators match a referral",
    ("match", "withdrawn"): SHARING_WITHDRAWN,
    ("record", "referrer"): "sessions, outcomes and endings are recorded by the receiving "
                            "organisation",
    ("record", "receiver"): "your role may not record sessions, outcomes or endings",
    ("record", "withdrawn"): "your role may not record sessions, outcomes or endings",
}


@dataclass(frozen=True)
class Decision:
    """Allowed; hidden (answer as if the record did not exist); or refused, with why."""

    outcome: Literal["allowed", "hidden", "refused"]
    reason: str = ""

    @property
    def allowed(self) -> bool:
        """Whether the action may go ahead."""
        return self.outcome == "allowed"


ALLOWED: Final = Decision("allowed")
HIDDEN: Final = Decision("hidden")


def relationship(caller_org: str, referred_by_org: str, to_org: str | None,
                 sharing_withdrawn: bool) -> Relationship:
    """The caller organisation's relationship to a referral. An organisation that referred
    to itself is its receiver, and its own withdrawal of sharing does not concern it."""
    if to_org is not None and caller_org == to_org:
        if sharing_withdrawn and caller_org != referred_by_org:
            return "withdrawn"
        return "receiver"
    if caller_org == referred_by_org:
        return "referrer"
    return "none"


def decide(action: Action, related: Relationship, roles: frozenset[str]) -> Decision:
    """Whether a caller with ``roles`` whose organisation is ``related`` may take ``action``."""
    if roles & RULES[(action, related)]:
        return ALLOWED
    if related == "none":
        return HIDDEN
    return Decision("refused", REFUSALS[(action, related)])


def may_manage_mentor(caller_org: str, mentor_org: str, roles: frozenset[str]) -> Decision:
    """Mentors are seen and changed by their own organisation's coordinators only; to anyone
    else a mentor of another organisation does not exist."""
    if caller_org == mentor_org and roles & COORDINATOR:
        return ALLOWED
    return HIDDEN


@dataclass(frozen=True)
class ConcernScope:
    """Which safeguarding concerns a caller sees: all, or only those flagged for the DPO, of
    every organisation (``org`` None) or of one."""

    flagged_only: bool
    org: str | None = None


def concern_scope(org: str, org_kind: str, roles: frozenset[str]) -> ConcernScope | None:
    """The part of the Trust's safeguarding queue the caller sees (None: none of it)."""
    if "safeguarding-lead" in roles and org_kind == "nhs-trust":
        return ConcernScope(flagged_only=False)
    if "dpo" in roles:
        return ConcernScope(flagged_only=True, org=None if org_kind == "nhs-trust" else org)
    return None


ConcernStatus = Literal["open", "acknowledged", "actioned", "closed"]
ConcernStep = Literal["acknowledge", "action", "close"]
CONCERN_STATUSES: Final[tuple[ConcernStatus, ...]] = get_args(ConcernStatus)

CONCERN_RAISERS: Final = frozenset({"mentor-coordinator", "partner-staff", "clinician"})
"""Who raises a concern, for a person their organisation has a relationship with."""

CONCERN_STEPS: Final[dict[ConcernStep, tuple[ConcernStatus, ConcernStatus]]] = {
    "acknowledge": ("open", "acknowledged"),
    "action": ("acknowledged", "actioned"),
    "close": ("actioned", "closed"),
}
"""Each step of the queue: the state it leaves and the state it enters (only forward)."""

CONCERN_ACTORS: Final[dict[ConcernStep, tuple[frozenset[str], str]]] = {
    "acknowledge": (frozenset({"safeguarding-lead"}), "nhs-trust"),
    "action": (frozenset({"safeguarding-lead"}), "nhs-trust"),
    "close": (frozenset({"safeguarding-lead"}), "nhs-trust"),
}
"""Who takes each step: (roles, organisation kind). The receiving organisation's coordinator
is deliberately absent (see the module's docstring)."""

OFFER_RECORDERS: Final = REFERRING_STAFF
"""Who records an offer of peer mentoring, for their own organisation: whoever could refer."""


def may_record_offer(caller_org: str, offer_org: str, roles: frozenset[str]) -> bool:
    """Whether a caller may record an offer made by ``offer_org`` (their own only)."""
    return caller_org == offer_org and bool(roles & OFFER_RECORDERS)


SUBJECT_EXPORTERS: Final = frozenset({"dpo"})


def may_step(step: ConcernStep, org_kind: str, roles: frozenset[str]) -> bool:
    """Whether the caller may take ``step`` on a concern of the queue."""
    actors, kind = CONCERN_ACTORS[step]
    return bool(roles & actors) and org_kind == kind


def step_from(step: ConcernStep, status: str) -> ConcernStatus | None:
    """The state ``step`` enters from ``status``, or None when it may not be taken from it."""
    leaves, enters = CONCERN_STEPS[step]
    return enters if status == leaves else None


def shows_concern_safe_contact(scope: ConcernScope) -> bool:
    """Whether the queue shows the safe contact on its concerns (the lead, who acts on it)."""
    return not scope.flagged_only

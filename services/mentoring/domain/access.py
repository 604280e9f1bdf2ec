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
the whole queue's, a partner's DPO those raised in their own organisation's matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

Relationship = Literal["referrer", "receiver", "withdrawn", "none"]
"""What the caller's organisation is to a referral (see ``relationship``)."""

Action = Literal["read-referral", "read-safe-contact", "match", "record"]
"""``read-referral``: status and non-sensitive fields; ``read-safe-contact``: the safe
number and times as well; ``match``: with a mentor; ``record``: sessions, outcomes, ending."""

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

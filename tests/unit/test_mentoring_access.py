"""Mentoring's access rules, cell by cell (services/mentoring/domain/access.py).

Every action, for every relationship an organisation can have to a referral and every role,
is written out below: allowed, refused (403: the organisation knows of the referral) or
hidden (404: as if it did not exist). The same for the relationship itself, the mentor
records, the safeguarding queue and its steps.
"""

from __future__ import annotations

import pytest

from services.mentoring.domain.access import (
    ACTIONS,
    CONCERN_STATUSES,
    CONCERN_STEPS,
    RELATIONSHIPS,
    ConcernScope,
    concern_scope,
    decide,
    may_manage_mentor,
    may_step,
    relationship,
    step_from,
)
from shared.auth import ROLES

ROLE_COLUMNS = ("clinician", "safeguarding-lead", "partner-staff", "mentor-coordinator", "dpo",
                "ops-viewer", "researcher")
CODES = {"A": "allowed", "R": "refused", "H": "hidden"}

# A allowed, R refused (403), H hidden (404); one column per role, in ROLE_COLUMNS' order
EXPECTED = """
action             relationship  clin  lead  staff  coord  dpo  ops  res
read-referral      referrer      A     R     A      A      R    R    R
read-referral      receiver      R     R     A      A      R    R    R
read-referral      withdrawn     R     R     R      R      R    R    R
read-referral      none          H     H     H      H      H    H    H
read-safe-contact  referrer      R     R     R      R      R    R    R
read-safe-contact  receiver      R     R     R      A      R    R    R
read-safe-contact  withdrawn     R     R     R      R      R    R    R
read-safe-contact  none          H     H     H      H      H    H    H
update-safe-contact  referrer    A     R     A      A      R    R    R
update-safe-contact  receiver    R     R     A      A      R    R    R
update-safe-contact  withdrawn   R     R     R      R      R    R    R
update-safe-contact  none        H     H     H      H      H    H    H
match              referrer      R     R     R      R      R    R    R
match              receiver      R     R     R      A      R    R    R
match              withdrawn     R     R     R      R      R    R    R
match              none          H     H     H      H      H    H    H
record             referrer      R     R     R      R      R    R    R
record             receiver      R     R     A      A      R    R    R
record             withdrawn     R     R     A      A      R    R    R
record             none          H     H     H      H      H    H    H
"""


def cells() -> list[tuple[str, str, str, str]]:
    rows = [line.split() for line in EXPECTED.strip().splitlines()[1:]]
    return [(action, related, role, CODES[code]) for action, related, *codes in rows
            for role, code in zip(ROLE_COLUMNS, codes, strict=True)]


def test_the_table_covers_every_action_relationship_and_role() -> None:
    assert set(ROLE_COLUMNS) == ROLES
    assert {(a, r, role) for a, r, role, _ in cells()} == {
        (a, r, role) for a in ACTIONS for r in RELATIONSHIPS for role in ROLES}


@pytest.mark.parametrize(("action", "related", "role", "outcome"), cells())
def test_each_cell(action: str, related: str, role: str, outcome: str) -> None:
    decision = decide(action, related, frozenset({role}))  # type: ignore[arg-type]
    assert decision.outcome == outcome
    assert decision.allowed is (outcome == "allowed")
    assert bool(decision.reason) is (outcome == "refused")


def test_a_withdrawn_receiver_is_told_why() -> None:
    assert "partner-sharing" in decide("read-referral", "withdrawn",
                                       frozenset({"mentor-coordinator"})).reason


def test_any_allowed_role_among_several_is_enough() -> None:
    assert decide("match", "receiver", frozenset({"dpo", "mentor-coordinator"})).allowed


@pytest.mark.parametrize(("caller", "referred_by", "to_org", "withdrawn", "expected"), [
    ("trust", "trust", "partner-a", False, "referrer"),
    ("trust", "trust", "partner-a", True, "referrer"),
    ("partner-a", "trust", "partner-a", False, "receiver"),
    ("partner-a", "trust", "partner-a", True, "withdrawn"),
    ("partner-b", "trust", "partner-a", False, "none"),
    ("partner-b", "trust", "partner-a", True, "none"),
    ("partner-a", "partner-a", "partner-a", False, "receiver"),   # referred to itself
    ("partner-a", "partner-a", "partner-a", True, "receiver"),    # its own records
    ("partner-b", "partner-b", "partner-a", False, "referrer"),   # partner to partner
    ("partner-a", "partner-b", "partner-a", True, "withdrawn"),
    ("trust", "trust", None, False, "referrer"),                  # before to_org existed
    ("partner-a", "trust", None, False, "none"),
])
def test_relationship(caller: str, referred_by: str, to_org: str | None, withdrawn: bool,
                      expected: str) -> None:
    assert relationship(caller, referred_by, to_org, withdrawn) == expected


@pytest.mark.parametrize(("caller_org", "mentor_org", "role", "outcome"), [
    ("partner-a", "partner-a", "mentor-coordinator", "allowed"),
    ("partner-b", "partner-a", "mentor-coordinator", "hidden"),
    ("partner-a", "partner-a", "partner-staff", "hidden"),
    ("trust", "partner-a", "clinician", "hidden"),
    ("partner-a", "partner-a", "dpo", "hidden"),
])
def test_mentors_are_their_own_coordinators_only(caller_org: str, mentor_org: str, role: str,
                                                outcome: str) -> None:
    assert may_manage_mentor(caller_org, mentor_org, frozenset({role})).outcome == outcome


@pytest.mark.parametrize(("org", "kind", "role", "scope"), [
    ("trust", "nhs-trust", "safeguarding-lead", ConcernScope(flagged_only=False)),
    ("trust", "nhs-trust", "dpo", ConcernScope(flagged_only=True)),
    ("partner-a", "dva-partner", "dpo", ConcernScope(flagged_only=True, org="partner-a")),
    ("trust", "nhs-trust", "clinician", None),   # not every Trust clinician any more
    ("partner-a", "dva-partner", "mentor-coordinator", None),
    ("partner-a", "dva-partner", "partner-staff", None),
    ("partner-a", "dva-partner", "safeguarding-lead", None),  # the role exists at the Trust
    ("trust", "nhs-trust", "ops-viewer", None),
])
def test_the_safeguarding_queue(org: str, kind: str, role: str,
                                scope: ConcernScope | None) -> None:
    assert concern_scope(org, kind, frozenset({role})) == scope


STEP_TABLE = """
step         open          acknowledged  actioned  closed
acknowledge  acknowledged  -             -         -
action       -             actioned      -         -
close        -             -             closed    -
"""


def test_the_queue_moves_only_forward_one_state_at_a_time() -> None:
    header, *lines = [line.split() for line in STEP_TABLE.strip().splitlines()]
    assert tuple(header[1:]) == CONCERN_STATUSES
    assert {line[0] for line in lines} == set(CONCERN_STEPS)
    for taken, *entered in lines:
        for status, enters in zip(CONCERN_STATUSES, entered, strict=True):
            assert step_from(taken, status) == (None if enters == "-" else enters), (  # type: ignore[arg-type]
                taken, status)


@pytest.mark.parametrize("step", sorted(CONCERN_STEPS))
@pytest.mark.parametrize(("kind", "role", "allowed"), [
    ("nhs-trust", "safeguarding-lead", True), ("nhs-trust", "clinician", False),
    ("nhs-trust", "dpo", False), ("nhs-trust", "ops-viewer", False),
    ("dva-partner", "mentor-coordinator", False), ("dva-partner", "partner-staff", False),
    ("dva-partner", "safeguarding-lead", False), ("dva-partner", "dpo", False)])
def test_only_the_trusts_safeguarding_lead_takes_a_step(step: str, kind: str, role: str,
                                                        allowed: bool) -> None:
    assert may_step(step, kind, frozenset({role})) is allowed  # type: ignore[arg-type]

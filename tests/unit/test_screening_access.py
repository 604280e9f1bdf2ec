"""Screening's access rules, as a table over every cell: each role, at the Trust and at a
partner; a record of the caller's own organisation, of another partner, of the Trust; and the
caller's organisation's standing with the person (no relationship; a relationship of its own;
a relationship and the holder's sharing naming it; sharing withdrawn; sharing without any
relationship)."""

from __future__ import annotations

import pytest

from services.screening.domain import access
from services.screening.domain.access import MaracView
from shared.auth import ROLE_POLICY, ROLES

ORG_KIND = {"trust": "nhs-trust", "partner-a": "dva-partner", "partner-b": "dva-partner"}
STANDING: dict[str, tuple[bool, bool]] = {  # (relationship, shared)
    "none": (False, False),
    "own": (True, False),
    "shared": (True, True),
    "withdrawn": (True, False),
    "shared-without-relationship": (False, True),
}
# per role: may it read its own organisation's record (whatever the standing), and another
# organisation's record at each standing, in STANDING's order
READ: dict[str, tuple[bool, tuple[bool, bool, bool, bool, bool]]] = {
    "clinician":          (True,  (False, False, True,  False, False)),
    "safeguarding-lead":  (True,  (False, False, True,  False, False)),
    "partner-staff":      (True,  (False, False, True,  False, False)),
    "mentor-coordinator": (False, (False, False, False, False, False)),
    "dpo":                (False, (False, False, False, False, False)),
    "ops-viewer":         (False, (False, False, False, False, False)),
    "researcher":         (False, (False, False, False, False, False)),
}


def _cells() -> list[tuple[str, str, str, str, bool]]:
    cells = []
    for role, (own, other) in READ.items():
        for caller_org, kind in ORG_KIND.items():
            if kind not in ROLE_POLICY[role] or caller_org == "partner-b":
                continue  # the token is refused (401) before any rule; partner-a stands for both
            record_orgs = {"own": caller_org, "another-partner": "partner-b",
                           "trust": "trust"}
            for record, record_org in record_orgs.items():
                if record != "own" and record_org == caller_org:
                    continue
                for index, standing in enumerate(STANDING):
                    expected = own if record_org == caller_org else other[index]
                    cells.append((role, caller_org, record_org, standing, expected))
    return cells


CELLS = _cells()


def test_the_table_covers_every_role() -> None:
    assert set(READ) == ROLES
    assert {role for role, *_ in CELLS} == ROLES


@pytest.mark.parametrize(("role", "caller_org", "record_org", "standing", "expected"), CELLS,
                         ids=[f"{r}@{c}-reads-{o}-{s}" for r, c, o, s, _ in CELLS])
def test_read_access(role: str, caller_org: str, record_org: str, standing: str,
                     expected: bool) -> None:
    relationship, shared = STANDING[standing]
    assert access.may_read(caller_org, {role}, record_org, relationship=relationship,
                           shared=shared) is expected


def test_a_second_role_adds_what_it_allows_and_never_removes() -> None:
    assert access.may_read("partner-a", {"dpo", "partner-staff"}, "trust",
                           relationship=True, shared=True)
    assert not access.may_read("partner-a", {"dpo", "mentor-coordinator"}, "trust",
                               relationship=True, shared=True)


RECORDERS = {
    access.RECORD_SCREENING: {"clinician"},
    access.RECORD_ENQUIRY_DUE: {"clinician"},
    access.RECORD_TEAM_TRAINING: {"clinician", "safeguarding-lead"},
    access.RECORD_RISK_ASSESSMENT: {"clinician"},
}


@pytest.mark.parametrize("action", sorted(RECORDERS))
@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize(("caller_org", "record_org"), [
    ("trust", "trust"), ("trust", "partner-a"), ("partner-a", "partner-a"),
    ("partner-a", "trust"), ("partner-a", "partner-b")])
def test_recording_needs_a_recording_role_and_the_callers_own_organisation(
        action: str, role: str, caller_org: str, record_org: str) -> None:
    expected = role in RECORDERS[action] and caller_org == record_org
    assert access.may_record(action, {role}, caller_org, record_org) is expected


def test_only_the_trust_can_hold_a_role_that_records_risk() -> None:
    for role in access.RULES[access.RECORD_RISK_ASSESSMENT].roles:
        assert ROLE_POLICY[role] == frozenset({"nhs-trust"})


@pytest.mark.parametrize(("roles", "view"), [
    ({"safeguarding-lead"}, MaracView.ALL),
    ({"clinician"}, MaracView.RAISED_BY_CALLER),
    ({"dpo"}, MaracView.FLAGGED_FOR_DPO),
    ({"clinician", "safeguarding-lead"}, MaracView.ALL),
    ({"clinician", "dpo"}, MaracView.RAISED_BY_CALLER),
    ({"partner-staff"}, None),
    ({"mentor-coordinator"}, None),
    ({"ops-viewer"}, None),
])
def test_the_marac_queue_view_by_role(roles: set[str], view: MaracView | None) -> None:
    assert access.marac_view(roles) is view


def test_only_the_safeguarding_lead_marks_referrals_sent() -> None:
    assert access.RULES[access.MARK_REFERRAL_SENT].roles == {"safeguarding-lead"}


def test_every_rule_names_known_roles() -> None:
    for rule in access.RULES.values():
        assert rule.roles <= ROLES

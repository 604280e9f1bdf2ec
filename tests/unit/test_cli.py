"""The ``peerlink`` command's token minting prints only the token."""

from __future__ import annotations

import pytest

from shared.cli import main
from shared.runtime import token_authority
from shared.settings import PlatformSettings


def test_token_prints_only_a_verifiable_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--org", "partner-a", "--role", "partner-staff"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    caller = token_authority(PlatformSettings()).verify(out.strip())
    assert (caller.org, caller.roles) == ("partner-a", frozenset({"partner-staff"}))


@pytest.mark.parametrize(("org", "role", "problem"), [
    ("nowhere", "clinician", "unknown organisation"),
    ("trust", "superuser", "roles must be among"),
])
def test_token_refuses_unknown_organisations_and_roles(
        capsys: pytest.CaptureFixture[str], org: str, role: str, problem: str) -> None:
    assert main(["token", "--org", org, "--role", role]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert problem in captured.err


def test_migrate_refuses_an_unknown_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "billing"]) == 2
    assert "unknown service billing" in capsys.readouterr().err

"""The import rules of pyproject.toml's ``[tool.importlinter]``: ``shared`` imports no service
and no operations tooling, no service imports another or the operations tooling, and no
service's domain imports a
database, web or broker library. Checked on the real tree, and shown to catch each breach."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from importlinter import api  # noqa: F401 - configures import-linter's adapters
from importlinter.application import use_cases

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
ROOT_PACKAGES = ("shared", "services", "ops")
CONTRACTS = {"shared-is-plumbing", "services-are-independent", "services-need-no-tooling",
             "domains-do-no-io"}


def checked_contracts() -> dict[str, bool]:
    """Each contract's id and whether it is kept, for the root packages found first on the
    import path (no cache: nothing is written)."""
    options = use_cases.read_user_options(str(PYPROJECT))
    use_cases._register_contract_types(options)
    report = use_cases.create_report(options, cache_dir=None)
    assert not report.could_not_run, report.invalid_contract_options
    return {contract.contract_options["id"]: check.kept
            for contract, check in report.get_contracts_and_checks()}


def test_the_tree_keeps_every_import_rule() -> None:
    assert checked_contracts() == dict.fromkeys(CONTRACTS, True)


TREE = {
    "shared/__init__.py": "",
    "shared/db.py": "import sqlalchemy\n",
    "shared/events.py": "import pydantic\n",
    "ops/__init__.py": "",
    "ops/cli.py": "from services.consent.entrypoints import commands\nimport shared.db\n",
    "services/__init__.py": "",
    **{f"services/{service}/{layer}__init__.py": ""
       for service in ("consent", "screening", "mentoring", "reporting")
       for layer in ("", "domain/", "entrypoints/")},
    "services/consent/domain/rules.py": "import shared.events\n",
    "services/consent/entrypoints/commands.py": "import httpx\nimport shared.db\n",
}
"""A small tree that keeps every rule: ops may import services, an entrypoint httpx, a
domain the parts of shared that do no I/O."""


@pytest.mark.parametrize(("module", "breach", "broken"), [
    ("shared/cli.py", "from services.consent.entrypoints import commands\n",
     "shared-is-plumbing"),
    ("shared/platform.py", "import ops.cli\n", "shared-is-plumbing"),
    ("services/mentoring/entrypoints/api.py", "from services.consent.domain import rules\n",
     "services-are-independent"),
    ("services/reporting/entrypoints/rebuild.py", "from ops.migrations import migrate\n",
     "services-need-no-tooling"),
    ("services/reporting/domain/figures.py", "from sqlalchemy import select\n",
     "domains-do-no-io"),
    ("services/screening/domain/risk.py", "import fastapi\n", "domains-do-no-io"),
    ("services/mentoring/domain/matching.py", "import kafka\n", "domains-do-no-io"),
    ("services/consent/domain/rules.py", "import shared.db\n", "domains-do-no-io"),
])
def test_a_forbidden_import_breaks_its_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            module: str, breach: str, broken: str) -> None:
    for path, text in {**TREE, module: breach}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    for package in ROOT_PACKAGES:  # so that the packages are found in tmp_path
        monkeypatch.delitem(sys.modules, package, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert checked_contracts() == {contract: contract != broken for contract in CONTRACTS}

"""Building services against test databases, with development tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.runtime import migrate, token_authority
from shared.settings import PlatformSettings


def settings_for(monkeypatch: pytest.MonkeyPatch, var_dir: Path,
                 databases: dict[str, str], **overrides: object) -> PlatformSettings:
    """Platform settings using ``databases`` (migrated here) and a private var/ folder."""
    for service, url in databases.items():
        monkeypatch.setenv(f"PEERLINK_{service.upper()}_DATABASE_URL", url)
        migrate(service, url)
    return PlatformSettings(var_dir=var_dir, **overrides)  # type: ignore[arg-type]


def bearer(settings: PlatformSettings, org: str, *roles: str) -> dict[str, str]:
    """An Authorization header for a caller of ``org`` with ``roles``."""
    return {"Authorization": f"Bearer {token_authority(settings).mint(org, list(roles))}"}

"""The consent service's composition root: real adapters from settings."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import metadata
from services.consent.domain.subjects import NhsNumberLookup
from services.consent.service_layer.audit import AuditTrail
from shared.crypto import KeyWrapper, PersonalDataCipher, derive_key, load_key
from shared.db import Database
from shared.http import Authorizer
from shared.runtime import open_database, token_authority
from shared.settings import PlatformSettings

SERVICE: Final = "consent"


class ConsentAuditSettings(BaseSettings):
    """``PEERLINK_CONSENT_AUDIT_KEY(_FILE)``: the audit chain's key."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_CONSENT_", extra="ignore")

    audit_key: SecretStr | None = Field(
        default=None, description="the audit chain's HMAC key, 32 bytes base64")
    audit_key_file: Path | None = Field(default=None, description="a file holding that key")


def master_key(settings: PlatformSettings) -> bytes:
    """The key-wrapping master key: configured, or a development key file under var/."""
    configured = settings.master_key.get_secret_value() if settings.master_key else None
    return load_key(configured, settings.master_key_file,
                    settings.var_dir / "development-master.key",
                    production=settings.env == "production")


def audit_key(settings: PlatformSettings, audit: ConsentAuditSettings) -> bytes:
    """The audit chain's key: configured, or (never in production) a development key file."""
    configured = audit.audit_key.get_secret_value() if audit.audit_key else None
    return load_key(configured, audit.audit_key_file,
                    settings.var_dir / "development-consent-audit.key",
                    production=settings.env == "production")


class ConsentService:
    """Everything the consent API and worker need."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.audit_settings = ConsentAuditSettings()
        self.database: Database = open_database(SERVICE, metadata, settings)
        self.authority = token_authority(settings)
        self.authorizer = Authorizer(self.authority)
        wrapping_key = master_key(settings)
        self.keys = SqlDataKeyStore(self.database,
                                    KeyWrapper(derive_key(wrapping_key, "data-key wrapping")))
        self.lookup = NhsNumberLookup(key=derive_key(wrapping_key, "nhs-number lookup"))
        self.cipher = PersonalDataCipher(self.keys)
        self.trail = AuditTrail(audit_key(settings, self.audit_settings))

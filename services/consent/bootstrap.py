"""The consent service's composition root: real adapters from settings."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.consent.adapters.heads import KafkaHeadLog
from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import metadata
from services.consent.domain.callers import Organisations
from services.consent.domain.purposes import offered_purposes
from services.consent.domain.subjects import NhsNumberLookup, SafeguardingPseudonyms
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.subjects import Identifiers
from shared.crypto import KeyWrapper, PersonalDataCipher, RecordCipher, derive_key, load_key
from shared.db import Database
from shared.events.vocabulary import PURPOSES
from shared.http import Authorizer
from shared.kafka.client import client_options
from shared.kafka.topics import AUDIT_HEADS
from shared.runtime import open_database, token_verifier
from shared.settings import PlatformSettings

SERVICE: Final = "consent"


class ConsentAuditSettings(BaseSettings):
    """``PEERLINK_CONSENT_AUDIT_*``: the audit chain's key and its published heads."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_CONSENT_", extra="ignore")

    audit_key: SecretStr | None = Field(
        default=None, description="the audit chain's HMAC key, 32 bytes base64")
    audit_key_file: Path | None = Field(default=None, description="a file holding that key")
    audit_head_seconds: float = Field(
        default=60.0, gt=0, description="how often the worker publishes the head if it moved")
    audit_heads_topic: str = Field(default=AUDIT_HEADS, min_length=1, max_length=200)
    audit_heads_read_seconds: float = Field(
        default=10.0, gt=0, description="how long verification may take to read the heads")


class ConsentPurposeSettings(BaseSettings):
    """``PEERLINK_CONSENT_PURPOSES``: the purposes this deployment records consent to."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_CONSENT_", extra="ignore")

    purposes: str = Field(default=",".join(PURPOSES),
                          description="comma-separated, from " + ", ".join(PURPOSES))


class SafeguardingPseudonymSettings(BaseSettings):
    """``PEERLINK_SAFEGUARDING_PSEUDONYM_KEY`` / ``_FILE``: the key of the pseudonym that links
    people's safeguarding records across erasure (required in production)."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_SAFEGUARDING_PSEUDONYM_",
                                      extra="ignore")

    key: SecretStr | None = Field(default=None, description="32 bytes base64")
    key_file: Path | None = Field(default=None, description="a file holding that key")


def safeguarding_pseudonym_key(settings: PlatformSettings) -> bytes:
    """The safeguarding pseudonym key: configured, or (never in production) a development key
    file under var/."""
    pseudonym = SafeguardingPseudonymSettings()
    configured = pseudonym.key.get_secret_value() if pseudonym.key else None
    return load_key(configured, pseudonym.key_file,
                    settings.var_dir / "development-safeguarding-pseudonym.key",
                    production=settings.env == "production")


class ConsentRecordsSettings(BaseSettings):
    """``PEERLINK_CONSENT_RECORDS_KEY(_FILE)``: the key sealing the DPO's reasons on erasure
    requests, which are kept through the erasure they decide."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_CONSENT_", extra="ignore")

    records_key: SecretStr | None = Field(default=None,
                                          description="32 bytes base64")
    records_key_file: Path | None = Field(default=None, description="a file holding that key")


def records_key(settings: PlatformSettings) -> bytes:
    """Consent's records key: configured, or (never in production) a development key file."""
    records = ConsentRecordsSettings()
    configured = records.records_key.get_secret_value() if records.records_key else None
    return load_key(configured, records.records_key_file,
                    settings.var_dir / "development-consent-records.key",
                    production=settings.env == "production")


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


class ConsentAdapters:
    """The consent service's real adapters, built once from settings and handed to its use
    cases by the API and the worker."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.organisations = Organisations.of(
            {org: o.kind for org, o in settings.organisations.items()})
        self.audit_settings = ConsentAuditSettings()
        self.purposes = offered_purposes(ConsentPurposeSettings().purposes)
        self.database: Database = open_database(SERVICE, metadata, settings)
        self.authorizer = Authorizer(token_verifier(settings))
        wrapping_key = master_key(settings)
        self.keys = SqlDataKeyStore(self.database,
                                    KeyWrapper(derive_key(wrapping_key, "data-key wrapping")))
        self.identifiers = Identifiers(
            lookup=NhsNumberLookup(key=derive_key(wrapping_key, "nhs-number lookup")),
            pseudonyms=SafeguardingPseudonyms(key=safeguarding_pseudonym_key(settings)))
        self.cipher = PersonalDataCipher(self.keys)
        self.records = RecordCipher(records_key(settings))
        self.trail = AuditTrail(audit_key(settings, self.audit_settings))
        self.heads = KafkaHeadLog(settings.kafka_bootstrap,
                                  self.audit_settings.audit_heads_topic,
                                  self.audit_settings.audit_heads_read_seconds,
                                  **client_options(settings))

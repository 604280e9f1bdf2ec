"""The screening service's composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.screening.adapters.tables import metadata
from services.screening.domain.risk import DEFAULT_ESCALATION_INCIDENTS
from services.screening.service_layer.ports import SafeguardingRegistry
from shared.consent_client import ConsentClient
from shared.crypto import PersonalDataCipher, RecordCipher, load_key
from shared.http import Authorizer
from shared.runtime import consent_keys, open_database, service_credentials, token_verifier
from shared.settings import PlatformSettings

SERVICE: Final = "screening"


class ScreeningSettings(BaseSettings):
    """Screening's local thresholds."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_", extra="ignore")

    marac_escalation_incidents: int = Field(
        default=DEFAULT_ESCALATION_INCIDENTS, ge=1, le=100,
        description="incidents in 12 months that meet potential escalation (SafeLives: 3)")


class ScreeningKeySettings(BaseSettings):
    """``PEERLINK_SCREENING_RECORDS_KEY(_FILE)``: the key for safeguarding records."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_SCREENING_", extra="ignore")

    records_key: SecretStr | None = None
    records_key_file: Path | None = None


class ScreeningAdapters:
    """The composition root: the adapters the screening API and worker hand to its use
    cases, built from the process's settings."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.thresholds = ScreeningSettings()
        self.database = open_database(SERVICE, metadata, settings)
        self.authorizer = Authorizer(token_verifier(settings))
        self.registry = ConsentClient(settings.consent_base_url(),
                                      service_credentials(SERVICE, settings))
        self.keys = consent_keys(self.registry, settings)
        self.cipher = PersonalDataCipher(self.keys)
        self.safeguarding: SafeguardingRegistry = self.registry
        keys = ScreeningKeySettings()
        self.records = RecordCipher(load_key(
            keys.records_key.get_secret_value() if keys.records_key else None,
            keys.records_key_file, settings.var_dir / "development-screening-records.key",
            production=settings.env == "production"))

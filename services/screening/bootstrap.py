"""The screening service's composition root."""

from __future__ import annotations

from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.screening.adapters.tables import metadata
from services.screening.domain.risk import DEFAULT_ESCALATION_INCIDENTS
from shared.consent_client import ConsentClient
from shared.crypto import PersonalDataCipher, UnknownSubject
from shared.http import Authorizer
from shared.runtime import consent_keys, open_database, token_authority
from shared.settings import PlatformSettings

SERVICE: Final = "screening"


class ScreeningSettings(BaseSettings):
    """Screening's local thresholds."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_", extra="ignore")

    marac_escalation_incidents: int = Field(
        default=DEFAULT_ESCALATION_INCIDENTS, ge=1, le=100,
        description="incidents in 12 months that meet potential escalation (SafeLives: 3)")


class ScreeningService:
    """Everything the screening API and worker need."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.screening = ScreeningSettings()
        self.database = open_database(SERVICE, metadata, settings)
        self.authority = token_authority(settings)
        self.authorizer = Authorizer(self.authority)
        self.keys = consent_keys(SERVICE, settings, self.authority)
        self.cipher = PersonalDataCipher(self.keys)
        self.registry = ConsentClient(settings.consent_base_url(), self.authority, SERVICE)

    def resolve_subject(self, nhs_number: str | None, subject_id: str | None, org: str) -> str:
        """The subject reference for a record: registered by NHS number for ``org`` (the
        recording organisation, which so gains a relationship), or checked to exist.

        Raises ``UnknownSubject`` or ``KeyStoreUnavailable``.
        """
        if nhs_number is not None:
            return self.registry.register(nhs_number, org)
        if subject_id is None:
            raise UnknownSubject()
        self.keys.data_key(subject_id)
        return subject_id

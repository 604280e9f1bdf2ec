"""The screening service's composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Protocol

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.screening.adapters.tables import metadata
from services.screening.domain.risk import DEFAULT_ESCALATION_INCIDENTS
from shared.auth import Principal
from shared.consent_client import ConsentClient
from shared.crypto import PersonalDataCipher, RecordCipher, UnknownSubject, load_key
from shared.events.consent import SafeContact
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


class SafeguardingRegistry(Protocol):
    """What screening asks the consent service for its safeguarding records (the
    ``ConsentClient`` is the adapter)."""

    def safeguarding_pseudonym(self, subject_id: str) -> str | None:
        """The keyed pseudonym linking the person's safeguarding records across
        re-registration; raises ``KeyShredded`` or ``KeyStoreUnavailable``."""
        ...

    def update_safe_contact(self, subject_id: str, contact: SafeContact,
                            caller: Principal) -> None:
        """Record the person's current safe contact, so every holder gets it."""
        ...


class ScreeningService:
    """Everything the screening API and worker need."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.screening = ScreeningSettings()
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

    def resolve_subject(self, nhs_number: str | None, subject_id: str | None,
                        caller: Principal | None = None) -> str:
        """The subject reference for a record: registered by NHS number (for ``caller``'s
        organisation, or with no caller, by the worker, for the Trust), or checked with the
        consent service, bypassing the key cache, to exist and not be erased.

        Raises ``UnknownSubject``, ``KeyShredded`` or ``KeyStoreUnavailable``.
        """
        if nhs_number is not None:
            return self.registry.register(nhs_number, caller)
        if subject_id is None:
            raise UnknownSubject()
        self.keys.live_key(subject_id)  # never the cache: an erasure stops writes at once
        return subject_id

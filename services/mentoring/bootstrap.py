"""The mentoring service's composition root: its settings and the adapters its API and worker
hand to the use cases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.mentoring.adapters.tables import metadata
from services.mentoring.domain.intervention import (
    DEFAULT_COMPONENTS,
    DEFAULT_SUPERVISION_TOPICS,
    Intervention,
)
from services.mentoring.domain.matching import (
    DEFAULT_CHECK_VALID_DAYS,
    DEFAULT_SUPERVISION_DAYS,
    EligibilityRules,
)
from shared.consent_client import ConsentClient
from shared.crypto import PersonalDataCipher, RecordCipher, load_key
from shared.events.vocabulary import Component
from shared.http import Authorizer
from shared.runtime import consent_keys, open_database, service_credentials, token_verifier
from shared.settings import PlatformSettings

SERVICE: Final = "mentoring"


class MentoringSettings(BaseSettings):
    """``PEERLINK_MENTOR_*``: how recent a mentor's check and supervision must be, and the
    intervention's components and supervision's topics (JSON lists of codes)."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_MENTOR_", extra="ignore")

    check_valid_days: int = Field(default=DEFAULT_CHECK_VALID_DAYS, ge=1)
    supervision_days: int = Field(default=DEFAULT_SUPERVISION_DAYS, ge=1)
    components: tuple[Component, ...] = Field(default=DEFAULT_COMPONENTS, min_length=1)
    supervision_topics: tuple[Component, ...] = Field(default=DEFAULT_SUPERVISION_TOPICS,
                                                      min_length=1)
    session_every_days: int = Field(default=14, ge=1, le=90,
                                    description="how often a match's sessions are due")


class MentoringKeySettings(BaseSettings):
    """``PEERLINK_MENTORING_RECORDS_KEY(_FILE)``: the key for safeguarding records."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_MENTORING_", extra="ignore")

    records_key: SecretStr | None = None
    records_key_file: Path | None = None


class MentoringAdapters:
    """The adapters the mentoring API and worker hand to the use cases, built from the
    process's settings: the database, the consent service (client and cached data keys),
    the ciphers, token checking, the eligibility rules and the DVA partners."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        mentoring = MentoringSettings()
        self.rules = EligibilityRules(mentoring.check_valid_days, mentoring.supervision_days)
        self.intervention = Intervention(mentoring.components, mentoring.supervision_topics)
        self.session_every = timedelta(days=mentoring.session_every_days)
        self.partners: tuple[str, ...] = tuple(
            org for org, o in settings.organisations.items() if o.kind == "dva-partner")
        self.database = open_database(SERVICE, metadata, settings)
        self.authorizer = Authorizer(token_verifier(settings))
        self.consent = ConsentClient(settings.consent_base_url(),
                                     service_credentials(SERVICE, settings))
        self.keys = consent_keys(self.consent, settings)
        self.cipher = PersonalDataCipher(self.keys)
        keys = MentoringKeySettings()
        self.records = RecordCipher(load_key(
            keys.records_key.get_secret_value() if keys.records_key else None,
            keys.records_key_file, settings.var_dir / "development-mentoring-records.key",
            production=settings.env == "production"))

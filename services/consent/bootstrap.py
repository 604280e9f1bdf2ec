"""The consent service's composition root: real adapters from settings."""

from __future__ import annotations

from typing import Final

from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import metadata
from services.consent.domain.subjects import NhsNumberLookup
from shared.crypto import KeyWrapper, PersonalDataCipher, derive_key, load_key
from shared.db import Database
from shared.http import Authorizer
from shared.runtime import open_database, token_verifier
from shared.settings import PlatformSettings

SERVICE: Final = "consent"


def master_key(settings: PlatformSettings) -> bytes:
    """The key-wrapping master key: configured, or a development key file under var/."""
    configured = settings.master_key.get_secret_value() if settings.master_key else None
    return load_key(configured, settings.master_key_file,
                    settings.var_dir / "development-master.key",
                    production=settings.env == "production")


class ConsentService:
    """Everything the consent API and worker need."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.database: Database = open_database(SERVICE, metadata, settings)
        self.authorizer = Authorizer(token_verifier(settings))
        wrapping_key = master_key(settings)
        self.keys = SqlDataKeyStore(self.database,
                                    KeyWrapper(derive_key(wrapping_key, "data-key wrapping")))
        self.lookup = NhsNumberLookup(key=derive_key(wrapping_key, "nhs-number lookup"))
        self.cipher = PersonalDataCipher(self.keys)

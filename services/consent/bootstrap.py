"""The consent service's composition root: real adapters from settings."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Final

from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import metadata
from services.consent.domain.subjects import NhsNumberLookup
from shared.crypto import KEY_BYTES, KeyWrapper, PersonalDataCipher, derive_key
from shared.db import Database
from shared.http import Authorizer
from shared.runtime import open_database, token_authority
from shared.settings import PlatformSettings

SERVICE: Final = "consent"


def master_key(settings: PlatformSettings) -> bytes:
    """The key-wrapping master key: configured, or a development key file under var/."""
    if settings.master_key is not None:
        encoded = settings.master_key.get_secret_value()
    elif settings.master_key_file is not None:
        encoded = settings.master_key_file.read_text().strip()
    else:
        path = settings.var_dir / "development-master.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_private(path, base64.b64encode(os.urandom(KEY_BYTES)).decode())
        encoded = path.read_text().strip()
    key = base64.b64decode(encoded)
    if len(key) != KEY_BYTES:
        raise ValueError("the master key must be 32 bytes, base64-encoded")
    return key


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class ConsentService:
    """Everything the consent API and worker need."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.database: Database = open_database(SERVICE, metadata, settings)
        self.authority = token_authority(settings)
        self.authorizer = Authorizer(self.authority)
        wrapping_key = master_key(settings)
        self.keys = SqlDataKeyStore(self.database,
                                    KeyWrapper(derive_key(wrapping_key, "data-key wrapping")))
        self.lookup = NhsNumberLookup(key=derive_key(wrapping_key, "nhs-number lookup"))
        self.cipher = PersonalDataCipher(self.keys)

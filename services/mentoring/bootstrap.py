"""The mentoring service's composition root."""

from __future__ import annotations

from typing import Final

from services.mentoring.adapters.tables import metadata
from shared.http import Authorizer
from shared.runtime import open_database, token_authority
from shared.settings import PlatformSettings

SERVICE: Final = "mentoring"


class MentoringService:
    """Everything the mentoring API and worker need."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.database = open_database(SERVICE, metadata, settings)
        self.authority = token_authority(settings)
        self.authorizer = Authorizer(self.authority)

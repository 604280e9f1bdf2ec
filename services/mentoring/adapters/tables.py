"""The mentoring service's tables (the outbox and inbox so far)."""

from __future__ import annotations

from shared.db import service_metadata

metadata = service_metadata()

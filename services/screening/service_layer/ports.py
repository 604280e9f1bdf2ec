"""What screening's use cases need of the consent service, besides registering people and
live data keys (``shared.consent_client.Registry`` and ``LiveKeys``). The ``ConsentClient`` is
the adapter of each; the unit tests' ``FakeConsent`` stands in for all of them."""

from __future__ import annotations

from typing import Any, Protocol

from shared.auth import Principal
from shared.events.consent import SafeContact


class AuditTrail(Protocol):
    """The central audit trail: every read of identifiable data, allowed or refused."""

    def audit(self, action: str, subject_id: str | None, caller: Principal | None,
              **detail: Any) -> None:
        """Append an entry as ``caller``; raises ``KeyStoreUnavailable`` if it cannot."""
        ...


class SafeguardingRegistry(Protocol):
    """What screening asks the consent service for its safeguarding records."""

    def safeguarding_pseudonym(self, subject_id: str) -> str | None:
        """The keyed pseudonym linking the person's safeguarding records across
        re-registration; raises ``KeyShredded`` or ``KeyStoreUnavailable``."""
        ...

    def update_safe_contact(self, subject_id: str, contact: SafeContact,
                            caller: Principal) -> None:
        """Record the person's current safe contact, so every holder gets it."""
        ...

"""What mentoring's use cases ask of the world outside its database: the consent service
(registering people, their consent state, referral relationships, the audit trail,
safeguarding pseudonyms and safe contact) and its data keys read live."""

from __future__ import annotations

from typing import Any, Protocol

from shared.auth import Principal
from shared.consent_client import ConsentState, LiveKeys, Registry
from shared.events.consent import SafeContact

__all__ = ["AuditTrail", "Consent", "LiveKeys", "SafeguardingRegistry"]


class SafeguardingRegistry(Protocol):
    """What mentoring asks consent about a person's safeguarding records."""

    def safeguarding_pseudonym(self, subject_id: str) -> str | None:
        """The person's keyed safeguarding pseudonym (``KeyShredded`` once erased)."""

    def update_safe_contact(self, subject_id: str, contact: SafeContact,
                            caller: Principal) -> None:
        """Record the current safe contact, for every holder to hear."""


class AuditTrail(Protocol):
    """The central audit trail (kept by the consent service)."""

    def audit(self, action: str, subject_id: str | None, caller: Principal | None,
              **detail: Any) -> None:
        """Append an entry about ``subject_id`` (None: no one may be named) by ``caller``."""


class Consent(Registry, SafeguardingRegistry, AuditTrail, Protocol):
    """The consent service as mentoring's use cases call it (``ConsentClient``)."""

    def consents(self, subject_id: str, holder_org: str) -> ConsentState:
        """``holder_org``'s consents for the person, and whether it holds them."""

    def establish_referral(self, subject_id: str, to_org: str, caller: Principal) -> None:
        """Give ``to_org`` a relationship with the person (``SharingRequired`` unless the
        caller's organisation's partner-sharing names it)."""

"""The reporting service's composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.reporting.adapters.tables import metadata
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules
from services.reporting.service_layer.sessions import DashboardSessions
from shared.crypto import load_key
from shared.http import Authorizer
from shared.runtime import open_database, token_verifier
from shared.settings import PlatformSettings

SERVICE: Final = "reporting"


MIN_PEOPLE_TO_CHANGE_IN_PRODUCTION = 10


class ReportingSettings(BaseSettings):
    """``PEERLINK_REPORTING_*``: release cadence, disclosure thresholds, dashboard sessions."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_REPORTING_", extra="ignore")

    release_seconds: float = Field(default=5.0, gt=0)
    suppress_upto: int = Field(default=7, ge=0)
    round_to: int = Field(default=5, ge=1)
    people_to_change: int = Field(
        default=10, ge=1, description="K: people who must enter or leave a published figure "
        f"before it changes (the release rule); at least {MIN_PEOPLE_TO_CHANGE_IN_PRODUCTION} "
        "in production, 1 (no protection) only for tests of the pipeline")
    releases_kept: int = Field(default=100, ge=1)
    meaningful_swemwbs_change: float = Field(default=3.0, gt=0,
                                             description="metric points (Shah et al. 2018)")
    min_people_for_mean: int = Field(default=30, ge=1)
    consent_model: Literal["opt-out", "opt-in"] = Field(
        default="opt-out", description="opt-out: everyone screened until evaluation is "
        "withdrawn (like the National Data Opt-out); opt-in: only evaluation consent")
    session_seconds: int = Field(
        default=8 * 3600, ge=1, description="how long a dashboard sign-in lasts at most (it "
        "also ends when the token it was opened with expires)")


class ResearchSettings(BaseSettings):
    """``PEERLINK_RESEARCH_*``: the study's pseudonym key and its sponsoring Trust."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_RESEARCH_", extra="ignore")

    pseudonym_key: SecretStr | None = Field(
        default=None, description="the study pseudonym's key, 32 bytes base64 (required in "
        "production; a new key makes new pseudonyms)")
    pseudonym_key_file: Path | None = Field(default=None,
                                            description="a file holding that key")
    sponsor: str | None = Field(default=None, description="the sponsoring Trust's "
                                "organisation (default: the configured NHS Trust)")


def research_sponsor(settings: PlatformSettings, research: ResearchSettings) -> str | None:
    """The sponsoring Trust: configured, else the only configured NHS Trust (None if not one)."""
    if research.sponsor is not None:
        kind = settings.organisations.get(research.sponsor)
        if kind is None or kind.kind != "nhs-trust":
            raise ValueError("PEERLINK_RESEARCH_SPONSOR must be a configured NHS Trust")
        return research.sponsor
    trusts = [org for org, o in settings.organisations.items() if o.kind == "nhs-trust"]
    return trusts[0] if len(trusts) == 1 else None


def research_key(settings: PlatformSettings, research: ResearchSettings) -> bytes:
    """The study pseudonym's key: configured, or (never in production) a development key file
    under var/. Only the API holds it: the worker never makes a pseudonym."""
    configured = research.pseudonym_key.get_secret_value() if research.pseudonym_key else None
    return load_key(configured, research.pseudonym_key_file,
                    settings.var_dir / "development-research-pseudonym.key",
                    production=settings.env == "production")


class ReportingAdapters:
    """The adapters the reporting API and worker hand to the use cases, built from the
    process's settings: the read model's database, token checking (public keys only: reporting
    calls no other service and holds no credential; its one key is the study pseudonym's), the
    dashboard sessions store, the disclosure and outcome rules from ``ReportingSettings``, and
    the research sponsor."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.reporting = ReportingSettings()
        if settings.env == "production" and \
                self.reporting.people_to_change < MIN_PEOPLE_TO_CHANGE_IN_PRODUCTION:
            raise ValueError(
                "PEERLINK_REPORTING_PEOPLE_TO_CHANGE must be at least "
                f"{MIN_PEOPLE_TO_CHANGE_IN_PRODUCTION} in production: below it, consecutive "
                "releases can be subtracted down to one person")
        self.policy = DisclosurePolicy(self.reporting.suppress_upto, self.reporting.round_to,
                                       self.reporting.people_to_change)
        self.outcome_rules = OutcomeRules(self.reporting.meaningful_swemwbs_change,
                                          self.reporting.min_people_for_mean)
        self.database = open_database(SERVICE, metadata, settings)
        self.verifier = token_verifier(settings)
        self.authorizer = Authorizer(self.verifier)
        self.research = ResearchSettings()
        self.research_sponsor = research_sponsor(settings, self.research)
        if self.research_sponsor is None and settings.env == "production":
            raise ValueError("PEERLINK_RESEARCH_SPONSOR must name the NHS Trust sponsoring "
                             "the study when more than one is configured")
        self.sessions = DashboardSessions(
            self.database, self.reporting.session_seconds,
            {org: organisation.kind for org, organisation in settings.organisations.items()})

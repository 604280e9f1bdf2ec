"""Settings from ``PEERLINK_*`` environment variables (pydantic-settings).

Platform-wide settings use the ``PEERLINK_`` prefix; a service's own settings use
``PEERLINK_<SERVICE>_`` so that one service's variables cannot leak into another's.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

API_PORTS = {"screening": 8101, "consent": 8102, "mentoring": 8103, "reporting": 8104}
ISSUER_PORT = 8100
WORKER_PORTS = {"screening": 8201, "consent": 8202, "mentoring": 8203, "reporting": 8204}


class Organisation(BaseSettings):
    """A participating organisation."""

    kind: Literal["nhs-trust", "dva-partner"]
    name: str


def _development_organisations() -> dict[str, Organisation]:
    return {
        "trust": Organisation(kind="nhs-trust", name="Mental health NHS Trust"),
        "partner-a": Organisation(kind="dva-partner", name="DVA partner A"),
        "partner-b": Organisation(kind="dva-partner", name="DVA partner B"),
    }


class PlatformSettings(BaseSettings):
    """Settings every Peerlink process shares."""

    model_config = SettingsConfigDict(env_prefix="PEERLINK_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = \
        "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None
    topic_partitions: int = Field(default=6, ge=1, le=1000)
    topic_replication: int = Field(default=1, ge=1, le=5)
    broker_session_timeout_seconds: float = Field(default=6.0, gt=0)
    var_dir: Path = Path("var")
    http_host: str = "127.0.0.1"
    worker_host: str = "127.0.0.1"
    jwt_issuer: str = Field(default="peerlink", description="the tokens' iss, checked")
    jwt_jwks_file: Path | None = Field(
        default=None, description="public keys to verify tokens (default var/keys/jwks.json, "
        "written by the development issuer)")
    jwt_jwks_url: str | None = Field(
        default=None, description="the identity provider's JWKS (production)")
    jwks_refetch_floor_seconds: float = Field(default=30.0, ge=0)
    token_lifetime_seconds: int = Field(default=8 * 3600, gt=0,
                                        description="people's tokens the development issuer "
                                        "mints")
    token_max_lifetime_seconds: int = Field(default=12 * 3600, gt=0)
    service_token_max_lifetime_seconds: int = Field(default=15 * 60, gt=0)
    token_url: str | None = Field(
        default=None, description="OAuth 2.0 token endpoint for service tokens (production: "
        "the identity provider's; default the development issuer)")
    issuer_url: str | None = None
    organisations: dict[str, Organisation] = Field(default_factory=_development_organisations)
    port_offset: int = Field(default=0, ge=0, le=50000,
                             description="added to every default port (parallel test runs)")
    consent_url: str | None = None
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    data_key_cache_seconds: float = Field(
        default=5.0, ge=0, le=30, description="how long a data key fetched for reading is "
        "cached; writes always ask the consent service, so an erased person's key answers "
        "410 at once")
    sensitive_topic_retention_days: int = Field(
        default=7, ge=1, le=30, description="retention of partner.<org>.inbound and "
        "deadletter.<service> topics, which may hold personal data as it arrived")
    cascade_deadline_seconds: float = Field(
        default=60.0, gt=0, description="how long services have to acknowledge a withdrawal")
    outbox_poll_seconds: float = Field(default=0.2, gt=0)
    consumer_batch_records: int = Field(
        default=200, ge=1, le=1000,
        description="records a batching consumer applies in one transaction, at most (those "
        "already waiting; it never waits to fill a batch)")
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _identity_provider_over_https(self) -> PlatformSettings:
        """In production the JWKS and the token endpoint are fetched over HTTPS only: a key
        set or a service token that anyone on the path could replace is no proof at all."""
        if self.env == "production":
            for name in ("jwt_jwks_url", "token_url"):
                value = getattr(self, name)
                if value is not None and not value.startswith("https://"):
                    raise ValueError(f"{name} must be an https:// URL in production")
        return self

    def sensitive_topic_retention_ms(self) -> int:
        """``sensitive_topic_retention_days`` in milliseconds (Kafka's ``retention.ms``)."""
        return self.sensitive_topic_retention_days * 24 * 3600 * 1000

    def api_port(self, service: str) -> int:
        """The HTTP API port of a service."""
        return API_PORTS[service] + self.port_offset

    def worker_port(self, service: str) -> int:
        """The stream worker's web port (health, readiness, metrics) of a service."""
        return WORKER_PORTS[service] + self.port_offset

    def consent_base_url(self) -> str:
        """Where the consent service's API answers."""
        return self.consent_url or f"http://127.0.0.1:{self.api_port('consent')}"

    def issuer_port(self) -> int:
        """The development issuer's port."""
        return ISSUER_PORT + self.port_offset

    def issuer_base_url(self) -> str:
        """Where the development issuer answers."""
        return self.issuer_url or f"http://127.0.0.1:{self.issuer_port()}"

    def token_endpoint(self) -> str:
        """Where services obtain their tokens (client-credentials grant)."""
        if self.token_url:
            return self.token_url
        if self.env == "production":
            raise ValueError("PEERLINK_TOKEN_URL must be set in production (the identity "
                             "provider's token endpoint)")
        return f"{self.issuer_base_url()}/oauth/token"

    def development_keys_dir(self) -> Path:
        """Where the development issuer keeps its key, JWKS and client secrets."""
        return self.var_dir / "keys"

    def jwks_file(self) -> Path:
        """The JWKS file verifiers read when no URL is configured."""
        if self.jwt_jwks_file is not None:
            return self.jwt_jwks_file
        if self.env == "production":
            raise ValueError("PEERLINK_JWT_JWKS_URL (or PEERLINK_JWT_JWKS_FILE) must be set in "
                             "production")
        return self.development_keys_dir() / "jwks.json"

    def database_url(self, service: str) -> str:
        """``PEERLINK_<SERVICE>_DATABASE_URL``, else a SQLite file under ``var/``."""
        return ServiceDatabaseSettings.for_service(service).database_url or (
            f"sqlite:///{(self.var_dir / f'{service}.db').resolve()}"
        )


_Scoped = TypeVar("_Scoped", bound=BaseSettings)


def _scoped(cls: type[_Scoped], service: str) -> _Scoped:
    """``cls`` read from the service's own variables only (``PEERLINK_<SERVICE>_...``)."""
    scoped = type(f"{service.title()}{cls.__name__}", (cls,), {
        "model_config": SettingsConfigDict(env_prefix=f"PEERLINK_{service.upper()}_",
                                           extra="ignore"),
    })
    return scoped()  # type: ignore[no-any-return]


class ServiceClientSettings(BaseSettings):
    """``PEERLINK_<SERVICE>_CLIENT_ID`` and ``_CLIENT_SECRET_FILE``: a calling service's own
    credential at the issuer (client-credentials grant)."""

    client_id: str | None = None
    client_secret_file: Path | None = None

    @classmethod
    def for_service(cls, service: str) -> ServiceClientSettings:
        """Read the service's own variables only."""
        return _scoped(cls, service)


class DeadLetterKeySettings(BaseSettings):
    """``PEERLINK_<SERVICE>_DEADLETTER_KEY`` or ``_DEADLETTER_KEY_FILE``: the AES-256 key (base64)
    that seals the values a service dead-letters (required in production)."""

    deadletter_key: SecretStr | None = None
    deadletter_key_file: Path | None = None

    @classmethod
    def for_service(cls, service: str) -> DeadLetterKeySettings:
        """Read the service's own variables only."""
        return _scoped(cls, service)


class ServiceDatabaseSettings(BaseSettings):
    """One service's database URL, read with that service's own prefix."""

    database_url: str | None = None

    @classmethod
    def for_service(cls, service: str) -> ServiceDatabaseSettings:
        """Read ``PEERLINK_<SERVICE>_DATABASE_URL``."""
        return _scoped(cls, service)


@lru_cache(maxsize=1)
def platform_settings() -> PlatformSettings:
    """The process's platform settings, read once."""
    return PlatformSettings()

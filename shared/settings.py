"""Settings from ``PEERLINK_*`` environment variables (pydantic-settings).

Platform-wide settings use the ``PEERLINK_`` prefix; a service's own settings use
``PEERLINK_<SERVICE>_`` so that one service's variables cannot leak into another's.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_JWT_SECRET = "peerlink-development-only-secret-change-me"  # noqa: S105
API_PORTS = {"screening": 8101, "consent": 8102, "mentoring": 8103, "reporting": 8104}
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
    jwt_secret: SecretStr | None = None
    jwt_secret_file: Path | None = None
    jwt_issuer: str = "peerlink"
    token_lifetime_seconds: int = Field(default=8 * 3600, gt=0)
    organisations: dict[str, Organisation] = Field(default_factory=_development_organisations)
    port_offset: int = Field(default=0, ge=0, le=50000,
                             description="added to every default port (parallel test runs)")
    consent_url: str | None = None
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    data_key_cache_seconds: float = Field(default=30.0, ge=0, le=30)
    cascade_deadline_seconds: float = Field(
        default=60.0, gt=0, description="how long services have to acknowledge a withdrawal")
    outbox_poll_seconds: float = Field(default=0.2, gt=0)
    log_level: str = "INFO"

    def api_port(self, service: str) -> int:
        """The HTTP API port of a service."""
        return API_PORTS[service] + self.port_offset

    def worker_port(self, service: str) -> int:
        """The stream worker's web port (health, readiness, metrics) of a service."""
        return WORKER_PORTS[service] + self.port_offset

    def consent_base_url(self) -> str:
        """Where the consent service's API answers."""
        return self.consent_url or f"http://127.0.0.1:{self.api_port('consent')}"

    def signing_secret(self) -> str:
        """The JWT signing secret: from a file, the environment, or the development default."""
        if self.jwt_secret_file is not None:
            return self.jwt_secret_file.read_text().strip()
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.env == "production":
            raise ValueError("PEERLINK_JWT_SECRET_FILE must be set in production")
        return DEVELOPMENT_JWT_SECRET

    def database_url(self, service: str) -> str:
        """``PEERLINK_<SERVICE>_DATABASE_URL``, else a SQLite file under ``var/``."""
        return ServiceDatabaseSettings.for_service(service).database_url or (
            f"sqlite:///{(self.var_dir / f'{service}.db').resolve()}"
        )


class ServiceDatabaseSettings(BaseSettings):
    """One service's database URL, read with that service's own prefix."""

    database_url: str | None = None

    @classmethod
    def for_service(cls, service: str) -> ServiceDatabaseSettings:
        """Read ``PEERLINK_<SERVICE>_DATABASE_URL``."""
        prefix = f"PEERLINK_{service.upper()}_"
        scoped = type(f"{service.title()}DatabaseSettings", (cls,), {
            "model_config": SettingsConfigDict(env_prefix=prefix, extra="ignore"),
        })
        return scoped()  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def platform_settings() -> PlatformSettings:
    """The process's platform settings, read once."""
    return PlatformSettings()

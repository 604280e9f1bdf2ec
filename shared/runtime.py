"""Composition helpers every service's ``bootstrap`` uses to wire real adapters."""

from __future__ import annotations

from sqlalchemy import MetaData

from shared.auth import JwksFile, JwksUrl, KeySet, TokenVerifier
from shared.consent_client import ConsentClient
from shared.crypto import CachingKeyStore, load_key
from shared.db import Database
from shared.kafka.client import client_options
from shared.kafka.consumer import DeadLetterSink
from shared.kafka.deadletters import DeadLetterCipher
from shared.kafka.outbox import kafka_relay
from shared.kafka.producer import KafkaEventProducer, RenewingProducer
from shared.kafka.topics import deadletter_topic
from shared.service_tokens import ClientCredentials
from shared.settings import DeadLetterKeySettings, PlatformSettings, ServiceClientSettings
from shared.stream import StreamWorker, faust_app


def token_verifier(settings: PlatformSettings) -> TokenVerifier:
    """Verification with public keys only: the identity provider's JWKS URL, else a JWKS file
    (in development the one the development issuer writes under var/keys)."""
    keys: KeySet = (JwksUrl(settings.jwt_jwks_url, settings.jwks_refetch_floor_seconds)
                    if settings.jwt_jwks_url else JwksFile(settings.jwks_file()))
    return TokenVerifier(keys, {org: o.kind for org, o in settings.organisations.items()},
                         settings.jwt_issuer, settings.token_max_lifetime_seconds,
                         settings.service_token_max_lifetime_seconds)


def service_credentials(service: str, settings: PlatformSettings) -> ClientCredentials:
    """A calling service's own credential: ``PEERLINK_<SERVICE>_CLIENT_SECRET_FILE`` (in
    development the secret the development issuer wrote for it) at ``PEERLINK_TOKEN_URL``."""
    client = ServiceClientSettings.for_service(service)
    secret_file = client.client_secret_file
    if secret_file is None:
        if settings.env == "production":
            raise ValueError(f"PEERLINK_{service.upper()}_CLIENT_SECRET_FILE must be set in "
                             "production")
        secret_file = settings.development_keys_dir() / "clients" / f"{service}.secret"
    return ClientCredentials(service, settings.token_endpoint(), secret_file,
                             client.client_id)


def open_database(service: str, metadata: MetaData, settings: PlatformSettings) -> Database:
    """The service's database (SQLite under var/ unless a URL is configured)."""
    return Database(settings.database_url(service), metadata)


def consent_keys(client: ConsentClient, settings: PlatformSettings) -> CachingKeyStore:
    """Data keys from the consent service, cached for reading for
    ``PEERLINK_DATA_KEY_CACHE_SECONDS`` (5, at most 30); sealing always asks consent."""
    return CachingKeyStore(client, settings.data_key_cache_seconds)


def deadletter_cipher(service: str, settings: PlatformSettings) -> DeadLetterCipher:
    """The cipher of a service's dead letters: ``PEERLINK_<SERVICE>_DEADLETTER_KEY`` or
    ``_DEADLETTER_KEY_FILE`` (required in production), else a development key under var/."""
    keys = DeadLetterKeySettings.for_service(service)
    return DeadLetterCipher(load_key(
        keys.deadletter_key.get_secret_value() if keys.deadletter_key else None,
        keys.deadletter_key_file, settings.var_dir / f"development-{service}-deadletter.key",
        production=settings.env == "production"))


class WorkerPlumbing:
    """A worker's producer, outbox relay (with a producer of its own) and dead-letter sink."""

    def __init__(self, service: str, database: Database, settings: PlatformSettings) -> None:
        self.producer = RenewingProducer(lambda: KafkaEventProducer(
            settings.kafka_bootstrap, f"peerlink-{service}", **client_options(settings)))
        self.relay = kafka_relay(service, database, settings.kafka_bootstrap,
                                 **client_options(settings))
        self.deadletters = DeadLetterSink(service, deadletter_topic(service), self.producer,
                                          deadletter_cipher(service, settings))


def service_worker(service: str, database: Database, settings: PlatformSettings
                   ) -> tuple[StreamWorker, WorkerPlumbing]:
    """A service's stream worker with its outbox relay running: how every worker starts."""
    plumbing = WorkerPlumbing(service, database, settings)
    worker = StreamWorker(service, faust_app(f"peerlink-{service}", service, settings),
                          readiness=[database.ping],
                          batch_records=settings.consumer_batch_records)
    worker.relay(plumbing.relay, settings.outbox_poll_seconds)
    return worker, plumbing


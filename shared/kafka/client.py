"""How every Kafka client connects: plain on a development broker, SASL/SCRAM and TLS where
the cluster requires it (``PEERLINK_KAFKA_SECURITY_PROTOCOL`` and friends).

The password is read from a file, never from the environment.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from shared.settings import PlatformSettings


class KafkaSecurityMisconfigured(ValueError):
    """A security protocol without the settings it needs (names the setting)."""


def _password(settings: PlatformSettings) -> str:
    if settings.kafka_sasl_username is None or settings.kafka_sasl_password_file is None:
        raise KafkaSecurityMisconfigured(
            "PEERLINK_KAFKA_SASL_USERNAME and PEERLINK_KAFKA_SASL_PASSWORD_FILE are required "
            f"with PEERLINK_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}")
    return settings.kafka_sasl_password_file.read_text().strip()


def client_options(settings: PlatformSettings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's producer, consumer and admin client."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL") and settings.kafka_ssl_cafile is not None:
        options["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    if protocol.startswith("SASL_"):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=_password(settings))
    return options


def faust_credentials(settings: PlatformSettings) -> faust.SASLCredentials | \
        faust.SSLCredentials | None:
    """The faust (aiokafka) equivalent of ``client_options``."""
    protocol = settings.kafka_security_protocol
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        context = ssl.create_default_context(cafile=cafile)
    if protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username, password=_password(settings),
            mechanism=settings.kafka_sasl_mechanism, ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None

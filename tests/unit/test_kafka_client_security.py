"""Kafka client security settings: plain for development, SASL/SCRAM over TLS in production."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from shared.kafka.client import KafkaSecurityMisconfigured, client_options, faust_credentials
from shared.settings import PlatformSettings


def test_a_development_broker_is_plain() -> None:
    settings = PlatformSettings()
    assert client_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


def test_sasl_over_tls_reads_the_password_from_its_file(tmp_path: Path) -> None:
    password = tmp_path / "kafka_sasl_password"
    password.write_text("s3cret-scram\n")
    settings = PlatformSettings(kafka_security_protocol="SASL_SSL",
                                kafka_sasl_username="svc-screening",
                                kafka_sasl_password_file=password)

    assert client_options(settings) == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc-screening", "sasl_plain_password": "s3cret-scram"}
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "svc-screening"
    assert credentials.ssl_context is not None


@pytest.mark.parametrize("missing", ["kafka_sasl_username", "kafka_sasl_password_file"])
def test_sasl_without_credentials_names_what_is_missing(tmp_path: Path, missing: str) -> None:
    password = tmp_path / "pw"
    password.write_text("x")
    values = {"kafka_sasl_username": "svc", "kafka_sasl_password_file": password}
    values[missing] = None
    settings = PlatformSettings(kafka_security_protocol="SASL_SSL", **values)  # type: ignore[arg-type]
    with pytest.raises(KafkaSecurityMisconfigured, match="PEERLINK_KAFKA_SASL_USERNAME"):
        client_options(settings)


def test_tls_alone_gives_an_ssl_context() -> None:
    settings = PlatformSettings(kafka_security_protocol="SSL")
    assert client_options(settings) == {"security_protocol": "SSL"}
    assert isinstance(faust_credentials(settings), faust.SSLCredentials)

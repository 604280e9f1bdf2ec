"""Platform settings that would make tokens no proof are refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import PlatformSettings

IDP = "idp.example.org/realms/peerlink/protocol/openid-connect"


@pytest.mark.parametrize("field", ["jwt_jwks_url", "token_url"])
@pytest.mark.parametrize("url", [f"http://{IDP}/certs", f"{IDP}/certs", "ftp://idp/certs"])
def test_production_fetches_keys_and_service_tokens_over_https_only(field: str,
                                                                    url: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} must be an https:// URL"):
        PlatformSettings(env="production", **{field: url})  # type: ignore[arg-type]


@pytest.mark.parametrize(("env", "url"), [
    ("production", f"https://{IDP}/certs"),
    ("development", "http://127.0.0.1:8100/.well-known/jwks.json"),
    ("test", "http://issuer:8100/.well-known/jwks.json"),
])
def test_https_in_production_and_loopback_http_in_development_are_accepted(env: str,
                                                                         url: str) -> None:
    settings = PlatformSettings(env=env, jwt_jwks_url=url, token_url=url)
    assert (settings.jwt_jwks_url, settings.token_url) == (url, url)

"""Discovery documents: SMART's ``.well-known/smart-configuration`` and OpenID Connect's.

Every capability listed here is implemented and tested (tests/smart); nothing is
advertised ahead of the code.
"""

from __future__ import annotations

from typing import Any

from gateway.policy.scopes import NON_RESOURCE_SCOPES
from gateway.settings import Settings
from gateway.smart.tokens import issuer

GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
AUTH_METHODS = ["none", "client_secret_basic", "private_key_jwt"]
ASSERTION_ALGS = ["RS384", "ES384"]
CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-passthrough-banner",
    "context-ehr-patient",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]
SCOPES_SUPPORTED = sorted(
    {
        *(s for s in NON_RESOURCE_SCOPES if s not in ("launch/encounter", "profile")),
        "patient/*.rs",
        "patient/*.read",
        "patient/*.cruds",
        "user/*.rs",
        "user/*.read",
        "user/*.cruds",
        "system/*.rs",
        "system/*.cruds",
        "system/Observation.write",
        "system/Observation.c",
    }
)


def endpoints(settings: Settings) -> dict[str, str]:
    base = issuer(settings)
    return {
        "authorization_endpoint": base + "/oauth/authorize",
        "token_endpoint": base + "/oauth/token",
        "introspection_endpoint": base + "/oauth/introspect",
        "revocation_endpoint": base + "/oauth/revoke",
        "jwks_uri": base + "/.well-known/jwks.json",
    }


def smart_configuration(settings: Settings) -> dict[str, Any]:
    return {
        "issuer": issuer(settings),
        **endpoints(settings),
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(settings: Settings) -> dict[str, Any]:
    return {
        "issuer": issuer(settings),
        **endpoints(settings),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"],
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
    }


def security_extension(settings: Settings) -> dict[str, Any]:
    """The CapabilityStatement ``rest.security`` SMART extension (oauth-uris)."""
    urls = endpoints(settings)
    return {
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [
            {"url": "authorize", "valueUri": urls["authorization_endpoint"]},
            {"url": "token", "valueUri": urls["token_endpoint"]},
            {"url": "introspect", "valueUri": urls["introspection_endpoint"]},
            {"url": "revoke", "valueUri": urls["revocation_endpoint"]},
        ],
    }

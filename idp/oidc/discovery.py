"""Provider metadata (OpenID Connect Discovery 1.0, RFC 8414): only what is implemented."""

from __future__ import annotations

from idp.oidc.scopes import ACR_LOW, ACR_SUBSTANTIAL, SCOPE_CLAIMS, SUPPORTED_SCOPES

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
SIGNING_ALGS = ["RS256", "ES256"]


def provider_metadata(config) -> dict:
    issuer = config["ISSUER"]
    claims = sorted({c for values in SCOPE_CLAIMS.values() for c in values} | {"iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash"})
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/oauth2/authorize",
        "token_endpoint": issuer + "/oauth2/token",
        "userinfo_endpoint": issuer + "/oauth2/userinfo",
        "jwks_uri": issuer + "/oauth2/jwks",
        "end_session_endpoint": issuer + "/oauth2/logout",
        "introspection_endpoint": issuer + "/oauth2/introspect",
        "revocation_endpoint": issuer + "/oauth2/revoke",
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": SIGNING_ALGS,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS[:3],
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        # Only what a session can reach: high needs a phishing-resistant authenticator.
        "acr_values_supported": [ACR_LOW, ACR_SUBSTANTIAL],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": list(config["LANGUAGES"]),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    }

"""Rules of the relying-party registry: registration, secrets, redirect URI matching.

Services take plain values (`now`, `config`) and never read the request, so the CLI, the
admin console and the protocol adapter (idp/oidc, which wraps Client for Authlib) share them.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp.clients import cache as client_cache
from idp.clients.models import AuthMethod, Client, ClientStatus, ClientType, SubjectType
from idp.crypto import keyed_digest
from idp.errors import Conflict, InvalidFields, ValidationError
from idp.extensions import db

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SCOPES = ("openid", "profile", "email", "phone", "address", "national_id", "offline_access", "business", "legacy")
ACR_VALUES = ("urn:eid:loa:low", "urn:eid:loa:substantial", "urn:eid:loa:high")
ID_TOKEN_ALGS = ("RS256", "ES256")
SECRET_METHODS = (AuthMethod.SECRET_BASIC, AuthMethod.SECRET_POST)
# RFC 8252 §8.3: loopback IP literals only; "localhost" may resolve elsewhere.
LOOPBACK_HOSTS = ("127.0.0.1", "::1")

MAX_ACCESS_TOKEN_LIFETIME = 3600
MAX_ID_TOKEN_LIFETIME = 3600
MAX_REFRESH_TOKEN_LIFETIME = 30 * 86400
MAX_TEXT_LENGTH = 200  # name and agency columns
MAX_URI_LENGTH = 500  # the URI columns; redirect URIs get the same cap
SECRET_PURPOSE = "client-secret"  # the HMAC purpose label

# RFC 3986 unreserved characters: safe in URLs and in HTTP Basic credentials.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_REVERSE_DNS_SCHEME = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$")  # RFC 8252 §7.1
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_LOOPBACK_PORT = re.compile(r"^http://(127\.0\.0\.1|\[::1\])(?::([0-9]{1,5}))?(?=[/?]|$)")
# JWK members that only a private or symmetric key has.
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

# Fields update_client accepts: everything create_client takes but the id and the secret inputs.
UPDATABLE_FIELDS = frozenset(
    {
        "name", "agency", "client_type", "auth_method", "redirect_uris",
        "post_logout_redirect_uris", "backchannel_logout_uri", "grant_types", "scopes",
        "require_pkce", "subject_type", "sector_identifier", "min_acr",
        "id_token_signed_response_alg", "first_party", "jwks", "jwks_uri",
        "access_token_lifetime", "id_token_lifetime", "refresh_token_lifetime", "refresh_token_idle",
    }
)  # fmt: skip


# --- registration ------------------------------------------------------------------------


def create_client(
    *,
    name: str,
    agency: str,
    client_type: str = "confidential",
    auth_method: str | None = None,
    redirect_uris: Iterable[str],
    post_logout_redirect_uris: Iterable[str] = (),
    backchannel_logout_uri: str | None = None,
    grant_types: Iterable[str] = ("authorization_code", "refresh_token"),
    scopes: Iterable[str] = ("openid", "profile"),
    require_pkce: bool = True,
    subject_type: str = "public",
    sector_identifier: str | None = None,
    min_acr: str | None = None,
    id_token_signed_response_alg: str = "RS256",  # noqa: S107 -- an algorithm name
    first_party: bool = False,
    jwks: dict | None = None,
    jwks_uri: str | None = None,
    access_token_lifetime: int = 600,
    id_token_lifetime: int = 600,
    refresh_token_lifetime: int = 86400,
    refresh_token_idle: int = 43200,
    client_id: str | None = None,
    config,
    now: datetime,
) -> tuple[Client, str | None]:
    """Validate and register a client (committed); returns it and its secret, shown once.

    Only confidential clients authenticating with client_secret_basic/post get a secret;
    otherwise the second item is None. Raises InvalidFields naming every bad field, or
    Conflict when the client id is taken.
    """
    values = _validate(
        {
            "name": name,
            "agency": agency,
            "client_type": client_type,
            "auth_method": auth_method,
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": post_logout_redirect_uris,
            "backchannel_logout_uri": backchannel_logout_uri,
            "grant_types": grant_types,
            "scopes": scopes,
            "require_pkce": require_pkce,
            "subject_type": subject_type,
            "sector_identifier": sector_identifier,
            "min_acr": min_acr,
            "id_token_signed_response_alg": id_token_signed_response_alg,
            "first_party": first_party,
            "jwks": jwks,
            "jwks_uri": jwks_uri,
            "access_token_lifetime": access_token_lifetime,
            "id_token_lifetime": id_token_lifetime,
            "refresh_token_lifetime": refresh_token_lifetime,
            "refresh_token_idle": refresh_token_idle,
        }
    )
    if client_id is None:
        client_id = secrets.token_urlsafe(24)
    elif not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise ValidationError(
            _l("A client id has 1 to 64 characters: letters, digits, '.', '_', '~' or '-'."),
            field="client_id",
        )
    elif get_client(client_id) is not None:
        raise Conflict(_l("This client id is already registered."), field="client_id")

    client = Client(
        client_id=client_id, status=ClientStatus.ACTIVE, created_at=now, updated_at=now, **values
    )
    secret = None
    if uses_secret(client):
        secret = _new_secret(client, config=config, now=now)
    db.session.add(client)
    try:
        client_cache.commit_change()
    except IntegrityError:
        # Another registration took the id between the check and the insert.
        db.session.rollback()
        raise Conflict(_l("This client id is already registered."), field="client_id") from None
    return client, secret


def update_client(client: Client, *, now: datetime, **fields) -> Client:
    """Change registered fields, validated like create_client (committed).

    Changing client_type without auth_method picks the new type's default method. A method
    without a secret drops the stored digest; a move to a secret method leaves the client
    without a secret (check_secret fails) until rotate_secret issues one.
    """
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"update_client() cannot change: {', '.join(sorted(unknown))}")
    values = {name: getattr(client, name) for name in UPDATABLE_FIELDS}
    if (
        "client_type" in fields
        and "auth_method" not in fields
        and fields["client_type"] != client.client_type
    ):
        values["auth_method"] = None
    if fields.get("subject_type") == SubjectType.PUBLIC and "sector_identifier" not in fields:
        values["sector_identifier"] = None
    values.update(fields)
    clean = _validate(values)
    for name, value in clean.items():
        setattr(client, name, value)
    if not uses_secret(client):
        client.secret_digest = None
        client.secret_rotated_at = None
    client.updated_at = now
    client_cache.commit_change()
    return client


def disable_client(client: Client, *, now: datetime) -> Client:
    """Stop the client: the protocol adapter refuses inactive clients everywhere."""
    client.status = ClientStatus.DISABLED
    client.updated_at = now
    client_cache.commit_change()
    return client


def enable_client(client: Client, *, now: datetime) -> Client:
    client.status = ClientStatus.ACTIVE
    client.updated_at = now
    client_cache.commit_change()
    return client


def get_client(client_id: str) -> Client | None:
    if not isinstance(client_id, str) or not client_id:
        return None
    return db.session.scalar(select(Client).where(Client.client_id == client_id))


def list_clients() -> list[Client]:
    return list(db.session.scalars(select(Client).order_by(Client.name, Client.client_id)))


# --- secrets -----------------------------------------------------------------------------


def uses_secret(client: Client) -> bool:
    """Whether the client authenticates with a shared secret."""
    return client.client_type == ClientType.CONFIDENTIAL and client.auth_method in SECRET_METHODS


def rotate_secret(client: Client, *, config, now: datetime) -> str:
    """Issue a new secret (committed); the old one stops working at once. Shown once."""
    if not uses_secret(client):
        raise ValidationError(
            _l(
                "This client does not authenticate with a secret (method %(method)s).",
                method=str(client.auth_method),
            ),
            field="auth_method",
        )
    secret = _new_secret(client, config=config, now=now)
    client.updated_at = now
    client_cache.commit_change()
    return secret


def check_secret(client: Client, secret: str | None, config) -> bool:
    """Constant-time comparison of the presented secret's digest with the stored one."""
    if not client.secret_digest or not isinstance(secret, str) or not secret:
        return False
    return hmac.compare_digest(_digest(secret, config), client.secret_digest)


def _new_secret(client: Client, *, config, now: datetime) -> str:
    # 32 random bytes, URL-safe base64: random enough that a fast keyed hash suffices.
    secret = secrets.token_urlsafe(32)
    client.secret_digest = _digest(secret, config)
    client.secret_rotated_at = now
    return secret


def _digest(secret: str, config) -> str:
    key = config.get("CLIENT_SECRET_KEY")
    if not key:
        # A configuration fault, not the caller's: never digest under an empty key.
        raise RuntimeError("CLIENT_SECRET_KEY is not configured")
    return keyed_digest(key, secret, purpose=SECRET_PURPOSE)


# --- redirect URI matching -----------------------------------------------------------------


def redirect_uri_matches(client: Client, uri: str | None) -> bool:
    """Exact string match; public clients' loopback http URIs match on any port (RFC 8252 §7.3)."""
    if not isinstance(uri, str) or not uri:
        return False
    registered = list(client.redirect_uris or [])
    if uri in registered:
        return True
    if not client.is_public:
        return False
    wanted = _without_loopback_port(uri)
    if wanted is None:
        return False
    return any(_without_loopback_port(r) == wanted for r in registered)


def post_logout_uri_matches(client: Client, uri: str | None) -> bool:
    """Exact string match only."""
    return isinstance(uri, str) and bool(uri) and uri in (client.post_logout_redirect_uris or [])


def _without_loopback_port(uri: str) -> str | None:
    """The URI with its port removed when it is http on a loopback IP literal, else None."""
    # Works on the raw string, so everything but the port must be byte-for-byte identical.
    m = _LOOPBACK_PORT.match(uri)
    if not m:
        return None
    if m.group(2) is not None and not 0 < int(m.group(2)) < 65536:
        return None
    return f"http://{m.group(1)}{uri[m.end() :]}"


# --- validation --------------------------------------------------------------------------


def _validate(v: dict) -> dict:
    """Check every field; return the values to store, or raise InvalidFields naming each bad one."""
    errors: dict = {}
    out: dict = {}

    out["name"] = _text(errors, "name", v["name"], _l("Enter the name of the service."))
    out["agency"] = _text(
        errors, "agency", v["agency"], _l("Enter the agency that runs the service.")
    )

    client_type = _enum_value(ClientType, v["client_type"])
    if client_type is None:
        errors["client_type"] = _l("The client type must be confidential or public.")
    out["client_type"] = client_type
    public = client_type == ClientType.PUBLIC

    method = v["auth_method"]
    if method is None and client_type is not None:
        method = AuthMethod.NONE if public else AuthMethod.SECRET_BASIC
    auth_method = _enum_value(AuthMethod, method)
    # With no valid type there is no default method; the client_type error says enough.
    if auth_method is None and method is not None:
        errors["auth_method"] = _l(
            "Unknown authentication method %(value)s: choose client_secret_basic, client_secret_post, "
            "private_key_jwt or none.",
            value=str(method),
        )
    elif public and auth_method != AuthMethod.NONE:
        errors["auth_method"] = _l(
            "A public client cannot keep a secret: its authentication method must be none."
        )
    elif client_type == ClientType.CONFIDENTIAL and auth_method == AuthMethod.NONE:
        errors["auth_method"] = _l(
            "A confidential client must authenticate: choose client_secret_basic, client_secret_post or "
            "private_key_jwt."
        )
    out["auth_method"] = auth_method

    out["require_pkce"] = bool(v["require_pkce"])
    if public and not out["require_pkce"]:
        errors["require_pkce"] = _l("A public client must always use PKCE.")

    out["jwks"], out["jwks_uri"] = _keys(errors, v["jwks"], v["jwks_uri"], auth_method)

    grants = _list(v["grant_types"])
    bad = [g for g in grants if g not in GRANT_TYPES]
    if not grants:
        errors["grant_types"] = _l("Choose at least one grant type.")
    elif bad:
        errors["grant_types"] = _l(
            "Unknown grant type %(value)s: choose from %(allowed)s.",
            value=str(bad[0]),
            allowed=", ".join(GRANT_TYPES),
        )
    elif public and "client_credentials" in grants:
        errors["grant_types"] = _l("A public client cannot use the client_credentials grant.")
    elif "refresh_token" in grants and "authorization_code" not in grants:
        errors["grant_types"] = _l("The refresh_token grant needs the authorization_code grant.")
    out["grant_types"] = grants

    scopes = _list(v["scopes"])
    bad = [s for s in scopes if s not in SCOPES]
    if not scopes:
        errors["scopes"] = _l("Choose at least one scope.")
    elif bad:
        errors["scopes"] = _l(
            "Unknown scope %(value)s: choose from %(allowed)s.",
            value=str(bad[0]),
            allowed=", ".join(SCOPES),
        )
    out["scopes"] = scopes

    # Custom schemes are for native apps, which are public clients (RFC 8252 §7.1).
    out["redirect_uris"] = _uris(
        errors, "redirect_uris", v["redirect_uris"], custom_scheme_ok=public
    )
    if (
        "authorization_code" in grants
        and not out["redirect_uris"]
        and "redirect_uris" not in errors
    ):
        errors["redirect_uris"] = _l(
            "The authorization_code grant needs at least one redirect URI."
        )
    out["post_logout_redirect_uris"] = _uris(
        errors, "post_logout_redirect_uris", v["post_logout_redirect_uris"], custom_scheme_ok=public
    )

    backchannel = v["backchannel_logout_uri"] or None
    if backchannel is not None:
        problem = _uri_problem(backchannel, custom_scheme_ok=False)
        if problem:
            errors["backchannel_logout_uri"] = problem
    out["backchannel_logout_uri"] = backchannel

    subject_type = _enum_value(SubjectType, v["subject_type"])
    if subject_type is None:
        errors["subject_type"] = _l("The subject type must be public or pairwise.")
    out["subject_type"] = subject_type
    out["sector_identifier"] = _sector(
        errors, subject_type, v["sector_identifier"], out["redirect_uris"]
    )

    min_acr = v["min_acr"] or None
    if min_acr is not None and min_acr not in ACR_VALUES:
        errors["min_acr"] = _l(
            "The minimum level must be one of %(allowed)s.", allowed=", ".join(ACR_VALUES)
        )
    out["min_acr"] = min_acr

    alg = v["id_token_signed_response_alg"]
    if alg not in ID_TOKEN_ALGS:
        errors["id_token_signed_response_alg"] = _l(
            "The ID token algorithm must be one of %(allowed)s.", allowed=", ".join(ID_TOKEN_ALGS)
        )
    out["id_token_signed_response_alg"] = alg

    out["first_party"] = bool(v["first_party"])

    out["access_token_lifetime"] = _lifetime(
        errors, "access_token_lifetime", v["access_token_lifetime"], MAX_ACCESS_TOKEN_LIFETIME
    )
    out["id_token_lifetime"] = _lifetime(
        errors, "id_token_lifetime", v["id_token_lifetime"], MAX_ID_TOKEN_LIFETIME
    )
    refresh = _lifetime(
        errors, "refresh_token_lifetime", v["refresh_token_lifetime"], MAX_REFRESH_TOKEN_LIFETIME
    )
    out["refresh_token_lifetime"] = refresh
    # The idle timeout cannot outlast the family's absolute lifetime.
    out["refresh_token_idle"] = _lifetime(
        errors, "refresh_token_idle", v["refresh_token_idle"], refresh or MAX_REFRESH_TOKEN_LIFETIME
    )

    if errors:
        raise InvalidFields(errors)
    return out


def _text(errors: dict, field: str, value, missing_message) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        errors[field] = missing_message
    elif len(text) > MAX_TEXT_LENGTH:
        errors[field] = _l("At most %(max)d characters.", max=MAX_TEXT_LENGTH)
    return text


def _enum_value(enum_cls, value):
    try:
        return enum_cls(value)
    except ValueError:
        return None


def _list(values) -> list:
    """A list without duplicates, in the given order; a lone string counts as one value."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return list(dict.fromkeys(values))


def _lifetime(errors: dict, field: str, value, maximum: int) -> int | None:
    # bool is an int subclass; True is no lifetime.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= maximum:
        errors[field] = _l("Enter a whole number of seconds from 1 to %(max)d.", max=maximum)
        return None
    return value


def _uris(errors: dict, field: str, values, *, custom_scheme_ok: bool) -> list[str]:
    uris = _list(values)
    for uri in uris:
        problem = _uri_problem(uri, custom_scheme_ok=custom_scheme_ok)
        if problem:
            errors[field] = problem
            break
    return uris


def _uri_problem(uri, *, custom_scheme_ok: bool):
    """Why uri cannot be registered as a redirect or logout URI, or None."""
    if not isinstance(uri, str) or not uri:
        return _l("Enter an absolute URI.")
    if len(uri) > MAX_URI_LENGTH:
        return _l("A URI has at most %(max)d characters.", max=MAX_URI_LENGTH)
    if _SPACE_OR_CONTROL.search(uri):
        return _l("%(uri)s contains spaces or control characters.", uri=uri)
    if "*" in uri:
        return _l("%(uri)s: wildcards are not allowed; register each URI exactly.", uri=uri)
    if "#" in uri:
        return _l("%(uri)s: a fragment (#) is not allowed.", uri=uri)
    scheme, colon, _ = uri.partition(":")
    if not colon or not _SCHEME.match(scheme):
        return _l(
            "%(uri)s is not an absolute URI (it must start with a lowercase scheme such as https:).",
            uri=uri,
        )
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        return _l("%(uri)s is not a valid URI.", uri=uri)
    if scheme in ("https", "http"):
        if not parts.hostname:
            return _l("%(uri)s has no host.", uri=uri)
        if "@" in parts.netloc:
            return _l("%(uri)s: a user name or password in the URI is not allowed.", uri=uri)
    if scheme == "https":
        return None
    if scheme == "http":
        if parts.hostname == "localhost":
            return _l(
                "%(uri)s: use http://127.0.0.1 or http://[::1] instead of localhost (RFC 8252).",
                uri=uri,
            )
        if parts.hostname not in LOOPBACK_HOSTS:
            return _l(
                "%(uri)s: plain http is allowed only on 127.0.0.1 or [::1]; use https.", uri=uri
            )
        return None
    if _REVERSE_DNS_SCHEME.match(scheme):
        if custom_scheme_ok:
            return None
        return _l(
            "%(uri)s: a custom scheme is allowed only for public (native app) clients.", uri=uri
        )
    return _l(
        "%(uri)s: use https, http on 127.0.0.1 or [::1], or for a native app a reverse domain name scheme "
        "(vn.gov.example.app:/callback).",
        uri=uri,
    )


def _bad_https_uri(uri) -> bool:
    if (
        not isinstance(uri, str)
        or len(uri) > MAX_URI_LENGTH
        or _SPACE_OR_CONTROL.search(uri)
        or "#" in uri
    ):
        return True
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        return True
    return parts.scheme != "https" or not parts.hostname or "@" in parts.netloc


def _keys(errors: dict, jwks, jwks_uri, auth_method) -> tuple[dict | None, str | None]:
    jwks = jwks or None
    jwks_uri = jwks_uri or None
    if jwks_uri is not None and _bad_https_uri(jwks_uri):
        errors["jwks_uri"] = _l("The JWKS URI must be an absolute https URL without a fragment.")
    if jwks is not None:
        problem = _jwks_problem(jwks)
        if problem:
            errors["jwks"] = problem
    if jwks is not None and jwks_uri is not None:
        # OIDC Dynamic Registration §2: one source of keys, never both.
        errors.setdefault("jwks_uri", _l("Give either a JWKS or a JWKS URI, not both."))
    if auth_method == AuthMethod.PRIVATE_KEY_JWT and jwks is None and jwks_uri is None:
        errors["jwks"] = _l(
            "private_key_jwt needs the client's public keys: a JWKS or an https JWKS URI."
        )
    return jwks, jwks_uri


def _jwks_problem(jwks):
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if (
        not isinstance(keys, list)
        or not keys
        or not all(isinstance(k, dict) and k.get("kty") for k in keys)
    ):
        return _l("The JWKS must be a JSON object with a non-empty list of keys, each with a kty.")
    if any(_PRIVATE_JWK_MEMBERS & set(k) for k in keys):
        return _l("The JWKS contains private or symmetric key material; register only public keys.")
    return None


def _sector(errors: dict, subject_type, value, redirect_uris: list[str]) -> str | None:
    """The host used for pairwise subjects: given, or the one host of the redirect URIs.

    Stored as the host alone (OIDC Core §8.1 uses only the host of a sector_identifier_uri).
    """
    value = value or None
    if subject_type != SubjectType.PAIRWISE:
        if value is not None:
            errors["sector_identifier"] = _l("Only a pairwise client has a sector identifier.")
        return None
    if value is not None:
        host = _sector_host(value)
        if host is None:
            errors["sector_identifier"] = _l(
                "The sector identifier must be a host name or an https URL."
            )
        return host
    # Only web URIs name a host; a custom-scheme URI leaves nothing to derive from.
    try:
        parts = [urlsplit(uri) for uri in redirect_uris]
    except (TypeError, ValueError):
        parts = []
    hosts = {p.hostname if p.scheme in ("https", "http") else None for p in parts}
    if len(hosts) == 1 and None not in hosts:
        return hosts.pop()
    errors["sector_identifier"] = _l(
        "A pairwise client whose redirect URIs do not share one host needs a sector identifier."
    )
    return None


def _sector_host(value) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text.startswith("https://"):
        if _bad_https_uri(text):
            return None
        host = urlsplit(text).hostname
    elif ":" in text or "/" in text:
        return None
    else:
        host = text
    if not host or len(host) > 255:
        return None
    if _HOSTNAME.match(host):
        return host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host

"""The relying-party registry: validation rules, secrets, redirect URI matching."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from flask_babel import force_locale

from idp.clients import services
from idp.clients.models import AuthMethod, Client, ClientStatus, ClientType, SubjectType
from idp.crypto import keyed_digest
from idp.errors import Conflict, InvalidFields, ValidationError
from idp.extensions import db

NOW = datetime(2026, 12, 1, 8, 0, 0)
RP = "https://dichvucong.example.vn/oidc/callback"
JWKS = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            "kid": "k1",
        }
    ]
}


@pytest.fixture(autouse=True)
def english(app_ctx):
    # Errors carry lazy messages; outside a request the app's locale selector cannot run.
    with force_locale("en"):
        yield


@pytest.fixture
def make(app_ctx):
    """create_client with working defaults; overrides per test."""

    def factory(**overrides):
        values = {
            "name": "Dịch vụ công tỉnh",
            "agency": "Văn phòng UBND tỉnh",
            "redirect_uris": [RP],
            "config": app_ctx.config,
            "now": NOW,
        }
        values.update(overrides)
        return services.create_client(**values)

    return factory


def refused(make, **overrides) -> dict:
    with pytest.raises(InvalidFields) as info:
        make(**overrides)
    db.session.rollback()
    return info.value.errors


def public(**overrides) -> dict:
    return {"client_type": "public", "redirect_uris": ["https://app.example.vn/cb"], **overrides}


# --- registration and secrets ------------------------------------------------------------


def test_confidential_client_gets_a_secret_shown_once_and_stored_as_a_digest(make, app_ctx):
    client, secret = make()
    assert client.client_type == ClientType.CONFIDENTIAL
    assert client.auth_method == AuthMethod.SECRET_BASIC
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert client.secret_digest != secret and secret not in client.secret_digest
    assert client.secret_digest == keyed_digest(
        app_ctx.config["CLIENT_SECRET_KEY"], secret, purpose="client-secret"
    )
    assert client.secret_rotated_at == NOW
    assert client.created_at == client.updated_at == NOW
    assert client.status == ClientStatus.ACTIVE and client.active

    # Committed: a fresh session finds it, and nothing stored holds the plain secret.
    db.session.remove()
    stored = services.get_client(client.client_id)
    assert stored is not None and stored.name == "Dịch vụ công tỉnh"
    assert secret not in repr({c.name: getattr(stored, c.name) for c in Client.__table__.columns})
    assert services.check_secret(stored, secret, app_ctx.config)


def test_defaults(make):
    client, _ = make()
    assert client.grant_types == ["authorization_code", "refresh_token"]
    assert client.scopes == ["openid", "profile"]
    assert client.require_pkce is True
    assert client.subject_type == SubjectType.PUBLIC and client.sector_identifier is None
    assert client.id_token_signed_response_alg == "RS256"
    assert (client.access_token_lifetime, client.id_token_lifetime) == (600, 600)
    assert (client.refresh_token_lifetime, client.refresh_token_idle) == (86400, 43200)
    assert client.first_party is False and client.min_acr is None


def test_generated_client_ids_are_url_safe_and_distinct(make):
    ids = {make()[0].client_id for _ in range(3)}
    assert len(ids) == 3
    assert all(len(i) >= 32 and services._CLIENT_ID.match(i) for i in ids)


def test_check_secret_refuses_wrong_empty_and_missing(make, app_ctx):
    client, secret = make()
    config = app_ctx.config
    assert services.check_secret(client, secret, config)
    assert not services.check_secret(client, secret + "x", config)
    assert not services.check_secret(client, secret.upper(), config)
    assert not services.check_secret(client, "", config)
    assert not services.check_secret(client, None, config)
    assert not services.check_secret(
        client, client.secret_digest, config
    )  # the digest is no password
    other, _ = make(client_type="public", redirect_uris=["https://app.example.vn/cb"])
    assert not services.check_secret(other, secret, config)


def test_the_digest_depends_on_the_server_key(make, app_ctx):
    client, secret = make()
    assert not services.check_secret(client, secret, {"CLIENT_SECRET_KEY": "another-key" * 4})
    with pytest.raises(RuntimeError):
        services.check_secret(client, secret, {"CLIENT_SECRET_KEY": ""})


def test_secret_post_gets_a_secret(make):
    client, secret = make(auth_method="client_secret_post")
    assert secret and client.auth_method == AuthMethod.SECRET_POST


@pytest.mark.parametrize(
    "overrides",
    [
        public(),
        {"auth_method": "private_key_jwt", "jwks": JWKS},
        {"auth_method": "private_key_jwt", "jwks_uri": "https://rp.example.vn/jwks.json"},
    ],
)
def test_clients_without_shared_secret_get_none(make, app_ctx, overrides):
    client, secret = make(**overrides)
    assert secret is None and client.secret_digest is None and client.secret_rotated_at is None
    assert not services.uses_secret(client)
    with pytest.raises(ValidationError) as info:
        services.rotate_secret(client, config=app_ctx.config, now=NOW)
    assert info.value.field == "auth_method"


def test_public_client_defaults_to_auth_method_none(make):
    client, _ = make(**public())
    assert client.auth_method == AuthMethod.NONE and client.is_public


def test_rotate_secret_invalidates_the_old_one(make, app_ctx):
    client, old = make()
    later = NOW + timedelta(days=90)
    new = services.rotate_secret(client, config=app_ctx.config, now=later)
    assert new != old
    client_id = client.client_id
    db.session.remove()
    client = services.get_client(client_id)
    assert services.check_secret(client, new, app_ctx.config)
    assert not services.check_secret(client, old, app_ctx.config)
    assert client.secret_rotated_at == later and client.updated_at == later


def test_disable_and_enable(make):
    client, _ = make()
    later = NOW + timedelta(hours=1)
    client_id = client.client_id
    services.disable_client(client, now=later)
    db.session.remove()
    client = services.get_client(client_id)
    assert (
        client.status == ClientStatus.DISABLED and not client.active and client.updated_at == later
    )
    services.enable_client(client, now=later + timedelta(hours=1))
    db.session.remove()
    assert services.get_client(client_id).active


def test_get_and_list(make):
    assert services.get_client("nobody") is None
    assert services.get_client("") is None
    assert services.get_client(None) is None
    make(name="Bravo")
    make(name="Alpha")
    assert [c.name for c in services.list_clients()] == ["Alpha", "Bravo"]


def test_chosen_client_id(make):
    client, _ = make(client_id="dichvucong.tinh-1")
    assert services.get_client("dichvucong.tinh-1") is client
    with pytest.raises(Conflict) as info:
        make(client_id="dichvucong.tinh-1")
    assert info.value.field == "client_id"


@pytest.mark.parametrize("client_id", ["", "a b", "a:b", "a/b", "x" * 65, "ứngdụng"])
def test_bad_client_id_refused(make, client_id):
    with pytest.raises(ValidationError) as info:
        make(client_id=client_id)
    assert info.value.field == "client_id"


# --- validation: one rule at a time ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"agency": ""}, "agency"),
        ({"agency": None}, "agency"),
        ({"client_type": "native"}, "client_type"),
        ({"client_type": None}, "client_type"),
        ({"auth_method": "tls_client_auth"}, "auth_method"),
        # Public clients cannot keep secrets, confidential ones must authenticate.
        (public(auth_method="client_secret_basic"), "auth_method"),
        (public(auth_method="private_key_jwt", jwks=JWKS), "auth_method"),
        ({"auth_method": "none"}, "auth_method"),
        (public(require_pkce=False), "require_pkce"),
        # private_key_jwt needs keys, from one https source, public only.
        ({"auth_method": "private_key_jwt"}, "jwks"),
        ({"auth_method": "private_key_jwt", "jwks_uri": "http://rp.example.vn/jwks"}, "jwks_uri"),
        (
            {"auth_method": "private_key_jwt", "jwks_uri": "https://rp.example.vn/jwks#k"},
            "jwks_uri",
        ),
        ({"auth_method": "private_key_jwt", "jwks_uri": "jwks.json"}, "jwks_uri"),
        (
            {
                "auth_method": "private_key_jwt",
                "jwks": JWKS,
                "jwks_uri": "https://rp.example.vn/jwks",
            },
            "jwks_uri",
        ),
        ({"auth_method": "private_key_jwt", "jwks": {"keys": []}}, "jwks"),
        ({"auth_method": "private_key_jwt", "jwks": {"keys": [{"kid": "no-kty"}]}}, "jwks"),
        ({"auth_method": "private_key_jwt", "jwks": [JWKS]}, "jwks"),
        (
            {
                "auth_method": "private_key_jwt",
                "jwks": {"keys": [{**JWKS["keys"][0], "d": "secret"}]},
            },
            "jwks",
        ),
        (
            {"auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
            "jwks",
        ),
        # Grants.
        ({"grant_types": []}, "grant_types"),
        ({"grant_types": ["implicit"]}, "grant_types"),
        ({"grant_types": ["authorization_code", "password"]}, "grant_types"),
        ({"grant_types": ["refresh_token"], "redirect_uris": []}, "grant_types"),
        (public(grant_types=["authorization_code", "client_credentials"]), "grant_types"),
        # Scopes.
        ({"scopes": []}, "scopes"),
        ({"scopes": ["openid", "admin"]}, "scopes"),
        # The code flow needs somewhere to send the code.
        ({"redirect_uris": []}, "redirect_uris"),
        # Subjects, assurance, algorithms.
        ({"subject_type": "random"}, "subject_type"),
        ({"sector_identifier": "example.vn"}, "sector_identifier"),
        ({"min_acr": "urn:eid:loa:ultra"}, "min_acr"),
        ({"min_acr": "2"}, "min_acr"),
        ({"id_token_signed_response_alg": "HS256"}, "id_token_signed_response_alg"),
        ({"id_token_signed_response_alg": "none"}, "id_token_signed_response_alg"),
        ({"id_token_signed_response_alg": "PS256"}, "id_token_signed_response_alg"),
        # Lifetimes: positive whole seconds under the caps.
        ({"access_token_lifetime": 0}, "access_token_lifetime"),
        ({"access_token_lifetime": -5}, "access_token_lifetime"),
        ({"access_token_lifetime": 3601}, "access_token_lifetime"),
        ({"access_token_lifetime": "600"}, "access_token_lifetime"),
        ({"access_token_lifetime": True}, "access_token_lifetime"),
        ({"access_token_lifetime": 60.5}, "access_token_lifetime"),
        ({"id_token_lifetime": 0}, "id_token_lifetime"),
        ({"id_token_lifetime": 3601}, "id_token_lifetime"),
        ({"refresh_token_lifetime": 0}, "refresh_token_lifetime"),
        ({"refresh_token_lifetime": 30 * 86400 + 1}, "refresh_token_lifetime"),
        ({"refresh_token_idle": 0}, "refresh_token_idle"),
        ({"refresh_token_idle": 86401}, "refresh_token_idle"),  # longer than the absolute lifetime
    ],
)
def test_refused(make, overrides, field):
    errors = refused(make, **overrides)
    assert field in errors, errors
    assert services.list_clients() == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"auth_method": "private_key_jwt", "jwks": JWKS},
        {
            "auth_method": "private_key_jwt",
            "jwks_uri": "https://rp.example.vn/.well-known/jwks.json",
        },
        {"grant_types": ["client_credentials"], "redirect_uris": []},
        {"grant_types": ["authorization_code"]},
        {"grant_types": ["authorization_code", "refresh_token", "client_credentials"]},
        public(grant_types=["authorization_code", "refresh_token"]),
        {"scopes": list(services.SCOPES)},
        {"require_pkce": False},  # a legacy confidential RP
        {"min_acr": "urn:eid:loa:low"},
        {"min_acr": "urn:eid:loa:substantial"},
        {"min_acr": "urn:eid:loa:high"},
        {"min_acr": ""},
        {"id_token_signed_response_alg": "ES256"},
        {"access_token_lifetime": 3600, "id_token_lifetime": 3600},
        {"access_token_lifetime": 1, "id_token_lifetime": 1},
        {"refresh_token_lifetime": 30 * 86400, "refresh_token_idle": 30 * 86400},
        {"first_party": True},
    ],
)
def test_accepted(make, overrides):
    client, _ = make(**overrides)
    for field, value in overrides.items():
        if field not in ("client_type", "min_acr"):
            assert getattr(client, field) == value


def test_every_bad_field_is_named_at_once(make):
    errors = refused(
        make,
        name="",
        agency="",
        client_type="public",
        auth_method="client_secret_basic",
        redirect_uris=["http://rp.example.vn/cb"],
        scopes=["everything"],
        id_token_signed_response_alg="HS256",
    )
    assert set(errors) == {
        "name",
        "agency",
        "auth_method",
        "redirect_uris",
        "scopes",
        "id_token_signed_response_alg",
    }


def test_a_bad_type_does_not_also_blame_the_default_auth_method(make):
    assert set(refused(make, client_type="native")) == {"client_type"}


def test_messages_are_english_msgids(make, app_ctx):
    errors = refused(make, redirect_uris=["http://localhost:8080/cb"])
    message = str(errors["redirect_uris"])
    assert "http://localhost:8080/cb" in message and "127.0.0.1" in message


def test_duplicates_are_dropped_in_order(make):
    client, _ = make(
        redirect_uris=[RP, "https://b.example.vn/cb", RP], scopes=["openid", "email", "openid"]
    )
    assert client.redirect_uris == [RP, "https://b.example.vn/cb"]
    assert client.scopes == ["openid", "email"]


# --- redirect, logout and back-channel URIs --------------------------------------------------

ALWAYS_OK = [
    "https://rp.example.vn/cb",
    "https://rp.example.vn:8443/oidc/cb?tenant=1",
    "http://127.0.0.1/cb",
    "http://127.0.0.1:8080/cb",
    "http://[::1]:8080/cb",
]
NEVER_OK = [
    "http://localhost:8080/cb",  # RFC 8252 §8.3
    "http://rp.example.vn/cb",  # plain http off loopback
    "http://10.0.0.5/cb",
    "https://rp.example.vn/cb#frag",
    "https://rp.example.vn/cb#",
    "https://*.example.vn/cb",
    "https://rp.example.vn/*",
    "/relative/cb",
    "rp.example.vn/cb",
    "https:///cb",
    "https://user:pass@rp.example.vn/cb",
    "http://127.0.0.1:80@evil.example/cb",
    "https://rp.example.vn/c b",
    "https://rp.example.vn:99999/cb",
    "HTTPS://rp.example.vn/cb",
    "javascript:alert(1)",
    "data:text/html,hi",
    "myapp:/cb",  # a custom scheme must be a reverse domain name
    "https://rp.example.vn/" + "a" * 500,
    "",
]
CUSTOM_SCHEMES = ["vn.gov.example.app:/oauth2redirect", "vn.gov.example.app://callback"]


@pytest.mark.parametrize("uri", ALWAYS_OK)
@pytest.mark.parametrize("field", ["redirect_uris", "post_logout_redirect_uris"])
@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_uri_accepted(make, uri, field, kind):
    overrides = public() if kind == "public" else {}
    overrides[field] = [uri]
    client, _ = make(**overrides)
    assert getattr(client, field) == [uri]


@pytest.mark.parametrize("uri", NEVER_OK)
@pytest.mark.parametrize("field", ["redirect_uris", "post_logout_redirect_uris"])
@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_uri_refused(make, uri, field, kind):
    overrides = public() if kind == "public" else {}
    overrides[field] = [RP, uri] if field == "redirect_uris" else [uri]
    assert field in refused(make, **overrides)


@pytest.mark.parametrize("uri", CUSTOM_SCHEMES)
@pytest.mark.parametrize("field", ["redirect_uris", "post_logout_redirect_uris"])
def test_custom_scheme_only_for_public_clients(make, uri, field):
    client, _ = make(**public(**{field: [uri]}))
    assert getattr(client, field) == [uri]
    assert field in refused(make, **{field: [uri]})


@pytest.mark.parametrize(
    "uri", ["https://rp.example.vn/backchannel?x=1", "http://127.0.0.1:9000/bc", "http://[::1]/bc"]
)
def test_backchannel_uri_accepted(make, uri):
    client, _ = make(backchannel_logout_uri=uri)
    assert client.backchannel_logout_uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "http://rp.example.vn/bc",
        "http://localhost/bc",
        "https://rp.example.vn/bc#x",
        "vn.gov.example.app:/bc",
        "bc",
    ],
)
def test_backchannel_uri_refused(make, uri):
    assert "backchannel_logout_uri" in refused(make, **public(backchannel_logout_uri=uri))


# --- pairwise subjects ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("sso.example.vn", "sso.example.vn"),
        ("SSO.Example.VN", "sso.example.vn"),
        ("https://sso.example.vn/sector.json", "sso.example.vn"),
        ("https://sso.example.vn:8443/sector.json", "sso.example.vn"),
        ("10.1.2.3", "10.1.2.3"),
    ],
)
def test_pairwise_with_sector_identifier(make, given, stored):
    client, _ = make(subject_type="pairwise", sector_identifier=given)
    assert client.subject_type == SubjectType.PAIRWISE and client.sector_identifier == stored


@pytest.mark.parametrize(
    "given",
    [
        "http://sso.example.vn/sector.json",
        "https://sso.example.vn/s#x",
        "ftp://sso.example.vn",
        "not a host",
        "-bad-.vn",
        "sso.example.vn/path",
    ],
)
def test_pairwise_bad_sector_identifier(make, given):
    assert "sector_identifier" in refused(make, subject_type="pairwise", sector_identifier=given)


def test_pairwise_sector_derived_from_the_one_redirect_host(make):
    client, _ = make(
        subject_type="pairwise",
        redirect_uris=["https://rp.example.vn/a", "https://rp.example.vn:8443/b"],
    )
    assert client.sector_identifier == "rp.example.vn"


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uris": ["https://a.example.vn/cb", "https://b.example.vn/cb"]},
        {"grant_types": ["client_credentials"], "redirect_uris": []},
        public(redirect_uris=["vn.gov.example.app:/cb"]),
        public(redirect_uris=["vn.gov.example.app://rp.example.vn/cb"]),
        public(redirect_uris=["https://rp.example.vn/cb", "vn.gov.example.app:/cb"]),
    ],
)
def test_pairwise_without_one_host_needs_a_sector_identifier(make, overrides):
    assert "sector_identifier" in refused(make, subject_type="pairwise", **overrides)


# --- redirect URI matching -------------------------------------------------------------------


def test_redirect_uri_exact_match(make):
    client, _ = make(redirect_uris=[RP, "https://rp.example.vn/cb?x=1"])
    assert services.redirect_uri_matches(client, RP)
    assert services.redirect_uri_matches(client, "https://rp.example.vn/cb?x=1")
    for uri in [
        RP + "/",
        RP.upper(),
        RP + "?x=1",
        "https://rp.example.vn/cb?x=2",
        "https://rp.example.vn/cb?x=1&y=2",
        "https://rp.example.vn/cb?",
        RP.replace("https", "http"),
        RP.replace(".vn", ".vn:443"),
        RP + "#x",
        None,
        "",
    ]:
        assert not services.redirect_uri_matches(client, uri), uri


def test_any_loopback_port_only_for_public_clients(make):
    uris = ["http://127.0.0.1:8080/cb", "http://[::1]/cb?x=1"]
    native, _ = make(**public(redirect_uris=uris))
    web, _ = make(redirect_uris=uris)

    for uri in ["http://127.0.0.1:51234/cb", "http://127.0.0.1/cb", "http://[::1]:6000/cb?x=1"]:
        assert services.redirect_uri_matches(native, uri), uri
        assert not services.redirect_uri_matches(web, uri), uri
    for uri in uris:
        assert services.redirect_uri_matches(web, uri)

    for uri in [
        "http://127.0.0.1:51234/other",  # only the port may differ
        "http://127.0.0.1:51234/cb?x=1",
        "http://127.0.0.1:51234/cb#x",
        "http://[::1]:6000/cb",
        "http://[::1]:6000/cb?x=2",
        "http://[::1]:6000/cb?x=1#",
        "http://localhost:8080/cb",
        "http://127.0.0.2:8080/cb",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:65536/cb",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:8080@evil.example/cb",
        "https://127.0.0.1:8080/cb",
        "http://[::1]:6000/cb?x=1".replace("[::1]", "127.0.0.1"),
    ]:
        assert not services.redirect_uri_matches(native, uri), uri


def test_https_redirect_port_must_match_even_for_public_clients(make):
    client, _ = make(**public(redirect_uris=["https://app.example.vn:8443/cb"]))
    assert services.redirect_uri_matches(client, "https://app.example.vn:8443/cb")
    assert not services.redirect_uri_matches(client, "https://app.example.vn:9443/cb")


def test_post_logout_uri_exact_only(make):
    client, _ = make(**public(post_logout_redirect_uris=["http://127.0.0.1:8080/bye"]))
    assert services.post_logout_uri_matches(client, "http://127.0.0.1:8080/bye")
    assert not services.post_logout_uri_matches(client, "http://127.0.0.1:9090/bye")
    assert not services.post_logout_uri_matches(client, "http://127.0.0.1:8080/bye?x=1")
    assert not services.post_logout_uri_matches(client, None)


# --- update ------------------------------------------------------------------------------------


def test_update_validates_and_saves(make):
    client, _ = make()
    later = NOW + timedelta(days=1)
    client_id = client.client_id
    services.update_client(
        client,
        now=later,
        name="Cổng dịch vụ công",
        scopes=["openid", "email"],
        min_acr="urn:eid:loa:high",
    )
    db.session.remove()
    client = services.get_client(client_id)
    assert client.name == "Cổng dịch vụ công" and client.scopes == ["openid", "email"]
    assert client.min_acr == "urn:eid:loa:high" and client.updated_at == later


def test_update_refused_changes_nothing(make):
    client, _ = make()
    client_id = client.client_id
    with pytest.raises(InvalidFields) as info:
        services.update_client(
            client, now=NOW, name="New", redirect_uris=["http://rp.example.vn/cb"]
        )
    assert set(info.value.errors) == {"redirect_uris"}
    assert client.name == "Dịch vụ công tỉnh"  # nothing was assigned before validation passed
    db.session.remove()
    client = services.get_client(client_id)
    assert client.name == "Dịch vụ công tỉnh" and client.redirect_uris == [RP]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"require_pkce": False}, "require_pkce"),
        ({"auth_method": "client_secret_post"}, "auth_method"),
    ],
)
def test_update_applies_the_public_client_rules(make, fields, field):
    client, _ = make(**public())
    with pytest.raises(InvalidFields) as info:
        services.update_client(client, now=NOW, **fields)
    assert field in info.value.errors


def test_update_cannot_change_the_client_id_or_secret(make):
    client, _ = make()
    with pytest.raises(TypeError):
        services.update_client(client, now=NOW, client_id="other")
    with pytest.raises(TypeError):
        services.update_client(client, now=NOW, secret_digest="0" * 64)


def test_update_to_a_method_without_secret_drops_it(make, app_ctx):
    client, secret = make()
    services.update_client(client, now=NOW, auth_method="private_key_jwt", jwks=JWKS)
    assert client.secret_digest is None and not services.check_secret(
        client, secret, app_ctx.config
    )


def test_update_to_public_picks_auth_method_none(make, app_ctx):
    client, secret = make()
    services.update_client(client, now=NOW, client_type="public")
    assert client.auth_method == AuthMethod.NONE and client.secret_digest is None


def test_update_back_to_a_secret_method_needs_rotate(make, app_ctx):
    client, _ = make(auth_method="private_key_jwt", jwks=JWKS)
    services.update_client(client, now=NOW, auth_method="client_secret_basic", jwks=None)
    assert not services.check_secret(client, "anything", app_ctx.config)
    secret = services.rotate_secret(client, config=app_ctx.config, now=NOW)
    assert services.check_secret(client, secret, app_ctx.config)


def test_update_keeps_the_derived_sector_when_redirects_change(make):
    # Pairwise subjects must not change because a redirect URI did.
    client, _ = make(subject_type="pairwise")
    assert client.sector_identifier == "dichvucong.example.vn"
    services.update_client(client, now=NOW, redirect_uris=["https://new.example.vn/cb"])
    assert client.sector_identifier == "dichvucong.example.vn"
    services.update_client(client, now=NOW, subject_type="public")
    assert client.sector_identifier is None

"""`flask federation add/list/enable/disable/remove/conflicts`, with discovery from a fake upstream."""

from __future__ import annotations

import json

import pytest

from idp.extensions import db
from idp.federation import services
from idp.federation.models import UpstreamLink
from idp.timeutil import utcnow
from tests.federation.fakes import JsonServer
from tests.support.receiver import closed_port_url


@pytest.fixture
def fake():
    with JsonServer() as srv:
        base = srv.base
        srv.routes["/.well-known/openid-configuration"] = {
            "issuer": base, "authorization_endpoint": base + "/auth", "token_endpoint": base + "/token",
            "jwks_uri": base + "/jwks", "userinfo_endpoint": base + "/userinfo", "end_session_endpoint": base + "/logout",
            "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"], "authorization_response_iss_parameter_supported": True,
        }
        yield srv


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=["federation", *args], input=input)


def test_add_with_the_vneid_preset_and_list(app, fake):
    result = run(app, "add", "--slug", "vneid", "--issuer", fake.base, "--client-id", "tinh-idp",
                 "--preset", "vneid", "--position", "1", input="the-secret\n")
    assert result.exit_code == 0, result.output
    assert "/federation/vneid/callback" in result.output and "backchannel-logout" in result.output
    assert "warning: no back-channel logout advertised" in result.output
    with app.app_context():
        provider = services.get_provider("vneid")
        assert provider.button_label == "Đăng nhập bằng tài khoản định danh điện tử quốc gia"
        assert provider.metadata_json["token_endpoint"] == fake.base + "/token"
        assert "the-secret" not in provider.client_secret_encrypted
        assert services.client_secret(provider, app.config) == "the-secret"
        assert "personal_number" in provider.claim_mapping["personal_number"]
        assert provider.enabled and provider.position == 1
    listed = run(app, "list")
    assert "vneid" in listed.output and "enabled" in listed.output


def test_mapping_files_scopes_and_params(app, fake, tmp_path):
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"personal_number": "so_dinh_danh", "full_name": "ho_ten"}))
    acrs = tmp_path / "acr.json"
    acrs.write_text(json.dumps({"muc2": {"identity_level": 2, "amr": ["fed", "mfa"]}}))
    result = run(app, "add", "--slug", "p", "--issuer", fake.base, "--client-id", "c", "--client-secret", "s",
                 "--mapping-file", str(claims), "--acr-map-file", str(acrs), "--scope", "openid",
                 "--scope", "cccd", "--param", "acr_values=muc2", "--display-name", "Cổng quốc gia", "--disabled")
    assert result.exit_code == 0, result.output
    with app.app_context():
        provider = services.get_provider("p")
        assert provider.claim_mapping == {"personal_number": ["so_dinh_danh"], "full_name": ["ho_ten"]}
        assert provider.acr_mapping["muc2"]["identity_level"] == 2
        assert provider.scopes == "openid cccd" and provider.authorize_params == {"acr_values": "muc2"}
        assert not provider.enabled and provider.display_name == "Cổng quốc gia"


@pytest.mark.parametrize(("args", "message"), [
    (["--issuer", closed_port_url("").rstrip("/")], "discovery failed"),
    (["--issuer", "https://"], "discovery failed"),
    (["--slug", "Not A Slug"], "--slug"),
])
def test_add_refuses_what_cannot_work(app, fake, args, message):
    base = {"--slug": "x", "--issuer": fake.base, "--client-id": "c", "--client-secret": "s"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    flat = [item for pair in base.items() for item in pair]
    result = run(app, "add", *flat)
    assert result.exit_code != 0 and message in result.output, result.output


def test_add_refuses_a_mismatched_issuer_and_bad_mapping(app, fake, tmp_path):
    meta = dict(fake.routes["/.well-known/openid-configuration"], issuer="https://somewhere-else.example")
    fake.routes["/.well-known/openid-configuration"] = meta
    result = run(app, "add", "--slug", "x", "--issuer", fake.base, "--client-id", "c", "--client-secret", "s")
    assert result.exit_code != 0 and "issuer_mismatch" in result.output
    meta["issuer"] = fake.base
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"email": "email"}))
    result = run(app, "add", "--slug", "x", "--issuer", fake.base, "--client-id", "c", "--client-secret", "s",
                 "--mapping-file", str(bad))
    assert result.exit_code != 0 and "personal_number" in result.output


def test_enable_disable_remove(app, fake):
    assert run(app, "add", "--slug", "p", "--issuer", fake.base, "--client-id", "c", "--client-secret", "s").exit_code == 0
    assert run(app, "disable", "p").exit_code == 0
    with app.app_context():
        assert not services.get_provider("p").enabled
    assert run(app, "enable", "p").exit_code == 0
    assert run(app, "enable", "nope").exit_code != 0
    # Someone linked through it: removal needs --force (the link stays, unusable).
    from tests.support.oidc import make_citizen

    identity_id = make_citizen(app)
    with app.app_context():
        db.session.add(UpstreamLink(issuer=fake.base, subject="s", identity_id=identity_id, provider_slug="p",
                                    linked_at=utcnow()))
        db.session.commit()
    refused = run(app, "remove", "p")
    assert refused.exit_code != 0 and "disable it instead" in refused.output
    assert run(app, "remove", "p", "--force").exit_code == 0
    with app.app_context():
        assert services.get_provider("p") is None
    assert "No upstream providers" in run(app, "list").output
    assert "No open conflicts" in run(app, "conflicts").output

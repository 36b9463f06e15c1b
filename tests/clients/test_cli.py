"""`flask clients ...` through Flask's CLI runner, against the real database."""

from __future__ import annotations

import json
import re

import pytest

from idp.clients import services
from idp.clients.models import ClientStatus

RP = "https://dichvucong.example.vn/oidc/callback"


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def run(runner, *args, **kwargs):
    return runner.invoke(args=["clients", *args], **kwargs)


def create(runner, *extra):
    return run(
        runner,
        "create",
        "--name",
        "Dịch vụ công",
        "--agency",
        "Sở Nội vụ",
        "--redirect-uri",
        RP,
        *extra,
    )


def field(output: str, name: str) -> str:
    return re.search(rf"^{name}: (\S+)$", output, re.M).group(1)


def stored(app, client_id):
    with app.app_context():
        client = services.get_client(client_id)
        assert client is not None
        return client


def test_create_prints_the_id_and_the_secret_once(app, runner):
    result = create(runner)
    assert result.exit_code == 0, result.output
    client_id, secret = field(result.output, "client_id"), field(result.output, "client_secret")
    assert "will not be shown again" in result.output
    with app.app_context():
        client = services.get_client(client_id)
        assert services.check_secret(client, secret, app.config)
        assert client.secret_digest != secret

    # Nothing else ever prints it again.
    for args in (["list"], ["show", client_id]):
        result = run(runner, *args)
        assert result.exit_code == 0 and secret not in result.output
        assert client.secret_digest not in result.output


def test_create_with_every_option(app, runner, tmp_path):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(
        json.dumps({"keys": [{"kty": "RSA", "n": "AQAB" * 10, "e": "AQAB", "kid": "rp-1"}]})
    )
    result = run(
        runner, "create",
        "--name", "Cổng một cửa", "--agency", "Văn phòng UBND tỉnh",
        "--type", "confidential", "--auth-method", "private_key_jwt", "--jwks-file", str(jwks),
        "--redirect-uri", RP, "--redirect-uri", "https://dichvucong.example.vn/cb2",
        "--post-logout-redirect-uri", "https://dichvucong.example.vn/bye",
        "--backchannel-logout-uri", "https://dichvucong.example.vn/bc",
        "--grant-type", "authorization_code", "--grant-type", "client_credentials",
        "--scope", "openid", "--scope", "national_id",
        "--no-pkce", "--sector-identifier", "https://sector.example.vn/s.json",
        "--min-acr", "urn:eid:loa:high", "--alg", "ES256", "--first-party",
        "--access-token-lifetime", "300", "--id-token-lifetime", "300",
        "--refresh-token-lifetime", "3600", "--refresh-token-idle", "1800",
        "--client-id", "mot-cua",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert field(result.output, "client_id") == "mot-cua"
    assert "client_secret" not in result.output and "private_key_jwt" in result.output
    client = stored(app, "mot-cua")
    assert client.redirect_uris == [RP, "https://dichvucong.example.vn/cb2"]
    assert client.post_logout_redirect_uris == ["https://dichvucong.example.vn/bye"]
    assert client.backchannel_logout_uri == "https://dichvucong.example.vn/bc"
    assert client.grant_types == ["authorization_code", "client_credentials"]
    assert client.scopes == ["openid", "national_id"]
    assert client.require_pkce is False and client.first_party is True
    assert (
        client.subject_type.value == "pairwise" and client.sector_identifier == "sector.example.vn"
    )
    assert (client.min_acr, client.id_token_signed_response_alg) == ("urn:eid:loa:high", "ES256")
    assert client.jwks["keys"][0]["kid"] == "rp-1"
    assert (client.access_token_lifetime, client.id_token_lifetime) == (300, 300)
    assert (client.refresh_token_lifetime, client.refresh_token_idle) == (3600, 1800)


def test_create_public_client(app, runner):
    result = create(runner, "--type", "public", "--redirect-uri", "http://127.0.0.1/cb")
    assert result.exit_code == 0, result.output
    assert "client_secret" not in result.output and "none" in result.output
    client = stored(app, field(result.output, "client_id"))
    assert client.is_public and client.require_pkce


def test_create_errors_name_each_bad_option(app, runner):
    result = run(
        runner, "create", "--name", "X", "--agency", "Y", "--type", "public",
        "--redirect-uri", "http://localhost:8080/cb", "--no-pkce", "--grant-type", "client_credentials",
        "--access-token-lifetime", "7200",
    )  # fmt: skip
    assert result.exit_code == 1
    # One line per bad option (the first after click's "Error: ").
    lines = result.output.removeprefix("Error: ").splitlines()
    assert sorted(line.split(": ")[0] for line in lines) == [
        "--access-token-lifetime", "--grant-type", "--no-pkce", "--redirect-uri",
    ]  # fmt: skip
    assert "http://localhost:8080/cb" in result.output
    with app.app_context():
        assert services.list_clients() == []


def test_pairwise_needs_one_host_or_a_sector_identifier(app, runner):
    result = create(runner, "--pairwise", "--redirect-uri", "https://other.example.vn/cb")
    assert result.exit_code == 1 and "--sector-identifier: " in result.output
    result = create(runner, "--pairwise", "--client-id", "dvc")
    assert result.exit_code == 0, result.output
    assert stored(app, "dvc").sector_identifier == "dichvucong.example.vn"


def test_create_refuses_a_taken_client_id(runner):
    assert create(runner, "--client-id", "dvc").exit_code == 0
    result = create(runner, "--client-id", "dvc")
    assert result.exit_code == 1 and "--client-id: " in result.output


def test_create_refuses_a_bad_jwks_file(runner, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text("{not json")
    result = create(runner, "--auth-method", "private_key_jwt", "--jwks-file", str(path))
    assert result.exit_code == 1 and "--jwks-file" in result.output


def test_create_rejects_unknown_choices(runner):
    result = create(runner, "--type", "native")
    assert result.exit_code == 2 and "--type" in result.output


def test_list(runner):
    assert run(runner, "list").output.strip() == "No clients registered."
    create(runner, "--client-id", "b-dvc")
    create(runner, "--client-id", "a-app", "--type", "public")
    run(runner, "disable", "b-dvc")
    result = run(runner, "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["CLIENT", "ID", "NAME", "AGENCY", "TYPE", "STATUS"]
    assert re.match(r"^a-app\s+Dịch vụ công\s+Sở Nội vụ\s+public\s+active$", lines[1])
    assert re.match(r"^b-dvc\s+Dịch vụ công\s+Sở Nội vụ\s+confidential\s+disabled$", lines[2])


def test_show(runner):
    create(runner, "--client-id", "dvc", "--scope", "openid", "--scope", "email")
    result = run(runner, "show", "dvc")
    assert result.exit_code == 0
    assert re.search(r"^client_id\s+dvc$", result.output, re.M)
    assert re.search(r"^scopes\s+openid email$", result.output, re.M)
    assert re.search(r"^secret\s+set \(issued ", result.output, re.M)
    assert re.search(r"^min_acr\s+-$", result.output, re.M)


def test_unknown_client_id(runner):
    for command in ("show", "rotate-secret", "disable", "enable"):
        result = (
            run(runner, command, "nobody", "--yes")
            if command == "rotate-secret"
            else run(runner, command, "nobody")
        )
        assert result.exit_code == 1 and "No client with id 'nobody'" in result.output, command


def test_rotate_secret(app, runner):
    old = field(create(runner, "--client-id", "dvc").output, "client_secret")
    refused = run(runner, "rotate-secret", "dvc", input="n\n")
    assert refused.exit_code == 1
    assert services.check_secret(stored(app, "dvc"), old, app.config)

    result = run(runner, "rotate-secret", "dvc", input="y\n")
    assert result.exit_code == 0, result.output
    new = field(result.output, "client_secret")
    assert "will not be shown again" in result.output
    with app.app_context():
        client = services.get_client("dvc")
        assert services.check_secret(client, new, app.config)
        assert not services.check_secret(client, old, app.config)


def test_rotate_secret_refused_without_a_secret_method(runner):
    create(runner, "--client-id", "app", "--type", "public")
    result = run(runner, "rotate-secret", "app", "--yes")
    assert result.exit_code == 1 and "none" in result.output


def test_disable_and_enable(app, runner):
    create(runner, "--client-id", "dvc")
    result = run(runner, "disable", "dvc")
    assert result.exit_code == 0 and "disabled" in result.output
    assert stored(app, "dvc").status == ClientStatus.DISABLED
    result = run(runner, "enable", "dvc")
    assert result.exit_code == 0 and "active" in result.output
    assert stored(app, "dvc").status == ClientStatus.ACTIVE

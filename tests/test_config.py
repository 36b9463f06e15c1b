"""Configuration: profiles, IDP_* overrides, and a production profile that refuses unsafe setups."""

from __future__ import annotations

import pytest

from idp.config import ConfigurationError, load_config

GOOD_PROD = {
    "IDP_PROFILE": "production",
    "IDP_DATABASE_URL": "postgresql+psycopg://idp@db/idp",
    "IDP_REDIS_URL": "redis://cache:6379/0",
    "IDP_SECRET_KEY": "x" * 48,
    "IDP_KEY_ENCRYPTION_KEY": "k" * 48,
    "IDP_CLIENT_SECRET_KEY": "c" * 48,
    "IDP_PAIRWISE_SALT": "p" * 48,
    "IDP_ISSUER": "https://id.example.gov.vn",
}


def test_development_defaults(tmp_path):
    config = load_config(str(tmp_path), environ={})
    assert config["PROFILE"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/idp.sqlite3"
    assert config["REDIS_URL"] == ""
    assert len(config["SECRET_KEY"]) >= 32
    # Generated once and shared by every worker of this instance folder.
    assert load_config(str(tmp_path), environ={})["SECRET_KEY"] == config["SECRET_KEY"]


def test_environment_overrides_are_typed(tmp_path):
    config = load_config(str(tmp_path), environ={"IDP_SESSION_IDLE_TIMEOUT": "600", "IDP_LANGUAGES": "en,vi"})
    assert config["SESSION_IDLE_TIMEOUT"] == 600
    assert config["LANGUAGES"] == ["en", "vi"]
    with pytest.raises(ConfigurationError, match="IDP_SESSION_IDLE_TIMEOUT"):
        load_config(str(tmp_path), environ={"IDP_SESSION_IDLE_TIMEOUT": "ten"})


def test_production_accepts_a_complete_setup(tmp_path):
    config = load_config(str(tmp_path), environ=GOOD_PROD)
    assert config["PROFILE"] == "production"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_NAME"].startswith("__Host-")


def test_production_names_every_missing_setting(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        load_config(str(tmp_path), environ={"IDP_PROFILE": "production"})
    message = str(info.value)
    for name in ("IDP_DATABASE_URL", "IDP_REDIS_URL", "IDP_SECRET_KEY", "IDP_ISSUER", "IDP_KEY_ENCRYPTION_KEY", "IDP_CLIENT_SECRET_KEY", "IDP_PAIRWISE_SALT"):
        assert name in message


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("IDP_DATABASE_URL", "sqlite:///idp.db", "PostgreSQL"),
        ("IDP_SECRET_KEY", "short", "shorter than"),
        ("IDP_ISSUER", "http://id.example.gov.vn", "https"),
    ],
)
def test_production_refuses_development_defaults(tmp_path, name, value, fragment):
    with pytest.raises(ConfigurationError, match=fragment):
        load_config(str(tmp_path), environ={**GOOD_PROD, name: value})


def test_production_app_refuses_to_start(monkeypatch, tmp_path):
    from idp import create_app

    monkeypatch.setenv("IDP_PROFILE", "production")
    monkeypatch.delenv("IDP_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="IDP_SECRET_KEY"):
        create_app()


def test_unknown_profile(tmp_path):
    with pytest.raises(ConfigurationError, match="unknown profile"):
        load_config(str(tmp_path), environ={"IDP_PROFILE": "staging"})

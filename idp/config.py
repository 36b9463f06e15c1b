"""Configuration: config/ defaults per profile, overridden by IDP_* environment variables.

Nothing here runs at import time; create_app() calls load_config().
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
PROFILES = ("development", "testing", "production")
ENV_PREFIX = "IDP_"
# Secrets a profile may generate for itself outside production.
GENERATED_SECRETS = ("SECRET_KEY", "KEY_ENCRYPTION_KEY", "CLIENT_SECRET_KEY", "PAIRWISE_SALT")
MIN_SECRET_LENGTH = 32


class ConfigurationError(RuntimeError):
    """The configuration cannot be used; the message names every problem."""


def _read_toml(path: Path) -> dict:
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _coerce(name: str, raw: str, default):
    """Convert an environment string to the type of the default it overrides."""
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigurationError(f"{ENV_PREFIX}{name}: expected true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(f"{ENV_PREFIX}{name}: expected an integer, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigurationError(f"{ENV_PREFIX}{name}: expected a number, got {raw!r}") from None
    if isinstance(default, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _dev_secrets(instance_path: Path) -> dict:
    """Secrets generated once per checkout, shared by every worker process."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / "dev-secrets.json"
    # A lock file, so workers starting together agree on one set of secrets.
    with open(instance_path / "dev-secrets.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            values = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            values = {}
        if not all(values.get(name) for name in GENERATED_SECRETS):
            # First run, or a newer version needs more secrets: add what is missing.
            values = {n: values.get(n) or secrets.token_urlsafe(48) for n in GENERATED_SECRETS}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(values))
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
    return values


def load_config(instance_path: str, overrides: dict | None = None, environ=None) -> dict:
    """Build the configuration mapping for one application."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    profile = overrides.pop("PROFILE", None) or environ.get(f"{ENV_PREFIX}PROFILE", "development")
    if profile not in PROFILES:
        raise ConfigurationError(
            f"{ENV_PREFIX}PROFILE: unknown profile {profile!r} (expected one of {', '.join(PROFILES)})"
        )
    config = _read_toml(CONFIG_DIR / "base.toml")
    config.update(_read_toml(CONFIG_DIR / f"{profile}.toml"))
    for name, default in list(config.items()):
        env_name = ENV_PREFIX + name
        if env_name in environ:
            config[name] = _coerce(name, environ[env_name], default)
    config.update(overrides)
    config["PROFILE"] = profile

    instance = Path(instance_path)
    config["DATABASE_URL"] = config["DATABASE_URL"].replace("{instance}", str(instance))
    if profile != "production":
        missing = [name for name in GENERATED_SECRETS if not config.get(name)]
        if missing:
            generated = _dev_secrets(instance)
            for name in missing:
                config[name] = generated[name]
    else:
        check_production(config)

    config["SQLALCHEMY_DATABASE_URI"] = config["DATABASE_URL"]
    https = config["ISSUER"].startswith("https://")
    config.setdefault("SESSION_COOKIE_SECURE", https)
    config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    config.setdefault("SESSION_COOKIE_NAME", "__Host-idp_flask" if https else "idp_flask")
    config.setdefault("BABEL_DEFAULT_LOCALE", config["LANGUAGES"][0])
    config.setdefault("BABEL_DEFAULT_TIMEZONE", config.get("TIMEZONE", "Asia/Ho_Chi_Minh"))
    config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(Path(__file__).parent / "translations"))
    return config


def check_production(config: dict) -> None:
    """Refuse to run in production with a missing or unsafe setting, naming each one."""
    problems = []
    db = config.get("DATABASE_URL", "")
    if not db:
        problems.append("IDP_DATABASE_URL is not set (a PostgreSQL URL is required)")
    elif not db.startswith(("postgresql", "postgres")):
        problems.append("IDP_DATABASE_URL must be a PostgreSQL URL in production")
    if not config.get("REDIS_URL"):
        problems.append("IDP_REDIS_URL is not set (the embedded store is for development only)")
    for name in GENERATED_SECRETS:
        secret = config.get(name, "")
        if not secret:
            problems.append(f"IDP_{name} is not set")
        elif min(len(part) for part in secret.split(",")) < MIN_SECRET_LENGTH:
            problems.append(f"IDP_{name} is shorter than {MIN_SECRET_LENGTH} characters")
    issuer = config.get("ISSUER", "")
    if not issuer:
        problems.append("IDP_ISSUER is not set")
    else:
        parts = urlsplit(issuer)
        if parts.scheme != "https" or not parts.netloc:
            problems.append("IDP_ISSUER must be an https URL in production")
        if parts.query or parts.fragment:
            problems.append("IDP_ISSUER must not have a query or fragment")
    if problems:
        raise ConfigurationError(
            "Refusing to start in production:\n" + "\n".join(f"  - {p}" for p in problems)
        )

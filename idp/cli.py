"""`flask ...` commands. Thin: they parse arguments and call services."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
from flask import current_app

from idp.accounts import services as account_services
from idp.accounts.models import PasswordCredential, Role
from idp.clients import services as client_services
from idp.errors import DomainError, InvalidFields
from idp.extensions import db
from idp.identity import services as identity_services
from idp.identity.models import IdentifierType
from idp.oidc.keys import ensure_keys
from idp.timeutil import utcnow

# Demo logins printed by `make run`. Development data only: seed-demo refuses in production.
DEMO_PEOPLE = [
    {
        "personal_number": "001099012345",
        "full_name": "Nguyễn Văn An",
        "birth_date": date(1999, 5, 14),
        "gender": "male",
        "phone": "0912345678",
        "email": "an.nguyen@example.vn",
        "password": "hoa sen nở trên hồ tây",
        "roles": [],
    },
    {
        "personal_number": "079185000123",
        "full_name": "Trần Thị Bình",
        "birth_date": date(1985, 3, 2),
        "gender": "female",
        "phone": "0987654321",
        "email": "binh.tran@example.vn",
        "password": "cán bộ một cửa tỉnh nhà",
        "roles": [Role.SUPERADMIN],
    },
]


# The two demo "government systems" that `make run` starts beside the provider.
DEMO_SYSTEMS = [
    {
        "client_id": "demo-he-thong-a",
        "name": "Hệ thống A — Cổng dịch vụ công của tỉnh",
        "agency": "Văn phòng Ủy ban nhân dân tỉnh",
        "port": 5001,
    },
    {
        "client_id": "demo-he-thong-b",
        "name": "Hệ thống B — Phần mềm một cửa",
        "agency": "Trung tâm Phục vụ hành chính công tỉnh",
        "port": 5002,
    },
]


def ensure_demo_systems(*, now) -> list[dict]:
    """Register the demo RPs (idempotent); give each a fresh secret written for the launcher."""
    launch = []
    for system in DEMO_SYSTEMS:
        base = f"http://127.0.0.1:{system['port']}"
        client = client_services.get_client(system["client_id"])
        if client is None:
            client, secret = client_services.create_client(
                client_id=system["client_id"],
                name=system["name"],
                agency=system["agency"],
                redirect_uris=[base + "/callback"],
                post_logout_redirect_uris=[base + "/"],
                backchannel_logout_uri=base + "/backchannel-logout",
                grant_types=["authorization_code", "refresh_token"],
                scopes=["openid", "profile", "email", "phone", "national_id"],
                config=current_app.config,
                now=now,
            )
        else:
            secret = client_services.rotate_secret(client, config=current_app.config, now=now)
        launch.append({**system, "base_url": base, "secret": secret})
    path = Path(current_app.instance_path) / "demo-systems.json"
    path.write_text(json.dumps(launch, ensure_ascii=False, indent=2))
    path.chmod(0o600)
    return launch


def _fail(exc: DomainError):
    if isinstance(exc, InvalidFields):
        lines = [f"{field}: {message}" for field, message in exc.errors.items()]
    else:
        lines = [str(exc.message)]
    raise click.ClickException("\n".join(lines))


def ensure_person(person: dict, *, now) -> tuple[bool, object]:
    """Create the person unless their personal number exists; (created, identity)."""
    existing = identity_services.identity_by_identifier(
        IdentifierType.PERSONAL_NUMBER, person["personal_number"]
    )
    if existing is not None:
        return False, existing
    identity = account_services.register_citizen(
        personal_number=person["personal_number"],
        full_name=person["full_name"],
        birth_date=person["birth_date"],
        gender=person["gender"],
        phone=person.get("phone"),
        email=person.get("email"),
        password=person["password"],
        config=current_app.config,
        now=now,
    )
    return True, identity


def init_app(app) -> None:
    @app.cli.command("seed-demo")
    def seed_demo():
        """Create the demo people (idempotent; development and testing only)."""
        if current_app.config["PROFILE"] == "production":
            raise click.ClickException("seed-demo refuses to run in the production profile.")
        now = utcnow()
        click.echo("Demo logins (personal number / password):")
        for person in DEMO_PEOPLE:
            try:
                created, identity = ensure_person(person, now=now)
            except DomainError as exc:
                _fail(exc)
            for role in person["roles"]:
                account_services.grant_role(identity, role, granted_by="seed-demo", now=now)
            roles = ", ".join(r.value for r in person["roles"]) or "citizen"
            state = "created" if created else "exists"
            click.echo(f"  {person['personal_number']} / {person['password']}   ({person['full_name']}, {roles}, {state})")
        ensure_keys(now=now, config=current_app.config)
        click.echo("Demo systems (relying parties):")
        for system in ensure_demo_systems(now=now):
            click.echo(f"  {system['base_url']}/   {system['name']}")

    @app.cli.command("create-admin")
    @click.option("--personal-number", required=True)
    @click.option("--full-name", required=True)
    @click.option("--birth-date", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
    @click.option("--gender", required=True, type=click.Choice(["male", "female"]))
    @click.option("--email", default=None)
    @click.option("--phone", default=None)
    @click.option("--role", "roles", multiple=True, type=click.Choice([r.value for r in Role]), default=["superadmin"])
    @click.password_option(prompt="Password (at least 15 characters)")
    def create_admin(personal_number, full_name, birth_date, gender, email, phone, roles, password):
        """Create an administrator, or grant the roles to an existing identity."""
        now = utcnow()
        person = {
            "personal_number": personal_number,
            "full_name": full_name,
            "birth_date": birth_date.date(),
            "gender": gender,
            "email": email,
            "phone": phone,
            "password": password,
        }
        try:
            created, identity = ensure_person(person, now=now)
            if not created and db.session.get(PasswordCredential, identity.id) is None:
                account_services.set_password(identity, password, config=current_app.config, now=now)
        except DomainError as exc:
            _fail(exc)
        for role in roles:
            account_services.grant_role(identity, Role(role), granted_by="cli", now=now)
        click.echo(f"{'Created' if created else 'Updated'} administrator {identity.id} with roles {', '.join(roles)}")

    store_group = click.Group("store", help="The short-lived shared store.")

    @store_group.command("ping")
    def store_ping():
        """Check that the store answers."""
        current_app.extensions["idp_store"].ping()
        click.echo("store: ok")

    @store_group.command("purge")
    def store_purge():
        """Delete expired entries of the embedded store (Redis expires keys itself)."""
        store = current_app.extensions["idp_store"]
        if hasattr(store, "purge"):
            store.purge()
        click.echo("store: purged")

    app.cli.add_command(store_group)

    from idp.oidc import cli_keys

    cli_keys.init_app(app)

    from idp.clients import cli as clients_cli

    clients_cli.init_app(app)

    from idp.accounts import cli as accounts_cli

    accounts_cli.init_app(app)

    from idp.legacy import cli as legacy_cli

    legacy_cli.init_app(app)

    from idp.audit import cli as audit_cli

    audit_cli.init_app(app)

    from idp.federation import cli as federation_cli

    federation_cli.init_app(app)

    from idp.business import cli as business_cli

    business_cli.init_app(app)

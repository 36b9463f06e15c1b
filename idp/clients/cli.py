"""`flask clients ...`: register and manage relying parties. Thin: parse, call services, print."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from idp.cli_support import in_default_locale
from idp.clients import services
from idp.clients.models import AuthMethod, Client, ClientType
from idp.errors import DomainError, InvalidFields
from idp.timeutil import utcnow

ONCE_NOTICE = "Store this secret now: it will not be shown again."

# Service field -> the option that sets it, so an error names what the operator typed.
OPTION_NAMES = {
    "client_id": "--client-id",
    "name": "--name",
    "agency": "--agency",
    "client_type": "--type",
    "auth_method": "--auth-method",
    "redirect_uris": "--redirect-uri",
    "post_logout_redirect_uris": "--post-logout-redirect-uri",
    "backchannel_logout_uri": "--backchannel-logout-uri",
    "grant_types": "--grant-type",
    "scopes": "--scope",
    "require_pkce": "--no-pkce",
    "subject_type": "--pairwise",
    "sector_identifier": "--sector-identifier",
    "min_acr": "--min-acr",
    "id_token_signed_response_alg": "--alg",
    "first_party": "--first-party",
    "jwks": "--jwks-file",
    "jwks_uri": "--jwks-uri",
    "access_token_lifetime": "--access-token-lifetime",
    "id_token_lifetime": "--id-token-lifetime",
    "refresh_token_lifetime": "--refresh-token-lifetime",
    "refresh_token_idle": "--refresh-token-idle",
}


_default_locale = in_default_locale


def _fail(exc: DomainError, *, name_fields: bool = True):
    if isinstance(exc, InvalidFields):
        lines = [f"{OPTION_NAMES.get(f, f)}: {m}" for f, m in exc.errors.items()]
    elif name_fields and exc.field:
        lines = [f"{OPTION_NAMES.get(exc.field, exc.field)}: {exc.message}"]
    else:
        lines = [str(exc.message)]
    raise click.ClickException("\n".join(lines))


def _client_or_fail(client_id: str) -> Client:
    client = services.get_client(client_id)
    if client is None:
        raise click.ClickException(f"No client with id {client_id!r}.")
    return client


def _echo_secret(secret: str) -> None:
    click.echo(f"client_secret: {secret}")
    click.echo(ONCE_NOTICE)


def _lifetime_option(name: str, default: int, help_text: str):
    return click.option(name, type=int, default=default, show_default=True, help=help_text)


clients_group = AppGroup("clients", help="The registry of relying parties (OIDC clients).")


@clients_group.command("create")
@click.option("--name", required=True, help="Name of the service shown to people.")
@click.option("--agency", required=True, help="Agency that runs the service.")
@click.option(
    "--type",
    "client_type",
    type=click.Choice([t.value for t in ClientType]),
    default="confidential",
    show_default=True,
)
@click.option(
    "--auth-method",
    type=click.Choice([m.value for m in AuthMethod]),
    default=None,
    help="Default: client_secret_basic (confidential), none (public).",
)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeat for several URIs.")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option("--backchannel-logout-uri", default=None)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(services.GRANT_TYPES),
    help="Default: authorization_code and refresh_token.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(services.SCOPES),
    help="Default: openid and profile.",
)
@click.option("--no-pkce", is_flag=True, help="Legacy confidential clients only.")
@click.option("--pairwise", is_flag=True, help="Pairwise subject identifiers.")
@click.option(
    "--sector-identifier", default=None, help="Host name or https URL (implies --pairwise)."
)
@click.option("--min-acr", type=click.Choice(services.ACR_VALUES), default=None)
@click.option(
    "--alg",
    "id_token_signed_response_alg",
    type=click.Choice(services.ID_TOKEN_ALGS),
    default="RS256",
    show_default=True,
    help="ID token signing algorithm.",
)
@click.option("--first-party", is_flag=True, help="A service run by the provider's own operator.")
@click.option(
    "--jwks-file",
    type=click.File("r"),
    default=None,
    help="JSON file with the client's public keys (private_key_jwt).",
)
@click.option(
    "--jwks-uri", default=None, help="https URL of the client's public keys (private_key_jwt)."
)
@_lifetime_option("--access-token-lifetime", 600, "Seconds.")
@_lifetime_option("--id-token-lifetime", 600, "Seconds.")
@_lifetime_option("--refresh-token-lifetime", 86400, "Seconds (absolute).")
@_lifetime_option("--refresh-token-idle", 43200, "Seconds without use.")
@click.option("--client-id", default=None, help="Default: a random URL-safe id.")
@_default_locale
def create(**options):
    """Register a client; prints its id and, once, its secret."""
    jwks_file = options.pop("jwks_file")
    jwks = None
    if jwks_file is not None:
        try:
            jwks = json.load(jwks_file)
        except ValueError:
            raise click.ClickException("--jwks-file: the file is not valid JSON.") from None
    no_pkce = options.pop("no_pkce")
    pairwise = options.pop("pairwise")
    # Empty multiples mean "not given": keep the service defaults.
    for name in ("grant_types", "scopes"):
        if not options[name]:
            options.pop(name)
    try:
        client, secret = services.create_client(
            **options,
            jwks=jwks,
            require_pkce=not no_pkce,
            subject_type="pairwise" if pairwise or options["sector_identifier"] else "public",
            config=current_app.config,
            now=utcnow(),
        )
    except DomainError as exc:
        _fail(exc)
    click.echo(f"Registered {client.name} ({client.agency}).")
    click.echo(f"client_id: {client.client_id}")
    if secret is not None:
        _echo_secret(secret)
    else:
        click.echo(f"No secret: this client authenticates with {client.auth_method.value}.")


@clients_group.command("list")
@_default_locale
def list_():
    """All clients: id, name, agency, type, status."""
    clients = services.list_clients()
    if not clients:
        click.echo("No clients registered.")
        return
    header = ("CLIENT ID", "NAME", "AGENCY", "TYPE", "STATUS")
    rows = [(c.client_id, c.name, c.agency, c.client_type.value, c.status.value) for c in clients]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@clients_group.command("show")
@click.argument("client_id")
@_default_locale
def show(client_id):
    """Every registered field of one client (never the secret)."""
    client = _client_or_fail(client_id)
    issued = "none"
    if client.secret_digest:
        issued = f"set (issued {client.secret_rotated_at:%Y-%m-%d %H:%M} UTC)"
    fields = [
        ("client_id", client.client_id),
        ("name", client.name),
        ("agency", client.agency),
        ("type", client.client_type.value),
        ("status", client.status.value),
        ("auth_method", client.auth_method.value),
        ("secret", issued),
        ("redirect_uris", client.redirect_uris),
        ("post_logout_redirect_uris", client.post_logout_redirect_uris),
        ("backchannel_logout_uri", client.backchannel_logout_uri),
        ("grant_types", client.grant_types),
        ("scopes", client.scopes),
        ("require_pkce", "yes" if client.require_pkce else "no"),
        ("subject_type", client.subject_type.value),
        ("sector_identifier", client.sector_identifier),
        ("min_acr", client.min_acr),
        ("id_token_signed_response_alg", client.id_token_signed_response_alg),
        ("first_party", "yes" if client.first_party else "no"),
        ("jwks_uri", client.jwks_uri),
        ("jwks", f"{len(client.jwks['keys'])} key(s)" if client.jwks else None),
        ("access_token_lifetime", client.access_token_lifetime),
        ("id_token_lifetime", client.id_token_lifetime),
        ("refresh_token_lifetime", client.refresh_token_lifetime),
        ("refresh_token_idle", client.refresh_token_idle),
        ("created_at", f"{client.created_at:%Y-%m-%d %H:%M} UTC"),
        ("updated_at", f"{client.updated_at:%Y-%m-%d %H:%M} UTC"),
    ]
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        if isinstance(value, list):
            value = " ".join(value)
        click.echo(f"{label.ljust(width)}  {'-' if value in (None, '') else value}")


@clients_group.command("rotate-secret")
@click.argument("client_id")
@click.confirmation_option(prompt="The current secret stops working at once. Rotate it?")
@_default_locale
def rotate_secret(client_id):
    """Issue a new secret, shown once; the old one stops working."""
    client = _client_or_fail(client_id)
    try:
        secret = services.rotate_secret(client, config=current_app.config, now=utcnow())
    except DomainError as exc:
        _fail(exc, name_fields=False)
    click.echo(f"client_id: {client.client_id}")
    _echo_secret(secret)


@clients_group.command("disable")
@click.argument("client_id")
@_default_locale
def disable(client_id):
    """Stop a client: the provider refuses it until it is enabled again."""
    client = services.disable_client(_client_or_fail(client_id), now=utcnow())
    click.echo(f"Client {client.client_id} is disabled.")


@clients_group.command("enable")
@click.argument("client_id")
@_default_locale
def enable(client_id):
    """Let a disabled client work again."""
    client = services.enable_client(_client_or_fail(client_id), now=utcnow())
    click.echo(f"Client {client.client_id} is active.")


def init_app(app) -> None:
    app.cli.add_command(clients_group)

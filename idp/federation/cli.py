"""`flask federation ...`: upstream identity providers. Thin: parse, call services, print."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from idp.cli_support import in_default_locale
from idp.errors import DomainError
from idp.federation import presets, services, upstream
from idp.federation.tokens import ALLOWED_ALGS
from idp.timeutil import utcnow

OPTION_NAMES = {
    "slug": "--slug", "issuer": "--issuer", "client_id": "--client-id", "display_name": "--display-name",
    "scopes": "--scope", "mapping": "--mapping-file / --acr-map-file", "token_auth_method": "--auth-method",
    "authorize_params": "--param",
}


_default_locale = in_default_locale


def _fail(exc: DomainError):
    name = OPTION_NAMES.get(exc.field, exc.field) if exc.field else None
    raise click.ClickException(f"{name}: {exc.message}" if name else str(exc.message))


def _provider_or_fail(slug: str):
    provider = services.get_provider(slug)
    if provider is None:
        raise click.ClickException(f"No upstream provider {slug!r}.")
    return provider


def _json_file(path: str | None, what: str):
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{what}: {exc}") from None


def init_app(app) -> None:
    group = AppGroup("federation", help="Upstream identity providers (national e-ID and others).")

    @group.command("add")
    @click.option("--slug", required=True, help="Short name used in URLs, e.g. vneid.")
    @click.option("--issuer", required=True, help="Issuer URL; metadata comes from its discovery document.")
    @click.option("--client-id", required=True)
    @click.option("--client-secret", prompt=True, hide_input=True, help="Prompted when not given.")
    @click.option("--preset", type=click.Choice(presets.names()), default="generic", show_default=True)
    @click.option("--display-name", default=None, help="Shown to people (Vietnamese); default from the preset.")
    @click.option("--button-label", default=None, help="The whole login button text; default from the preset.")
    @click.option("--scope", "scopes", multiple=True, help="Scopes to ask (repeat); default from the preset.")
    @click.option("--mapping-file", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="JSON: field -> upstream claim name(s).")
    @click.option("--acr-map-file", type=click.Path(exists=True, dir_okay=False), default=None,
                  help='JSON: upstream acr -> {"identity_level": 1|2, "amr": [...], "session_acr": ...}.')
    @click.option("--auth-method", type=click.Choice(services.TOKEN_AUTH_METHODS), default="client_secret_basic",
                  show_default=True)
    @click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                  help="Extra authorization request parameter (repeat), e.g. acr_values=...")
    @click.option("--position", type=int, default=0, show_default=True, help="Order on the login page.")
    @click.option("--disabled", is_flag=True, help="Add it without showing it on the login page yet.")
    @_default_locale
    def add(slug, issuer, client_id, client_secret, preset, display_name, button_label, scopes, mapping_file,
            acr_map_file, auth_method, params, position, disabled):
        """Add an upstream provider (its metadata fetched by discovery now)."""
        base = presets.get(preset)
        try:
            metadata = upstream.fetch_metadata(issuer, timeout=current_app.config["FEDERATION_TIMEOUT"],
                                               allowed_algs=ALLOWED_ALGS)
        except (upstream.UpstreamUnavailable, upstream.UpstreamError) as exc:
            raise click.ClickException(f"--issuer: discovery failed: {exc}") from None
        extra = dict(base.get("authorize_params") or {})
        for item in params:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise click.ClickException(f"--param: expected NAME=VALUE, got {item!r}")
            extra[name] = value
        try:
            provider = services.add_provider(
                slug=slug, issuer=issuer, metadata=metadata, client_id=client_id, client_secret=client_secret,
                scopes=" ".join(scopes) if scopes else base["scopes"],
                claim_mapping=_json_file(mapping_file, "--mapping-file") or base["claim_mapping"],
                acr_mapping=_json_file(acr_map_file, "--acr-map-file") or base["acr_mapping"],
                display_name=display_name or base["display_name"] or slug,
                button_label=button_label if button_label is not None else (base["button_label"] or None),
                position=position, enabled=not disabled, token_auth_method=auth_method,
                authorize_params=extra, config=current_app.config, now=utcnow(),
            )
        except DomainError as exc:
            _fail(exc)
        click.echo(f"Added upstream provider {provider.slug} ({provider.issuer}), "
                   f"{'enabled' if provider.enabled else 'disabled'}.")
        click.echo(f"Register this redirect URI at the upstream: "
                   f"{current_app.config['ISSUER'].rstrip('/')}/federation/{provider.slug}/callback")
        click.echo(f"Back-channel logout URI: "
                   f"{current_app.config['ISSUER'].rstrip('/')}/federation/{provider.slug}/backchannel-logout")
        for warning in upstream.metadata_warnings(metadata):
            click.echo(f"warning: {warning}")

    @group.command("list")
    def list_():
        """List upstream providers in login-page order."""
        rows = services.list_providers()
        if not rows:
            click.echo("No upstream providers.")
        for p in rows:
            state = "enabled" if p.enabled else "disabled"
            click.echo(f"{p.position:>3}  {p.slug:<16} {state:<9} {p.issuer}  {p.display_name}  "
                       f"(links: {services.link_count(p)}, metadata {p.metadata_fetched_at:%Y-%m-%d %H:%M})")

    @group.command("enable")
    @click.argument("slug")
    def enable(slug):
        """Show the provider on the login page."""
        services.set_enabled(_provider_or_fail(slug), True, now=utcnow())
        click.echo(f"Enabled {slug}.")

    @group.command("disable")
    @click.argument("slug")
    def disable(slug):
        """Hide the provider; logins through it stop (its back-channel logouts still work)."""
        services.set_enabled(_provider_or_fail(slug), False, now=utcnow())
        click.echo(f"Disabled {slug}.")

    @group.command("refresh")
    @click.argument("slug")
    def refresh(slug):
        """Fetch the provider's discovery metadata again."""
        provider = _provider_or_fail(slug)
        try:
            meta = services.refresh_metadata(provider, timeout=current_app.config["FEDERATION_TIMEOUT"], now=utcnow())
        except (upstream.UpstreamUnavailable, upstream.UpstreamError) as exc:
            raise click.ClickException(f"discovery failed: {exc}") from None
        click.echo(f"Metadata of {slug} refreshed.")
        for warning in upstream.metadata_warnings(meta):
            click.echo(f"warning: {warning}")

    @group.command("remove")
    @click.argument("slug")
    @click.option("--force", is_flag=True, help="Remove even though people are linked (their links stay, unusable).")
    def remove(slug, force):
        """Remove a provider's configuration."""
        provider = _provider_or_fail(slug)
        links = services.link_count(provider)
        if links and not force:
            raise click.ClickException(
                f"{links} people are linked through {slug}; disable it instead, or pass --force.")
        services.remove_provider(provider)
        click.echo(f"Removed {slug}.")

    @group.command("conflicts")
    def conflicts():
        """Open entries of the officers' queue (upstream data that disagreed)."""
        rows = services.open_conflicts()
        if not rows:
            click.echo("No open conflicts.")
        for c in rows:
            click.echo(f"#{c.id} {c.created_at:%Y-%m-%d %H:%M} {c.provider_slug} {c.reason} identity={c.identity_id}")

    app.cli.add_command(group)

"""`flask keys ...`: list, create and rotate the token signing keys."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from idp.extensions import db
from idp.oidc import keys as key_service
from idp.oidc.models import KeyState, SigningKey
from idp.timeutil import utcnow

keys = AppGroup("keys", help="Token signing keys (JWKS): list, ensure, rotate.")


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@keys.command("list")
def list_keys():
    """Every key, newest first per algorithm (times are UTC)."""
    rows = db.session.scalars(
        select(SigningKey).order_by(SigningKey.alg, SigningKey.created_at.desc(), SigningKey.kid)
    ).all()
    if not rows:
        click.echo("No signing keys; run `flask keys ensure`.")
        return
    now = utcnow()
    click.echo(f"{'kid':<44} {'alg':<6} {'state':<8} {'created':<20} publish_until")
    for k in rows:
        note = "" if key_service.is_published(k.state, k.publish_until, now) else "  (unpublished)"
        click.echo(
            f"{k.kid:<44} {k.alg:<6} {k.state.value:<8} {_when(k.created_at):<20} {_when(k.publish_until)}{note}"
        )


@keys.command("ensure")
def ensure():
    """Create the missing ACTIVE and NEXT keys of each algorithm (idempotent)."""
    created = key_service.ensure_keys(now=utcnow(), config=current_app.config)
    if not created:
        click.echo("Signing keys: nothing to do.")
    for k in created:
        click.echo(f"Created {k.alg} {k.state.value} key {k.kid}")


@keys.command("rotate")
@click.option(
    "--alg",
    type=click.Choice([*key_service.ALGORITHMS, "all"]),
    default="all",
    show_default=True,
    help="Algorithm whose key to rotate.",
)
def rotate(alg):
    """Promote the NEXT key to ACTIVE, retire the ACTIVE one, publish a fresh NEXT key."""
    now = utcnow()
    config = current_app.config
    created = key_service.ensure_keys(now=now, config=config)
    for name in key_service.ALGORITHMS if alg == "all" else (alg,):
        made_now = {k.state for k in created if k.alg == name}
        if KeyState.NEXT in made_now and KeyState.ACTIVE not in made_now:
            # Only this run published it: relying parties with a cached JWKS may not know it yet.
            click.echo(
                f"Warning: the NEXT {name} key was only just published; tokens signed with it may "
                "fail at relying parties until their JWKS cache refreshes.",
                err=True,
            )
        before = db.session.scalars(
            select(SigningKey.kid).where(
                SigningKey.alg == name, SigningKey.state == KeyState.ACTIVE
            )
        ).all()
        active, nxt = key_service.rotate(name, now=now, config=config)
        retired = [db.session.get(SigningKey, kid) for kid in before]
        click.echo(f"{name}: active {active.kid}, next {nxt.kid}")
        for k in retired:
            click.echo(f"{name}: retired {k.kid}, published until {_when(k.publish_until)} UTC")


def init_app(app) -> None:
    app.cli.add_command(keys)

"""`flask accounts ...`: upkeep of the accounts package's data."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from idp.accounts import events
from idp.timeutil import utcnow

accounts_group = AppGroup("accounts", help="Citizens' accounts: login history and security events.")


@accounts_group.command("purge-events")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Keep this many days (default: LOGIN_HISTORY_DAYS).")
def purge_events(days: int | None) -> None:
    """Delete login history and security events older than the retention period.

    Login history is sensitive personal data (Decree 356/2025): run this daily.
    """
    keep = days or current_app.config["LOGIN_HISTORY_DAYS"]
    removed = events.purge(now=utcnow(), days=keep)
    click.echo(f"Deleted {removed} account events older than {keep} days.")


def init_app(app) -> None:
    app.cli.add_command(accounts_group)

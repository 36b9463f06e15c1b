"""`flask audit ...`: verify the chain, redact old login history, export CSV."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup

from idp.audit import query, services
from idp.extensions import db
from idp.timeutil import utcnow

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def _anchor(value: str | None):
    if not value:
        return None
    try:
        entry_id, entry_hash = value.split(":", 1)
        return int(entry_id), entry_hash.strip().lower()
    except ValueError:
        raise click.BadParameter("expected ID:HASH", param_hint="--anchor") from None


def init_app(app) -> None:
    group = AppGroup("audit", help="The hash-chained audit log.")

    @group.command("verify")
    @click.option("--batch", default=10000, show_default=True, help="Entries read at a time.")
    @click.option("--anchor", default=None, help="ID:HASH of an entry recorded earlier elsewhere.")
    def verify_cmd(batch, anchor):
        """Check the whole chain; exit 1 and name the first bad entry when it is broken."""
        result = services.verify(batch=batch, anchor=_anchor(anchor))
        if not result.ok:
            click.echo(f"audit: BROKEN at entry {result.first_bad_id}: {result.reason} "
                       f"({result.checked} entries verified before it)", err=True)
            raise SystemExit(1)
        click.echo(f"audit: ok, {result.checked} entries; head {result.last_id}:{result.last_hash}")

    @group.command("redact")
    @click.option("--days", type=click.IntRange(min=1), default=None,
                  help="Keep this many days (default AUDIT_LOGIN_RETENTION_DAYS).")
    @click.option("--action", "actions", multiple=True,
                  help="Action or prefix.* to redact (default: the login history).")
    def redact_cmd(days, actions):
        """Erase the personal data of login history entries past their retention."""
        if days is None:
            days = int(current_app.config["AUDIT_LOGIN_RETENTION_DAYS"])
        now = utcnow()
        count = services.redact_older_than(list(actions) or None, before=now - timedelta(days=days),
                                           now=now, actor=services.cli_actor())
        click.echo(f"audit: {count} entries older than {days} days redacted")

    @group.command("export")
    @click.option("--since", type=click.DateTime(formats=DATE_FORMATS), default=None,
                  help="From this UTC time (inclusive).")
    @click.option("--until", type=click.DateTime(formats=DATE_FORMATS), default=None,
                  help="Before this UTC time (exclusive).")
    @click.option("--action", "action_prefix", default=None, help="Action prefix (login., admin.).")
    @click.option("--actor", default=None)
    @click.option("--target-type", default=None)
    @click.option("--target-id", default=None)
    def export_cmd(since, until, action_prefix, actor, target_type, target_id):
        """Write matching entries as CSV to standard output."""
        filters = {"since": since, "until": until, "action_prefix": action_prefix, "actor": actor,
                   "target_type": target_type, "target_id": target_id}
        filters = {k: v for k, v in filters.items() if v is not None}
        # The export is itself audited, before any data leaves.
        services.record("audit.exported", actor=services.cli_actor(), target_type="audit",
                        details={"filters": filters, "to": "csv"})
        db.session.commit()
        for chunk in query.iter_csv(**filters):
            click.echo(chunk, nl=False)

    app.cli.add_command(group)

"""`flask legacy ...`: register legacy systems, import their exports, link, report.

Thin: parse, call services, print.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from idp.cli_support import in_default_locale
from idp.errors import DomainError, InvalidFields
from idp.extensions import db
from idp.legacy import hashes, importer, services
from idp.legacy.models import ExportEncoding
from idp.timeutil import utcnow

legacy = AppGroup("legacy", help="Legacy systems: import their user exports, link, report.")


_default_locale = in_default_locale


def _fail(exc: DomainError):
    db.session.rollback()
    if isinstance(exc, InvalidFields):
        lines = [f"{name}: {message}" for name, message in exc.errors.items()]
    else:
        lines = [str(exc.message)]
    raise click.ClickException("\n".join(lines))


@legacy.command("add-system")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--agency", required=True)
@click.option("--hash-scheme", required=True, type=click.Choice(sorted(hashes.SCHEMES)))
@click.option("--salt-position", type=click.Choice(hashes.SALT_POSITIONS), default=None)
@click.option(
    "--encoding", type=click.Choice([e.value for e in ExportEncoding]), default="utf-8",
    show_default=True,
)
@click.option("--client-id", default=None, help="The relying party that is this system.")
@click.option("--update", "update_existing", is_flag=True, help="Change an existing system.")
@_default_locale
def add_system(slug, name, agency, hash_scheme, salt_position, encoding, client_id, update_existing):
    """Register a legacy system (or change it with --update)."""
    now = utcnow()
    try:
        existing = services.get_system(slug)
        if existing is not None and update_existing:
            services.update_system(
                existing, now=now, name=name, agency=agency, hash_scheme=hash_scheme,
                salt_position=salt_position, encoding=encoding, client_id=client_id,
            )
            verb = "Updated"
        else:
            services.create_system(
                slug=slug, name=name, agency=agency, hash_scheme=hash_scheme,
                salt_position=salt_position, encoding=encoding, client_id=client_id, now=now,
            )
            verb = "Registered"
        db.session.commit()
    except DomainError as exc:
        _fail(exc)
    click.echo(f"{verb} legacy system {slug}.")


@legacy.command("systems")
def list_systems():
    """List the registered legacy systems."""
    for s in services.list_systems():
        extra = f" salt={s.salt_position}" if s.salt_position else ""
        client = f" client={s.client_id}" if s.client_id else ""
        click.echo(f"{s.slug}\t{s.name}\t{s.hash_scheme}{extra}\t{s.encoding}{client}")


@legacy.command("import")
@click.argument("system")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(importer.FORMATS), default=None,
              help="Default: from the file name (.jsonl/.ndjson -> jsonl, else csv).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON file naming the columns (see docs/legacy.md).")
@click.option("--rejects", type=click.Path(dir_okay=False), default=None,
              help="Where to write refused rows (CSV). Default: FILE.rejects.csv.")
@click.option("--encoding", type=click.Choice([e.value for e in ExportEncoding]), default=None,
              help="Override the system's declared export encoding.")
@click.option("--batch-size", type=click.IntRange(1, 50_000), default=importer.DEFAULT_BATCH_SIZE,
              show_default=True)
@_default_locale
def import_command(system, file, fmt, mapping, rejects, encoding, batch_size):
    """Import a CSV or JSON Lines export of SYSTEM's users (idempotent)."""
    try:
        target = services.require_system(system)
        mapping_obj = services.load_mapping(mapping)
        rejects_path = rejects or f"{file}.rejects.csv"
        size = os.path.getsize(file)
        # On stderr, so stdout carries only the totals.
        with click.progressbar(length=size, label="Importing", file=sys.stderr,
                               show_eta=True) as bar:
            result = services.import_file(
                target, file, now=utcnow(), rejects_path=rejects_path, fmt=fmt,
                mapping=mapping_obj, encoding=encoding, batch_size=batch_size,
                progress=bar.update,
            )
    except DomainError as exc:
        _fail(exc)
    click.echo(f"read: {result.read}")
    click.echo(f"imported: {result.imported}")
    click.echo(f"rejected: {result.rejected}")
    if result.fields_dropped:
        click.echo(f"fields dropped (unusable phone or e-mail, kept in raw): {result.fields_dropped}")
    for code, count in sorted(result.reasons.items()):
        click.echo(f"  {code}: {count}")
    if result.rejected:
        click.echo(f"rejects report: {Path(result.rejects_path)}")
    if result.read and result.encoding_rejects * 2 > result.read:
        click.echo(
            "Most rows are not readable text: the file is probably in another encoding "
            "(VNI, TCVN3?). Convert it to UTF-8, or declare --encoding cp1258 if it is "
            "Windows-1258.",
            err=True,
        )


@legacy.command("link")
@click.argument("system", required=False)
@click.option("--batch-size", type=click.IntRange(1, 50_000), default=5000, show_default=True)
@_default_locale
def link_command(system, batch_size):
    """Link unlinked accounts by personal number (or old ID number) to identities."""
    try:
        results = services.link_accounts(now=utcnow(), system_slug=system, batch_size=batch_size)
    except DomainError as exc:
        _fail(exc)
    for slug, r in results.items():
        click.echo(f"{slug}: auto_linked {r.auto_linked}, conflict {r.conflict}")
        for reason, count in sorted(r.reasons.items()):
            click.echo(f"  {reason}: {count}")


@legacy.command("report")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def report_command(as_json):
    """Progress per system: imported, linked, claimed, conflicts, share mapped."""
    rows = services.report()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    header = ("system", "imported", "auto_linked", "claimed", "conflict", "rejected", "unlinked",
              "mapped")
    click.echo("\t".join(header))
    for r in rows:
        click.echo(
            "\t".join(
                [r["system"]]
                + [str(r[k]) for k in header[1:-1]]
                + [f"{r['mapped_share'] * 100:.1f}%"]
            )
        )


def init_app(app) -> None:
    app.cli.add_command(legacy)

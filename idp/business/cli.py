"""`flask business ...`: register businesses, import them, decide requests, grant and revoke
representatives, record a status, end expired authorizations. Thin: parse, call services, print.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from idp import audit
from idp.business import importer, representation, services
from idp.business.models import BusinessStatus, LegalForm, RepresentationRole
from idp.cli_support import in_default_locale
from idp.errors import DomainError, InvalidFields
from idp.extensions import db
from idp.identity import services as identity_services
from idp.identity import validators
from idp.identity.models import IdentifierType
from idp.timeutil import utcnow

business = AppGroup("business", help="Businesses and the people who act for them.")


_default_locale = in_default_locale


def _fail(exc: DomainError):
    db.session.rollback()
    if isinstance(exc, InvalidFields):
        lines = [f"{name}: {message}" for name, message in exc.errors.items()]
    else:
        lines = [f"{exc.field}: {exc.message}" if exc.field else str(exc.message)]
    raise click.ClickException("\n".join(lines))


def _business(tax_code: str):
    try:
        code = validators.tax_code(tax_code, today=utcnow().date())
    except DomainError as exc:
        _fail(exc)
    found = services.business_by_tax_code(code)
    if found is None:
        raise click.ClickException(f"tax_code: no business is registered with {code}.")
    return found


def _person(personal_number: str):
    number = "".join(ch for ch in personal_number if ch.isdigit())
    person = identity_services.identity_by_identifier(IdentifierType.PERSONAL_NUMBER, number)
    if person is None:
        raise click.ClickException("personal_number: no citizen account has this number.")
    return person


@business.command("create")
@click.option("--tax-code", required=True)
@click.option("--name", required=True)
@click.option("--legal-form", required=True, type=click.Choice([f.value for f in LegalForm]))
@click.option("--address", default=None)
@click.option("--status", default="active", type=click.Choice([s.value for s in BusinessStatus]))
@click.option("--representative", default=None, help="Personal number of the legal representative.")
@click.option("--source", default="officer", show_default=True,
              help="How the data was verified (e.g. business_registry).")
@_default_locale
def create(tax_code, name, legal_form, address, status, representative, source):
    """Register a business (an officer's command)."""
    now = utcnow()
    person = _person(representative) if representative else None
    try:
        identity = services.create_business(
            tax_code=tax_code, name=name, legal_form=legal_form, address=address, status=status,
            legal_representative_id=person.id if person else None, now=now,
            by=audit.cli_actor(), source=source)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"Registered business {identity.id} ({services.tax_code_of(identity)}).")


@business.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--rejects", "rejects_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the refused records (CSV).")
@click.option("--format", "fmt", type=click.Choice(importer.FORMATS), default=None)
@click.option("--source", default="import", show_default=True)
@_default_locale
def import_(path, rejects_path, fmt, source):
    """Import businesses from a CSV or JSON Lines file."""
    try:
        result = importer.import_file(path, now=utcnow(), by=audit.cli_actor(),
                                      rejects_path=rejects_path, fmt=fmt, source=source)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"read {result.read}, imported {result.imported}, rejected {result.rejected}"
               + (f" (see {result.rejects_path})" if result.rejected else ""))
    for code, count in sorted(result.reasons.items()):
        click.echo(f"  {code}: {count}")


@business.command("requests")
def list_requests():
    """List the registration requests waiting for an officer."""
    for item in services.pending_requests():
        click.echo(f"{item.id}\t{item.tax_code}\t{item.name}\t{item.legal_form.value}\t"
                   f"{item.requester.full_name}\t{item.created_at:%Y-%m-%d %H:%M}")


@business.command("approve")
@click.argument("request_id", type=int)
@click.option("--reason", default=None)
@_default_locale
def approve(request_id, reason):
    """Approve a registration request: the business is created, the requester represents it."""
    try:
        identity = services.approve_request(request_id, now=utcnow(), by=audit.cli_actor(),
                                            reason=reason)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"Approved: business {identity.id} ({services.tax_code_of(identity)}).")


@business.command("reject")
@click.argument("request_id", type=int)
@click.option("--reason", required=True)
@_default_locale
def reject(request_id, reason):
    """Refuse a registration request."""
    try:
        services.reject_request(request_id, now=utcnow(), by=audit.cli_actor(), reason=reason)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"Refused request {request_id}.")


@business.command("grant")
@click.argument("tax_code")
@click.argument("personal_number")
@click.option("--role", default="authorized", type=click.Choice([r.value for r in RepresentationRole]))
@click.option("--client", "client_ids", multiple=True, help="A relying party (repeat); none: all.")
@click.option("--scope", "scopes", multiple=True, help="A scope (repeat); none: no limit.")
@click.option("--valid-from", type=click.DateTime(), default=None, help="UTC.")
@click.option("--valid-to", type=click.DateTime(), default=None, help="UTC, exclusive.")
@click.option("--reason", required=True)
@_default_locale
def grant(tax_code, personal_number, role, client_ids, scopes, valid_from, valid_to, reason):
    """Make a person a representative of a business (an officer's command)."""
    found, person = _business(tax_code), _person(personal_number)
    try:
        rep = representation.grant(
            business_id=found.id, representative_id=person.id, role=role, now=utcnow(),
            by=audit.cli_actor(), client_ids=list(client_ids) or None, scopes=list(scopes) or None,
            valid_from=valid_from, valid_to=valid_to, reason=reason, officer=True)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"Granted: representation {rep.id} ({rep.role.value}).")


@business.command("revoke")
@click.argument("tax_code")
@click.argument("personal_number")
@click.option("--reason", required=True)
@_default_locale
def revoke(tax_code, personal_number, reason):
    """Revoke a person's representation of a business; their tokens for it end."""
    found, person = _business(tax_code), _person(personal_number)
    rep = representation.open_representation(found.id, person.id)
    if rep is None:
        raise click.ClickException("This person does not represent this business.")
    try:
        representation.revoke(rep.id, now=utcnow(), by=audit.cli_actor(), reason=reason, officer=True)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"Revoked representation {rep.id}.")


@business.command("set-status")
@click.argument("tax_code")
@click.argument("status", type=click.Choice([s.value for s in BusinessStatus]))
@click.option("--reason", required=True)
@_default_locale
def set_status(tax_code, status, reason):
    """Record that a business is active, suspended or dissolved."""
    found = _business(tax_code)
    try:
        services.set_status(found.id, status, now=utcnow(), by=audit.cli_actor(), reason=reason)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"{services.tax_code_of(found)} is now {status}.")


@business.command("show")
@click.argument("tax_code")
def show(tax_code):
    """A business and the people who represent it."""
    found = _business(tax_code)
    _, profile = services.get_business(found.id)
    now = utcnow()
    click.echo(f"{found.full_name}\t{services.tax_code_of(found)}\t{profile.legal_form.value}\t"
               f"{profile.business_status.value}")
    for rep in representation.open_of_business(found.id):
        click.echo(f"  {rep.id}\t{rep.representative.full_name}\t{rep.role.value}\t"
                   f"{representation.state(rep, now=now)}\tclients={rep.client_ids or '*'}\t"
                   f"scopes={rep.scopes if rep.scopes is not None else '*'}\t"
                   f"{rep.valid_from:%Y-%m-%d}..{rep.valid_to or ''}")


@business.command("expire")
def expire():
    """End the authorizations whose period is over (run it from cron, e.g. every 10 minutes)."""
    count = representation.expire_due(now=utcnow())
    click.echo(f"{count} representation(s) ended.")


def init_app(app) -> None:
    app.cli.add_command(business)

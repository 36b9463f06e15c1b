"""Subject identifiers: public (the identity's internal id) or pairwise per sector."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError

from idp.clients.models import Client, SubjectType
from idp.extensions import db
from idp.oidc.models import PairwiseSubject


def sector_of(client: Client) -> str:
    if client.sector_identifier:
        value = client.sector_identifier
        return urlsplit(value).hostname or value
    return urlsplit(client.redirect_uris[0]).hostname or client.client_id


def subject_for(identity_id, client: Client | None, *, salt: str) -> str:
    """The `sub` this client sees for the identity; stable across logins."""
    if client is None or client.subject_type != SubjectType.PAIRWISE:
        return str(identity_id)
    # OIDC Core 8.1: a keyed hash of sector and local id, so sectors cannot correlate people.
    mac = hmac.new(salt.encode(), f"{sector_of(client)}|{identity_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def issue_subject(identity_id, client: Client | None, *, salt: str) -> str:
    """subject_for(), remembering a pairwise value so it can be resolved later."""
    sub = subject_for(identity_id, client, salt=salt)
    if client is not None and client.subject_type == SubjectType.PAIRWISE:
        sector = sector_of(client)
        if db.session.get(PairwiseSubject, (sector, sub)) is None:
            # Committed at once: it is a standalone fact, and an open write would hold
            # SQLite's lock while the embedded store writes on its own connection.
            try:
                db.session.add(PairwiseSubject(sector=sector, sub=sub, identity_id=identity_id))
                db.session.commit()
            except IntegrityError:
                db.session.rollback()  # another request recorded it first
    return sub


def identity_id_for_subject(sub: str, client: Client | None):
    """The internal identity id behind a `sub` this client received, or None."""
    if client is not None and client.subject_type == SubjectType.PAIRWISE:
        row = db.session.get(PairwiseSubject, (sector_of(client), sub))
        return row.identity_id if row else None
    try:
        return uuid.UUID(sub)
    except ValueError:
        return None

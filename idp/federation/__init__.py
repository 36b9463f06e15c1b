"""Federation upstream: log in through the national e-ID (or any OpenID Connect provider).

Upstream providers are data (`flask federation ...`); the login page shows one button per
enabled provider (the `upstream_buttons` template global); the brokered login uses Authlib's
client only (authorization code + PKCE S256, state bound to the browser's session, nonce,
RFC 9207 iss check, ID token checked against the upstream's JWKS); the upstream identity is
mapped onto the unified identity by its verified personal number (services.py). An upstream
back-channel logout ends the sessions it started, and through them the relying parties'.
"""

from __future__ import annotations

from flask import g, has_request_context, request, session, url_for
from flask_babel import gettext
from sqlalchemy.exc import SQLAlchemyError

from idp.accounts import sessions as sso
from idp.accounts.views.common import safe_next
from idp.federation import logout, services
from idp.store import get_store


class _UpstreamButtons:
    """(slug, label, url) per enabled upstream, read only when a template uses it."""

    def __init__(self):
        self._items = None

    def _load(self) -> list[tuple[str, str, str]]:
        if self._items is None:
            try:
                providers = services.enabled_providers()
            except SQLAlchemyError:
                providers = []  # the page still offers the local login
            next_url = safe_next(request.values.get("next")) if has_request_context() else None
            self._items = [
                (p.slug, p.button_label or gettext("Log in with %(name)s", name=p.display_name),
                 url_for("federation.start", slug=p.slug, next=next_url))
                for p in providers
            ]
        return self._items

    def __iter__(self):
        return iter(self._load())

    def __len__(self):
        return len(self._load())

    def __bool__(self):
        return bool(self._load())


def _on_session_ended(app, *, identity_id: str, sid: str, reason: str) -> None:
    """Forget the upstream of an ended session; on a logout in this browser, offer its logout."""
    record = logout.forget(get_store(), sid)
    if (record and reason == "logout" and has_request_context()
            and g.get("sso") is not None and g.sso.public_id == sid):
        g.federation_logout = record


def _offer_upstream_logout(response):
    """after_request: the local logout page becomes "also log out of <upstream>?" when it can."""
    record = g.pop("federation_logout", None)
    if record is None or request.endpoint != "accounts.logout" or response.status_code not in (302, 303):
        return response
    provider = services.get_provider(record["slug"])
    if provider is None or not provider.metadata_json.get("end_session_endpoint"):
        return response
    session["fed_logout"] = logout.stash(get_store(), record)
    response.headers["Location"] = url_for("federation.logged_out")
    return response


def init_app(app) -> None:
    app.config.setdefault("FEDERATION_TIMEOUT", 5.0)
    sso.session_ended.connect(_on_session_ended, sender=app, weak=False)
    app.after_request(_offer_upstream_logout)

    @app.context_processor
    def _federation_globals():
        return {"upstream_buttons": _UpstreamButtons()}

"""Pages of the federation upstream: the brokered login, its callback, back-channel logout
from the upstream, the "log out upstream too" page, and the linked accounts in the console."""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from idp.accounts import factors
from idp.accounts import services as account_services
from idp.accounts import sessions as sso
from idp.accounts.views.common import (
    client_address,
    current_identity,
    finish_login,
    login_required,
    recent_login_required,
    safe_next,
)
from idp.extensions import csrf
from idp.federation import flow, logout, mapping, services
from idp.federation.tokens import LEEWAY, LOGOUT_TOKEN_MAX_AGE, TokenError, validate_logout_token
from idp.federation.upstream import JwksCache, UpstreamError, UpstreamUnavailable
from idp.store import get_store
from idp.timeutil import utcnow

log = logging.getLogger(__name__)
bp = Blueprint("federation", __name__)

PENDING_KEY = "fed_pending"
# A login attempt at the upstream must come back within this many seconds.
ATTEMPT_TTL = 600
# Login attempts remembered per browser (several tabs); the oldest is dropped.
MAX_ATTEMPTS = 3
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class ConfirmForm(FlaskForm):
    """CSRF only."""


def _timeout() -> float:
    return float(current_app.config["FEDERATION_TIMEOUT"])


def _redirect_uri(slug: str) -> str:
    # Built from the issuer, like the provider's own endpoints in its discovery document.
    return current_app.config["ISSUER"].rstrip("/") + url_for("federation.callback", slug=slug)


def _go(next_url):
    return redirect(next_url or url_for("accounts.account"))


def _page(status: int, message, *, provider=None, next_url=None, title=None, retry=False):
    """A clear page; the local login stays one click away (with the pending request kept)."""
    g.no_store = True
    return render_template(
        "federation/message.html",
        title=title or _l("You have not been logged in"),
        message=message,
        login_url=url_for("accounts.login", next=next_url),
        retry_url=url_for("federation.start", slug=provider.slug, next=next_url) if provider and retry else None,
    ), status


def _unavailable(provider, next_url):
    return _page(503, _l("%(name)s cannot be reached at the moment. Please try again later, or log in "
                         "with your password.", name=provider.display_name),
                 provider=provider, next_url=next_url, retry=True)


# --- the brokered login --------------------------------------------------------------------

@bp.get("/federation/<slug>/start")
def start(slug: str):
    provider = services.enabled_provider(slug)
    if provider is None:
        abort(404)
    return _begin(provider, next_url=safe_next(request.args.get("next")), link_for=None)


def _begin(provider, *, next_url, link_for):
    g.no_store = True
    try:
        metadata = services.metadata_for(provider, timeout=_timeout(), now=utcnow())
    except (UpstreamUnavailable, UpstreamError) as exc:
        log.warning("upstream %s: metadata unavailable: %s", provider.slug, exc)
        return _unavailable(provider, next_url)
    attempt = flow.new_attempt()
    now = int(time.time())
    pending = {state: item for state, item in (session.get(PENDING_KEY) or {}).items()
               if now - item.get("at", 0) <= ATTEMPT_TTL}
    while len(pending) >= MAX_ATTEMPTS:
        pending.pop(min(pending, key=lambda s: pending[s]["at"]))
    pending[attempt.state] = {
        "slug": provider.slug, "nonce": attempt.nonce, "verifier": attempt.verifier,
        "next": next_url, "at": now, "link_for": str(link_for) if link_for else None,
    }
    session[PENDING_KEY] = pending
    url = flow.authorization_url(provider, metadata, attempt, redirect_uri=_redirect_uri(provider.slug))
    return redirect(url)


def _take_attempt(slug: str, state: str) -> dict | None:
    """The attempt this browser started with this state (single use), or None."""
    pending = dict(session.get(PENDING_KEY) or {})
    item = pending.pop(state, None) if state else None
    session[PENDING_KEY] = pending
    if item is None or item.get("slug") != slug or int(time.time()) - item.get("at", 0) > ATTEMPT_TTL:
        return None
    return item


@bp.get("/federation/<slug>/callback")
def callback(slug: str):
    g.no_store = True
    item = _take_attempt(slug, request.args.get("state", ""))
    if item is None:
        # Also what a forged or replayed answer, or one meant for another browser, gets.
        return _page(400, _l("This login attempt has expired or was started in another browser. "
                             "Please start again."))
    next_url = item.get("next")
    provider = services.enabled_provider(slug)
    if provider is None:
        return _page(404, _l("This way of logging in is no longer available."), next_url=next_url)
    metadata = provider.metadata_json
    iss = request.args.get("iss")
    # RFC 9207 mix-up defence: the answer must name the upstream the attempt was sent to.
    if (iss is not None and iss != provider.issuer) or (
            iss is None and metadata.get("authorization_response_iss_parameter_supported")):
        log.warning("upstream %s: wrong or missing iss in the authorization response", slug)
        return _unverified(provider, next_url)
    error = request.args.get("error")
    if error:
        return _upstream_error(provider, error, next_url)
    attempt = flow.Attempt(state=request.args["state"], nonce=item["nonce"], verifier=item["verifier"])
    try:
        login = flow.complete(
            provider, metadata, attempt, code=request.args.get("code", ""),
            client_secret=services.client_secret(provider, current_app.config),
            redirect_uri=_redirect_uri(slug), store=get_store(), timeout=_timeout(), now=time.time(),
        )
    except UpstreamUnavailable as exc:
        log.warning("upstream %s unavailable: %s", slug, exc)
        return _unavailable(provider, next_url)
    except (UpstreamError, TokenError) as exc:
        log.warning("upstream %s: login refused: %s", slug, exc)
        return _unverified(provider, next_url)
    if item.get("link_for"):
        return _finish_link(provider, login, uuid.UUID(item["link_for"]))
    try:
        result = services.resolve_login(provider, login.person, login.assurance, now=utcnow(),
                                        address=client_address())
    except services.ConflictQueued as exc:
        return _page(409, exc.message, next_url=next_url, title=_l("Your information needs to be checked"))
    except services.LocalLoginRequired as exc:
        return _page(409, exc.message, next_url=next_url, title=_l("Log in with your password first"))
    except services.FederationRefused as exc:
        return _page(exc.status, exc.message, provider=provider, next_url=next_url)
    identity = result.identity
    amr = mapping.session_amr(login.assurance, identity_level=identity.assurance_level, acr_for=factors.acr_for)
    response = finish_login(identity, amr=amr, next_url=next_url, response_for=_go)
    _remember_upstream_session(response, provider, login)
    if "mfa" not in amr and account_services.roles_of(identity.id):
        # Officers and administrators always use two factors.
        flash(_l("Administrators and officers must use two factors."), "info")
        response.headers["Location"] = url_for("accounts.step_up", next=next_url)
    return response


def _unverified(provider, next_url):
    return _page(400, _l("The answer from %(name)s could not be verified, so you have not been logged "
                         "in. Please try again.", name=provider.display_name),
                 provider=provider, next_url=next_url, retry=True)


def _upstream_error(provider, error: str, next_url):
    if error in ("access_denied", "consent_required", "login_required", "interaction_required"):
        message = _l("You did not complete the login at %(name)s, or did not allow it to share your "
                     "information.", name=provider.display_name)
    else:
        code = error if _ERROR_CODE.match(error) else "error"
        message = _l("%(name)s could not log you in (%(code)s). Please try again later, or log in with "
                     "your password.", name=provider.display_name, code=code)
    log.info("upstream %s answered with error %r", provider.slug, error[:64])
    return _page(400, message, provider=provider, next_url=next_url, retry=True)


def _new_session_id(response) -> str | None:
    """The public id of the SSO session finish_login just put in the response's cookie."""
    name = sso.cookie_name() + "="
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(name):
            secret = header[len(name):].split(";", 1)[0].strip('"')
            cfg = current_app.config
            sess = sso.load_session(get_store(), secret, now=int(time.time()),
                                    idle=cfg["SESSION_IDLE_TIMEOUT"], absolute=cfg["SESSION_ABSOLUTE_TIMEOUT"])
            return sess.public_id if sess else None
    return None


def _remember_upstream_session(response, provider, login) -> None:
    public_id = _new_session_id(response)
    if public_id:
        logout.remember(get_store(), public_id, slug=provider.slug, issuer=provider.issuer,
                        id_token=login.id_token, upstream_sid=login.upstream_sid,
                        subject=login.person.subject, ttl=current_app.config["SESSION_ABSOLUTE_TIMEOUT"])


def _finish_link(provider, login, identity_id):
    identity = current_identity()
    if identity is None or identity.id != identity_id:
        return _page(403, _l("You were logged out before the link was made. Log in and try again."),
                     next_url=url_for("federation.account_links"))
    try:
        result = services.resolve_login(provider, login.person, login.assurance, now=utcnow(),
                                        address=client_address(), link_for=identity.id)
    except services.ConflictQueued as exc:
        return _page(409, exc.message, title=_l("Your information needs to be checked"),
                     next_url=url_for("federation.account_links"))
    except services.FederationRefused as exc:
        flash(exc.message, "error")
        return redirect(url_for("federation.account_links"))
    if result.newly_linked:
        flash(_l("%(name)s is now linked to your account.", name=provider.display_name), "success")
    return redirect(url_for("federation.account_links"))


# --- logout ----------------------------------------------------------------------------------

@bp.post("/federation/<slug>/backchannel-logout")
@csrf.exempt
def backchannel_logout(slug: str):
    """OpenID Connect Back-Channel Logout 1.0 from the upstream: end the sessions it started."""
    provider = services.get_provider(slug)
    if provider is None:
        abort(404)
    store = get_store()
    keys = JwksCache(slug=provider.slug, jwks_uri=provider.metadata_json["jwks_uri"], store=store,
                     timeout=_timeout())
    try:
        claims = validate_logout_token(request.form.get("logout_token"), issuer=provider.issuer,
                                       client_id=provider.client_id, keys=keys, now=time.time())
    except TokenError as exc:
        log.warning("upstream %s: logout token refused: %s", slug, exc.reason)
        return _bc_answer(400, "invalid_request", exc.reason)
    except (UpstreamUnavailable, UpstreamError) as exc:
        log.warning("upstream %s: keys unavailable for a logout token: %s", slug, exc)
        return _bc_answer(503, "temporarily_unavailable", "keys unavailable")
    ttl = int(max(claims.get("exp", 0) - time.time(), LOGOUT_TOKEN_MAX_AGE)) + 2 * LEEWAY
    if not store.set_if_absent(f"fed-jti:{slug}:{hashlib.sha256(claims['jti'].encode()).hexdigest()}", "1", ttl):
        return _bc_answer(400, "invalid_request", "replayed")
    ended = 0
    for public_id in logout.sessions_for(store, provider.issuer, sid=claims.get("sid"), sub=claims.get("sub")):
        identity_id = sso.identity_of_session(store, public_id)
        if identity_id:
            sso.end_session_by_digest(store, identity_id, public_id, reason="upstream_logout")
            ended += 1
    log.info("upstream %s: back-channel logout ended %d session(s)", slug, ended)
    return _bc_answer(200)


def _bc_answer(status: int, error: str | None = None, description: str | None = None):
    body = {"error": error, "error_description": description} if error else {}
    response = jsonify(body) if error else current_app.response_class(status=status)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/federation/logged-out")
def logged_out():
    """After a local logout of a session that came from an upstream: offer its logout too."""
    g.no_store = True
    record = logout.stashed(get_store(), session.get("fed_logout"))
    provider = services.get_provider(record["slug"]) if record else None
    end_session = provider.metadata_json.get("end_session_endpoint") if provider else None
    if not end_session:
        return redirect(url_for("accounts.index"))
    return render_template("federation/logged_out.html", provider=provider, action=end_session,
                           fields={"id_token_hint": record["id_token"], "client_id": provider.client_id})


# --- the account console -------------------------------------------------------------------

@bp.get("/account/federation")
@login_required
def account_links():
    identity = g.identity
    providers = {p.issuer: p for p in services.list_providers()}
    links = services.links_of(identity.id)
    rows = [{"link": link, "provider": providers.get(link.issuer), "can_unlink": services.can_unlink(link)}
            for link in links]
    linked = {link.issuer for link in links}
    available = [p for p in services.enabled_providers() if p.issuer not in linked]
    return render_template("federation/account.html", rows=rows, available=available, form=ConfirmForm())


@bp.post("/account/federation/<slug>/link")
@recent_login_required
def link(slug: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    provider = services.enabled_provider(slug)
    if provider is None:
        abort(404)
    return _begin(provider, next_url=url_for("federation.account_links"), link_for=g.identity.id)


@bp.post("/account/federation/links/<int:link_id>/unlink")
@login_required
def unlink(link_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        slug = services.unlink(g.identity.id, link_id, now=utcnow(), address=client_address())
    except services.FederationRefused as exc:
        flash(exc.message, "error")
        return redirect(url_for("federation.account_links"))
    provider = services.get_provider(slug)
    flash(_l("%(name)s is no longer linked to your account.",
             name=provider.display_name if provider else slug), "success")
    return redirect(url_for("federation.account_links"))

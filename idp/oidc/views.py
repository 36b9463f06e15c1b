"""Protocol endpoints: discovery, JWKS, authorize (with login and consent hand-offs), token,
userinfo, introspection, revocation, logout; and the citizen's list of connected systems."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qsl, unquote_to_bytes, urlencode, urlsplit

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, TokenMixin
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
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
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.exceptions import RequestEntityTooLarge

from idp import audit
from idp.accounts import events
from idp.clients import services as client_services
from idp.extensions import csrf, db
from idp.identity.models import Identity, IdentityStatus
from idp.identity.services import resolve as resolve_identity
from idp.oidc import acting, logout, pending, tokens
from idp.oidc import consent as consents
from idp.oidc.claims import legacy_claims, userinfo_claims
from idp.oidc.discovery import provider_metadata
from idp.oidc.scopes import ACR_SUBSTANTIAL, SCOPE_DESCRIPTIONS, acr_rank
from idp.oidc.server import get_server, load_client, principal_for, verify_access_token
from idp.oidc.signing import published_jwks
from idp.oidc.subjects import identity_id_for_subject
from idp.timeutil import utcnow

bp = Blueprint("oidc", __name__)

ERROR_UNMET = "unmet_authentication_requirements"
# Longest value accepted for any protocol parameter; longer ones are refused, not truncated.
MAX_PARAM_LENGTH = 4096
# Largest body read at the token, introspection and revocation endpoints.
MAX_FORM_BODY = 256 * 1024
ALLOWED_RESPONSE_MODES = ("query", "form_post")


class UnmetAuthenticationRequirements(OAuth2Error):
    error = ERROR_UNMET


# --- discovery and keys --------------------------------------------------------------------

@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery():
    resp = jsonify(provider_metadata(current_app.config))
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@bp.get("/oauth2/jwks")
def jwks():
    resp = jsonify(published_jwks())
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


# --- authorization endpoint ----------------------------------------------------------------

def _flat_params(source) -> dict | None:
    """Request parameters as a dict; None when one is repeated (RFC 6749 §3.1)."""
    params = {}
    for key in source:
        values = source.getlist(key)
        if len(values) > 1:
            return None
        params[key] = values[0]
    return params


def _error_redirect(redirect_uri: str, params: dict, error: str, description: str | None = None):
    query = {"error": error}
    if description:
        query["error_description"] = description
    if params.get("state"):
        query["state"] = params["state"]
    query["iss"] = current_app.config["ISSUER"]
    return _respond(redirect_uri, query, params.get("response_mode"))


def _respond(redirect_uri: str, query: dict, response_mode: str | None):
    if response_mode == "form_post":
        g.no_store = True
        return render_template("oidc/form_post.html", action=redirect_uri, fields=query)
    sep = "&" if urlsplit(redirect_uri).query else "?"
    return redirect(redirect_uri + sep + urlencode(query), 302)


def _oauth_error(error: OAuth2Error, params: dict):
    """Redirect errors to a validated redirect URI; otherwise show the provider's own page."""
    if error.redirect_uri:
        return _error_redirect(error.redirect_uri, params, error.error, error.description)
    return render_template(
        "oidc/error.html", error=error.error, description=error.description
    ), 400


def _principal(client):
    sess = g.get("sso")
    if sess is None:
        return None
    identity = db.session.get(Identity, uuid.UUID(sess.identity_id))
    if identity is None or identity.status != IdentityStatus.ACTIVE:
        return None
    return principal_for(
        identity.id, client, sid=sess.public_id, auth_time=sess.auth_time, acr=sess.acr, amr=sess.amr
    ), identity


def _required_acr(client, params) -> str | None:
    wanted = [v for v in (params.get("acr_values") or "").split() if acr_rank(v) >= 0]
    candidates = ([min(wanted, key=acr_rank)] if wanted else []) + (
        [client.model.min_acr] if client.model.min_acr else []
    )
    return max(candidates, key=acr_rank) if candidates else None


def _process(params: dict, req_id: str | None):
    """Validate the request, then log in, ask consent, or issue the code."""
    server = get_server()
    for key, value in params.items():
        if len(value) > MAX_PARAM_LENGTH:
            return render_template("oidc/error.html", error="invalid_request",
                                   description=f"Parameter '{key}' is too long."), 400
    client = load_client(params.get("client_id"))
    found = _principal(client) if client is not None else None
    principal, identity = found if found else (None, None)
    try:
        grant = server.get_consent_grant(request=params, end_user=principal)
    except OAuth2Error as error:
        return _oauth_error(error, params)
    redirect_uri = grant.redirect_uri or params.get("redirect_uri")
    client = grant.request.client

    def fail(error, description=None):
        return _error_redirect(redirect_uri, params, error, description)

    if params.get("response_mode", "query") not in ALLOWED_RESPONSE_MODES:
        return fail("invalid_request", "Unsupported response_mode.")
    prompts = set((params.get("prompt") or "").split())
    max_age = params.get("max_age")
    if max_age is not None and not (max_age.isdigit() and len(max_age) < 10):
        return fail("invalid_request", "max_age must be a non-negative integer.")
    if params.get("ui_locales"):
        _remember_locale(params["ui_locales"])

    now = int(time.time())
    record = pending.load(req_id) if req_id else None
    needs_login = principal is None
    # A login made for this very request satisfies prompt=login and max_age (else max_age=0, or
    # a hand-back arriving a second after the login, would send the person back to log in).
    fresh = record is not None and principal is not None and principal.auth_time >= record["created_at"]
    if principal is not None and not fresh:
        # max_age=0 is prompt=login (OIDC Core 3.1.2.1), even within the second of the login.
        if max_age is not None and (int(max_age) == 0 or now - principal.auth_time > int(max_age)):
            needs_login = True
        if "login" in prompts or "select_account" in prompts:
            needs_login = True
    if needs_login:
        if "none" in prompts:
            return fail(LoginRequiredError.error)
        req_id = req_id or pending.save(params)
        return redirect(url_for(
            "accounts.login", next=url_for("oidc.resume", req=req_id), login_hint=params.get("login_hint")
        ))

    required = _required_acr(client, params)
    if required and acr_rank(principal.acr) < acr_rank(required):
        if identity.assurance_level < 2:
            pending.drop(req_id) if req_id else None
            return render_template("oidc/unmet.html", client=client.model, required=required,
                                   continue_url=_error_url(redirect_uri, params, ERROR_UNMET)), 403
        if acr_rank(required) > acr_rank(ACR_SUBSTANTIAL):
            # No phishing-resistant authenticator exists here yet: never report what was not reached.
            return fail(ERROR_UNMET, "The requested level of authentication cannot be reached.")
        if "none" in prompts:
            return fail("interaction_required", "A second factor is needed.")
        # A verified identity with a weaker session: add the missing factor, then come back.
        req_id = req_id or pending.save(params)
        return redirect(url_for("accounts.step_up", next=url_for("oidc.resume", req=req_id)))

    scopes = grant.request.scope.split()
    if acting.asks_business(scopes):
        # A person who represents businesses chooses: as themselves, or for one of them.
        choice = (record or {}).get("acting_for")
        offered = {str(rep.business_id) for rep in acting.options(identity.id, client, scopes)}
        if (offered and choice is None) or (choice and choice not in offered):
            if "none" in prompts:
                return fail("interaction_required", "Choose whether to act for a business.")
            req_id = req_id or pending.save(params)
            return redirect(url_for("oidc.choose_business", req=req_id,
                                    again=1 if choice else None))
        if choice and choice in offered:
            principal = acting.act_for(principal, choice, client, scopes)
            if principal is None:
                return fail("access_denied", "The person may no longer act for this business.")
    if not client.model.first_party and ("consent" in prompts or not consents.covers(identity.id, client.client_id, scopes)):
        if "none" in prompts:
            return fail(ConsentRequiredError.error)
        req_id = req_id or pending.save(params)
        return render_template(
            "oidc/consent.html",
            client=client.model,
            scopes=[(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in scopes],
            req_id=req_id,
            form=ConsentForm(),
            identity=identity,
            business=principal.business,
        )
    return _issue_code(params, principal, req_id)


def _issue_code(params: dict, principal, req_id: str | None):
    server = get_server()
    grant = server.get_consent_grant(request=params, end_user=principal)
    response = server.create_authorization_response(request=params, grant_user=principal, grant=grant)
    if response.status_code == 302 and "code=" in response.headers.get("Location", ""):
        # The person's activity page shows which systems they logged in to.
        events.record(uuid.UUID(principal.identity_id), "authorized", now=utcnow(), client_id=grant.client.client_id,
                      address=request.remote_addr, user_agent=request.user_agent.string, commit=False)
    db.session.commit()
    if req_id:
        pending.drop(req_id)
    location = response.headers.get("Location", "")
    if params.get("response_mode") == "form_post" and response.status_code == 302:
        base, _, query = location.partition("?")
        return _respond(base, dict(parse_qsl(query)), "form_post")
    return response


def _error_url(redirect_uri: str, params: dict, error: str) -> str:
    query = {"error": error, "iss": current_app.config["ISSUER"]}
    if params.get("state"):
        query["state"] = params["state"]
    sep = "&" if urlsplit(redirect_uri).query else "?"
    return redirect_uri + sep + urlencode(query)


def _remember_locale(ui_locales: str) -> None:
    from flask import session

    for tag in ui_locales.split():
        if tag[:2] in current_app.config["LANGUAGES"]:
            session["lang"] = tag[:2]
            return


@bp.route("/oauth2/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    g.no_store = True
    params = _flat_params(request.values)
    if params is None:
        return render_template("oidc/error.html", error="invalid_request",
                               description="A parameter was repeated."), 400
    return _process(params, None)


@bp.get("/oauth2/authorize/resume")
def resume():
    g.no_store = True
    req_id = request.args.get("req", "")
    params = pending.load(req_id)
    if params is None:
        return render_template("oidc/error.html", error="request_expired",
                               description=_l("This login request has expired. Please go back to the service and start again.")), 400
    return _process(params["params"], req_id)


class ConsentForm(FlaskForm):
    """CSRF only; the decision is the button pressed."""


@bp.post("/oauth2/authorize/consent")
def consent():
    g.no_store = True
    req_id = request.form.get("req", "")
    record = pending.load(req_id)
    if record is None:
        return render_template("oidc/error.html", error="request_expired",
                               description=_l("This login request has expired. Please go back to the service and start again.")), 400
    if not ConsentForm().validate_on_submit():
        abort(400)
    params = record["params"]
    client = load_client(params.get("client_id"))
    found = _principal(client) if client is not None else None
    if found is None:
        return _process(params, req_id)  # logged out meanwhile: back to login
    principal, identity = found
    if request.form.get("decision") != "allow":
        pending.drop(req_id)
        return _error_redirect(params["redirect_uri"], params, "access_denied", "The person declined.")
    grant = get_server().get_consent_grant(request=params, end_user=principal)
    if record.get("acting_for") and acting.asks_business(grant.request.scope.split()):
        principal = acting.act_for(principal, record["acting_for"], client, grant.request.scope.split())
        if principal is None:
            return _process(params, req_id)  # no longer allowed: choose again
        grant = get_server().get_consent_grant(request=params, end_user=principal)
    granted = consents.record(identity.id, client.client_id, grant.request.scope.split(),
                              notice_version=current_app.config["CONSENT_NOTICE_VERSION"], now=utcnow())
    audit.record("consent.granted", actor=str(identity.id), target_type="client", target_id=client.client_id,
                 address=request.remote_addr, details={"scopes": granted.scopes, "notice_version": granted.notice_version})
    db.session.commit()
    return _issue_code(params, principal, req_id)


# --- acting for a business: the chooser --------------------------------------------------------

class ChooseBusinessForm(FlaskForm):
    """CSRF only; the choice is the button pressed ("self" or a business identity id)."""


def _chooser_context(req_id: str):
    record = pending.load(req_id)
    if record is None:
        return None, render_template("oidc/error.html", error="request_expired",
                                     description=_l("This login request has expired. Please go back to the service and start again.")), 400
    params = record["params"]
    client = load_client(params.get("client_id"))
    found = _principal(client) if client is not None else None
    if found is None:
        return None, _process(params, req_id)  # logged out meanwhile: back to login
    try:
        grant = get_server().get_consent_grant(request=params, end_user=found[0])
    except OAuth2Error as error:
        return None, _oauth_error(error, params)
    scopes = grant.request.scope.split()
    return (record, client, found[1], acting.options(found[1].id, client, scopes)), None


@bp.route("/oauth2/authorize/business", methods=["GET", "POST"])
def choose_business():
    """Act as myself, or for one of the businesses I represent that this system may see."""
    g.no_store = True
    req_id = request.values.get("req", "")
    context, response = _chooser_context(req_id)
    if context is None:
        return response
    record, client, identity, options = context
    form = ChooseBusinessForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        choice = request.form.get("choice", "")
        offered = {str(rep.business_id) for rep in options}
        if choice != "self" and choice not in offered:
            return render_template("oidc/error.html", error="access_denied",
                                   description=_l("You cannot act for this business in this system.")), 403
        if not pending.update(req_id, acting_for="" if choice == "self" else choice):
            return render_template("oidc/error.html", error="request_expired",
                                   description=_l("This login request has expired. Please go back to the service and start again.")), 400
        return redirect(url_for("oidc.resume", req=req_id))
    return render_template("oidc/choose_business.html", client=client.model, identity=identity,
                           options=options, req_id=req_id, form=form,
                           again=bool(request.args.get("again")))


# --- token, introspection, revocation ------------------------------------------------------

def _token_error(description: str):
    resp = jsonify(error="invalid_request", error_description=description)
    resp.status_code = 400
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _is_utf8_form(raw: bytes) -> bool:
    try:
        for part in raw.split(b"&"):
            unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_form_post():
    """Malformed token-endpoint input gets invalid_request, never a 500."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return _token_error("The body must be application/x-www-form-urlencoded.")
    if request.args:
        return _token_error("Parameters belong in the body, not the query string.")
    # Werkzeug keeps undecodable bytes as "%XX" text (or drops the whole form when they are
    # not percent-encoded), so the encoding is checked on the raw body, read within a bound.
    request.max_content_length = MAX_FORM_BODY
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        return _token_error("The request body is too large.")
    if not _is_utf8_form(raw):
        return _token_error("The body is not valid UTF-8.")
    form = _flat_params(request.form)
    if form is None:
        return _token_error("A parameter was repeated.")
    for key, value in form.items():
        if len(value) > MAX_PARAM_LENGTH:
            return _token_error(f"Parameter '{key}' is too long.")
        if "\ufffd" in value:
            return _token_error(f"Parameter '{key}' is not valid UTF-8.")
    return None


@bp.post("/oauth2/token")
@csrf.exempt
def token():
    bad = _check_form_post()
    if bad is not None:
        return bad
    if not request.form.get("grant_type"):
        return _token_error("Missing grant_type.")  # RFC 6749 §5.2: a missing parameter
    response = get_server().create_token_response()
    if response.status_code == 200:
        db.session.commit()
    else:
        db.session.rollback()
    return response


@bp.post("/oauth2/introspect")
@csrf.exempt
def introspect():
    bad = _check_form_post()
    if bad is not None:
        return bad
    response = get_server().create_endpoint_response("introspection")
    if response.is_json and isinstance(response.get_json(), dict):
        body = response.get_json()
        if body.pop("_family", None) is not None:
            response.set_data(jsonify(body).get_data())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/oauth2/revoke")
@csrf.exempt
def revoke():
    bad = _check_form_post()
    if bad is not None:
        return bad
    response = get_server().create_endpoint_response("revocation")
    response.headers["Cache-Control"] = "no-store"
    return response


# --- userinfo ------------------------------------------------------------------------------

class AccessToken(TokenMixin):
    def __init__(self, claims: dict):
        self.claims = claims

    def check_client(self, client):
        return client.get_client_id() == self.claims.get("client_id")

    def get_scope(self):
        return self.claims.get("scope", "")

    def get_expires_in(self):
        return int(self.claims["exp"] - time.time())

    def is_expired(self):
        return self.claims["exp"] <= time.time()

    def is_revoked(self):
        return False  # verify_access_token already refused denied tokens


class AccessTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        if not token_string or len(token_string) > 8192:
            return None
        claims = verify_access_token(token_string)
        return AccessToken(claims) if claims else None


require_token = ResourceProtector()
require_token.register_token_validator(AccessTokenValidator())


@bp.route("/oauth2/userinfo", methods=["GET", "POST"])
@csrf.exempt
@require_token("openid")
def userinfo():
    from authlib.integrations.flask_oauth2 import current_token

    claims = current_token.claims
    client = load_client(claims.get("client_id"))
    if client is None or not claims.get("sub"):
        return _bearer_error("invalid_token", 401)
    if "act" in claims:
        # Issued while acting for a business: answered only while the person still may.
        body = acting.userinfo(client.model, claims)
        if body is None:
            return _bearer_error("invalid_token", 401)
        resp = jsonify(body)
        resp.headers["Cache-Control"] = "no-store"
        return resp
    identity_id = identity_id_for_subject(claims["sub"], client.model)
    # A merged identity's tokens answer with the survivor (the token's sub is kept).
    identity = resolve_identity(identity_id) if identity_id else None
    if identity is None or identity.status != IdentityStatus.ACTIVE:
        return _bearer_error("invalid_token", 401)
    scopes = claims.get("scope", "").split()
    body = userinfo_claims(identity, claims["sub"], scopes)
    if "legacy" in scopes:
        body.update(legacy_claims(identity.id, client.client_id))
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _bearer_error(error: str, status: int):
    resp = jsonify(error=error)
    resp.status_code = status
    resp.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return resp


# --- the citizen's connected systems ---------------------------------------------------------

class WithdrawForm(FlaskForm):
    """CSRF only."""


def _current_identity():
    sess = g.get("sso")
    if sess is None:
        return None
    identity = db.session.get(Identity, uuid.UUID(sess.identity_id))
    return identity if identity is not None and identity.status == IdentityStatus.ACTIVE else None


@bp.get("/account/connections")
def connections():
    identity = _current_identity()
    if identity is None:
        return redirect(url_for("accounts.login", next=request.path))
    g.no_store = True
    rows = []
    for item in consents.active_consents(identity.id):
        model = client_services.get_client(item.client_id)
        rows.append({"consent": item, "client": model,
                     "scopes": [SCOPE_DESCRIPTIONS.get(s, s) for s in item.scopes]})
    return render_template("oidc/connections.html", rows=rows, form=WithdrawForm())


@bp.post("/account/connections/<client_id>/withdraw")
def withdraw_consent(client_id: str):
    identity = _current_identity()
    if identity is None:
        return redirect(url_for("accounts.login", next=url_for("oidc.connections")))
    if not WithdrawForm().validate_on_submit():
        abort(400)
    model = client_services.get_client(client_id)
    now = utcnow()
    if model is None or not consents.withdraw(identity.id, client_id, now=now):
        abort(404)
    # Withdrawal ends what the system holds: its refresh tokens, and its sessions by back-channel.
    tokens.revoke_where(now=now, reason="consent_withdrawn", identity_id=identity.id, client_id=client_id)
    queued = logout.queue_identity_logout(model, identity.id, now=now)
    audit.record("consent.withdrawn", actor=str(identity.id), target_type="client", target_id=client_id,
                 address=request.remote_addr)
    db.session.commit()
    if queued:
        logout.kick()
    flash(_l("%(client)s no longer receives your information.", client=model.name), "success")
    return redirect(url_for("oidc.connections"))


# --- RP-initiated logout -------------------------------------------------------------------

class LogoutConfirmForm(FlaskForm):
    """CSRF only."""


@bp.route("/oauth2/logout", methods=["GET", "POST"])
@csrf.exempt
def end_session():
    g.no_store = True
    server = get_server()
    try:
        req = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return render_template("oidc/error.html", error=error.error, description=error.description), 400
    if req.needs_confirmation:
        form = LogoutConfirmForm()
        if request.method == "GET" or not form.validate_on_submit():
            return render_template("oidc/logout_confirm.html", form=form, client=req.client,
                                   params=_flat_params(request.values) or {})
    response = server.create_endpoint_response("end_session", req)
    if response is None:
        response = current_app.make_response(render_template("oidc/logged_out.html", client=req.client))
    return response


__all__ = ["bp", "InvalidRequestError"]

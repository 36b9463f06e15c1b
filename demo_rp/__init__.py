"""Example relying party ("a government system") that signs in with the province's e-ID provider.

Authorization code flow with PKCE (S256) and nonce through Authlib's Flask client; the client
authenticates with client_secret_basic; RP-initiated logout; back-channel logout.

Sessions are held server-side in the memory of this process (see `demo_rp.sessions`): the
Flask session cookie carries only a random local session id, so a back-channel logout can end
the session of a browser that is not present. Consequently the demo RP must run as ONE process
(`python -m demo_rp`, threads are fine); it is a demonstration, not a production client.

Configuration: environment variables, overridden by the `config` dict given to `create_app`:
RP_NAME, RP_ISSUER, RP_CLIENT_ID, RP_CLIENT_SECRET, RP_BASE_URL, RP_PORT, RP_SECRET_KEY,
RP_SCOPE, RP_ACR_VALUES. Other keys of `config` go to Flask's config as they are.

RP_ACR_VALUES (optional, space-separated, e.g. `urn:eid:loa:substantial`) is sent as the
`acr_values` of every authorization request: the provider then asks for a second factor when the
session is weaker (step-up). Empty (the default) sends no acr_values.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, g, jsonify, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError

from .logout_token import LogoutTokenError, LogoutTokenValidator
from .sessions import MemoryCache, SessionRegistry

__all__ = ["create_app", "create_local_session", "get_rp"]

DEFAULT_ISSUER = "http://127.0.0.1:5000"
DEFAULT_PORT = 5001
DEFAULT_SCOPE = "openid profile email phone"
HTTP_TIMEOUT = 10
VN_TZ = timezone(timedelta(hours=7))
SESSION_KEY = "lid"

# Vietnamese explanations of the provider's error codes (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).
PROVIDER_ERRORS = {
    "access_denied": "Bạn đã từ chối hoặc huỷ việc đăng nhập.",
    "login_required": "Cần đăng nhập tại hệ thống định danh.",
    "consent_required": "Cần sự đồng ý của bạn để chia sẻ thông tin.",
    "interaction_required": "Hệ thống định danh cần bạn thao tác thêm.",
    "account_selection_required": "Cần chọn tài khoản tại hệ thống định danh.",
    "invalid_request": "Yêu cầu đăng nhập không hợp lệ.",
    "unauthorized_client": "Hệ thống này chưa được phép dùng đăng nhập định danh.",
    "invalid_scope": "Hệ thống này yêu cầu thông tin không được phép.",
    "unsupported_response_type": "Kiểu phản hồi không được hỗ trợ.",
    "server_error": "Hệ thống định danh gặp lỗi.",
    "temporarily_unavailable": "Hệ thống định danh tạm thời không phục vụ được.",
}


class ProviderError(Exception):
    """The provider cannot be used (unreachable, or its metadata is not acceptable)."""


class RelyingParty:
    """Settings, the Authlib client and the in-memory state of one RP application."""

    def __init__(self, app: Flask, settings: dict[str, Any]) -> None:
        self.name: str = settings["RP_NAME"]
        self.issuer: str = settings["RP_ISSUER"]
        self.client_id: str = settings["RP_CLIENT_ID"]
        self.base_url: str = settings["RP_BASE_URL"]
        self.scope: str = settings["RP_SCOPE"]
        self.acr_values: str = settings["RP_ACR_VALUES"]
        self.registry = SessionRegistry()
        self.oauth = OAuth(app, cache=MemoryCache())
        # Registering does not fetch anything: discovery happens at first use.
        self.client = self.oauth.register(
            name="eid",
            client_id=self.client_id,
            client_secret=settings["RP_CLIENT_SECRET"],
            server_metadata_url=self.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": self.scope,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "client_secret_basic",
                "default_timeout": HTTP_TIMEOUT,
            },
        )
        self.validator = LogoutTokenValidator(
            issuer=self.issuer, client_id=self.client_id, load_keys=self._load_keys
        )

    def metadata(self) -> dict[str, Any]:
        """The discovery document, fetched once; its issuer must be the configured one."""
        try:
            metadata = self.client.load_server_metadata()
        except (requests.RequestException, ValueError) as exc:
            raise ProviderError(f"discovery failed: {exc}") from exc
        if metadata.get("issuer") != self.issuer:
            found = metadata.get("issuer")
            self.client.server_metadata.clear()  # try again next time
            raise ProviderError(f"discovery issuer {found!r} is not {self.issuer!r}")
        return metadata

    def _load_keys(self, force: bool) -> dict[str, Any]:
        self.metadata()
        return self.client.fetch_jwk_set(force=force)


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    def value(name: str, default: Any = None) -> Any:
        if name in config and config[name] not in (None, ""):
            return config[name]
        return os.environ.get(name) or default

    port = int(value("RP_PORT", DEFAULT_PORT))
    settings = {
        "RP_PORT": port,
        "RP_NAME": value("RP_NAME", f"Hệ thống ví dụ (cổng {port})"),
        "RP_ISSUER": value("RP_ISSUER", DEFAULT_ISSUER),
        "RP_CLIENT_ID": value("RP_CLIENT_ID"),
        "RP_CLIENT_SECRET": value("RP_CLIENT_SECRET"),
        "RP_BASE_URL": str(value("RP_BASE_URL", f"http://127.0.0.1:{port}")).rstrip("/"),
        "RP_SECRET_KEY": value("RP_SECRET_KEY") or secrets.token_hex(32),
        "RP_SCOPE": value("RP_SCOPE", DEFAULT_SCOPE),
        "RP_ACR_VALUES": str(value("RP_ACR_VALUES", "")).strip(),
    }
    missing = [k for k in ("RP_CLIENT_ID", "RP_CLIENT_SECRET") if not settings[k]]
    if missing:
        raise RuntimeError(f"demo_rp: set {', '.join(missing)} (environment or config)")
    return settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    config = dict(config or {})
    settings = _settings(config)
    app = Flask(__name__)
    app.config.update({k: v for k, v in config.items() if not k.startswith("RP_")})
    app.config.update(settings)
    app.config.update(
        SECRET_KEY=settings["RP_SECRET_KEY"],
        # Cookies ignore ports: each RP on 127.0.0.1 needs its own cookie name.
        SESSION_COOKIE_NAME=f"demo_rp_{settings['RP_PORT']}",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["RP_BASE_URL"].startswith("https://"),
    )
    rp = RelyingParty(app, settings)
    app.extensions["demo_rp"] = rp
    _register_routes(app, rp)
    return app


def get_rp(app: Flask) -> RelyingParty:
    return app.extensions["demo_rp"]


def create_local_session(
    app: Flask,
    *,
    sub: str,
    sid: str | None = None,
    id_token: str = "",
    userinfo: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
) -> str:
    """Put a session in the RP's registry; returns the local id the cookie would carry."""
    return get_rp(app).registry.create(
        sub=sub, sid=sid, id_token=id_token, userinfo=userinfo, claims=claims
    )


def _accent(name: str) -> int:
    # A stable hue per system, so two systems side by side look different.
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 360


def _format_time(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC).astimezone(VN_TZ)
        return f"{moment:%d/%m/%Y %H:%M:%S} (giờ Việt Nam) — {int(value)}"
    return "" if value is None else str(value)


def _format_claim(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if name == "auth_time":
        return _format_time(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


CLAIM_LABELS = [
    ("sub", "Mã định danh người dùng"),
    ("name", "Họ và tên"),
    ("birthdate", "Ngày sinh"),
    ("acr", "Mức độ đảm bảo xác thực"),
    ("amr", "Phương thức xác thực"),
    ("auth_time", "Thời điểm xác thực"),
    ("sid", "Mã phiên đăng nhập"),
    ("email", "Thư điện tử"),
    ("phone_number", "Số điện thoại"),
]


def _register_routes(app: Flask, rp: RelyingParty) -> None:
    def error_page(
        code: str, message: str, status: int, detail: str | None = None, heading: str | None = None
    ):
        body = render_template(
            "error.html",
            code=code,
            message=message,
            detail=detail,
            heading=heading or "Không thể đăng nhập",
        )
        return body, status

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"rp": rp, "accent": _accent(rp.name)}

    @app.before_request
    def _load_local_session() -> None:
        local_id = session.get(SESSION_KEY)
        g.rp_session = rp.registry.get(local_id)
        g.local_id = local_id if g.rp_session else None
        # An id whose session is gone: ended by a back-channel logout.
        g.session_ended = bool(local_id) and g.rp_session is None
        if g.session_ended:
            session.pop(SESSION_KEY, None)

    @app.after_request
    def _headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/healthz")
    def healthz():
        return "ok", 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/")
    def index():
        notice = None
        if request.args.get("state"):
            # Back from the provider's end_session_endpoint.
            try:
                rp.client.validate_logout_response()
                notice = "Bạn đã đăng xuất khỏi hệ thống này và khỏi tài khoản định danh điện tử của tỉnh."
            except AuthlibBaseError:
                notice = None
        elif request.args.get("logged_out") == "local":
            notice = (
                "Bạn đã đăng xuất khỏi hệ thống này. Không liên lạc được với hệ thống định danh, "
                "nên phiên đăng nhập tại đó có thể vẫn còn."
            )
        elif g.session_ended:
            notice = (
                "Phiên đăng nhập của bạn tại hệ thống này đã kết thúc "
                "(bạn đã đăng xuất ở một hệ thống khác hoặc tại trang định danh)."
            )
        entry = g.rp_session
        rows = []
        if entry:
            shown = {**entry["claims"], **entry["userinfo"], "sub": entry["sub"]}
            for key in ("acr", "amr", "auth_time", "sid"):
                if key in entry["claims"]:
                    shown[key] = entry["claims"][key]
            rows = [(label, key, _format_claim(key, shown.get(key))) for key, label in CLAIM_LABELS]
        return render_template("index.html", entry=entry, rows=rows, notice=notice)

    @app.get("/login")
    def login():
        if g.rp_session:
            return redirect(url_for("index"))
        try:
            rp.metadata()
            extra = {"acr_values": rp.acr_values} if rp.acr_values else {}
            return rp.client.authorize_redirect(rp.base_url + "/callback", **extra)
        except (ProviderError, requests.RequestException) as exc:
            app.logger.warning("login: provider unavailable: %s", exc)
            return error_page(
                "provider_unavailable",
                "Không kết nối được với hệ thống định danh điện tử của tỉnh. Vui lòng thử lại sau.",
                502,
            )

    @app.get("/callback")
    def callback():
        try:
            metadata = rp.metadata()
        except ProviderError as exc:
            app.logger.warning("callback: provider unavailable: %s", exc)
            return error_page(
                "provider_unavailable", "Không kết nối được với hệ thống định danh điện tử.", 502
            )

        # RFC 9207: the response must come from our provider.
        iss = request.args.get("iss")
        if iss is not None and iss != rp.issuer:
            return error_page(
                "invalid_iss",
                "Phản hồi đăng nhập không đến từ hệ thống định danh của tỉnh nên bị từ chối.",
                400,
            )
        if iss is None and metadata.get("authorization_response_iss_parameter_supported"):
            return error_page(
                "missing_iss", "Phản hồi đăng nhập thiếu tham số iss nên bị từ chối.", 400
            )

        error = request.args.get("error")
        if error:
            state = request.args.get("state")
            if state:
                rp.client.framework.clear_state_data(session, state)
            message = PROVIDER_ERRORS.get(error, "Hệ thống định danh đã từ chối yêu cầu đăng nhập.")
            return error_page(error, message, 400, request.args.get("error_description"))
        if not request.args.get("code"):
            return error_page(
                "invalid_request", "Phản hồi đăng nhập thiếu mã xác thực (code).", 400
            )

        try:
            token = rp.client.authorize_access_token()
        except AuthlibBaseError as exc:
            app.logger.warning("callback: %s %s", exc.error, exc.description)
            if exc.error == "mismatching_state":
                message = "Yêu cầu đăng nhập đã hết hạn hoặc không khớp. Vui lòng đăng nhập lại."
            else:
                message = "Không hoàn tất được việc đăng nhập với hệ thống định danh."
            return error_page(exc.error or "oauth_error", message, 400, exc.description)
        except JoseError as exc:
            app.logger.warning("callback: ID token refused: %s", exc)
            return error_page(
                "invalid_id_token",
                "Thẻ định danh (ID token) nhận được không hợp lệ.",
                400,
                exc.error,
            )
        except requests.RequestException as exc:
            app.logger.warning("callback: token request failed: %s", exc)
            return error_page(
                "provider_unavailable", "Không liên lạc được với hệ thống định danh.", 502
            )

        id_claims = token.get("userinfo")
        if not id_claims or not id_claims.get("sub"):
            return error_page("invalid_id_token", "Không nhận được thẻ định danh (ID token).", 400)
        id_claims = dict(id_claims)

        userinfo: dict[str, Any] = {}
        if metadata.get("userinfo_endpoint"):
            try:
                fetched = dict(rp.client.userinfo(token=token))
                # OIDC Core §5.3.2: the UserInfo sub must be the ID token's.
                if fetched.get("sub") == id_claims["sub"]:
                    userinfo = fetched
                else:
                    app.logger.warning("callback: userinfo sub differs from the ID token's")
            except (requests.RequestException, ValueError) as exc:
                app.logger.warning("callback: userinfo failed: %s", exc)

        # A fresh local id at every login; the old cookie content is dropped.
        session.clear()
        session[SESSION_KEY] = rp.registry.create(
            sub=id_claims["sub"],
            sid=id_claims.get("sid"),
            id_token=token.get("id_token", ""),
            userinfo=userinfo,
            claims=id_claims,
        )
        app.logger.info("login: sub=%s sid=%s", id_claims["sub"], id_claims.get("sid"))
        return redirect(url_for("index"))

    @app.get("/logout")
    def logout_get():
        # Logging out changes state: only the POST form does it.
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout():
        entry = g.rp_session
        if entry is None:
            return redirect(url_for("index"))
        if not hmac.compare_digest(request.form.get("csrf", ""), entry["csrf"]):
            return error_page(
                "invalid_request",
                "Yêu cầu đăng xuất không hợp lệ. Vui lòng mở lại trang chủ và thử lại.",
                400,
                heading="Không thể đăng xuất",
            )
        rp.registry.remove(g.local_id)
        session.clear()
        try:
            metadata = rp.metadata()
            if not metadata.get("end_session_endpoint"):
                raise ProviderError("no end_session_endpoint")
            return rp.client.logout_redirect(
                post_logout_redirect_uri=rp.base_url + "/",
                id_token_hint=entry["id_token"] or None,
                state=secrets.token_urlsafe(16),
                client_id=rp.client_id,
            )
        except ProviderError as exc:
            app.logger.warning("logout: provider unavailable: %s", exc)
            return redirect(url_for("index", logged_out="local"))

    @app.post("/backchannel-logout")
    def backchannel_logout():
        try:
            claims = rp.validator.validate(request.form.get("logout_token", ""))
        except LogoutTokenError as exc:
            app.logger.warning("back-channel logout refused: %s", exc)
            response = jsonify(error="invalid_request", error_description=str(exc))
            response.status_code = 400
            response.headers["Cache-Control"] = "no-store"
            return response
        ended = rp.registry.end_matching(sid=claims.get("sid"), sub=claims.get("sub"))
        app.logger.info(
            "back-channel logout: sid=%s sub=%s, %d local session(s) ended",
            claims.get("sid"),
            claims.get("sub"),
            ended,
        )
        return "", 200, {"Cache-Control": "no-store"}

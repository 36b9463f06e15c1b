"""The unified e-ID identity provider."""

from __future__ import annotations

import logging
import os

from flask import Flask, g, request, session
from sqlalchemy import event
from sqlalchemy.engine import Engine

from idp.config import load_config
from idp.extensions import babel, csrf, db, migrate

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def create_app(overrides: dict | None = None) -> Flask:
    """Build one application: config -> extensions -> blueprints -> CLI."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(
        __name__,
        instance_path=os.environ.get("IDP_INSTANCE_PATH", os.path.join(root, "instance")),
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
    )
    app.config.update(load_config(app.instance_path, overrides))
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"))

    if app.config.get("PROXY_FIX"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    # Every table must be known to the metadata (migrations compare against it).
    import idp.accounts.models
    import idp.admin.models
    import idp.audit.models
    import idp.business.models
    import idp.clients.models
    import idp.federation.models
    import idp.identity.models
    import idp.legacy.models
    import idp.oidc.models
    import idp.store.models  # noqa: F401

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)

    from idp import store

    store.init_app(app)

    _register_features(app)

    from idp.errors import register_error_handlers

    register_error_handlers(app)

    from idp import cli

    cli.init_app(app)

    @app.context_processor
    def _template_globals():
        from flask_babel import get_locale

        return {"current_locale": str(get_locale()), "languages": app.config["LANGUAGES"]}

    return app


def _register_features(app) -> None:
    """Blueprints and listeners, lower layers first (the protocol listens to accounts' signals)."""
    from idp import admin, federation
    from idp.accounts import notify
    from idp.accounts import views as accounts_views
    from idp.accounts.sessions import apply_cookie_changes, load_current_session
    from idp.business import views as business_views
    from idp.federation import views as federation_views
    from idp.legacy import views as legacy_views
    from idp.oidc import acting
    from idp.oidc import logout as oidc_logout
    from idp.oidc import views as oidc_views
    from idp.oidc.server import create_server

    app.register_blueprint(accounts_views.bp)
    notify.init_app(app)  # security e-mails
    app.before_request(load_current_session)
    app.after_request(apply_cookie_changes)
    app.after_request(_security_headers)

    create_server(app)
    oidc_logout.init_app(app)
    app.register_blueprint(oidc_views.bp)

    legacy_views.init_app(app)

    app.register_blueprint(federation_views.bp)
    federation.init_app(app)

    admin.init_app(app)

    app.register_blueprint(business_views.bp)
    acting.init_app(app)  # a representation that ends revokes its tokens and logs out its RPs


def _select_locale():
    from flask import current_app, has_request_context

    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return languages[0]  # CLI and workers: the default language
    asked = request.args.get("ui_locales", "").split()
    for lang in asked:
        if lang[:2] in languages:
            return lang[:2]
    chosen = session.get("lang") if request else None
    if chosen in languages:
        return chosen
    return languages[0]


def _security_headers(response):
    from flask import current_app

    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: Flask-WTF checks the Referer of form posts over https.
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure or current_app.config["ISSUER"].startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if getattr(g, "no_store", False) or request.method == "POST":
        response.headers["Cache-Control"] = "no-store"
    return response


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # Several worker processes share one SQLite file: WAL and a busy timeout keep them apart.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

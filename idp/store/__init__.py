"""The short-lived shared store: SSO sessions, codes, throttles, replay guards.

Only this package talks to Redis or to the embedded store's table. Everything it holds
may be lost at the cost of a retry; what must survive lives in SQL.
"""

from flask import current_app

from idp.store.base import Store, StoreUnavailable

__all__ = ["Store", "StoreUnavailable", "get_store", "init_app"]


def init_app(app) -> None:
    """Create the backend named by the configuration and attach it to the app."""
    prefix = app.config["STORE_PREFIX"]
    if app.config.get("REDIS_URL"):
        from idp.store.redis_store import RedisStore

        store = RedisStore.from_url(
            app.config["REDIS_URL"], prefix=prefix, timeout=app.config["REDIS_TIMEOUT"]
        )
    else:
        from idp.store.sql_store import SqlStore

        store = SqlStore(app, prefix=prefix)
    app.extensions["idp_store"] = store


def get_store() -> Store:
    return current_app.extensions["idp_store"]

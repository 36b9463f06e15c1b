"""Experiments: proposed hot-path changes, installed as switchable monkeypatches inside one
benchmark process (bench/inproc.py --ab NAME), so a change can be measured before anyone makes
it, against the unchanged code, alternately in the same process. Nothing here is imported by
the application; the application's files are not changed. Each experiment names the function it
stands in for and what the proposed change does. install() runs before create_app().
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable

ENABLED: dict[str, bool] = {}
EXPERIMENTS: dict[str, str] = {}
_INSTALL: dict[str, Callable[[], None]] = {}


def experiment(name: str, what: str):
    def register(fn):
        EXPERIMENTS[name] = what
        _INSTALL[name] = fn
        ENABLED[name] = False
        return fn

    return register


def _switch(name: str, original, patched):
    def dispatch(*args, **kwargs):
        return (patched if ENABLED[name] else original)(*args, **kwargs)

    dispatch.__wrapped__ = original
    return dispatch


@experiment("client_cache", "load_client (idp/oidc/server.py): per-process snapshot of the client row, 5 s TTL")
def _client_cache() -> None:
    """Every token, introspection and userinfo request SELECTs the clients row through the ORM.
    A per-process snapshot with a short TTL (as the key ring does for keys) removes that
    statement; a disabled client or a rotated secret then takes up to the TTL to be refused."""
    from flask import current_app

    from idp.clients.models import Client
    from idp.extensions import db
    from idp.oidc import adapters, server, views

    cache: dict[str, tuple[float, object]] = {}
    ttl = 5.0

    def load_client(client_id):
        if not client_id or not isinstance(client_id, str) or len(client_id) > 64:
            return None
        now = time.monotonic()
        hit = cache.get(client_id)
        if hit is not None and hit[0] > now:
            model = hit[1]
        else:
            model = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
            if model is not None:
                db.session.expunge(model)  # a detached snapshot: a commit never expires it
            cache[client_id] = (now + ttl, model)
        if model is None or not model.active:
            return None
        return adapters.OAuthClient(model, current_app.config)

    switched = _switch("client_cache", server.load_client, load_client)
    server.load_client = switched
    views.load_client = switched


@experiment("lazy_identifiers", "resolve (idp/identity/services.py): load an identity without its identifiers "
            "(Identity.identifiers is lazy='selectin': every identity load costs a second SELECT)")
def _lazy_identifiers() -> None:
    """Token and userinfo paths load the identity for its status (and userinfo for its claims);
    the identifiers are needed only for the national_id claim. With the relationship loaded on
    access (or a per-query lazyload option in resolve), those paths lose one SELECT each."""
    from sqlalchemy.orm import lazyload

    from idp.extensions import db
    from idp.identity import services
    from idp.identity.models import Identity, IdentityStatus
    from idp.oidc import server, views

    original = services.resolve

    def resolve(identity_id):
        import uuid

        if identity_id is None:
            return None
        if not isinstance(identity_id, uuid.UUID):
            try:
                identity_id = uuid.UUID(str(identity_id))
            except ValueError:
                return None
        opts = [lazyload(Identity.identifiers)]
        identity = db.session.get(Identity, identity_id, options=opts)
        for _ in range(getattr(services, "MAX_MERGE_CHAIN", 8)):
            if identity is None or identity.status != IdentityStatus.MERGED:
                return identity
            identity = db.session.get(Identity, identity.merged_into_id, options=opts)
        return None

    switched = _switch("lazy_identifiers", original, resolve)
    services.resolve = switched
    for module in (server, views):
        if getattr(module, "resolve_identity", None) is original:
            module.resolve_identity = switched


@experiment("no_expire_on_commit", "the request's ORM session with expire_on_commit=False (or: read what is "
            "needed before committing): no re-SELECT of the client and the refresh token after "
            "_after_token's commit")
def _no_expire_on_commit() -> None:
    """_after_token() commits in the middle of the grant; SQLAlchemy then expires every loaded
    object, and the next attribute read (the client's id in note_client, the old token's id in
    revoke_old_credential -> tokens.rotate) SELECTs the row again."""
    from idp.extensions import db

    factory = db.session.session_factory
    original_call = type(factory).__call__

    def make_session(self, **local_kw):
        if ENABLED["no_expire_on_commit"] and self is factory:
            local_kw.setdefault("expire_on_commit", False)
        return original_call(self, **local_kw)

    type(factory).__call__ = make_session


_JUST_ISSUED: contextvars.ContextVar = contextvars.ContextVar("just_issued", default=None)


@experiment("no_reselect_new_token", "_after_token (idp/oidc/server.py): take the new refresh token's family "
            "from the row tokens.issue() just added instead of tokens.find() (a SELECT by digest)")
def _no_reselect_new_token() -> None:
    from idp.oidc import tokens

    issue_original, find_original = tokens.issue, tokens.find

    def issue(**kwargs):
        value = issue_original(**kwargs)
        _JUST_ISSUED.set(value)
        return value

    def find(token):
        if ENABLED["no_reselect_new_token"] and token and token == _JUST_ISSUED.get():
            from idp.extensions import db
            from idp.oidc.models import RefreshToken

            digest = tokens.digest(token)
            for obj in [*db.session.new, *db.session.identity_map.values()]:
                if isinstance(obj, RefreshToken) and obj.token_digest == digest:
                    return obj
        return find_original(token)

    tokens.issue = issue
    tokens.find = find


def install(names: list[str]) -> None:
    for name in names:
        if name not in _INSTALL:
            raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(sorted(_INSTALL))}")
        _INSTALL[name]()


def enable(names: list[str], on: bool = True) -> None:
    for name in names:
        ENABLED[name] = on

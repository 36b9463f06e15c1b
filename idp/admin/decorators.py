"""Who may use the admin console: one decorator holds every permission check."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import abort, g, redirect, request, url_for

from idp.accounts import factors
from idp.accounts.models import Role
from idp.accounts.services import roles_of
from idp.accounts.views.common import current_identity, safe_next

# Roles that may read the console's pages of each area; writing needs the officer roles.
READ_IDENTITIES = (Role.IDENTITY_OFFICER, Role.AUDITOR)
WRITE_IDENTITIES = (Role.IDENTITY_OFFICER,)
READ_CLIENTS = (Role.CLIENT_MANAGER, Role.AUDITOR)
WRITE_CLIENTS = (Role.CLIENT_MANAGER,)
READ_AUDIT = (Role.AUDITOR,)
ANY_ROLE = tuple(Role)


def _here() -> str | None:
    """This page (a GET), or for a form post the page it came from."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    parts = urlsplit(request.referrer or "")
    if parts.netloc != request.host:
        return None
    return safe_next(parts.path + ("?" + parts.query if parts.query else ""))


def allowed(held: set, roles) -> bool:
    """superadmin passes everything; otherwise one of the roles must be held."""
    return Role.SUPERADMIN in held or bool(held & {Role(r) for r in roles})


def require_role(*roles):
    """Admin pages: a live SSO session, an administrative role, two factors in this session
    (amr contains "mfa"), and one of `roles` (superadmin passes every check).

    No session: to the login page. Not an administrator: 403. One factor only: to the
    step-up page (or the authenticator enrolment when there is none), then back here.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            identity = current_identity()
            if identity is None:
                return redirect(url_for("accounts.login", next=_here()))
            held = roles_of(identity.id)
            if not held:
                abort(403)
            if "mfa" not in (g.sso.amr or []):
                target = "accounts.step_up" if factors.has_totp(identity.id) else "accounts.totp_enrol"
                return redirect(url_for(target, next=_here()))
            if not allowed(held, roles):
                abort(403)
            g.identity = identity
            g.admin_roles = held
            g.no_store = True
            return view(*args, **kwargs)

        wrapper.required_roles = tuple(Role(r) for r in roles)
        return wrapper

    return decorator

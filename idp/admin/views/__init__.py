"""Pages of the admin console: one blueprint under /admin; each module adds its routes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, g, request
from flask_babel import format_datetime

from idp.accounts.models import Role
from idp.admin.decorators import allowed

bp = Blueprint("admin", __name__, url_prefix="/admin")

ROLE_NAMES = {
    Role.SUPERADMIN: "superadmin",
    Role.IDENTITY_OFFICER: "identity_officer",
    Role.CLIENT_MANAGER: "client_manager",
    Role.AUDITOR: "auditor",
}


def officer_id() -> str:
    """The acting officer, as the audit log names an actor."""
    return str(g.identity.id)


def address() -> str:
    return request.remote_addr or "unknown"


def page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page", 1)), 100000))
    except ValueError:
        return 1


@dataclass
class Page:
    """A page of a list, for the pager macro."""

    number: int
    per_page: int
    total: int
    capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    def args(self, number: int) -> dict:
        """The current query string with another page number."""
        out = {k: v for k, v in request.args.items() if k != "page"}
        out["page"] = number
        return out


def when(value) -> str:
    """A stored UTC time (naive datetime or epoch seconds) in the officer's time zone."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return format_datetime(value, "dd/MM/yyyy HH:mm")


def as_json(value) -> str:
    """Details of an audit entry as JSON an officer can read: Vietnamese as typed, not \\u
    escapes (the tojson filter's). Plain text: the template escapes it like any other text."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@bp.context_processor
def _admin_globals():
    held = g.get("admin_roles") or set()
    return {
        "can": lambda *roles: allowed(held, roles),
        "when": when,
        "as_json": as_json,
        "admin_roles": sorted(ROLE_NAMES.get(r, str(r)) for r in held),
    }


from idp.admin.views import audit, clients, dashboard, identities, legacy  # noqa: E402,F401  (routes)

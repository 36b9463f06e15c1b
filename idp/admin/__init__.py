"""The admin console (/admin): identities, legacy conflicts, relying parties, the audit log and
a dashboard, for officers holding a role (accounts.models.Role) and logged in with two factors.
"""

from __future__ import annotations


def init_app(app) -> None:
    from idp.admin.views import bp

    app.register_blueprint(bp)

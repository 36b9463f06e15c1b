"""The audit log viewer: filters, pages, CSV export, chain verification."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Response, render_template, request, stream_with_context

from idp import audit
from idp.admin.decorators import READ_AUDIT, require_role
from idp.admin.forms import AuditFilterForm
from idp.admin.views import Page, address, bp, officer_id, page_arg
from idp.extensions import db
from idp.timeutil import utcnow

PER_PAGE = 50


def _filters(form: AuditFilterForm) -> dict:
    """The search filters the form names (dates are whole UTC days, `until` inclusive)."""
    if not form.validate():
        return {}
    out = {
        "action_prefix": (form.action.data or "").strip() or None,
        "actor": (form.actor.data or "").strip() or None,
        "target_type": (form.target_type.data or "").strip() or None,
        "target_id": (form.target_id.data or "").strip() or None,
        "since": datetime.combine(form.since.data, datetime.min.time()) if form.since.data else None,
        "until": (datetime.combine(form.until.data, datetime.min.time()) + timedelta(days=1)
                  if form.until.data else None),
    }
    return {k: v for k, v in out.items() if v is not None}


@bp.get("/audit")
@require_role(*READ_AUDIT)
def audit_log():
    form = AuditFilterForm(request.args)
    filters = _filters(form)
    entries, total = audit.search(page=page_arg(), per_page=PER_PAGE, **filters)
    export_args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("admin/audit.html", form=form, entries=entries,
                           page=Page(page_arg(), PER_PAGE, total), export_args=export_args,
                           actions=sorted(audit.ACTIONS))


@bp.get("/audit/export.csv")
@require_role(*READ_AUDIT)
def audit_export():
    """The filtered entries as CSV, streamed; the export itself is audited first."""
    filters = _filters(AuditFilterForm(request.args))
    audit.record("audit.exported", actor=officer_id(), target_type="audit", address=address(),
                 details={"filters": filters, "via": "admin"}, now=utcnow())
    db.session.commit()
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return Response(
        stream_with_context(audit.iter_csv(**filters)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
                 "Cache-Control": "no-store"},
    )


@bp.get("/audit/verify")
@require_role(*READ_AUDIT)
def audit_verify():
    """Recompute the whole chain (read-only, so a GET: auditors change nothing)."""
    result = audit.verify()
    return render_template("admin/audit_verify.html", result=result)

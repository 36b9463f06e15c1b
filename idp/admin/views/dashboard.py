"""The dashboard: identities by kind and level, share verified, legacy mapping progress,
sign-ins per relying party per day. Charts are inline SVG drawn here (no script, no style
attribute: the CSP allows neither); the templates only place the shapes computed below."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template
from flask_babel import format_date, format_percent
from flask_babel import lazy_gettext as _l

from idp.admin import services
from idp.admin.decorators import ANY_ROLE, require_role
from idp.admin.views import bp
from idp.timeutil import utcnow

DAYS = 30
# Colour-blind-safe palette (Okabe-Ito), in SVG fill/stroke attributes.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
MAX_SERIES = 7  # more relying parties are summed as "other"

LEGACY_STATES = [
    ("auto_linked", _l("Linked automatically"), "#009E73"),
    ("claimed", _l("Claimed or linked by an officer"), "#0072B2"),
    ("conflict", _l("Waiting for an officer"), "#E69F00"),
    ("rejected", _l("Rejected"), "#D55E00"),
    ("unlinked", _l("Not linked yet"), "#BBBBBB"),
]


def hbars(rows: list[tuple], *, width: int = 640, label_width: int = 270, bar: int = 22,
          gap: int = 10, top: float | None = None) -> dict:
    """Horizontal bars: rows of (label, value[, colour]); top is the value of a full bar."""
    top = top or max([r[1] for r in rows] + [1])
    span = width - label_width - 80
    bars = []
    for i, row in enumerate(rows):
        label, value = row[0], row[1]
        bars.append({"label": label, "value": value, "y": i * (bar + gap),
                     "ty": i * (bar + gap) + round(bar * 0.7),
                     "w": max(1 if value else 0, round(value / top * span)),
                     "colour": row[2] if len(row) > 2 else PALETTE[0]})
    return {"width": width, "height": max(1, len(rows)) * (bar + gap), "label_width": label_width,
            "bar": bar, "bars": bars}


def stacked(systems: list[dict], *, width: int = 640, label_width: int = 220, bar: int = 22,
            gap: int = 10) -> dict:
    """One 100 % bar per legacy system, a segment per link state."""
    span = width - label_width - 70
    rows = []
    for i, system in enumerate(systems):
        imported = system.get("imported") or 0
        x, segments = label_width, []
        for key, label, colour in LEGACY_STATES:
            count = system.get(key, 0) or 0
            w = round(count / imported * span) if imported else 0
            if w:
                segments.append({"x": x, "w": w, "colour": colour, "label": label, "count": count})
            x += w
        rows.append({"label": system.get("name") or system.get("system"), "y": i * (bar + gap),
                     "ty": i * (bar + gap) + round(bar * 0.7),
                     "segments": segments, "share": system.get("mapped_share", 0.0),
                     "imported": imported})
    return {"width": width, "height": max(1, len(systems)) * (bar + gap), "label_width": label_width,
            "bar": bar, "rows": rows, "legend": LEGACY_STATES}


def lines(series: dict[str, list[int]], names: dict[str, str], start, *, days: int = DAYS,
          width: int = 640, height: int = 220) -> dict:
    """Sign-ins per day: one polyline per relying party (the busiest first)."""
    left, right, top_pad, bottom = 48, 10, 10, 28
    ordered = sorted(series.items(), key=lambda kv: -sum(kv[1]))
    if len(ordered) > MAX_SERIES:
        rest = [sum(v[d] for _, v in ordered[MAX_SERIES - 1:]) for d in range(days)]
        ordered = ordered[:MAX_SERIES - 1] + [("", rest)]
    peak = max([max(v) for _, v in ordered] + [1])
    plot_w, plot_h = width - left - right, height - top_pad - bottom

    def x(d):
        return round(left + (d / max(1, days - 1)) * plot_w, 1)

    def y(v):
        return round(top_pad + plot_h - v / peak * plot_h, 1)

    out = []
    for i, (client_id, values) in enumerate(ordered):
        out.append({
            "name": names.get(client_id, client_id) if client_id else _l("Other relying parties"),
            "colour": PALETTE[i % len(PALETTE)],
            "points": " ".join(f"{x(d)},{y(v)}" for d, v in enumerate(values)),
            "total": sum(values),
            "values": values,
        })
    ticks = [{"x": x(d), "label": format_date(start + timedelta(days=d), "dd/MM")}
             for d in range(0, days, 7)]
    marks = sorted({0, peak // 2, peak}) if peak >= 4 else [0, peak]
    grid = [{"y": y(v), "label": v} for v in marks]
    return {"width": width, "height": height, "left": left, "right": width - right,
            "top": top_pad, "bottom": height - bottom, "series": out, "ticks": ticks, "grid": grid,
            "days": [format_date(start + timedelta(days=d), "dd/MM") for d in range(days)]}


@bp.get("/")
@require_role(*ANY_ROLE)
def dashboard():
    now = utcnow()
    since = services.days_back(now, DAYS)
    counts = services.identity_counts()
    by = counts["by_kind_level"]
    identity_rows = [
        (_l("Citizens, level 1 (self-registered)"), by.get(("citizen", 1), 0), PALETTE[4]),
        (_l("Citizens, level 2 (verified)"), by.get(("citizen", 2), 0), PALETTE[0]),
        (_l("Businesses"), sum(n for (kind, _), n in by.items() if kind == "business"), PALETTE[1]),
    ]
    systems = services.legacy_progress()
    logins = services.logins_per_day(since=since, days=DAYS)
    return render_template(
        "admin/dashboard.html",
        counts=counts,
        verified_share=format_percent(counts["verified_share"], "#,##0.0%"),
        identities_chart=hbars(identity_rows),
        share_chart=hbars([(_l("Citizens verified (%)"), round(counts["verified_share"] * 1000) / 10,
                            PALETTE[2])], top=100) if counts["citizens"] else None,
        systems=systems,
        legacy_chart=stacked(systems) if systems else None,
        logins_chart=lines(logins, services.client_names(), since.date()) if logins else None,
        days=DAYS,
    )

"""Error types shared by packages, and the one place they become responses."""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError

from idp.store.base import StoreUnavailable

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule of the domain was broken; message is shown to the person."""

    code = "domain_error"
    status = 400

    def __init__(self, message, *, field: str | None = None, code: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field
        if code:
            self.code = code


class ValidationError(DomainError):
    """An input value is invalid; field names it."""

    code = "invalid_input"


class InvalidFields(DomainError):
    """Several inputs are invalid at once; errors maps each field to its message."""

    code = "invalid_input"

    def __init__(self, errors: dict):
        first = next(iter(errors.items()))
        super().__init__(first[1], field=first[0])
        self.errors = errors


class Conflict(DomainError):
    """The value is taken (unique identifier, phone, e-mail)."""

    code = "conflict"
    status = 409


class Throttled(DomainError):
    """Too many attempts; retry_after is in seconds."""

    code = "throttled"
    status = 429

    def __init__(self, message, *, retry_after: int, field=None):
        super().__init__(message, field=field)
        self.retry_after = retry_after


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def register_error_handlers(app) -> None:
    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc):
        # Fail closed: no login, no code, no throttle bypass without the store.
        log.error("shared store unavailable: %s", exc)
        message = _l("The service is temporarily unavailable. Please try again in a few minutes.")
        if _wants_json():
            resp = jsonify(error="temporarily_unavailable", error_description=str(message))
        else:
            resp = app.make_response((render_template("errors/error.html", status=503, message=message), 503))
        resp.status_code = 503
        resp.headers["Retry-After"] = "30"
        return resp

    @app.errorhandler(DomainError)
    def domain_error(exc):
        if _wants_json():
            return jsonify(error=exc.code, error_description=str(exc.message), field=exc.field), exc.status
        return render_template("errors/error.html", status=exc.status, message=exc.message), exc.status

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        message = _l("This form has expired or was not sent from this site. Please go back, reload the page and try again.")
        return render_template("errors/error.html", status=400, message=message), 400

    for status, message in (
        (400, _l("The request could not be understood.")),
        (403, _l("You are not allowed to do this.")),
        (404, _l("This page does not exist.")),
        (405, _l("This method is not allowed here.")),
        (413, _l("The request is too large.")),
        (429, _l("Too many requests. Please wait a moment and try again.")),
        (500, _l("Something went wrong on our side. Please try again later.")),
    ):
        app.register_error_handler(status, _page_handler(status, message))


def _page_handler(status, message):
    def handler(exc):
        if _wants_json():
            return jsonify(error=str(getattr(exc, "name", "error")).lower().replace(" ", "_")), status
        return render_template("errors/error.html", status=status, message=message), status

    return handler

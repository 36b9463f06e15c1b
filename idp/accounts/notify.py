"""Security notifications: an e-mail to the person's VERIFIED address after a security event.

Connected to events.security_event by init_app. Says what happened, when (Vietnam time), from
where, and what to do if it was not the person. A failure is logged; it never breaks the
action that caused it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

from flask import current_app, has_app_context, has_request_context
from flask_babel import get_locale
from flask_babel import gettext as _

from idp.accounts import events, mail
from idp.identity import services as identity_services

log = logging.getLogger(__name__)

# Vietnam has no daylight saving time.
VIETNAM = timezone(timedelta(hours=7))
EXTENSION = "idp_notify"


def init_app(app) -> None:
    app.extensions[EXTENSION] = True
    # One module-level receiver for every app; it acts only for apps that called init_app.
    events.security_event.connect(_on_security_event, weak=False)


def _on_security_event(sender, *, identity_id, event: str, row=None, **_kwargs) -> None:
    if event not in events.NOTIFIED or not has_app_context():
        return
    if not current_app.extensions.get(EXTENSION):
        return
    try:
        notify(identity_id, event, at=getattr(row, "at", None), address=getattr(row, "address", None),
               user_agent=getattr(row, "user_agent", None), config=current_app.config, lang=_current_language())
    except Exception:
        log.exception("notification %s for %s not sent", event, identity_id)


def _current_language() -> str | None:
    # The language the person is using now; the default language outside a request.
    return str(get_locale()) if has_request_context() else None


def _what(event: str) -> tuple[str, str]:
    """(subject, first sentence) of each notified event; called inside mail.language()."""
    texts = {
        "password_changed": (_("Your e-ID password was changed"),
                             _("The password of your e-ID account was changed.")),
        "password_reset": (_("Your e-ID password was reset"),
                           _("The password of your e-ID account was reset with a recovery link or "
                             "code. Every session was logged out.")),
        "totp_enabled": (_("An authenticator app was added to your e-ID account"),
                         _("An authenticator app was set up as a second factor for your e-ID account.")),
        "totp_removed": (_("The authenticator app was removed from your e-ID account"),
                         _("The authenticator app was removed from your e-ID account. Your account is "
                           "now protected by your password only.")),
        "recovery_codes_regenerated": (_("New recovery codes for your e-ID account"),
                                       _("New recovery codes were created for your e-ID account; the "
                                         "previous ones no longer work.")),
        "login_new_device": (_("New login to your e-ID account"),
                             _("Someone logged in to your e-ID account from a device or browser "
                               "not used before.")),
    }
    return texts[event]


def notify(identity_id, event: str, *, at: datetime | None, address: str | None, user_agent: str | None,
           config: Mapping, lang: str | None = None) -> bool:
    """Queue the e-mail for one event; False when the person has no verified address."""
    identity = identity_services.get_identity(identity_id)
    if identity is None or not identity.email or identity.email_verified_at is None:
        return False
    when = (at or datetime.now(UTC).replace(tzinfo=None)).replace(tzinfo=UTC).astimezone(VIETNAM)
    recover = f"{config['ISSUER'].rstrip('/')}/recover"
    with mail.language(lang, config) as chosen:
        subject, sentence = _what(event)
        details = [_("When: %(when)s (Vietnam time)", when=when.strftime("%d/%m/%Y %H:%M"))]
        if address:
            details.append(_("From: IP address %(address)s", address=address))
        if user_agent:
            details.append(_("Browser: %(agent)s", agent=user_agent[:200]))
        body = "\n\n".join([
            _("Hello %(name)s,", name=identity.full_name),
            sentence,
            "\n".join(details),
            _("If this was you, there is nothing to do."),
            _("If it was not you, reset your password now at %(link)s, then check your account "
              "and your second factors. If you cannot, ask a one-stop office for help.", link=recover),
            _("This message was sent automatically; please do not reply."),
        ])
    mail.send_later(mail.build(identity.email, subject, body + "\n", config=config, lang=chosen),
                    config=config)
    return True

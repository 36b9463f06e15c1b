"""Account recovery and contact verification. Services: plain values in, never flask.request.

Password reset: a link with a single-use token is sent to a VERIFIED e-mail address, or, when
there is none, a 6-digit code by SMS to a VERIFIED phone (the code then yields the same kind
of token). The answer to the person never tells whether an account exists or which channel
was used. Tokens are 256 random bits, kept in the shared store as SHA-256 digests with a short
life, and taken on use. A reset never bypasses a second factor: with a confirmed TOTP the
reset also needs a TOTP or recovery code. A reset clears the password lock, ends every SSO
session and every other pending reset link.

Contact verification: a link proves the e-mail address, an SMS code the phone number; only
then are email_verified_at / phone_verified_at set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.accounts import events, factors, mail, passwords, services, sessions, sms, throttle
from idp.errors import DomainError, InvalidFields, Throttled, ValidationError
from idp.extensions import db
from idp.identity import services as identity_services
from idp.identity.models import Identity, IdentityStatus
from idp.store import Store

log = logging.getLogger(__name__)

RESET_PURPOSE = "password_reset"
PHONE_PURPOSE = "verify_phone"
# Longest token accepted from a URL (token_urlsafe(32) is 43 characters).
MAX_TOKEN_LENGTH = 100


class InvalidLink(DomainError):
    code = "invalid_link"
    status = 400


@dataclass(frozen=True)
class ResetTicket:
    """A live reset token: whose, sent how, and whether a second factor is needed."""

    identity_id: uuid.UUID
    via: str  # "email" or "sms"
    needs_second_factor: bool
    digest: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _reset_key(digest: str) -> str:
    return "reset:" + digest


def _reset_index(identity_id) -> str:
    return f"reset-by-identity:{identity_id}"


def _verify_key(digest: str) -> str:
    return "verify-email:" + digest


def _link(config: Mapping, path: str, token: str) -> str:
    return f"{config['ISSUER'].rstrip('/')}{path}?{urlencode({'token': token})}"


def _active(identity: Identity | None) -> bool:
    return identity is not None and identity.status == IdentityStatus.ACTIVE


def _verified_email(identity: Identity) -> str | None:
    return identity.email if identity.email and identity.email_verified_at else None


def _verified_phone(identity: Identity) -> str | None:
    return identity.phone if identity.phone and identity.phone_verified_at else None


def _refuse(store: Store, key: str, window: int, field: str) -> Throttled:
    retry = store.ttl(key) or window
    return Throttled(
        _l("Too many requests. Please try again in %(minutes)d minutes.", minutes=max(1, (retry + 59) // 60)),
        retry_after=retry,
        field=field,
    )


def _contact_allowed(store: Store, contact: str, config: Mapping) -> bool:
    """Messages with a link or a code to one address or number, per window."""
    key = "throttle:contact-messages:" + _digest(contact)
    return store.incr(key, config["RECOVERY_THROTTLE_WINDOW"]) <= config["MESSAGES_PER_CONTACT"]


def _check_token(token: str | None) -> str | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return _digest(token)


# --- password reset -------------------------------------------------------------------------

def request_reset(store: Store, login: str, *, config: Mapping, now: datetime, address: str = "",
                  lang: str | None = None) -> str:
    """Send a reset link (verified e-mail) or code (verified phone) if the login names an account.

    Returns "email", "sms" or "none" for logs and tests; the person is told the same in every
    case. Throttled per source address and per login (known or not) before the lookup.
    """
    window = config["RECOVERY_THROTTLE_WINDOW"]
    address_key = "throttle:recover:address:" + (address or "unknown")
    if store.incr(address_key, window) > config["RECOVERY_THROTTLE_PER_ADDRESS"]:
        raise _refuse(store, address_key, window, "login")
    login_key = "throttle:recover:login:" + _digest(services.login_key(login))
    if store.incr(login_key, window) > config["RECOVERY_THROTTLE_PER_LOGIN"]:
        raise _refuse(store, login_key, window, "login")

    identity = identity_services.find_for_login(login)
    if not _active(identity):
        return "none"
    email, phone = _verified_email(identity), _verified_phone(identity)
    if email:
        if not _contact_allowed(store, email, config):
            log.info("reset for %s: e-mail limit reached, nothing sent", identity.id)
            return "none"
        token = _issue_reset_token(store, identity, via="email", contact=email, config=config, now=now)
        mail.send_later(_reset_mail(identity, email, token, config=config, lang=lang), config=config)
        outcome = "email"
    elif phone:
        if not _contact_allowed(store, phone, config):
            log.info("reset for %s: SMS limit reached, nothing sent", identity.id)
            return "none"
        code = sms.issue_code(store, purpose=RESET_PURPOSE, identity_id=identity.id, contact=phone,
                              config=config, now=now)
        with mail.language(lang, config):
            text = _("Your code to reset your e-ID password is %(code)s. It is valid for %(minutes)d "
                     "minutes. Never give it to anyone.", code=code,
                     minutes=max(1, sms.code_ttl(config) // 60))
        sms.send_sms(phone, text, config=config)
        outcome = "sms"
    else:
        return "none"
    events.record(identity.id, "password_reset_requested", now=now, address=address,
                  detail={"via": outcome})
    return outcome


def _issue_reset_token(store: Store, identity: Identity, *, via: str, contact: str, config: Mapping,
                       now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    digest = _digest(token)
    ttl = int(config["RESET_TOKEN_TTL"])
    record = {"identity_id": str(identity.id), "via": via, "contact": contact,
              "exp": sms.timestamp(now) + ttl}
    store.set(_reset_key(digest), json.dumps(record), ttl)
    # Indexed per identity, so a completed reset ends every other pending link.
    store.set_add(_reset_index(identity.id), digest, ttl)
    return token


def _reset_mail(identity: Identity, email: str, token: str, *, config: Mapping, lang: str | None):
    minutes = int(config["RESET_TOKEN_TTL"]) // 60
    with mail.language(lang, config) as chosen:
        subject = _("Reset your e-ID password")
        body = "\n\n".join([
            _("Hello %(name)s,", name=identity.full_name),
            _("Someone asked to reset the password of your e-ID account. If it was you, open this "
              "link within %(minutes)d minutes to choose a new password:", minutes=minutes),
            _link(config, "/recover/reset", token),
            _("The link works once. If you use an authenticator app, you will also need a code "
              "from it or one of your recovery codes."),
            _("If you did not ask for this, ignore this message: your password stays the same. "
              "Never give this link to anyone."),
            _("This message was sent automatically; please do not reply."),
        ])
    return mail.build(email, subject, body + "\n", config=config, lang=chosen)


def check_reset_token(store: Store, token: str | None, *, now: datetime) -> ResetTicket | None:
    """The ticket of a live reset token (not taken), or None."""
    digest = _check_token(token)
    raw = store.get(_reset_key(digest)) if digest else None
    if raw is None:
        return None
    record = json.loads(raw)
    if sms.timestamp(now) > record["exp"]:
        return None
    identity = identity_services.get_identity(uuid.UUID(record["identity_id"]))
    if not _active(identity):
        return None
    # The address or number it was sent to must still be the person's, and verified.
    current = _verified_email(identity) if record["via"] == "email" else _verified_phone(identity)
    if current != record["contact"]:
        return None
    return ResetTicket(identity.id, record["via"], factors.has_totp(identity.id), digest)


def _invalid_link() -> InvalidLink:
    return InvalidLink(_l("This link is not valid: it has expired or has already been used. "
                          "You can ask for a new one."))


def complete_reset(store: Store, token: str | None, *, password: str, second_factor: str | None,
                   config: Mapping, now: datetime, address: str = "", user_agent: str = "") -> Identity:
    """Set the new password if the token is live and, with a TOTP, the second factor is proven.

    The token is taken only once everything else succeeded: a wrong code does not burn it.
    """
    ticket = check_reset_token(store, token, now=now)
    if ticket is None:
        raise _invalid_link()
    identity = identity_services.get_identity(ticket.identity_id)
    errors: dict = {}
    try:
        passwords.check_password_policy(
            password or "", config=config, has_second_factor=ticket.needs_second_factor,
            personal_values=identity_services.personal_values(identity),
        )
    except ValidationError as exc:
        errors["password"] = exc.message
    code = (second_factor or "").strip()
    if ticket.needs_second_factor and not code:
        errors["code"] = _l("Enter a code from your authenticator app or one of your recovery codes.")
    if errors:
        raise InvalidFields(errors)
    # Checked after the password, so a recovery code is not spent on a refused password.
    if ticket.needs_second_factor and not factors.verify_second_factor(
        store, identity.id, code, config=config, now=now
    ):
        raise ValidationError(
            _l("This code is not valid. Check the time on your phone and try again."), field="code"
        )
    if store.take(_reset_key(ticket.digest)) is None:
        raise _invalid_link()  # used by a concurrent request
    services.set_password(identity, password, config=config, now=now)  # also clears the lock
    _after_reset(store, identity)
    events.record(identity.id, "password_reset", now=now, address=address, user_agent=user_agent,
                  detail={"via": ticket.via})
    return identity


def _after_reset(store: Store, identity: Identity) -> None:
    # Login delays and counts in the store must not keep the person out either.
    values = [i.value for i in identity.current_identifiers] + [identity.phone or "", identity.email or ""]
    for value in filter(None, values):
        throttle.after_success(store, login_key=services.login_key(value))
    index = _reset_index(identity.id)
    for digest in store.set_members(index):
        store.delete(_reset_key(digest))
    store.delete(index)
    sessions.end_all_sessions(store, str(identity.id), reason="password_reset")


def verify_reset_code(store: Store, login: str, code: str, *, config: Mapping, now: datetime) -> str | None:
    """The SMS path: a right code yields a reset token (same page as the e-mail link), else None.

    Unknown logins are counted and answered exactly like wrong codes.
    """
    identity = identity_services.find_for_login(login)
    phone = _verified_phone(identity) if _active(identity) else None
    if phone is None:
        sms.verify_code(store, purpose=RESET_PURPOSE, identity_id="-", contact=services.login_key(login),
                        code=code, config=config, now=now)
        return None
    if not sms.verify_code(store, purpose=RESET_PURPOSE, identity_id=identity.id, contact=phone,
                           code=code, config=config, now=now):
        return None
    return _issue_reset_token(store, identity, via="sms", contact=phone, config=config, now=now)


# --- contact verification -------------------------------------------------------------------

def start_email_verification(store: Store, identity: Identity, *, config: Mapping, now: datetime,
                             lang: str | None = None) -> bool:
    """Send a link that proves the e-mail address; False when there is nothing to send or the
    address had too many messages already."""
    email = identity.email
    if not email or identity.email_verified_at is not None:
        return False
    if not _contact_allowed(store, email, config):
        log.info("e-mail verification for %s: limit reached, nothing sent", identity.id)
        return False
    token = secrets.token_urlsafe(32)
    ttl = int(config["EMAIL_VERIFY_TTL"])
    record = {"identity_id": str(identity.id), "email": email, "exp": sms.timestamp(now) + ttl}
    store.set(_verify_key(_digest(token)), json.dumps(record), ttl)
    with mail.language(lang, config) as chosen:
        subject = _("Confirm your e-mail address")
        body = "\n\n".join([
            _("Hello %(name)s,", name=identity.full_name),
            _("To confirm that this e-mail address belongs to you, open this link within "
              "%(hours)d hours:", hours=max(1, ttl // 3600)),
            _link(config, "/verify-email", token),
            _("A confirmed address lets you recover your account and receive security alerts. "
              "If you did not create an e-ID account, ignore this message."),
            _("This message was sent automatically; please do not reply."),
        ])
    mail.send_later(mail.build(email, subject, body + "\n", config=config, lang=chosen), config=config)
    return True


def confirm_email(store: Store, token: str | None, *, now: datetime, address: str = "") -> Identity | None:
    """Take the link's token; mark the address verified if it is still the person's."""
    digest = _check_token(token)
    raw = store.take(_verify_key(digest)) if digest else None
    if raw is None:
        return None
    record = json.loads(raw)
    if sms.timestamp(now) > record["exp"]:
        return None
    identity = identity_services.get_identity(uuid.UUID(record["identity_id"]))
    if identity is None or identity.email != record["email"]:
        return None
    if identity.email_verified_at is None:
        identity.email_verified_at = now
        identity.updated_at = now
        db.session.commit()
        events.record(identity.id, "email_verified", now=now, address=address)
    return identity


def start_phone_verification(store: Store, identity: Identity, *, config: Mapping, now: datetime,
                             lang: str | None = None) -> bool:
    """Send a code by SMS to the person's phone; Throttled when the number had too many."""
    phone = identity.phone
    if not phone or identity.phone_verified_at is not None:
        return False
    if not _contact_allowed(store, phone, config):
        window = config["RECOVERY_THROTTLE_WINDOW"]
        raise _refuse(store, "throttle:contact-messages:" + _digest(phone), window, "code")
    code = sms.issue_code(store, purpose=PHONE_PURPOSE, identity_id=identity.id, contact=phone,
                          config=config, now=now)
    with mail.language(lang, config):
        text = _("Your code to confirm this phone number for your e-ID is %(code)s. It is valid for "
                 "%(minutes)d minutes. Never give it to anyone.", code=code,
                 minutes=max(1, sms.code_ttl(config) // 60))
    return sms.send_sms(phone, text, config=config)


def confirm_phone(store: Store, identity: Identity, code: str, *, config: Mapping, now: datetime,
                  address: str = "") -> bool:
    """True (and the phone verified) when the code sent to this very number is right."""
    phone = identity.phone
    if not phone:
        return False
    if not sms.verify_code(store, purpose=PHONE_PURPOSE, identity_id=identity.id, contact=phone,
                           code=code, config=config, now=now):
        return False
    identity.phone_verified_at = now
    identity.updated_at = now
    db.session.commit()
    events.record(identity.id, "phone_verified", now=now, address=address)
    return True

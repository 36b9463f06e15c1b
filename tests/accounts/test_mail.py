"""Outgoing e-mail against a real SMTP server on loopback (aiosmtpd), and its failure modes."""

from __future__ import annotations

import logging
import socket

import pytest
from flask_babel import gettext

from idp.accounts import mail
from tests.support.smtp import SmtpServer, body, enable_loggers, free_port

SUBJECT = "Đặt lại mật khẩu định danh điện tử"


@pytest.fixture(autouse=True)
def _logs(migrated):
    enable_loggers("idp.accounts.mail")


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def config(**extra) -> dict:
    return {"MAIL_FROM": "Định danh điện tử tỉnh <no-reply@id.example.vn>", "SMTP_TIMEOUT": 5,
            "SMTP_STARTTLS": False, "SMTP_SSL": False, "LANGUAGES": ["vi", "en"], **extra}


def message(cfg, to="an@example.vn"):
    return mail.build(to, SUBJECT, "Xin chào Nguyễn Văn An,\n\nđường dẫn: https://id.example.vn/x\n",
                      config=cfg, lang="vi")


def test_message_is_plain_utf8_text_with_automatic_headers():
    msg = message(config())
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Content-Language"] == "vi"
    assert msg["Message-ID"].endswith("@id.example.vn>")
    assert msg["Date"]


def test_sent_through_a_real_smtp_server(smtp):
    cfg = config(**smtp.app_config())
    assert mail.send(message(cfg), config=cfg) is True
    [received] = smtp.inbox.wait_for(1)
    assert received["Subject"] == SUBJECT
    assert received["To"] == "an@example.vn"
    assert "no-reply@id.example.vn" in received["From"]
    assert "Nguyễn Văn An" in body(received)
    envelope = smtp.inbox.envelopes[0]
    assert envelope.mail_from == "no-reply@id.example.vn"
    assert envelope.rcpt_tos == ["an@example.vn"]


def test_send_later_delivers_from_the_background(smtp):
    cfg = config(**smtp.app_config())
    mail.send_later(message(cfg, "one@example.vn"), config=cfg)
    mail.send_later(message(cfg, "two@example.vn"), config=cfg)
    assert mail.wait_for_pending(10)
    assert sorted(m["To"] for m in smtp.inbox.settled()) == ["one@example.vn", "two@example.vn"]


def test_server_down_is_reported_not_raised(caplog):
    cfg = config(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())  # nothing listens there
    msg = message(cfg)
    with pytest.raises(mail.MailError):
        mail.deliver(msg, config=cfg)
    with caplog.at_level(logging.WARNING, logger="idp.accounts.mail"):
        assert mail.send(msg, config=cfg) is False
    assert "not sent" in caplog.text
    # The background path logs too and never raises into the caller.
    mail.send_later(msg, config=cfg)
    assert mail.wait_for_pending(10)


def test_silent_server_times_out():
    # Accepts the connection but never greets: the timeout bounds the wait.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        cfg = config(SMTP_HOST="127.0.0.1", SMTP_PORT=listener.getsockname()[1], SMTP_TIMEOUT=0.5)
        assert mail.send(message(cfg), config=cfg) is False


def test_starttls_required_but_not_offered_sends_nothing(smtp):
    cfg = config(**{**smtp.app_config(), "SMTP_STARTTLS": True})
    assert mail.send(message(cfg), config=cfg) is False
    assert smtp.inbox.settled() == []


def test_logging_backend_without_smtp_host(caplog):
    cfg = config(SMTP_HOST="")
    with caplog.at_level(logging.INFO, logger="idp.accounts.mail"):
        assert mail.send(message(cfg), config=cfg) is True
        mail.send_later(message(cfg, "later@example.vn"), config=cfg)
    assert "Nguyễn Văn An" in caplog.text and "an@example.vn" in caplog.text
    assert "later@example.vn" in caplog.text


def test_logging_backend_withholds_the_body_in_production(caplog):
    cfg = config(SMTP_HOST="", PROFILE="production")
    with caplog.at_level(logging.INFO, logger="idp.accounts.mail"):
        mail.send(message(cfg), config=cfg)
    assert "SMTP_HOST is not set" in caplog.text
    assert "https://id.example.vn/x" not in caplog.text


def test_language_is_vietnamese_by_default(app):
    with app.test_request_context("/?ui_locales=en"):
        assert gettext("Log in") == "Log in"
        with mail.language(None, app.config) as chosen:
            assert chosen == "vi"
            assert gettext("Log in") == "Đăng nhập"
        with mail.language("fr", app.config) as chosen:
            assert chosen == "vi"
        with mail.language("en", app.config) as chosen:
            assert gettext("Log in") == "Log in"
        # The page's own language comes back afterwards.
        assert gettext("Log in") == "Log in"

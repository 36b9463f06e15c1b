"""Citizen self-registration: valid input creates a level-1 identity; bad input names the field."""

from __future__ import annotations

import unicodedata

import pytest
from sqlalchemy import func, select

from idp.accounts.models import PasswordCredential
from idp.extensions import db
from idp.identity.models import Identifier, Identity
from tests.support.forms import submit

GOOD = {
    "personal_number": "001099012345",
    "full_name": "Nguyễn Văn An",
    "birth_date": "1999-05-14",
    "gender": "male",
    "phone": "0912 345 678",
    "email": "An.Nguyen@Example.vn",
    "password": "một buổi sáng mùa thu ở hà nội",
}


def register(client, **changes):
    return submit(client, "/register", {**GOOD, **changes})


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_registration_creates_level_one_identity(client, app):
    resp = register(client)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/login")
    with app.app_context():
        _check_created(app)


def _check_created(app):
    identity = db.session.scalar(select(Identity))
    assert identity.full_name == "Nguyễn Văn An"
    assert identity.assurance_level == 1
    assert identity.phone == "+84912345678"
    assert identity.email == "an.nguyen@example.vn"
    assert identity.name_search == "nguyen van an"
    assert identity.primary_identifier.value == "001099012345"
    cred = db.session.get(PasswordCredential, identity.id)
    assert cred.hash.startswith("$argon2id$")
    assert "một buổi" not in cred.hash


def test_nfd_name_is_stored_as_nfc(client, app):
    nfd = unicodedata.normalize("NFD", "Đặng Thị Thuỷ")
    assert nfd != unicodedata.normalize("NFC", nfd)
    resp = register(client, personal_number="001199012345", full_name=nfd, gender="female")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    with app.app_context():
        identity = db.session.scalar(select(Identity))
    assert identity.full_name == unicodedata.normalize("NFC", "Đặng Thị Thuỷ")
    assert identity.name_search == "dang thi thuy"


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"personal_number": "00109901234"}, "personal_number", "12 chữ số"),
        ({"personal_number": "003099012345"}, "personal_number", "tỉnh"),
        ({"personal_number": "001299012345"}, "personal_number", "năm sinh"),
        ({"personal_number": "001199012345"}, "personal_number", "giới tính"),
        ({"password": "ngắn quá"}, "password", "15"),
        ({"password": "passwordpassword"}, "password", "phổ biến"),
        ({"password": "001099012345 mật khẩu"}, "password", "thông tin cá nhân"),
        ({"phone": "12345", "email": ""}, "phone", "số điện thoại"),
        ({"email": "not-an-email"}, "email", "thư điện tử"),
        ({"full_name": "Nguyễn 3"}, "full_name", "họ và tên"),
        ({"phone": "", "email": ""}, "phone", "số điện thoại hoặc"),
    ],
)
def test_bad_input_names_the_field_and_creates_nothing(client, app, changes, field, fragment):
    resp = register(client, **changes)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    # The message sits next to its field, in Vietnamese.
    marker = f'id="{field}-error">'
    assert marker in html, html
    message = html.split(marker, 1)[1].split("</p>", 1)[0]
    assert fragment.lower() in message.lower(), message
    assert count(app, Identity) == 0
    assert count(app, PasswordCredential) == 0


def test_second_registration_with_same_personal_number_is_refused(client, app):
    assert register(client).status_code == 302
    resp = register(client, phone="0987000111", email="other@example.vn")
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert 'id="personal_number-error"' in html
    assert count(app, Identity) == 1
    assert count(app, Identifier) == 1


def test_registration_form_without_csrf_token_is_refused(client, app):
    resp = client.post("/register", data=GOOD)
    assert resp.status_code == 400
    assert count(app, Identity) == 0


def test_database_enforces_one_identity_per_identifier(app_ctx):
    from datetime import datetime

    from sqlalchemy.exc import IntegrityError

    from idp.identity.models import IdentifierType, IdentityKind

    now = datetime(2026, 1, 1)
    for _ in range(2):
        ident = Identity(kind=IdentityKind.CITIZEN, full_name="A", name_search="a", created_at=now, updated_at=now)
        ident.identifiers.append(
            Identifier(type=IdentifierType.PERSONAL_NUMBER, value="001099012345", is_primary=True, valid_from=now)
        )
        db.session.add(ident)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()

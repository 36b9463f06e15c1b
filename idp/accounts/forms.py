"""Forms of the login and registration pages (CSRF through Flask-WTF)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, PasswordField, RadioField, StringField, TelField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional


class LoginForm(FlaskForm):
    login = StringField(
        _l("Personal number, phone number or e-mail"),
        validators=[InputRequired(_l("Enter your personal number, phone number or e-mail.")), Length(max=254)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(_l("Enter your password.")), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )


class RegisterForm(FlaskForm):
    personal_number = StringField(
        _l("Personal identification number (12 digits, on your citizen ID card)"),
        validators=[InputRequired(_l("Enter your personal number.")), Length(max=32)],
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    full_name = StringField(
        _l("Full name, as on your citizen ID card"),
        validators=[InputRequired(_l("Enter your full name.")), Length(max=200)],
        render_kw={"autocomplete": "name"},
    )
    birth_date = DateField(
        _l("Date of birth"),
        validators=[InputRequired(_l("Enter your date of birth."))],
        render_kw={"autocomplete": "bday"},
    )
    gender = RadioField(
        _l("Gender"),
        choices=[SelectChoice("male", _l("Male")), SelectChoice("female", _l("Female"))],
        validators=[InputRequired(_l("Choose your gender."))],
    )
    phone = TelField(
        _l("Phone number"),
        validators=[Optional(), Length(max=32)],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    email = EmailField(
        _l("E-mail"),
        validators=[Optional(), Length(max=254)],
        render_kw={"autocomplete": "email"},
    )
    password = PasswordField(
        _l("Password (at least 15 characters)"),
        validators=[InputRequired(_l("Choose a password.")), Length(max=1024)],
        render_kw={"autocomplete": "new-password"},
    )


class LogoutForm(FlaskForm):
    """Only the CSRF token: logging out is a POST."""


class SecondFactorForm(FlaskForm):
    code = StringField(
        _l("Code from your authenticator app, or a recovery code"),
        validators=[InputRequired(_l("Enter the code.")), Length(max=32)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "text", "autocapitalize": "none",
                   "spellcheck": "false"},
    )


class TotpConfirmForm(FlaskForm):
    code = StringField(
        _l("The 6-digit code the app shows now"),
        validators=[InputRequired(_l("Enter the code.")), Length(max=12)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class ConfirmForm(FlaskForm):
    """CSRF only: a button that confirms an action."""

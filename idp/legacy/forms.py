"""Forms of the old-account pages."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TelField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional


class LegacyLoginForm(FlaskForm):
    system = SelectField(_l("Old system"), validators=[InputRequired(_l("Choose the old system."))])
    username = StringField(
        _l("Username in the old system"),
        validators=[InputRequired(_l("Enter the old username.")), Length(max=200)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        _l("Password in the old system"),
        validators=[InputRequired(_l("Enter the old password.")), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )


class CompleteIdentityForm(FlaskForm):
    personal_number = StringField(
        _l("Personal identification number (12 digits, on your citizen ID card)"),
        validators=[InputRequired(_l("Enter your personal number.")), Length(max=32)],
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    full_name = StringField(_l("Full name, as on your citizen ID card"),
                            validators=[InputRequired(_l("Enter your full name.")), Length(max=200)])
    birth_date = DateField(_l("Date of birth"), validators=[InputRequired(_l("Enter your date of birth."))])
    gender = RadioField(_l("Gender"), choices=[SelectChoice("male", _l("Male")), SelectChoice("female", _l("Female"))],
                        validators=[InputRequired(_l("Choose your gender."))])
    phone = TelField(_l("Phone number"), validators=[Optional(), Length(max=32)])
    email = EmailField(_l("E-mail"), validators=[Optional(), Length(max=254)])
    password = PasswordField(
        _l("Password for your unified account (at least 15 characters)"),
        validators=[InputRequired(_l("Choose a password.")), Length(max=1024)],
        render_kw={"autocomplete": "new-password"},
    )

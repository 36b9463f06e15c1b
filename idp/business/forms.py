"""Forms of the "my businesses" pages (CSRF through Flask-WTF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from idp.business.models import LegalForm

# Scopes an authorization may be limited to (openid and business are always included).
SCOPE_LABELS = {
    "profile": _l("Name, date of birth and identity level"),
    "email": _l("E-mail address"),
    "phone": _l("Phone number"),
    "national_id": _l("Personal number or tax code"),
    "address": _l("Address"),
    "offline_access": _l("Access while not using the system"),
}

LEGAL_FORM_LABELS = {
    LegalForm.LLC_SINGLE: _l("Single-member limited liability company"),
    LegalForm.LLC_MULTI: _l("Multi-member limited liability company"),
    LegalForm.JOINT_STOCK: _l("Joint-stock company"),
    LegalForm.PARTNERSHIP: _l("Partnership"),
    LegalForm.PRIVATE: _l("Private enterprise"),
    LegalForm.COOPERATIVE: _l("Cooperative"),
    LegalForm.HOUSEHOLD: _l("Household business"),
    LegalForm.BRANCH: _l("Branch"),
    LegalForm.REPRESENTATIVE_OFFICE: _l("Representative office"),
    LegalForm.BUSINESS_LOCATION: _l("Business location"),
    LegalForm.OTHER: _l("Other"),
}


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class GrantForm(FlaskForm):
    personal_number = StringField(
        _l("Personal number of the person to authorize (12 digits)"),
        validators=[InputRequired(_l("Enter the personal number of the person.")), Length(max=32)],
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    client_ids = CheckboxesField(
        _l("Systems where the person may act for the business (none ticked: every system)"),
        choices=[],
        validate_choice=True,
    )
    scopes = CheckboxesField(
        _l("Information the person may share for the business (none ticked: no limit)"),
        choices=[SelectChoice(k, v) for k, v in SCOPE_LABELS.items()],
    )
    valid_from = DateField(_l("Valid from (empty: today)"), validators=[Optional()])
    valid_to = DateField(_l("Valid until, inclusive (empty: until revoked)"), validators=[Optional()])


class RevokeForm(FlaskForm):
    reason = StringField(_l("Reason (optional)"), validators=[Optional(), Length(max=300)])


class RegisterBusinessForm(FlaskForm):
    tax_code = StringField(
        _l("Tax code (10 digits; a branch: 10 digits, a dash and 3 digits)"),
        validators=[InputRequired(_l("Enter the tax code.")), Length(max=32)],
        render_kw={"autocomplete": "off"},
    )
    name = StringField(
        _l("Name of the business, as registered"),
        validators=[InputRequired(_l("Enter the business's name.")), Length(max=200)],
        render_kw={"autocomplete": "organization"},
    )
    legal_form = SelectField(
        _l("Legal form"),
        choices=[SelectChoice(form.value, label) for form, label in LEGAL_FORM_LABELS.items()],
        validators=[InputRequired(_l("Choose the legal form of the business."))],
    )
    address = StringField(
        _l("Head office address"), validators=[Optional(), Length(max=500)],
        render_kw={"autocomplete": "street-address"},
    )

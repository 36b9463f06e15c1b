"""Forms of the admin console (CSRF through Flask-WTF on every form that changes something)."""

from __future__ import annotations

import json

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from idp.admin.models import EVIDENCE_TYPES
from idp.clients import services as client_services

REASON_HINT = _l("Say why, for the audit log (for example the request or ticket number).")


def _reason_field(label=None):
    return TextAreaField(
        label or _l("Reason"),
        validators=[InputRequired(_l("Give the reason for this action.")), Length(max=500)],
        render_kw={"rows": 2},
    )


class ReasonForm(FlaskForm):
    """Lock, unlock, end sessions, reset second factors: a reason is required."""

    reason = _reason_field()


class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField(
        _l("Personal number, tax code, phone, e-mail or name"),
        validators=[Optional(), Length(max=200)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autofocus": True},
    )


EVIDENCE_LABELS = {
    "chip_citizen_id": _l("Chip-based citizen ID card (CCCD)"),
    "citizen_id": _l("Citizen ID card (CCCD, without chip)"),
    "identity_card": _l("Old identity card (CMND, 9 digits)"),
    "passport": _l("Passport"),
}


class VerificationForm(FlaskForm):
    evidence_type = SelectField(
        _l("Document shown in person"),
        choices=[SelectChoice(key, EVIDENCE_LABELS[key]) for key in EVIDENCE_TYPES],
        validators=[InputRequired(_l("Choose the document shown."))],
    )
    document_number = StringField(
        _l("Document number"),
        validators=[InputRequired(_l("Enter the document number.")), Length(max=32)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    reason = _reason_field(_l("Reason and note"))


class PersonalNumberForm(FlaskForm):
    personal_number = StringField(
        _l("Correct personal number (12 digits)"),
        validators=[InputRequired(_l("Enter the personal number.")), Length(max=32)],
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    reason = _reason_field()


class MergeFindForm(FlaskForm):
    class Meta:
        csrf = False  # a GET that only previews

    other = StringField(
        _l("The duplicate: its personal number, tax code or internal id"),
        validators=[InputRequired(_l("Name the duplicate identity.")), Length(max=64)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class MergeForm(FlaskForm):
    other_id = HiddenField(validators=[InputRequired()])
    confirm = BooleanField(
        _l("I checked that both records are the same person."),
        validators=[InputRequired(_l("Confirm that both records are the same person."))],
    )
    reason = _reason_field()


class LegacyDecisionForm(FlaskForm):
    decision = SelectField(
        _l("Decision"),
        choices=[SelectChoice("link", _l("Link this old account to the identity")),
                 SelectChoice("reject", _l("Reject: it is not this person's account"))],
        validators=[InputRequired(_l("Choose to link or to reject."))],
    )
    reason = _reason_field()


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    action = StringField(_l("Action (or its beginning, e.g. admin.)"), validators=[Optional(), Length(max=64)])
    actor = StringField(_l("Actor (identity id, system, cli:…)"), validators=[Optional(), Length(max=100)])
    target_type = StringField(_l("Target type"), validators=[Optional(), Length(max=32)])
    target_id = StringField(_l("Target id"), validators=[Optional(), Length(max=100)])
    since = DateField(_l("From (UTC, inclusive)"), validators=[Optional()])
    until = DateField(_l("To (UTC, inclusive)"), validators=[Optional()])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class ClientForm(FlaskForm):
    name = StringField(_l("Name of the system"), validators=[InputRequired(_l("Enter the name.")), Length(max=200)])
    agency = StringField(_l("Agency"), validators=[InputRequired(_l("Enter the agency.")), Length(max=200)])
    client_type = SelectField(_l("Client type"), choices=[SelectChoice("confidential", _l("Confidential (a server)")),
                                                          SelectChoice("public", _l("Public (an app, no secret)"))])
    auth_method = SelectField(
        _l("Client authentication"),
        choices=[SelectChoice("", _l("Default for the type"))]
        + [SelectChoice(m, m) for m in ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")],
        validators=[Optional()],
    )
    redirect_uris = TextAreaField(_l("Redirect URIs (one per line)"), validators=[Length(max=5000)],
                                  render_kw={"rows": 3})
    post_logout_redirect_uris = TextAreaField(_l("Post-logout redirect URIs (one per line)"),
                                              validators=[Length(max=5000)], render_kw={"rows": 2})
    backchannel_logout_uri = StringField(_l("Back-channel logout URI"), validators=[Optional(), Length(max=500)])
    grant_types = MultiCheckboxField(_l("Grant types"), choices=[SelectChoice(g, g) for g in client_services.GRANT_TYPES])
    scopes = MultiCheckboxField(_l("Scopes"), choices=[SelectChoice(s, s) for s in client_services.SCOPES])
    require_pkce = BooleanField(_l("Require PKCE (S256)"), default=True)
    subject_type = SelectField(_l("Subject identifiers"), choices=[SelectChoice("public", _l("Public")),
                                                                  SelectChoice("pairwise", _l("Pairwise"))])
    sector_identifier = StringField(_l("Sector (host) for pairwise subjects"), validators=[Optional(), Length(max=255)])
    min_acr = SelectField(_l("Minimum level of assurance"),
                          choices=[SelectChoice("", _l("None"))] + [SelectChoice(a, a) for a in client_services.ACR_VALUES],
                          validators=[Optional()])
    id_token_signed_response_alg = SelectField(_l("ID token algorithm"),
                                               choices=[SelectChoice(a, a) for a in client_services.ID_TOKEN_ALGS])
    first_party = BooleanField(_l("First party (no consent page)"))
    jwks_uri = StringField(_l("JWKS URI (private_key_jwt)"), validators=[Optional(), Length(max=500)])
    jwks = TextAreaField(_l("JWKS (JSON, private_key_jwt)"), validators=[Optional(), Length(max=20000)],
                         render_kw={"rows": 3})
    access_token_lifetime = IntegerField(_l("Access token lifetime (s)"), default=600,
                                         validators=[InputRequired(), NumberRange(min=1)])
    id_token_lifetime = IntegerField(_l("ID token lifetime (s)"), default=600,
                                     validators=[InputRequired(), NumberRange(min=1)])
    refresh_token_lifetime = IntegerField(_l("Refresh token lifetime (s)"), default=86400,
                                          validators=[InputRequired(), NumberRange(min=1)])
    refresh_token_idle = IntegerField(_l("Refresh token idle timeout (s)"), default=43200,
                                      validators=[InputRequired(), NumberRange(min=1)])

    def values(self) -> dict:
        """The fields as idp.clients.services takes them (it validates them)."""
        jwks = None
        if self.jwks.data and self.jwks.data.strip():
            try:
                jwks = json.loads(self.jwks.data)
            except ValueError:
                jwks = self.jwks.data  # the service names it as invalid
        return {
            "name": self.name.data, "agency": self.agency.data, "client_type": self.client_type.data,
            "auth_method": self.auth_method.data or None,
            "redirect_uris": _lines(self.redirect_uris.data),
            "post_logout_redirect_uris": _lines(self.post_logout_redirect_uris.data),
            "backchannel_logout_uri": self.backchannel_logout_uri.data or None,
            "grant_types": list(self.grant_types.data or []), "scopes": list(self.scopes.data or []),
            "require_pkce": bool(self.require_pkce.data), "subject_type": self.subject_type.data,
            "sector_identifier": self.sector_identifier.data or None, "min_acr": self.min_acr.data or None,
            "id_token_signed_response_alg": self.id_token_signed_response_alg.data,
            "first_party": bool(self.first_party.data), "jwks": jwks,
            "jwks_uri": self.jwks_uri.data or None,
            "access_token_lifetime": self.access_token_lifetime.data,
            "id_token_lifetime": self.id_token_lifetime.data,
            "refresh_token_lifetime": self.refresh_token_lifetime.data,
            "refresh_token_idle": self.refresh_token_idle.data,
        }

    def fill(self, client) -> None:
        """Show a registered client's values (GET of the edit page)."""
        for name in ("name", "agency", "backchannel_logout_uri", "sector_identifier", "jwks_uri",
                     "access_token_lifetime", "id_token_lifetime", "refresh_token_lifetime",
                     "refresh_token_idle", "require_pkce", "first_party", "id_token_signed_response_alg"):
            getattr(self, name).data = getattr(client, name)
        self.client_type.data = str(client.client_type)
        self.auth_method.data = str(client.auth_method)
        self.subject_type.data = str(client.subject_type)
        self.min_acr.data = client.min_acr or ""
        self.redirect_uris.data = "\n".join(client.redirect_uris or [])
        self.post_logout_redirect_uris.data = "\n".join(client.post_logout_redirect_uris or [])
        self.grant_types.data = list(client.grant_types or [])
        self.scopes.data = list(client.scopes or [])
        self.jwks.data = json.dumps(client.jwks, indent=1) if client.jwks else ""


class ClientStatusForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=500)], render_kw={"rows": 2})


class ConfirmForm(FlaskForm):
    """A button that changes something (rotate a secret): CSRF only."""

"""Mapping an upstream login onto the unified identity (services.resolve_login and unlink)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from idp.accounts.models import AccountEvent
from idp.audit.models import AuditEntry
from idp.extensions import db
from idp.federation import mapping, services
from idp.federation.models import FederationConflict, UpstreamLink
from idp.identity.models import Identity
from idp.identity.services import get_identity
from idp.timeutil import utcnow
from tests.support.oidc import make_citizen

ISS = "https://vneid.example"
ACRS = {"2": {"identity_level": 2, "amr": ["fed", "mfa"]}, "1": {"identity_level": 1, "amr": ["fed"]}}


def metadata(issuer=ISS) -> dict:
    return {"issuer": issuer, "authorization_endpoint": issuer + "/auth", "token_endpoint": issuer + "/token",
            "jwks_uri": issuer + "/jwks", "userinfo_endpoint": issuer + "/userinfo"}


def add(app, slug="vneid", issuer=ISS, **changes):
    fields = dict(slug=slug, issuer=issuer, metadata=metadata(issuer), client_id="tinh", client_secret="s3cret",
                  scopes="openid profile", display_name="VNeID",
                  claim_mapping={"personal_number": "personal_number", "full_name": "name", "birth_date": "birthdate",
                                 "gender": "gender", "email": "email", "phone": "phone_number"},
                  acr_mapping=ACRS, config=app.config, now=utcnow())
    fields.update(changes)
    return services.add_provider(**fields)


@pytest.fixture
def ctx(app_ctx):
    provider = add(app_ctx)
    return provider


def person(sub="sub-1", *, issuer=ISS, number="001099012345", name="Nguyễn Văn An", birth=date(1999, 5, 14),
           gender="male", email=None, phone=None):
    return mapping.UpstreamPerson(issuer=issuer, subject=sub, personal_number=number, full_name=name,
                                  birth_date=birth, gender=gender, email=email, phone=phone,
                                  snapshot={"personal_number": number, "name": name})


def level(n: int, acr=None):
    return mapping.assurance_for(ACRS, acr or str(n))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_first_verified_login_creates_a_level_2_identity_without_password(ctx):
    result = services.resolve_login(ctx, person(email="an@example.vn"), level(2), now=utcnow(), address="1.2.3.4")
    identity = result.identity
    assert result.created and result.verified
    assert identity.assurance_level == 2 and identity.full_name == "Nguyễn Văn An"
    assert identity.primary_identifier.value == "001099012345"
    assert identity.email == "an@example.vn" and identity.email_verified_at is None
    assert not services.has_password(identity.id)
    link = services.find_link(ISS, "sub-1")
    assert link.identity_id == identity.id and link.verified_level == 2 and link.verified_acr == "2"
    assert link.provider_slug == "vneid" and link.verified_at is not None
    kinds = set(db.session.scalars(select(AccountEvent.event).where(AccountEvent.identity_id == identity.id)))
    assert {"identity_verified", "federation_linked"} <= kinds
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "federation.linked"))
    # The next login is the same identity, by the link.
    again = services.resolve_login(ctx, person(), level(2), now=utcnow())
    assert again.identity.id == identity.id and not again.created and count(Identity) == 1


def test_gender_comes_from_the_number_when_the_upstream_does_not_say(ctx):
    result = services.resolve_login(ctx, person(number="001185000002", name="Trần Thị Bình", birth=date(1985, 3, 2),
                                                gender=None), level(2), now=utcnow())
    assert result.identity.gender == "female"


def test_verified_number_with_agreeing_birth_date_links_an_existing_account(ctx, app):
    existing = make_citizen(app)  # level 1, with a password
    result = services.resolve_login(ctx, person(name="NGUYEN VAN AN"), level(2), now=utcnow())
    assert result.identity.id == existing and not result.created and result.newly_linked
    assert get_identity(existing).assurance_level == 2  # verified by the national e-ID
    assert count(Identity) == 1


@pytest.mark.parametrize(("changes", "why"), [
    ({"name": "Nguyễn Văn Bình"}, "name_differs"),
    ({"birth": date(1999, 5, 15)}, "birth_date_differs"),
    ({"birth": None}, "birth_date_missing"),
])
def test_a_disagreeing_verified_match_goes_to_the_officers_queue(ctx, app, changes, why):
    existing = make_citizen(app)
    for _ in range(2):  # a retry adds nothing to the queue
        with pytest.raises(services.ConflictQueued):
            services.resolve_login(ctx, person(**changes), level(2), now=utcnow())
    conflicts = services.open_conflicts()
    assert len(conflicts) == 1
    assert why in conflicts[0].reason and conflicts[0].identity_id == existing
    assert conflicts[0].claims["personal_number"] == "001099012345" and conflicts[0].resolved_at is None
    assert services.find_link(ISS, "sub-1") is None
    assert get_identity(existing).assurance_level == 1


def test_an_unverified_number_never_links_an_existing_account(ctx, app):
    make_citizen(app)
    with pytest.raises(services.LocalLoginRequired):
        services.resolve_login(ctx, person(), level(1), now=utcnow())
    assert count(UpstreamLink) == 0 and count(FederationConflict) == 0


def test_a_level_1_upstream_creates_a_level_1_identity(ctx):
    result = services.resolve_login(ctx, person(), level(1), now=utcnow())
    assert result.created and not result.verified and result.identity.assurance_level == 1
    assert services.find_link(ISS, "sub-1").verified_at is None


def test_an_unknown_acr_is_level_1(ctx):
    result = services.resolve_login(ctx, person(), mapping.assurance_for(ACRS, "urn:unknown"), now=utcnow())
    assert result.identity.assurance_level == 1


def test_never_linked_by_email_or_phone(ctx, app):
    existing = make_citizen(app, email="shared@example.vn", phone="0912345678")
    # A verified person with another number but the same contacts: a new identity, contacts dropped.
    other = person(sub="sub-2", number="001099000077", name="Lê Văn Cường", email="shared@example.vn",
                   phone="0912345678")
    result = services.resolve_login(ctx, other, level(2), now=utcnow())
    assert result.created and result.identity.id != existing
    assert result.identity.email is None and result.identity.phone is None
    # No number at all: nothing to match on, however well the e-mail matches.
    with pytest.raises(services.FederationRefused):
        services.resolve_login(ctx, person(sub="sub-3", number=None, email="shared@example.vn"), level(2), now=utcnow())
    assert services.find_link(ISS, "sub-3") is None


def test_refused_when_data_is_missing_or_contradicts_itself(ctx):
    with pytest.raises(services.FederationRefused):
        services.resolve_login(ctx, person(birth=None), level(1), now=utcnow())
    # Verified data that breaks the rules (number says 1999, birth date 1998): for an officer.
    with pytest.raises(services.ConflictQueued):
        services.resolve_login(ctx, person(birth=date(1998, 5, 14)), level(2), now=utcnow())
    assert services.open_conflicts()[0].reason.startswith("invalid_claims")
    assert count(Identity) == 0 and count(UpstreamLink) == 0


def test_a_linked_account_is_raised_by_a_later_verified_login_only_when_the_data_agrees(ctx):
    first = services.resolve_login(ctx, person(), level(1), now=utcnow()).identity
    assert first.assurance_level == 1
    # Verified, but the upstream now reports another number: the link stands, no raise, an officer looks.
    mismatch = services.resolve_login(ctx, person(number="001099000088"), level(2), now=utcnow())
    assert mismatch.identity.id == first.id and get_identity(first.id).assurance_level == 1
    assert services.open_conflicts()[0].reason == "number_mismatch"
    raised = services.resolve_login(ctx, person(), level(2), now=utcnow())
    assert raised.verified and get_identity(first.id).assurance_level == 2
    # A later level-1 login never lowers it.
    services.resolve_login(ctx, person(), level(1), now=utcnow())
    assert get_identity(first.id).assurance_level == 2


def test_linking_from_the_console(ctx, app):
    me = make_citizen(app)
    # A level-1 upstream with my number: linked (the person proved both), nothing raised.
    result = services.resolve_login(ctx, person(), level(1), now=utcnow(), link_for=me)
    assert result.newly_linked and result.identity.id == me and get_identity(me).assurance_level == 1
    # The same again is no news.
    assert not services.resolve_login(ctx, person(), level(1), now=utcnow(), link_for=me).newly_linked
    # Someone else's upstream account (another number): refused; verified, it is queued.
    with pytest.raises(services.FederationRefused):
        services.resolve_login(ctx, person(sub="sub-9", number="001099000099"), level(1), now=utcnow(), link_for=me)
    with pytest.raises(services.ConflictQueued):
        services.resolve_login(ctx, person(sub="sub-9", number="001099000099"), level(2), now=utcnow(), link_for=me)
    # An upstream account linked to another identity cannot be linked to me.
    other = services.resolve_login(ctx, person(sub="sub-7", number="001099000070", name="Phạm Văn Dũng"),
                                   level(1), now=utcnow()).identity
    assert other.id != me
    with pytest.raises(services.FederationRefused):
        services.resolve_login(ctx, person(sub="sub-7"), level(1), now=utcnow(), link_for=me)


def test_verified_console_link_raises_the_level(ctx, app):
    me = make_citizen(app)
    result = services.resolve_login(ctx, person(), level(2), now=utcnow(), link_for=me)
    assert result.verified and get_identity(me).assurance_level == 2


def test_unlink_only_while_another_way_to_log_in_remains(ctx, app):
    lonely = services.resolve_login(ctx, person(), level(2), now=utcnow())
    with pytest.raises(services.FederationRefused):
        services.unlink(lonely.identity.id, lonely.link.id, now=utcnow())
    # A second upstream link makes either removable, while its provider is enabled.
    second = add(app, slug="other", issuer="https://other.example")
    services.resolve_login(second, person(issuer="https://other.example", sub="o-1"), level(1), now=utcnow(),
                           link_for=lonely.identity.id)
    services.set_enabled(second, False, now=utcnow())
    assert not services.can_unlink(services.find_link(ISS, "sub-1"))
    services.set_enabled(second, True, now=utcnow())
    assert services.unlink(lonely.identity.id, services.find_link(ISS, "sub-1").id, now=utcnow()) == "vneid"
    assert services.find_link(ISS, "sub-1") is None
    # A person with a password may remove the last link; nobody removes someone else's.
    me = make_citizen(app, personal_number="001099000055", phone="0912000055", email="me@example.vn")
    link = services.resolve_login(ctx, person(sub="me", number="001099000055"), level(1), now=utcnow(),
                                  link_for=me).link
    with pytest.raises(services.FederationRefused):
        services.unlink(lonely.identity.id, link.id, now=utcnow())
    services.unlink(me, link.id, now=utcnow())
    assert services.links_of(me) == []


def test_identity_and_link_are_made_in_one_transaction(ctx, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("audit down")

    monkeypatch.setattr(services.audit, "record", broken)
    with pytest.raises(RuntimeError):
        services.resolve_login(ctx, person(), level(2), now=utcnow())
    db.session.rollback()
    assert count(Identity) == 0 and count(UpstreamLink) == 0


def test_provider_configuration_is_checked_and_the_secret_encrypted(app_ctx):
    provider = add(app_ctx)
    assert "s3cret" not in provider.client_secret_encrypted
    assert services.client_secret(provider, app_ctx.config) == "s3cret"
    from idp.errors import DomainError

    for changes in ({"slug": "Bad Slug"}, {"slug": "vneid"}, {"slug": "x2", "issuer": ISS},
                    {"slug": "x3", "issuer": "https://x3", "metadata": metadata("https://elsewhere")},
                    {"slug": "x4", "issuer": "https://x4", "metadata": metadata("https://x4"), "scopes": "profile"},
                    {"slug": "x5", "issuer": "https://x5", "metadata": metadata("https://x5"),
                     "acr_mapping": {"2": {"identity_level": 5}}},
                    {"slug": "x6", "issuer": "http://x6.example", "metadata": metadata("http://x6.example")}):
        with pytest.raises(DomainError):
            add(app_ctx, **changes)


def test_a_link_to_a_merged_identity_logs_in_as_the_survivor(ctx, app):
    from idp.identity.models import IdentityStatus

    first = services.resolve_login(ctx, person(), level(1), now=utcnow())
    survivor = make_citizen(app, personal_number="001099000066", phone="0912000066", email="s@example.vn")
    merged = get_identity(first.identity.id)
    merged.status, merged.merged_into_id = IdentityStatus.MERGED, survivor
    db.session.commit()
    again = services.resolve_login(ctx, person(), level(1), now=utcnow())
    assert again.identity.id == survivor
    assert services.find_link(ISS, "sub-1").identity_id == survivor

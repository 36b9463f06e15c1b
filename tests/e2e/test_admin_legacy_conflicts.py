"""An officer resolves legacy conflicts in the admin console.

A one-stop-shop system's export is imported and linked with the operator's commands; two old
accounts carry the personal number of a registered citizen but disagree with her identity (one
on the name, one on the birth date), so the automatic linking puts both in the officers' queue.
A superadmin logs in with password and authenticator code, goes through the console (dashboard,
identity search, the citizen's page, the conflict queue, both conflicts, relying parties, audit
log), links the first account and rejects the second. Every admin page is checked with axe-core
(WCAG 2.1 A/AA: no serious or critical violation) and is the one base layout.
"""

from __future__ import annotations

import hashlib
import secrets

import pytest

from tests.e2e.support import (
    AxeAudit,
    create_officer,
    create_person,
    expect,
    flask_cli,
    legacy_row,
    new_person,
    totp_code,
    vi,
    vi_n,
    write_legacy_export,
)

pytestmark = pytest.mark.slow

SYSTEM_NAME = "Một cửa điện tử huyện Đông Anh (cũ)"


def seed_conflicts(app, tmp_path, citizen) -> tuple[str, dict[str, str]]:
    """Register the old system, import its export and run the linking, all through the CLI.
    Returns the slug and {"name": legacy id, "birth": legacy id} of the two conflicts."""
    slug = f"motcua-{secrets.token_hex(3)}"
    flask_cli(app, "legacy", "add-system", slug, "--name", SYSTEM_NAME, "--agency", "UBND huyện",
              "--hash-scheme", "md5_hex")
    ids = {"name": f"mc-{secrets.token_hex(3)}", "birth": f"mc-{secrets.token_hex(3)}"}
    md5 = hashlib.md5(b"123456").hexdigest()  # noqa: S324 (what the old system stored)
    rows = [
        # Same number and birth date, another name (Hằng, not Hà): an old typing error or
        # another person? An officer must say.
        {"legacy_id": ids["name"], "username": "thuhang.nguyen", "password_hash": md5,
         "personal_number": citizen.personal_number, "full_name": "Nguyễn Thị Thu Hằng",
         "birth_date": citizen.birth_date.isoformat(), "gender": "female"},
        # Same number and name, another birth date (the same year: the number holds the year).
        {"legacy_id": ids["birth"], "username": "nguyenthuha90", "password_hash": md5,
         "personal_number": citizen.personal_number, "full_name": citizen.full_name.upper(),
         "birth_date": citizen.birth_date.replace(month=8, day=1).isoformat(), "gender": "female"},
    ]
    export = write_legacy_export(tmp_path / "motcua.csv", rows)
    out = flask_cli(app, "legacy", "import", slug, str(export), "--rejects", str(tmp_path / "rejects.csv"))
    assert "imported: 2" in out.splitlines() and "rejected: 0" in out.splitlines(), out
    out = flask_cli(app, "legacy", "link", slug)
    assert out.splitlines() == [f"{slug}: auto_linked 0, conflict 2", "  birth date differs: 1",
                                "  name differs: 1"], out
    return slug, ids


def audit_entries(app, **filters) -> list:
    from idp import audit

    with app.app_context():
        entries, _ = audit.search(per_page=100, **filters)
        return [(e.action, e.actor, e.target_id, e.content) for e in entries]


def nav(page, app, name: str) -> None:
    page.get_by_role("navigation", name=vi(app, "Administration")).get_by_role("link", name=vi(app, name)).click()


def decide(page, app, decision: str, reason: str) -> None:
    page.get_by_label(vi(app, "Decision")).select_option(label=vi(app, decision))
    page.get_by_label(vi(app, "Reason")).fill(reason)
    page.get_by_role("button", name=vi(app, "Record the decision")).click()


def test_officer_links_and_rejects_legacy_conflicts(stack, page, axe, tmp_path):
    app, base = stack.app, stack.provider
    check = AxeAudit(axe, base)
    citizen = new_person("Nguyễn Thị Thu Hà", gender="female", year=1990)
    citizen_id = create_person(app, citizen)
    slug, ids = seed_conflicts(app, tmp_path, citizen)
    officer = new_person("Trần Thị Bình", gender="female", year=1985)
    officer_id, secret, enrolled_at = create_officer(app, officer, roles=("superadmin",))

    # The console asks for the password, then the authenticator code.
    page.goto(base + "/admin/")
    expect(page.locator("h1")).to_have_text(vi(app, "Log in"))
    page.get_by_label(vi(app, "Personal number, phone number or e-mail")).fill(officer.personal_number)
    page.get_by_label(vi(app, "Password"), exact=True).fill(officer.password)
    page.get_by_role("button", name=vi(app, "Log in")).click()
    expect(page).to_have_url(base + "/login/second-factor")
    page.get_by_label(vi(app, "Code from your authenticator app, or a recovery code")).fill(
        totp_code(secret, at=enrolled_at + 30))
    page.get_by_role("button", name=vi(app, "Continue")).click()

    # The dashboard: the old system's mapping progress is there.
    expect(page).to_have_url(base + "/admin/")
    expect(page.locator("h1")).to_have_text(vi(app, "Dashboard"))
    expect(page.locator(".admin-who")).to_contain_text(officer.full_name)
    expect(page.get_by_role("img", name=vi(app, "Legacy mapping progress per system"))).to_contain_text(SYSTEM_NAME)
    check(page, "dashboard")

    # Identity search by personal number, then the citizen's page, which shows the waiting accounts.
    nav(page, app, "Identities")
    expect(page.locator("h1")).to_have_text(vi(app, "Identities"))
    check(page, "identity search, empty")
    page.get_by_label(vi(app, "Personal number, tax code, phone, e-mail or name")).fill(citizen.personal_number)
    page.get_by_role("button", name=vi(app, "Search")).click()
    expect(page.locator("main table.data tbody tr")).to_have_count(1)
    expect(page.get_by_text(vi_n(app, "%(num)s identity matches.", "%(num)s identities match.", 1))).to_be_visible()
    check(page, "identity search, one result")
    page.get_by_role("link", name=citizen.full_name).click()
    expect(page.locator("h1")).to_have_text(citizen.full_name)
    waiting = page.locator("main a[href^='/admin/legacy/conflicts/']")
    expect(waiting).to_have_count(2)
    expect(page.get_by_text(vi(app, "No linked legacy account."))).to_be_visible()
    check(page, "identity detail, two conflicts")

    # The queue: both accounts, with the reason the linking gave.
    nav(page, app, "Legacy conflicts")
    expect(page.locator("h1")).to_have_text(vi(app, "Legacy accounts waiting for an officer"))
    rows = page.locator("main table.data tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="thuhang.nguyen")).to_contain_text("name differs")
    expect(rows.filter(has_text="nguyenthuha90")).to_contain_text("birth date differs")
    expect(page.get_by_text(vi_n(app, "%(num)s account is waiting.", "%(num)s accounts are waiting.", 2))).to_be_visible()
    check(page, "conflict queue, two waiting")

    # The first: side by side, the name marked as differing, the rest agreeing.
    page.get_by_role("link", name="thuhang.nguyen").click()
    expect(page.locator("h1")).to_have_text(
        vi(app, "Old account %(user)s in %(system)s", user="thuhang.nguyen", system=SYSTEM_NAME))
    compare = page.locator("table.compare tbody")
    expect(compare.locator("tr.diff")).to_have_count(1)
    expect(compare.locator("tr.diff")).to_contain_text("Nguyễn Thị Thu Hằng")
    expect(compare.locator("tr.diff")).to_contain_text(vi(app, "differs"))
    expect(compare.locator("tr.same").filter(has_text=citizen.birth_date.strftime("%d/%m/%Y"))).to_have_count(1)
    check(page, "conflict, name differs")
    # A decision without a reason is refused, next to the field.
    page.get_by_label(vi(app, "Decision")).select_option(label=vi(app, "Link this old account to the identity"))
    page.get_by_role("button", name=vi(app, "Record the decision")).click()
    expect(page.locator("#reason-error")).to_have_text(vi(app, "Give the reason for this action."))
    expect(page.get_by_role("alert")).to_contain_text(vi(app, "Give the reason for this action."))
    assert legacy_row(app, slug, ids["name"]).link_state == "conflict"
    check(page, "conflict, no reason")
    link_reason = "Công dân xuất trình CCCD tại bộ phận một cửa; tên cũ bị gõ sai dấu"
    decide(page, app, "Link this old account to the identity", link_reason)

    # Back to the queue, which says so and holds one account now.
    expect(page).to_have_url(base + "/admin/legacy/conflicts")
    expect(page.get_by_role("status")).to_have_text(vi(app, "The old account is linked to the identity."))
    expect(rows).to_have_count(1)
    expect(page.get_by_text(vi_n(app, "%(num)s account is waiting.", "%(num)s accounts are waiting.", 1))).to_be_visible()
    check(page, "conflict queue after linking")

    # The second is not hers: rejected.
    page.get_by_role("link", name="nguyenthuha90").click()
    differing = page.locator("table.compare tbody tr.diff")
    expect(differing).to_have_count(2)
    # The capitals are marked as a difference of case only; the birth date as a real one.
    expect(differing.filter(has_text=citizen.full_name.upper())).to_contain_text(vi(app, "accents or case only"))
    born = differing.filter(has_text=citizen.birth_date.replace(month=8, day=1).strftime("%d/%m/%Y"))
    expect(born).to_contain_text(citizen.birth_date.strftime("%d/%m/%Y"))
    expect(born.locator(".badge")).to_have_text(vi(app, "differs"))
    check(page, "conflict, birth date differs")
    reject_reason = "Ngày sinh khác, công dân xác nhận không phải tài khoản của mình"
    decide(page, app, "Reject: it is not this person's account", reject_reason)
    expect(page.get_by_role("status")).to_have_text(vi(app, "The old account was rejected for this identity."))
    expect(page.get_by_text(vi(app, "No account is waiting."))).to_be_visible()
    check(page, "conflict queue, empty")

    # A decided account shows its outcome and no form any more.
    page.goto(base + f"/admin/legacy/conflicts/{legacy_row(app, slug, ids['name']).id}")
    expect(page.get_by_text(vi(app, "Decided: %(state)s.", state="claimed"))).to_be_visible()
    expect(page.get_by_role("button", name=vi(app, "Record the decision"))).to_have_count(0)
    check(page, "conflict, decided")

    # The citizen's page lists the linked account and nothing waiting.
    page.goto(base + f"/admin/identities/{citizen_id}")
    expect(page.get_by_text(f"{slug}: {ids['name']}")).to_be_visible()
    expect(page.locator("main a[href^='/admin/legacy/conflicts/']")).to_have_count(0)
    check(page, "identity detail, linked")

    # Relying parties: the demo systems are registered.
    nav(page, app, "Relying parties")
    expect(page.locator("h1")).to_have_text(vi(app, "Relying parties"))
    for rp in stack.rps.values():
        expect(page.get_by_role("link", name=rp.name)).to_be_visible()
    check(page, "relying parties")
    page.get_by_role("link", name=stack.rps["a"].name).click()
    expect(page.locator("h1")).to_contain_text(stack.rps["a"].name)
    check(page, "relying party")

    # The audit log, filtered on the legacy decisions: both, by this officer.
    nav(page, app, "Audit log")
    expect(page.locator("h1")).to_have_text(vi(app, "Audit log"))
    check(page, "audit log")
    page.get_by_label(vi(app, "Action (or its beginning, e.g. admin.)")).fill("legacy.")
    page.get_by_label(vi(app, "Actor (identity id, system, cli:…)")).fill(str(officer_id))
    page.get_by_role("button", name=vi(app, "Filter")).click()
    entries = page.locator("main table.data tbody tr")
    expect(entries).to_have_count(2)
    expect(entries.filter(has_text="legacy.linked")).to_contain_text(link_reason)
    expect(entries.filter(has_text="legacy.rejected")).to_contain_text(reject_reason)
    check(page, "audit log, filtered")

    # The store of record.
    linked, rejected = legacy_row(app, slug, ids["name"]), legacy_row(app, slug, ids["birth"])
    assert (linked.link_state, linked.identity_id, linked.candidate_identity_id, linked.linked_by) == (
        "claimed", citizen_id, None, str(officer_id))
    assert linked.conflict_reason is None and linked.linked_at is not None
    assert (rejected.link_state, rejected.identity_id, rejected.candidate_identity_id, rejected.linked_by) == (
        "rejected", None, citizen_id, str(officer_id))
    assert rejected.conflict_reason == reject_reason
    recorded = {action: (target, content) for action, _, target, content in
                audit_entries(app, actor=str(officer_id), action_prefix="legacy.")}
    assert recorded["legacy.linked"] == (str(citizen_id), {
        "system": slug, "legacy_id": ids["name"], "decision": "link", "reason": link_reason})
    assert recorded["legacy.rejected"] == (str(citizen_id), {
        "system": slug, "legacy_id": ids["birth"], "decision": "reject", "reason": reject_reason})

    check.assert_clean()

"""Every action is documented in docs/audit.md."""

from pathlib import Path

from idp.audit import ACTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def test_every_action_is_documented():
    text = DOC.read_text(encoding="utf-8")
    missing = [a for a in ACTIONS if f"`{a}`" not in text]
    assert missing == []

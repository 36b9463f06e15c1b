"""The structure stays as documented: lint, import rules, and migrations that match the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from idp.extensions import db

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_ruff_is_clean():
    result = subprocess.run([BIN / "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold():
    result = subprocess.run([BIN / "lint-imports"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_models_and_migrations_agree(app_ctx):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
    assert diff == [], f"models and migrations differ; run `flask db migrate`: {diff}"


def test_no_tables_created_outside_migrations():
    offenders = [str(p) for p in (ROOT / "idp").rglob("*.py") if "create_all(" in p.read_text()]
    assert offenders == []


def test_migrations_downgrade_and_upgrade_again(tmp_path, base_config):
    from flask_migrate import downgrade, upgrade

    from idp import create_app

    app = create_app({**base_config, "DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite3'}", "REDIS_URL": ""})
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == []
        db.engine.dispose()

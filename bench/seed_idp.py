"""Seed the benchmark's own database: citizens with passwords and their consent to the client.

Run by bench/run.py as a subprocess, with the provider's production environment (IDP_*), after
`flask db upgrade`, `flask keys ensure` and `flask clients create`:

    .venv/bin/python bench/seed_idp.py --client-id bench-rp --citizens 8 > seed.json

Prints JSON: the citizens' logins and the shared password. Passwords are hashed with the
configured argon2id parameters (production: m=19456, t=2), as a registration would.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from idp import create_app  # noqa: E402
from idp.accounts import services as account_services  # noqa: E402
from idp.extensions import db  # noqa: E402
from idp.oidc import consent as consents  # noqa: E402
from idp.timeutil import utcnow  # noqa: E402

PASSWORD = "bảy chú lùn đi chợ phiên sáng thứ bảy"
SCOPES = ["openid", "profile", "email", "phone"]


def personal_number(i: int) -> str:
    # 001 (Hà Nội), 0 (man born 1900-1999), 99 (1999), then six digits.
    return f"001099{i + 500000:06d}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--citizens", type=int, default=8)
    args = parser.parse_args()

    app = create_app()
    out = []
    with app.app_context():
        now = utcnow()
        for i in range(args.citizens):
            identity = account_services.register_citizen(
                personal_number=personal_number(i),
                full_name="Nguyễn Văn An",
                birth_date=date(1999, 5, 14),
                gender="male",
                phone=f"0912{i + 100000:06d}",
                email=f"citizen{i}@bench.example.vn",
                password=PASSWORD,
                config=app.config,
                now=now,
            )
            consents.record(identity.id, args.client_id, SCOPES,
                            notice_version=app.config["CONSENT_NOTICE_VERSION"], now=now)
            db.session.commit()
            out.append({"login": personal_number(i), "identity_id": str(identity.id)})
        db.engine.dispose()
    json.dump({"password": PASSWORD, "scope": " ".join(SCOPES), "citizens": out}, sys.stdout)


if __name__ == "__main__":
    main()

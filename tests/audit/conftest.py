from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from idp import audit
from idp.extensions import db

T0 = datetime(2026, 11, 1, 8, 0, 0, 123456)


@pytest.fixture
def append(app_ctx):
    """append(n) records n committed entries, one minute apart from T0; returns their ids."""

    def run(n, *, action="login.succeeded", start=T0, **kwargs):
        ids = []
        for i in range(n):
            entry = audit.record(
                action,
                actor=kwargs.get("actor", "6a1f4c1e-2b7d-4f7e-9a51-0c2d3e4f5a6b"),
                target_type=kwargs.get("target_type", "identity"),
                target_id=kwargs.get("target_id", "6a1f4c1e-2b7d-4f7e-9a51-0c2d3e4f5a6b"),
                address=kwargs.get("address", "203.0.113.7"),
                details=kwargs.get("details", {"method": "password", "n": i}),
                now=start + timedelta(minutes=i),
            )
            db.session.commit()
            ids.append(entry.id)
        return ids

    return run

"""The append-only, hash-chained audit log (docs/audit.md).

    record("login.failed", actor="anonymous", target_type="identity", target_id=identity.id,
           address=remote_addr, details={"reason": "bad_password"}, now=now)
    db.session.commit()   # the caller commits: the action and its entry go together
"""

from idp.audit.catalogue import ACTIONS, LOGIN_HISTORY_ACTIONS
from idp.audit.chain import digest
from idp.audit.query import export_csv, iter_csv, search
from idp.audit.services import (
    AuditChainError,
    VerifyResult,
    cli_actor,
    record,
    redact_older_than,
    verify,
)

__all__ = [
    "ACTIONS",
    "LOGIN_HISTORY_ACTIONS",
    "AuditChainError",
    "VerifyResult",
    "cli_actor",
    "digest",
    "export_csv",
    "iter_csv",
    "record",
    "redact_older_than",
    "search",
    "verify",
]

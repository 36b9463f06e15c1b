"""The clock. Services take `now` as an argument; this is where views get it."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

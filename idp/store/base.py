"""The store protocol every backend implements.

Values are strings (callers serialize); every key has a time to live in seconds.
"""

from __future__ import annotations

from typing import Protocol


class StoreUnavailable(RuntimeError):
    """The backend cannot be reached; callers fail closed (HTTP 503)."""


class Store(Protocol):
    def get(self, key: str) -> str | None:
        """The live value of key, or None."""

    def set(self, key: str, value: str, ttl: int) -> None:
        """Store value under key for ttl seconds, replacing any value."""

    def set_if_absent(self, key: str, value: str, ttl: int) -> bool:
        """Store value only if key holds no live value; True when stored."""

    def take(self, key: str) -> str | None:
        """Get and delete in one atomic step: of two concurrent callers, one gets the value."""

    def incr(self, key: str, ttl: int) -> int:
        """Add one to a counter and return it; the window of ttl starts at the first increment."""

    def ttl(self, key: str) -> int | None:
        """Seconds until key expires, or None when it holds nothing."""

    def delete(self, key: str) -> None:
        """Remove key (a value, a counter or a set)."""

    def set_add(self, key: str, member: str, ttl: int) -> None:
        """Add member to the set at key and extend the set's life to at least ttl."""

    def set_remove(self, key: str, member: str) -> None:
        """Remove member from the set at key."""

    def set_members(self, key: str) -> set[str]:
        """The members of the set at key (empty when none)."""

    def ping(self) -> None:
        """Raise StoreUnavailable when the backend cannot be reached."""

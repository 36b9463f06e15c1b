"""In-memory state of the demo relying party.

Everything here lives in the memory of ONE process: run the demo RP as a single process
(werkzeug, threads are fine). Several processes would each hold their own registry, and a
back-channel logout received by one would not end the sessions held by the others.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any


class SessionRegistry:
    """Local sessions by a random local id; the browser's cookie holds only that id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, dict[str, Any]] = {}

    def create(
        self,
        *,
        sub: str,
        sid: str | None = None,
        id_token: str = "",
        userinfo: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        local_id = secrets.token_urlsafe(32)
        entry = {
            "sub": sub,
            "sid": sid,
            "id_token": id_token,
            "userinfo": dict(userinfo or {}),
            "claims": dict(claims or {}),
            # Per-session token for the logout form.
            "csrf": secrets.token_urlsafe(24),
            "created_at": time.time(),
        }
        with self._lock:
            self._sessions[local_id] = entry
        return local_id

    def get(self, local_id: str | None) -> dict[str, Any] | None:
        if not local_id:
            return None
        with self._lock:
            entry = self._sessions.get(local_id)
            return dict(entry) if entry else None

    def remove(self, local_id: str | None) -> dict[str, Any] | None:
        if not local_id:
            return None
        with self._lock:
            return self._sessions.pop(local_id, None)

    def end_matching(self, *, sid: str | None, sub: str | None) -> int:
        """End the sessions of a logout token: by sid (and sub when both are given), else by sub."""
        if not sid and not sub:
            return 0
        with self._lock:
            doomed = [
                local_id
                for local_id, entry in self._sessions.items()
                if (entry["sid"] == sid if sid else True) and (entry["sub"] == sub if sub else True)
            ]
            for local_id in doomed:
                del self._sessions[local_id]
        return len(doomed)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


class MemoryCache:
    """The get/set/delete cache Authlib uses for pending authorization requests.

    Keeps the PKCE verifier and nonce on the server: the cookie carries only a marker.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any:
        now = time.time()
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= now:
                del self._items[key]
                return None
            return item[1]

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        expires = time.time() + (timeout or 3600)
        with self._lock:
            self._purge()
            self._items[key] = (expires, value)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def _purge(self) -> None:
        now = time.time()
        for key in [k for k, (exp, _) in self._items.items() if exp <= now]:
            del self._items[key]

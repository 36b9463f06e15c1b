"""Redis backend: the production store, shared by every instance."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from idp.store.base import StoreUnavailable

# INCR and start the window on first use; a counter left without expiry gets one too.
_INCR = """
local v = redis.call('INCR', KEYS[1])
if v == 1 or redis.call('TTL', KEYS[1]) == -1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return v
"""
# SADD and extend the set's life to at least ttl, never shorten it.
_SADD = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


class RedisStore:
    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix
        self._incr = client.register_script(_INCR)
        self._sadd = client.register_script(_SADD)

    @classmethod
    def from_url(cls, url: str, prefix: str, timeout: float) -> RedisStore:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            decode_responses=True,
            health_check_interval=30,
            # One retry at most: a silent Redis must turn into a 503 quickly, not after four timeouts.
            retry=Retry(NoBackoff(), 1),
        )
        return cls(client, prefix)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc.__class__.__name__}") from exc

    def get(self, key):
        return self._call(self.client.get, self._k(key))

    def set(self, key, value, ttl):
        self._call(self.client.set, self._k(key), value, ex=max(1, int(ttl)))

    def set_if_absent(self, key, value, ttl):
        return bool(self._call(self.client.set, self._k(key), value, ex=max(1, int(ttl)), nx=True))

    def take(self, key):
        return self._call(self.client.getdel, self._k(key))

    def incr(self, key, ttl):
        return int(self._call(self._incr, keys=[self._k(key)], args=[max(1, int(ttl))]))

    def ttl(self, key):
        value = self._call(self.client.ttl, self._k(key))
        # Redis rounds to the nearest second: a live key under half a second away says 0.
        return None if value is None or value < 0 else max(1, int(value))

    def delete(self, key):
        self._call(self.client.delete, self._k(key))

    def set_add(self, key, member, ttl):
        self._call(self._sadd, keys=[self._k(key)], args=[member, max(1, int(ttl))])

    def set_remove(self, key, member):
        self._call(self.client.srem, self._k(key), member)

    def set_members(self, key):
        return set(self._call(self.client.smembers, self._k(key)))

    def ping(self):
        self._call(self.client.ping)

    def delete_prefix(self) -> int:
        """Remove every key under this store's prefix (tests; never a FLUSH)."""
        removed = 0
        for key in self._call(self.client.scan_iter, match=self.prefix + "*", count=500):
            removed += self._call(self.client.delete, key)
        return removed

"""Everything the service keeps in Redis, behind one owner: connection, health, cursors, lists.

- `RedisStore` owns the pooled client (short timeouts, one quick retry on a dead pooled
  connection) and a small circuit breaker: after an error the service answers from the
  catalog-only fallback for `REDIS_RETRY_AFTER` seconds, then tries Redis again, so a dead Redis
  costs no timeouts per request and a returning one is used again within a second.
- Cursors: the per-user position in a ranked list. `RedisCursors` moves it with one Lua script
  (atomic, so two replicas serving one user never hand out the same position twice);
  `MemoryCursors` does the same in a dict for the in-process simulator.
- `CachedTopLists`: `TopLists` with the active-version pointer cached for <= 1 s;
  `MemoryLists`: the same lists from a recs.jsonl file, in memory (simulator, tests).
- What the service owns in Redis and refills when Redis comes back empty: the catalog
  fingerprint `{prefix}:catalog` (size and digest of the catalog this replica serves), which
  readiness and the trainer can compare against. Lists belong to the trainer; cursors are
  per-session state whose loss only restarts sessions at the top of their list.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Protocol

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from botify.toplists import TopLists

# KEYS[1]: cursor; ARGV: list length, restart threshold (-1: never), ttl seconds.
# Returns the position to hand out now: the one after the last handed out, wrapping at the end,
# or 0 when the caller's restart rule fired and the cursor is past the threshold.
_ADVANCE = """
local n = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
local threshold = tonumber(ARGV[2])
if threshold >= 0 and cur > threshold then cur = -1 end
local nxt = (cur + 1) % n
redis.call('SET', KEYS[1], nxt, 'EX', tonumber(ARGV[3]))
return nxt
"""


# The same move, reading the list in the same call (one round trip for a list arm's /next).
# KEYS[1]: cursor, KEYS[2]: the user's packed little-endian uint32 list (same hash slot: both
# carry the {<user>} tag); ARGV as above without the length. Returns the track, or -1 when the
# user has no (or an empty) list, in which case the cursor is left alone.
_ADVANCE_IN_LIST = """
local list = redis.call('GET', KEYS[2])
if not list then return -1 end
local n = math.floor(#list / 4)
if n == 0 then return -1 end
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
local threshold = tonumber(ARGV[1])
if threshold >= 0 and cur > threshold then cur = -1 end
local nxt = (cur + 1) % n
redis.call('SET', KEYS[1], nxt, 'EX', tonumber(ARGV[2]))
local b1, b2, b3, b4 = string.byte(list, nxt * 4 + 1, nxt * 4 + 4)
return b1 + b2 * 256 + b3 * 65536 + b4 * 16777216
"""


class CursorStore(Protocol):
    def advance(self, scope: str, user: int, length: int, restart_past: int | None = None) -> int:
        """Next position (0..length-1) for `user` in list `scope`; restarts at 0 when the last
        position handed out is > `restart_past` (None: never)."""

    def reset(self, scope: str, user: int) -> None:
        """Forget the user's position: the next advance returns 0."""


class MemoryCursors:
    """Cursors in a dict (one process): for the simulator's in-process recommenders and tests."""

    def __init__(self) -> None:
        self._pos: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def advance(self, scope: str, user: int, length: int, restart_past: int | None = None) -> int:
        with self._lock:
            cur = self._pos.get((scope, user), -1)
            if restart_past is not None and cur > restart_past:
                cur = -1
            nxt = (cur + 1) % length
            self._pos[(scope, user)] = nxt
            return nxt

    def reset(self, scope: str, user: int) -> None:
        with self._lock:
            self._pos.pop((scope, user), None)


class RedisCursors:
    """Cursors in Redis: `{prefix}:cursor:{scope}:{<user>}`, moved atomically by a Lua script."""

    def __init__(self, client: redis.Redis, prefix: str = "botify", ttl: int = 24 * 3600):
        self.client = client
        self.prefix = prefix
        self.ttl = int(ttl)
        self._advance = client.register_script(_ADVANCE)
        self._advance_in_list = client.register_script(_ADVANCE_IN_LIST)

    def key(self, scope: str, user: int) -> str:
        # The hash tag {<user>} keeps a user's cursor in the slot of the user's lists (Cluster).
        return f"{self.prefix}:cursor:{scope}:{{{int(user)}}}"

    def advance(self, scope: str, user: int, length: int, restart_past: int | None = None) -> int:
        if length <= 0:
            raise ValueError("cannot advance in an empty list")
        threshold = -1 if restart_past is None else int(restart_past)
        return int(self._advance(keys=[self.key(scope, user)], args=[length, threshold, self.ttl]))

    def advance_in_list(
        self, scope: str, user: int, list_key: str, restart_past: int | None = None
    ) -> int | None:
        """`advance` over the list stored at `list_key`, returning the track at the new position
        (None when there is no list) in one round trip."""
        threshold = -1 if restart_past is None else int(restart_past)
        track = int(
            self._advance_in_list(
                keys=[self.key(scope, user), list_key], args=[threshold, self.ttl]
            )
        )
        return None if track < 0 else track

    def reset(self, scope: str, user: int) -> None:
        self.client.delete(self.key(scope, user))


class MemoryLists:
    """Per-user lists in memory (a `ListSource`), e.g. the trainer's recs.jsonl for the simulator."""

    def __init__(self, lists: dict[int, np.ndarray]):
        self.lists = lists

    def get(self, user: int) -> np.ndarray | None:
        return self.lists.get(int(user))

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike) -> MemoryLists:
        """Read the DESIGN.md list file: JSON lines `{"user": int, "tracks": [int, ...]}`."""
        lists = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    lists[int(row["user"])] = np.asarray(row["tracks"], dtype=np.int64)
        return cls(lists)


class CachedTopLists(TopLists):
    """TopLists whose active-version pointer is re-read at most every `max_age` seconds."""

    def __init__(
        self, client: redis.Redis, name: str = "core", prefix: str = "botify", max_age: float = 1.0
    ):
        super().__init__(client, name=name, prefix=prefix)
        self.max_age = max_age
        self._cached: tuple[float, str | None] = (-float("inf"), None)

    def active_version(self) -> str | None:
        now = time.monotonic()
        read_at, version = self._cached
        if now - read_at >= self.max_age:
            version = super().active_version()
            self._cached = (now, version)
        return version

    def forget(self) -> None:
        self._cached = (-float("inf"), None)


class RedisStore:
    """The service's Redis: one pooled client per process, its health and the keys it owns."""

    def __init__(
        self,
        url: str,
        prefix: str = "botify",
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.1,
        retry_after: float = 0.5,
    ):
        self.url = url
        self.prefix = prefix
        self.retry_after = retry_after
        self._failed_at: float | None = None
        self._lock = threading.Lock()
        # redis-py's pool notices a fork and reconnects in the child, so a client built before
        # gunicorn forks (preload_app) is safe; one retry replaces a stale pooled connection after
        # a Redis restart instead of failing the request.
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        self.on_recovery: list = []  # callables run (best effort) when Redis answers again

    @property
    def catalog_key(self) -> str:
        return f"{self.prefix}:catalog"

    # -- circuit breaker ------------------------------------------------------------------------
    def available(self) -> bool:
        """False while the last error is fresher than `retry_after` (answer from the fallback)."""
        failed_at = self._failed_at
        return failed_at is None or time.monotonic() - failed_at >= self.retry_after

    def failed(self) -> None:
        self._failed_at = time.monotonic()

    def succeeded(self) -> None:
        if self._failed_at is None:
            return
        with self._lock:
            if self._failed_at is None:
                return
            self._failed_at = None
        for callback in self.on_recovery:
            try:
                callback()
            except redis.RedisError:
                self.failed()
                return

    # -- what the service owns ------------------------------------------------------------------
    def write_catalog_fingerprint(self, fingerprint: dict[str, str | int]) -> None:
        self.client.hset(self.catalog_key, mapping=fingerprint)

    def read_catalog_fingerprint(self) -> dict[str, str]:
        raw = self.client.hgetall(self.catalog_key)
        return {k.decode(): v.decode() for k, v in raw.items()}

    def close(self) -> None:
        self.client.close()

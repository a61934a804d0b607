"""Per-user state the recommenders read and move: what they ask for (ops) and who answers (backends).

A recommender does not talk to Redis. For each step it names the state it needs as small ops
(`NextInList`, `PickInList`, `PushSession`, ...); the service collects the ops of every step of a
request, hands them to a backend in one call, and gives each recommender its results. So a batch
of steps costs one Redis round trip (a non-transactional pipeline; every op touches keys of one
user only, all under the user's hash tag, so it is Redis-Cluster safe), and the same recommender
runs in-process in the simulator against `MemoryState`, which implements every op with the same
semantics (tests run both backends on the same inputs).

Keys (prefix `botify`; `{<user>}` is the Redis Cluster hash tag):
    {prefix}:cursor:{scope}:{<user>}   position last handed out in the user's list (a hint)
    {prefix}:session:{<user>}          the live session: packed (uint32 track, float32 time)
                                       records, oldest first, at most `session_length`, with a TTL
    list keys: botify.toplists (`{prefix}:lists:{name}:{version}:{<user>}`)

The seed's list rule (`NextInList`): if the previous track is in the user's list, the track after
it (wrapping at the end), otherwise the list's first track; with `restart_past` >= 0, also the
first track when the previous track's position is past it (the caller sets it when its restart
condition holds, e.g. a skip). The cursor only makes finding the previous track's position O(1)
when the session walks the list, whichever replica served the step before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol, cast

import numpy as np
import redis

from botify.toplists import Client, TopLists

log = logging.getLogger(__name__)

SESSION_RECORD = np.dtype([("track", "<u4"), ("time", "<f4")])


# -- ops ----------------------------------------------------------------------------------------
class NextInList(NamedTuple):
    """-> the track the seed's rule serves after `prev` in the user's list, or None (no list)."""

    lists: str
    scope: str
    user: int
    prev: int
    restart_past: int = -1  # >= 0: restart at the top when prev's position is past this


class PickInList(NamedTuple):
    """-> the track at position `draw % len(list)` of the user's list, or None (no list)."""

    lists: str
    user: int
    draw: int  # a non-negative integer < 2**53


class ResetCursor(NamedTuple):
    """-> None. Forget the user's cursor in `scope` (at session end)."""

    scope: str
    user: int


class PushSession(NamedTuple):
    """-> the live session after appending (track, time): a SESSION_RECORD array, oldest first."""

    user: int
    track: int
    time: float


class ClearSession(NamedTuple):
    """-> None. The session is over."""

    user: int


Op = NextInList | PickInList | ResetCursor | PushSession | ClearSession


class Failed(NamedTuple):
    """The result of an op the backend could not run (the step falls back)."""

    reason: str


class StateBackend(Protocol):
    def run(self, ops: Sequence[Op]) -> list[Any]:
        """Every op's result, in order; `Failed` for an op that failed alone. Raises
        redis.RedisError when the backend as a whole is unreachable."""
        ...


# -- the rule, for the in-memory backend (the Lua scripts below are its Redis twin) --------------
def next_position(tracks: np.ndarray, prev: int, restart_past: int, hint: int) -> int:
    n = len(tracks)
    if 0 <= hint < n and tracks[hint] == prev:
        pos = hint
    else:
        found = np.flatnonzero(tracks == prev)
        pos = int(found[0]) if found.size else -1
    if pos < 0 or (restart_past >= 0 and pos > restart_past):
        return 0
    return (pos + 1) % n


class MemoryState:
    """Every op in process memory: lists from a mapping, cursors and sessions in dicts."""

    def __init__(
        self,
        lists: Mapping[str, Mapping[int, np.ndarray]] | None = None,
        session_length: int = 50,
    ):
        self.lists = {name: dict(users) for name, users in (lists or {}).items()}
        self.session_length = session_length
        self.cursors: dict[tuple[str, int], int] = {}
        self.sessions: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def _list(self, name: str, user: int) -> np.ndarray | None:
        tracks = self.lists.get(name, {}).get(user)
        return tracks if tracks is not None and len(tracks) else None

    def run(self, ops: Sequence[Op]) -> list[Any]:
        with self._lock:
            return [self._one(op) for op in ops]

    def _one(self, op: Op) -> Any:
        if isinstance(op, NextInList):
            tracks = self._list(op.lists, op.user)
            if tracks is None:
                return None
            key = (op.scope, op.user)
            pos = next_position(tracks, op.prev, op.restart_past, self.cursors.get(key, -1))
            self.cursors[key] = pos
            return int(tracks[pos])
        if isinstance(op, PickInList):
            tracks = self._list(op.lists, op.user)
            return None if tracks is None else int(tracks[op.draw % len(tracks)])
        if isinstance(op, ResetCursor):
            self.cursors.pop((op.scope, op.user), None)
            return None
        if isinstance(op, PushSession):
            record = np.array([(op.track, op.time)], dtype=SESSION_RECORD)
            held = self.sessions.get(op.user)
            held = record if held is None else np.concatenate([held, record])
            held = held[-self.session_length :]
            self.sessions[op.user] = held
            return held.copy()
        if isinstance(op, ClearSession):
            self.sessions.pop(op.user, None)
            return None
        raise TypeError(f"unknown op {op!r}")


# -- Redis ------------------------------------------------------------------------------------
_READ_U32 = """
local function u32(s, i)
  local b1, b2, b3, b4 = string.byte(s, i * 4 + 1, i * 4 + 4)
  return b1 + b2 * 256 + b3 * 65536 + b4 * 16777216
end
"""

# KEYS: cursor, list. ARGV: prev track, restart_past (-1: never), cursor ttl.
_NEXT_IN_LIST = (
    _READ_U32
    + """
local list = redis.call('GET', KEYS[2])
if not list then return -1 end
local n = math.floor(#list / 4)
if n == 0 then return -1 end
local prev = tonumber(ARGV[1])
local pos = -1
local hint = tonumber(redis.call('GET', KEYS[1]) or '-1')
if hint >= 0 and hint < n and u32(list, hint) == prev then
  pos = hint
else
  local pattern = string.char(prev % 256, math.floor(prev / 256) % 256,
                              math.floor(prev / 65536) % 256, math.floor(prev / 16777216) % 256)
  local from = 1
  while true do
    local at = string.find(list, pattern, from, true)
    if not at then break end
    if (at - 1) % 4 == 0 then pos = (at - 1) / 4 break end
    from = at + 1
  end
end
local restart = tonumber(ARGV[2])
local nxt = 0
if pos >= 0 and not (restart >= 0 and pos > restart) then nxt = (pos + 1) % n end
redis.call('SET', KEYS[1], nxt, 'EX', tonumber(ARGV[3]))
return u32(list, nxt)
"""
)

# KEYS: list. ARGV: draw.
_PICK_IN_LIST = (
    _READ_U32
    + """
local n = math.floor(redis.call('STRLEN', KEYS[1]) / 4)
if n == 0 then return -1 end
local i = tonumber(ARGV[1]) % n
return u32(redis.call('GETRANGE', KEYS[1], i * 4, i * 4 + 3), 0)
"""
)

# KEYS: session. ARGV: one packed record, max records, ttl. Returns the whole session.
_PUSH_SESSION = """
local size = redis.call('APPEND', KEYS[1], ARGV[1])
local limit = tonumber(ARGV[2]) * 8
local held = redis.call('GET', KEYS[1])
if size > limit then
  held = string.sub(held, -limit)
  redis.call('SET', KEYS[1], held)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return held
"""


class RedisState:
    """Every op of a request in one pipelined round trip to Redis.

    Lists resolve to their active version through a pointer cached for `pointer_max_age`
    seconds (`CachedTopLists`), so a new version is seen within that time without restart; an op
    on a list set with no active version answers None without asking Redis.
    """

    def __init__(
        self,
        client: Client,
        prefix: str = "botify",
        cursor_ttl: int = 24 * 3600,
        session_length: int = 50,
        session_ttl: int = 3600,
        pointer_max_age: float = 1.0,
    ):
        self.client = client
        self.prefix = prefix
        self.cursor_ttl = int(cursor_ttl)
        self.session_length = int(session_length)
        self.session_ttl = int(session_ttl)
        self.pointer_max_age = pointer_max_age
        self.lists: dict[str, CachedTopLists] = {}
        register = cast(redis.Redis, client).register_script  # the cluster client has it too
        self._scripts = {
            NextInList: register(_NEXT_IN_LIST),
            PickInList: register(_PICK_IN_LIST),
            PushSession: register(_PUSH_SESSION),
        }

    # -- keys ---------------------------------------------------------------------------------
    def cursor_key(self, scope: str, user: int) -> str:
        return f"{self.prefix}:cursor:{scope}:{{{int(user)}}}"

    def session_key(self, user: int) -> str:
        return f"{self.prefix}:session:{{{int(user)}}}"

    def list_set(self, name: str) -> CachedTopLists:
        lists = self.lists.get(name)
        if lists is None:
            lists = self.lists[name] = CachedTopLists(
                self.client, name, self.prefix, self.pointer_max_age
            )
        return lists

    def forget_versions(self) -> None:
        """Re-read every list pointer on next use (after Redis came back)."""
        for lists in self.lists.values():
            lists.forget()

    # -- running ops ----------------------------------------------------------------------------
    def run(self, ops: Sequence[Op]) -> list[Any]:
        results: list[Any] = [None] * len(ops)
        queued = self._queue(ops, range(len(ops)), results)
        if not queued:
            return results
        replies = self._execute(queued)
        retry = [i for (i, _), r in zip(queued, replies, strict=True) if _noscript(r)]
        # Redis restarted or was flushed: load the scripts and run the failed ops again. Only
        # scripts fail so, and they run after the call's other commands; that keeps each user's
        # order because a call holds one step per user (the API refuses a second one), and a
        # step's ops are either all scripts (/next) or all plain commands (/last).
        if retry:
            for script in self._scripts.values():
                self.client.script_load(script.script)
            again = self._queue(ops, retry, results)
            by_index = dict(zip((i for i, _ in again), self._execute(again), strict=True))
            replies = [by_index.get(i, r) for (i, _), r in zip(queued, replies, strict=True)]
        for (i, _), reply in zip(queued, replies, strict=True):
            results[i] = self._result(ops[i], reply)
        return results

    def _queue(self, ops, indices, results) -> list[tuple[int, tuple[Any, ...]]]:
        """(op index, redis command args) for each op that needs Redis; others answered now."""
        versions: dict[str, str | None] = {}
        queued: list[tuple[int, tuple[Any, ...]]] = []
        for i in indices:
            op = ops[i]
            if isinstance(op, NextInList | PickInList):
                if op.lists not in versions:
                    versions[op.lists] = self.list_set(op.lists).active_version()
                version = versions[op.lists]
                if version is None:
                    results[i] = None
                    continue
                list_key = self.list_set(op.lists).key(version, op.user)
                keys: tuple[str, ...]
                args: tuple[int, ...]
                if isinstance(op, NextInList):
                    keys = (self.cursor_key(op.scope, op.user), list_key)
                    args = (int(op.prev), int(op.restart_past), self.cursor_ttl)
                else:
                    keys, args = (list_key,), (int(op.draw),)
                queued.append(
                    (i, ("EVALSHA", self._scripts[type(op)].sha, len(keys), *keys, *args))
                )
            elif isinstance(op, PushSession):
                record = np.array([(op.track, op.time)], dtype=SESSION_RECORD).tobytes()
                command = ("EVALSHA", self._scripts[PushSession].sha, 1, self.session_key(op.user),
                           record, self.session_length, self.session_ttl)  # fmt: skip
                queued.append((i, command))
            elif isinstance(op, ResetCursor):
                queued.append((i, ("DEL", self.cursor_key(op.scope, op.user))))
            elif isinstance(op, ClearSession):
                queued.append((i, ("DEL", self.session_key(op.user))))
            else:
                raise TypeError(f"unknown op {op!r}")
        return queued

    def _execute(self, queued: list[tuple[int, tuple]]) -> list[Any]:
        if len(queued) == 1:  # a single request's op: no pipeline object to build
            try:
                return [self.client.execute_command(*queued[0][1])]
            except redis.ResponseError as error:  # an op's own error, as the pipeline gives it
                return [error]
        pipe = self.client.pipeline(transaction=False)
        for _, command in queued:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=False)

    @staticmethod
    def _result(op: Op, reply: Any) -> Any:
        if isinstance(reply, Exception):
            return Failed(f"{type(reply).__name__}: {reply}")
        if isinstance(op, NextInList | PickInList):
            return None if int(reply) < 0 else int(reply)
        if isinstance(op, PushSession):
            if len(reply) % SESSION_RECORD.itemsize:
                return Failed(f"corrupt session: {len(reply)} bytes")
            return np.frombuffer(reply, dtype=SESSION_RECORD).copy()
        return None


def _noscript(reply: Any) -> bool:
    return isinstance(reply, redis.exceptions.NoScriptError)


class CachedTopLists(TopLists):
    """TopLists whose active-version pointer is re-read at most every `max_age` seconds."""

    def __init__(
        self, client: Client, name: str = "core", prefix: str = "botify", max_age: float = 1.0
    ):
        super().__init__(client, name=name, prefix=prefix)
        self.max_age = max_age
        self._cached: tuple[float, str | None] = (-float("inf"), None)
        self._seen: str | None | bool = False  # the version last logged (False: none yet)

    def active_version(self) -> str | None:
        now = time.monotonic()
        read_at, version = self._cached
        if now - read_at >= self.max_age:
            version = super().active_version()
            self._cached = (now, version)
            if version != self._seen:
                self._log_change(version)
        return version

    def _log_change(self, version: str | None) -> None:
        # One line per change and process: an emptied Redis says why the lists' arms fall back.
        if version is None:
            log.warning(
                "list set %r has no active version%s: its arms answer from the fallback until "
                "one is deployed",
                self.name,
                f" any more (was {self._seen}; Redis emptied?)" if self._seen else "",
            )
        else:
            log.info("list set %r is live at version %s", self.name, version)
        self._seen = version

    def live_version(self) -> str | None:
        """The pointer as Redis has it now (uncached)."""
        return super().active_version()

    def forget(self) -> None:
        self._cached = (-float("inf"), None)


def memory_lists(rows) -> dict[int, np.ndarray]:
    """{user: tracks} from (user, tracks) pairs, the shape `MemoryState` takes per list set."""
    return {int(user): np.asarray(tracks, dtype=np.int64) for user, tracks in rows}


__all__ = [
    "SESSION_RECORD",
    "NextInList",
    "PickInList",
    "ResetCursor",
    "PushSession",
    "ClearSession",
    "Op",
    "Failed",
    "StateBackend",
    "MemoryState",
    "RedisState",
    "CachedTopLists",
    "memory_lists",
    "next_position",
]

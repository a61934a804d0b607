"""`RedisState`: every op of a request in one pipelined round trip to Redis (Lua scripts for the
list rule and the session), Redis-Cluster safe: an op touches one user's keys, all under the
user's hash tag. See `botify.user_state` for the keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import redis

from botify.settings import Settings
from botify.toplists import CachedTopLists, Client
from botify.user_state.operations import (
    SESSION_RECORD,
    ClearSession,
    Failed,
    NextInList,
    Op,
    Picked,
    PickInList,
    PushHistory,
    PushSession,
    ResetCursor,
    ResetTurn,
    TakeTurn,
    Turn,
)

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

# KEYS: list. ARGV: draw, whole (1: append the packed list). Returns {track, list length, copies
# of the track in the list} (the draw's propensity is copies / length), or -1 without a list.
_PICK_IN_LIST = (
    _READ_U32
    + """
local list = redis.call('GET', KEYS[1])
if not list then return -1 end
local n = math.floor(#list / 4)
if n == 0 then return -1 end
local i = tonumber(ARGV[1]) % n
local packed = string.sub(list, i * 4 + 1, i * 4 + 4)
local copies, from = 0, 1
while true do  -- the track's aligned copies, found by a plain (C) search rather than a Lua loop
  local at = string.find(list, packed, from, true)
  if not at then break end
  if (at - 1) % 4 == 0 then copies = copies + 1 end
  from = at + 1
end
if ARGV[2] == '1' then return {u32(list, i), n, copies, list} end
return {u32(list, i), n, copies}
"""
)

# KEYS: session (or history). ARGV: one packed record, max records, ttl. Returns them all.
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

# KEYS: turn. ARGV: coin (0 or 1), ttl. The value is 2 * steps so far + the current pair's opener
# (the memory backend's twin); returns it as it was before this step.
_TAKE_TURN = """
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
local index = math.floor(held / 2)
local first = held % 2
if index % 2 == 0 then first = tonumber(ARGV[1]) % 2 end
redis.call('SET', KEYS[1], 2 * (index + 1) + first, 'EX', tonumber(ARGV[2]))
return 2 * index + first
"""


class RedisState:
    """Every op of a request in one pipelined round trip to Redis.

    Lists resolve to their active version through a pointer cached for `pointer_max_age`
    seconds (`CachedTopLists`), so a new version is seen within that time without restart; an op
    on a list set with no active version answers None without asking Redis.
    """

    def __init__(self, client: Client, settings: Settings):
        self.client = client
        self.prefix = settings.key_prefix
        self.cursor_ttl = settings.cursor_ttl
        self.session_length = settings.session_length
        self.session_ttl = settings.session_ttl
        self.history_length = settings.history_length
        self.history_ttl = settings.history_ttl
        self.pointer_max_age = settings.pointer_cache_seconds
        self.lists: dict[str, CachedTopLists] = {}
        register = cast(redis.Redis, client).register_script  # the cluster client has it too
        self._scripts = {
            NextInList: register(_NEXT_IN_LIST),
            PickInList: register(_PICK_IN_LIST),
            PushSession: register(_PUSH_SESSION),
            TakeTurn: register(_TAKE_TURN),
        }

    # -- keys ---------------------------------------------------------------------------------
    def cursor_key(self, scope: str, user: int) -> str:
        return f"{self.prefix}:cursor:{scope}:{{{int(user)}}}"

    def session_key(self, user: int) -> str:
        return f"{self.prefix}:session:{{{int(user)}}}"

    def turn_key(self, scope: str, user: int) -> str:
        return f"{self.prefix}:turn:{scope}:{{{int(user)}}}"

    def history_key(self, user: int) -> str:
        return f"{self.prefix}:history:{{{int(user)}}}"

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
                    keys, args = (list_key,), (int(op.draw), int(bool(op.whole)))
                queued.append(
                    (i, ("EVALSHA", self._scripts[type(op)].sha, len(keys), *keys, *args))
                )
            elif isinstance(op, PushSession | PushHistory):
                record = np.array([(op.track, op.time)], dtype=SESSION_RECORD).tobytes()
                key, limit, ttl = (
                    (self.session_key(op.user), self.session_length, self.session_ttl)
                    if isinstance(op, PushSession)
                    else (self.history_key(op.user), self.history_length, self.history_ttl)
                )
                command = ("EVALSHA", self._scripts[PushSession].sha, 1, key, record, limit, ttl)
                queued.append((i, command))
            elif isinstance(op, TakeTurn):
                key = self.turn_key(op.scope, op.user)
                coin = int(op.coin) & 1
                queued.append((i, ("EVALSHA", self._scripts[TakeTurn].sha, 1, key, coin,
                                   self.session_ttl)))  # fmt: skip
            elif isinstance(op, ResetTurn):
                queued.append((i, ("DEL", self.turn_key(op.scope, op.user))))
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
        if isinstance(op, PickInList):
            if not isinstance(reply, list):
                return None if int(reply) < 0 else Failed(f"unexpected reply {reply!r}")
            track, size, copies = (int(x) for x in reply[:3])
            whole = None
            if op.whole:
                if len(reply) != 4 or len(reply[3]) != 4 * size:
                    return Failed(f"unexpected reply for a whole list: {len(reply)} parts")
                whole = np.frombuffer(reply[3], dtype="<u4").astype(np.int64)
            return Picked(track, size, copies, whole)
        if isinstance(op, NextInList):
            return None if int(reply) < 0 else int(reply)
        if isinstance(op, TakeTurn):
            held = int(reply)
            return Turn(held // 2, held % 2)
        if isinstance(op, PushSession | PushHistory):
            if len(reply) % SESSION_RECORD.itemsize:
                return Failed(f"corrupt session or history: {len(reply)} bytes")
            return np.frombuffer(reply, dtype=SESSION_RECORD).copy()
        return None


def _noscript(reply: Any) -> bool:
    return isinstance(reply, redis.exceptions.NoScriptError)

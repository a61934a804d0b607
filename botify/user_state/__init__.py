"""Per-user state the recommenders read and move: what they ask for (ops) and who answers (backends).

A recommender does not talk to Redis. For each step it names the state it needs as small ops
(`NextInList`, `PickInList`, `PushSession`, ...); the service collects the ops of every step of a
request, hands them to a backend in one call, and gives each recommender its results. So a batch
of steps costs one Redis round trip (a non-transactional pipeline; every op touches keys of one
user only, all under the user's hash tag, so it is Redis-Cluster safe), and the same recommender
runs in-process in the simulator against `MemoryState`, which implements every op with the same
semantics (tests run both backends on the same inputs).

Keys (`prefix`: the settings' `key_prefix`; `{<user>}` is the Redis Cluster hash tag):
    {prefix}:cursor:{scope}:{<user>}   position last handed out in the user's list (a hint)
    {prefix}:session:{<user>}          the live session: packed (uint32 track, float32 time)
                                       records, oldest first, at most `session_length`, with a TTL
    {prefix}:turn:{scope}:{<user>}     an interleaving arm's step count in the live session, 2 *
                                       count + the side that opened the current pair, with a TTL
    {prefix}:history:{<user>}          the listening history across sessions (the course's 2026
                                       `user:<id>:listens`): the same records, the last
                                       `history_length` plays, never cleared by /last, with a TTL
    list keys: botify.toplists (`{prefix}:lists:{name}:{version}:{<user>}`), whose active version
    a replica reads through `botify.toplists.CachedTopLists`

The seed's list rule (`NextInList`): if the previous track is in the user's list, the track after
it (wrapping at the end), otherwise the list's first track; with `restart_past` >= 0, also the
first track when the previous track's position is past it (the caller sets it when its restart
condition holds, e.g. a skip). The cursor only makes finding the previous track's position O(1)
when the session walks the list, whichever replica served the step before.
"""

from botify.user_state.memory import MemoryState, memory_lists, next_position
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
    StateBackend,
    TakeTurn,
    Turn,
)
from botify.user_state.redis_backend import RedisState

__all__ = [
    "SESSION_RECORD",
    "NextInList",
    "PickInList",
    "Picked",
    "ResetCursor",
    "PushSession",
    "ClearSession",
    "PushHistory",
    "TakeTurn",
    "Turn",
    "ResetTurn",
    "Op",
    "Failed",
    "StateBackend",
    "MemoryState",
    "RedisState",
    "memory_lists",
    "next_position",
]

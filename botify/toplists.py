"""Versioned top-K recommendation lists in Redis (the contract between trainer and service).

Layout (`prefix`: the settings' `key_prefix`, list set `name`, e.g. `core`):
    {prefix}:lists:{name}:active          -> the active version (a string)
    {prefix}:lists:{name}:versions        -> hash version -> JSON metadata {"users", "created", ...}
    {prefix}:lists:{name}:{version}:{<user>} -> packed little-endian uint32 track ids, best first
    {prefix}:lists:{name}:{version}:model    -> the version's online model, if any (botify.online_model)

Values are raw uint32 bytes: nothing read from Redis is unpickled or evaluated. The user id sits in
a Redis Cluster hash tag `{<user>}` so a user's lists and cursors share one slot. A new version is
written completely, counted, then made live with one SET of the pointer (atomic); replicas read the
pointer, so they switch without restart.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import redis
from redis.cluster import RedisCluster

# A plain Redis client or a Redis Cluster one (botify.redis_link.connect picks by the URL).
Client = redis.Redis | RedisCluster

_DTYPE = np.dtype("<u4")

log = logging.getLogger(__name__)


def pack(tracks: Sequence[int] | np.ndarray) -> bytes:
    arr = np.asarray(tracks)
    if arr.ndim != 1 or (arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF)):
        raise ValueError("a list must be a 1-d sequence of track ids in [0, 2**32)")
    return arr.astype(_DTYPE).tobytes()


def unpack(raw: bytes) -> np.ndarray:
    if len(raw) % _DTYPE.itemsize:
        raise ValueError(f"corrupt list: {len(raw)} bytes is not a whole number of uint32")
    return np.frombuffer(raw, dtype=_DTYPE).astype(np.int64)


def check_list_set_name(name: str) -> str:
    """A list set name as it goes into Redis keys: no key separators or hash-tag braces."""
    if ":" in name or "{" in name or "}" in name:
        raise ValueError(f"bad list set name {name!r}")
    return name


class TopLists:
    """Read and write one named set of per-user lists (e.g. `core`) in Redis."""

    def __init__(self, client: Client, name: str, prefix: str):
        check_list_set_name(name)
        self.client = client
        self.name = name
        self.prefix = prefix
        self.base = f"{prefix}:lists:{name}"

    # -- keys -------------------------------------------------------------------------------
    @property
    def pointer_key(self) -> str:
        return f"{self.base}:active"

    @property
    def versions_key(self) -> str:
        return f"{self.base}:versions"

    def key(self, version: str, user: int) -> str:
        return f"{self.base}:{version}:{{{int(user)}}}"

    # -- reading (the service's side) --------------------------------------------------------
    def active_version(self) -> str | None:
        raw = self.client.get(self.pointer_key)
        return raw.decode() if isinstance(raw, bytes) else None

    def key_for(self, user: int) -> str | None:
        """The key of the user's list under the active version (None when none is active)."""
        version = self.active_version()
        return None if version is None else self.key(version, user)

    def get(self, user: int, version: str | None = None) -> np.ndarray | None:
        """The user's list under `version` (default: the active one); None when there is none."""
        version = version or self.active_version()
        if version is None:
            return None
        raw = self.client.get(self.key(version, user))
        return unpack(raw) if isinstance(raw, bytes) else None

    # -- writing (the trainer's side) --------------------------------------------------------
    def write(
        self,
        lists: Iterable[tuple[int, Sequence[int]]],
        version: str | None = None,
        meta: dict | None = None,
        batch: int = 2000,
    ) -> tuple[str, int]:
        """Write a complete new version (not yet active). Returns (version, users written)."""
        version = version or time.strftime("v%Y%m%dT%H%M%S") + f"-{time.time_ns() % 10**6:06d}"
        if ":" in version or "{" in version:
            raise ValueError(f"bad version {version!r}")
        if self.client.hexists(self.versions_key, version):
            raise ValueError(f"version {version} already exists")
        n = 0
        pipe = self.client.pipeline(transaction=False)
        for user, tracks in lists:
            pipe.set(self.key(version, user), pack(tracks))
            n += 1
            if n % batch == 0:
                pipe.execute()
        pipe.execute()
        info = {"users": n, "created": time.time(), **(meta or {})}
        self.client.hset(self.versions_key, version, json.dumps(info))
        return version, n

    def count(self, version: str) -> int:
        """Users actually present in Redis under `version` (SCAN, not the recorded metadata):
        keys ending in a `{<user>}` tag, so the version's model key is not counted."""
        pattern = f"{self.base}:{version}:{{*}}"
        return sum(1 for _ in self.client.scan_iter(match=pattern, count=5000))

    def versions(self) -> dict[str, dict]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.versions_key)  # type: ignore[assignment]
        out = {k.decode(): json.loads(v) for k, v in raw.items()}
        return dict(sorted(out.items(), key=lambda kv: kv[1].get("created", 0)))

    def activate(self, version: str) -> str | None:
        """Make `version` live atomically; returns the version it replaced."""
        if not self.client.hexists(self.versions_key, version):
            raise KeyError(f"unknown version {version}")
        previous = self.client.set(self.pointer_key, version, get=True)
        return previous.decode() if isinstance(previous, bytes) else None

    def delete(self, version: str) -> int:
        if version == self.active_version():
            raise ValueError("refusing to delete the active version")
        keys = list(self.client.scan_iter(match=f"{self.base}:{version}:*", count=5000))
        for i in range(0, len(keys), 5000):
            self.client.delete(*keys[i : i + 5000])
        self.client.hdel(self.versions_key, version)
        return len(keys)


class CachedTopLists(TopLists):
    """TopLists whose active-version pointer is re-read at most every `max_age` seconds."""

    def __init__(self, client: Client, name: str, prefix: str, max_age: float):
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


class ListFileError(ValueError):
    """A list file that must not be served or deployed."""


def read_list_file(path) -> list[tuple[int, list[int]]]:
    """Parse and check a whole DESIGN.md list file (JSON lines `{"user": int, "tracks": [...]}`):
    users are ints >= 0 and listed once, tracks ints in [0, 2**32). Raises ListFileError."""
    import json

    lists: list[tuple[int, list[int]]] = []
    seen: set[int] = set()
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                user, tracks = row["user"], row["tracks"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ListFileError(f"{path}:{n}: not a {{'user', 'tracks'}} JSON object") from exc
            ok_user = isinstance(user, int) and not isinstance(user, bool) and user >= 0
            ok_tracks = isinstance(tracks, list) and all(
                isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**32 for t in tracks
            )
            if not (ok_user and ok_tracks):
                raise ListFileError(f"{path}:{n}: user must be an int >= 0, tracks a list of ints")
            if user in seen:
                raise ListFileError(f"{path}:{n}: user {user} listed twice")
            seen.add(user)
            lists.append((user, tracks))
    return lists


def write_list_file(path, lists: Iterable[tuple[int, Sequence[int]]]) -> int:
    """Write a DESIGN.md list file (JSON lines `{"user", "tracks"}`, best first) atomically;
    returns the users written."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for user, tracks in lists:
            f.write(json.dumps({"user": int(user), "tracks": [int(t) for t in tracks]}) + "\n")
            n += 1
    tmp.replace(path)
    return n

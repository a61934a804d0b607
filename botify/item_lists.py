"""Item-keyed lists: for a track, the tracks to serve after it, best first (the contract between
the trainer and the `i2i` and `contextual` recommenders).

File (the course's 2026 format, `sasrec_i2i.jsonl`, `lightfm_i2i.jsonl`): JSON lines
`{"item_id": int, "recommendations": [int, ...]}`, one line per item. A list-set version holds
either user lists (`botify.toplists`, `{"user", "tracks"}` lines) or item lists;
`list_file_kind` tells the two file formats apart by their first line.

In Redis, an item-list version is one hash beside the list set's other keys, under the same
version pointer (so it goes live, rolls back and is journaled like user lists, `botify.deploy`):

    {prefix}:lists:{name}:{version}:items   meta       JSON {"format": "botify-items/1",
                                                            "items": n, "entries": m, "sha256"}
                                            items      n little-endian uint32 item ids, ascending
                                            offsets    n + 1 little-endian uint32
                                            tracks     m little-endian uint32: item i's list is
                                                       tracks[offsets[i]:offsets[i + 1]]

Nothing read can run code (plain arrays and JSON, sha256-checked). Item lists are immutable per
version and small (15,000 items x 10 tracks is 600 KB), so a replica loads a version once
(`RedisItemLists`, like the online model) and serves from memory: a step needs no Redis key
outside the user's hash tag, which keeps every op Redis-Cluster safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import redis

from botify.toplists import ListFileError

log = logging.getLogger(__name__)

FORMAT = "botify-items/1"
_U32 = np.dtype("<u4")


class ItemListError(ValueError):
    """Item lists that must not be served or deployed (unreadable, corrupt, foreign ids)."""


@dataclass
class ItemLists:
    """Every item's list, as three flat arrays; `get(track)` is O(1) through `row_of`."""

    items: np.ndarray  # int64 (n,), ascending
    offsets: np.ndarray  # int64 (n + 1,)
    tracks: np.ndarray  # int64 (m,)
    row_of: np.ndarray = field(repr=False)  # int32 (max id + 1,): item id -> row, -1: no list

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, Sequence[int]]]) -> ItemLists:
        """From (item, tracks) pairs (any order; an item listed twice is an error)."""
        pairs = sorted(((int(i), [int(t) for t in ts]) for i, ts in rows), key=lambda p: p[0])
        items = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
        if len(items) and (items[0] < 0 or (np.diff(items) == 0).any()):
            raise ItemListError("item ids must be distinct and >= 0")
        lengths = np.fromiter((len(ts) for _, ts in pairs), dtype=np.int64, count=len(pairs))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        tracks = np.fromiter((t for _, ts in pairs for t in ts), dtype=np.int64,
                             count=int(offsets[-1]))  # fmt: skip
        return cls.from_arrays(items, offsets, tracks)

    @classmethod
    def from_arrays(cls, items: np.ndarray, offsets: np.ndarray, tracks: np.ndarray) -> ItemLists:
        items = np.asarray(items, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        tracks = np.asarray(tracks, dtype=np.int64)
        consistent = (
            items.ndim == 1
            and len(offsets) == len(items) + 1
            and offsets[0] == 0
            and offsets[-1] == len(tracks)
            and bool(np.all(np.diff(offsets) >= 0))
            and bool(np.all(np.diff(items) > 0))
            and (not len(items) or items[0] >= 0)
            and (not len(tracks) or tracks.min() >= 0)
        )
        if not consistent:
            raise ItemListError("item lists: offsets, items and tracks do not fit together")
        size = int(items[-1]) + 1 if len(items) else 0
        row_of = np.full(size, -1, dtype=np.int32)
        row_of[items] = np.arange(len(items), dtype=np.int32)
        return cls(items, offsets, tracks, row_of)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, track: int) -> np.ndarray | None:
        """`track`'s list, best first (None when it has none)."""
        if not 0 <= track < len(self.row_of):
            return None
        row = int(self.row_of[track])
        if row < 0:
            return None
        return self.tracks[self.offsets[row] : self.offsets[row + 1]]

    def rows(self) -> Iterable[tuple[int, list[int]]]:
        for row, item in enumerate(self.items.tolist()):
            yield item, self.tracks[self.offsets[row] : self.offsets[row + 1]].tolist()

    def check_catalog(self, catalog_size: int) -> None:
        """Every id is one of the catalog's tracks; raises ItemListError saying which is not."""
        largest = max(int(self.items.max(initial=-1)), int(self.tracks.max(initial=-1)))
        if largest >= catalog_size:
            raise ItemListError(
                f"item lists name track {largest}, but the catalog has {catalog_size} tracks"
            )


# -- files --------------------------------------------------------------------------------------
def list_file_kind(path: str | Path) -> str:
    """The kind of a list file, judged by its first non-empty line: `users` for `{"user",
    "tracks"}` lines, `items` for `{"item_id", "recommendations"}` ones; ListFileError else."""
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ListFileError(f"{path}:1: not JSON lines") from exc
            if isinstance(row, dict) and {"user", "tracks"} <= row.keys():
                return "users"
            if isinstance(row, dict) and {"item_id", "recommendations"} <= row.keys():
                return "items"
            raise ListFileError(
                f"{path}: neither user lists ({{'user', 'tracks'}}) nor item lists "
                "({'item_id', 'recommendations'})"
            )
    raise ListFileError(f"{path}: empty")


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32


def read_item_list_file(path: str | Path) -> ItemLists:
    """Parse and check a whole item-list file (the course's 2026 format): `item_id` an int listed
    once, `recommendations` a list of ints, all in [0, 2**32). Raises ItemListError."""
    rows: list[tuple[int, list[int]]] = []
    seen: set[int] = set()
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                item, tracks = row["item_id"], row["recommendations"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ItemListError(
                    f"{path}:{n}: not an {{'item_id', 'recommendations'}} JSON object"
                ) from exc
            if not (_is_id(item) and isinstance(tracks, list) and all(map(_is_id, tracks))):
                raise ItemListError(
                    f"{path}:{n}: item_id must be an int >= 0, recommendations a list of ints"
                )
            if item in seen:
                raise ItemListError(f"{path}:{n}: item {item} listed twice")
            seen.add(item)
            rows.append((item, tracks))
    return ItemLists.from_rows(rows)


def write_item_list_file(path: str | Path, rows: Iterable[tuple[int, Sequence[int]]]) -> int:
    """Write (item, tracks) pairs in the course's format, atomically; returns the items written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for item, tracks in rows:
            record = {"item_id": int(item), "recommendations": [int(t) for t in tracks]}
            f.write(json.dumps(record) + "\n")
            n += 1
    tmp.replace(path)
    return n


# -- Redis --------------------------------------------------------------------------------------
def items_key(prefix: str, name: str, version: str) -> str:
    return f"{prefix}:lists:{name}:{version}:items"


def pack(lists: ItemLists) -> dict[str, bytes]:
    """The Redis hash fields of an item-list version (what `botify.deploy` writes)."""
    if max(int(lists.items.max(initial=0)), int(lists.tracks.max(initial=0))) >= 2**32:
        raise ItemListError("item lists hold ids beyond uint32")
    raw = {
        "items": lists.items.astype(_U32).tobytes(),
        "offsets": lists.offsets.astype(_U32).tobytes(),
        "tracks": lists.tracks.astype(_U32).tobytes(),
    }
    meta = {
        "format": FORMAT,
        "items": len(lists),
        "entries": len(lists.tracks),
        "sha256": _digest(raw),
    }
    return {"meta": json.dumps(meta).encode(), **raw}


def unpack(fields: Mapping[bytes, bytes], catalog_size: int) -> ItemLists:
    """Check and decode the Redis hash of an item-list version; raises ItemListError why not."""
    try:
        meta = json.loads(fields[b"meta"])
        raw = {k: fields[k.encode()] for k in ("items", "offsets", "tracks")}
    except (KeyError, ValueError) as error:
        raise ItemListError(
            f"incomplete or unreadable item lists ({type(error).__name__})"
        ) from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ItemListError(f"not {FORMAT} item lists")
    if _digest(raw) != meta.get("sha256"):
        raise ItemListError("sha256 mismatch: the item lists are corrupt")
    if any(len(v) % 4 for v in raw.values()):
        raise ItemListError("item lists are not whole uint32 arrays")
    arrays = {k: np.frombuffer(v, dtype=_U32).astype(np.int64) for k, v in raw.items()}
    lists = ItemLists.from_arrays(arrays["items"], arrays["offsets"], arrays["tracks"])
    if len(lists) != meta.get("items") or len(lists.tracks) != meta.get("entries"):
        raise ItemListError("item lists' sizes do not match their description")
    lists.check_catalog(catalog_size)
    return lists


def _digest(raw: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for key in ("items", "offsets", "tracks"):
        digest.update(raw[key])
    return digest.hexdigest()


# -- sources (what a recommender reads through its Context) -------------------------------------
class ItemListSource(Protocol):
    def get(self, name: str) -> ItemLists | None:
        """The live item lists of list set `name`, or None (none deployed, or not loadable)."""
        ...

    def status(self, name: str) -> dict[str, Any]:
        """For /ready: {"version", "loaded": bool, "reason"?}."""
        ...


class MemoryItemLists:
    """Fixed item lists by list set name (in-process runs and tests)."""

    def __init__(self, sets: Mapping[str, ItemLists] | None = None):
        self.sets = dict(sets or {})

    @classmethod
    def from_files(cls, paths: Mapping[str, str | Path], catalog_size: int) -> MemoryItemLists:
        sets = {}
        for name, path in paths.items():
            lists = read_item_list_file(path)
            lists.check_catalog(catalog_size)
            sets[name] = lists
        return cls(sets)

    def get(self, name: str) -> ItemLists | None:
        return self.sets.get(name)

    def status(self, name: str) -> dict[str, Any]:
        return {"version": "memory", "loaded": name in self.sets}


class RedisItemLists:
    """Loads each list set's item lists once per active version (per process), from Redis.

    `state` is the service's `botify.user_state.RedisState`: its cached list pointers decide which
    version is live, so item lists switch exactly when the rest of the list set does. A version
    that does not load is remembered with the reason (`/ready` reports it) and retried after
    `retry_after` seconds. While Redis is unreachable the version loaded last keeps serving: a
    recommender that reads only item lists (`contextual`) needs Redis for nothing else, and
    asking a dead Redis every step would stall the worker.
    """

    def __init__(self, state, catalog_size: int, retry_after: float = 5.0):
        self.state = state
        self.catalog_size = int(catalog_size)
        self.retry_after = retry_after
        self._loaded: dict[str, tuple[str, ItemLists | None, str, float]] = {}
        self._pointer_failed: float = -float("inf")
        self._lock = threading.Lock()

    def get(self, name: str) -> ItemLists | None:
        held = self._loaded.get(name)
        if time.monotonic() - self._pointer_failed < self.retry_after:
            return held[1] if held else None
        try:
            version = self.state.list_set(name).active_version()
        except redis.RedisError:
            self._pointer_failed = time.monotonic()
            return held[1] if held else None
        return None if version is None else self._held(name, version)[1]

    def _held(self, name: str, version: str) -> tuple[str, ItemLists | None, str, float]:
        held = self._loaded.get(name)
        if not self._usable(held, version):
            with self._lock:  # one thread loads; the others wait, then use its result
                held = self._loaded.get(name)
                if not self._usable(held, version):
                    held = self._load(name, version, held)
                    self._loaded[name] = held
        assert held is not None
        return held

    def _usable(self, held, version: str) -> bool:
        if held is None or held[0] != version:
            return False
        return held[1] is not None or time.monotonic() - held[3] < self.retry_after

    def _load(self, name: str, version: str, held) -> tuple[str, ItemLists | None, str, float]:
        key = items_key(self.state.prefix, name, version)
        try:
            fields = self.state.client.hgetall(key)
        except redis.RedisError:
            self._pointer_failed = time.monotonic()
            if held is not None and held[1] is not None:  # keep serving what we have
                return held
            return version, None, "Redis unavailable", -float("inf")
        try:
            if not fields:
                raise ItemListError(f"no item lists deployed with version {version}")
            lists = unpack(fields, self.catalog_size)
        except ItemListError as error:
            log.warning("list set %r version %s: item lists not loaded: %s", name, version, error)
            return version, None, str(error), time.monotonic()
        log.info("list set %r version %s: item lists loaded (%d items)", name, version, len(lists))
        return version, lists, "", time.monotonic()

    def status(self, name: str) -> dict[str, Any]:
        version = self.state.list_set(name).live_version()
        if version is None:
            return {"version": None, "loaded": False, "reason": "no active version"}
        held = self._held(name, version)
        out: dict[str, Any] = {"version": version, "loaded": held[1] is not None}
        if held[1] is None:
            out["reason"] = held[2]
        return out

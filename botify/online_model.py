"""Online models: what the trainer learned, served per step from the live session.

A model is deployed beside the lists of a list set, under the same version, and goes live with
them in the same atomic switch (`botify.deploy`): Redis key `{prefix}:lists:{name}:{version}:model`,
a hash of plain arrays and JSON, nothing that can run code:

    meta        JSON {"format": "botify-online/1", "kind": "core-ave", "tracks": n, "dim": d,
                      "sha256": <of tracks + embeddings bytes>, ...}
    tracks      n little-endian uint32 track ids
    embeddings  n x d little-endian float32 item embeddings (CORE's item table, row i = tracks[i])

`RedisModels` loads a set's model once per version and per process (the pointer is the lists'
cached pointer); a version whose model is missing or does not load is remembered as failed, with
the reason, which `/ready` reports, and the recommender serves its fallback. `MemoryModels` holds
fixed models (the simulator in-process, tests).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import redis

log = logging.getLogger(__name__)

FORMAT = "botify-online/1"
_U32 = np.dtype("<u4")
_F32 = np.dtype("<f4")


class ModelError(ValueError):
    """A model that must not be served (missing, corrupt, or of another format)."""


@dataclass
class OnlineModel:
    """CORE's item embeddings, normalised, with the catalog's track id -> row map."""

    tracks: np.ndarray  # int64 (n,): row i scores track tracks[i]
    unit: np.ndarray  # float32 (n, d): L2-normalised item embeddings (CORE's full_sort_predict)
    row_of: np.ndarray  # int32 (catalog size,): track id -> row, -1 when the model never saw it
    artist_of_row: np.ndarray  # int32 (n,): the catalog's artist of each row's track
    meta: dict[str, Any] = field(default_factory=dict)
    # what a recommender derives from the model once (by the recommender's key), not per step
    derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_arrays(
        cls, tracks: np.ndarray, embeddings: np.ndarray, catalog, meta: dict | None = None
    ) -> OnlineModel:
        """`catalog`: the service's `botify.catalog.Catalog` (ids are checked against it)."""
        catalog_size = len(catalog)
        tracks = np.asarray(tracks, dtype=np.int64)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != len(tracks) or not len(tracks):
            raise ModelError(f"embeddings {embeddings.shape} do not match {len(tracks)} tracks")
        if not np.isfinite(embeddings).all():
            raise ModelError("embeddings are not finite")
        if (
            tracks.min() < 0
            or tracks.max() >= catalog_size
            or len(np.unique(tracks)) != len(tracks)
        ):
            raise ModelError("model tracks must be distinct catalog track ids")
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        unit = embeddings / np.maximum(norms, 1e-12)
        row_of = np.full(catalog_size, -1, dtype=np.int32)
        row_of[tracks] = np.arange(len(tracks), dtype=np.int32)
        unit = np.ascontiguousarray(unit, dtype=np.float32)
        return cls(tracks, unit, row_of, catalog.artist_of[tracks], dict(meta or {}))

    def session_vector(self, tracks: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
        """CORE-ave's session representation, weighted: normalise(sum w_i * unit[item_i]) over
        the session's tracks the model knows; None when it knows none (or all weights are 0)."""
        rows = self.row_of[tracks]
        known = (rows >= 0) & (weights > 0)
        if not known.any():
            return None
        vector = weights[known].astype(np.float32) @ self.unit[rows[known]]
        norm = float(np.linalg.norm(vector))
        return None if norm == 0.0 else vector / norm


def pack(tracks: np.ndarray, embeddings: np.ndarray, meta: dict) -> dict[str, bytes]:
    """The Redis hash fields of a model (what `botify.deploy` writes)."""
    tracks_raw = np.asarray(tracks).astype(_U32).tobytes()
    emb = np.ascontiguousarray(embeddings, dtype=_F32)
    emb_raw = emb.tobytes()
    meta = {
        **meta,
        "format": FORMAT,
        "tracks": int(len(tracks)),
        "dim": int(emb.shape[1]),
        "sha256": hashlib.sha256(tracks_raw + emb_raw).hexdigest(),
    }
    return {"meta": json.dumps(meta).encode(), "tracks": tracks_raw, "embeddings": emb_raw}


def unpack(fields: dict[bytes, bytes], catalog) -> OnlineModel:
    """Check and decode the Redis hash of a model; raises ModelError saying why not."""
    try:
        meta = json.loads(fields[b"meta"])
        tracks_raw, emb_raw = fields[b"tracks"], fields[b"embeddings"]
    except (KeyError, ValueError) as error:
        raise ModelError(f"incomplete or unreadable model ({type(error).__name__})") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"not a {FORMAT} model")
    if hashlib.sha256(tracks_raw + emb_raw).hexdigest() != meta.get("sha256"):
        raise ModelError("sha256 mismatch: the model is corrupt")
    n, d = int(meta.get("tracks", -1)), int(meta.get("dim", -1))
    if n <= 0 or d <= 0 or len(tracks_raw) != 4 * n or len(emb_raw) != 4 * n * d:
        raise ModelError("model sizes do not match its description")
    tracks = np.frombuffer(tracks_raw, dtype=_U32).astype(np.int64)
    embeddings = np.frombuffer(emb_raw, dtype=_F32).reshape(n, d)
    return OnlineModel.from_arrays(tracks, embeddings, catalog, meta)


def model_key(prefix: str, name: str, version: str) -> str:
    return f"{prefix}:lists:{name}:{version}:model"


class ModelSource(Protocol):
    def get(self, name: str) -> OnlineModel | None:
        """The live model of list set `name`, or None (none deployed, or it failed to load)."""
        ...

    def status(self, name: str) -> dict[str, Any]:
        """For /ready: {"version", "loaded": bool, "reason"?}."""
        ...


class MemoryModels:
    """Fixed models by list set name (in-process runs and tests)."""

    def __init__(self, models: dict[str, OnlineModel] | None = None):
        self.models = dict(models or {})

    @classmethod
    def from_files(cls, paths: dict[str, Any], catalog) -> MemoryModels:
        """{name: item_embeddings.npz written by `python -m trainer recommend`}."""
        out = {}
        for name, path in paths.items():
            with np.load(path, allow_pickle=False) as npz:
                out[name] = OnlineModel.from_arrays(npz["tracks"], npz["embeddings"], catalog)
        return cls(out)

    def get(self, name: str) -> OnlineModel | None:
        return self.models.get(name)

    def status(self, name: str) -> dict[str, Any]:
        return {"version": "memory", "loaded": name in self.models}


class RedisModels:
    """Loads each list set's model once per active version (per process), from Redis.

    `state` is the service's `botify.user_state.RedisState`: its cached list pointers decide which
    version is live, so the model switches exactly when the lists do. A failed load is retried
    after `retry_after` seconds (a model written late, or Redis flaky), never per request.
    """

    def __init__(self, state, catalog, retry_after: float = 5.0):
        self.state = state
        self.catalog = catalog
        self.retry_after = retry_after
        self._loaded: dict[str, tuple[str, OnlineModel | None, str, float]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> OnlineModel | None:
        version = self.state.list_set(name).active_version()
        return None if version is None else self._held(name, version)[1]

    def _held(self, name: str, version: str) -> tuple[str, OnlineModel | None, str, float]:
        held = self._loaded.get(name)
        if not self._usable(held, version):
            with self._lock:  # one thread loads; the others wait, then use its result
                held = self._loaded.get(name)
                if not self._usable(held, version):
                    held = self._loaded[name] = self._load(name, version)
        assert held is not None
        return held

    def _usable(self, held, version: str) -> bool:
        """Loaded for this version, or failed recently enough not to retry yet."""
        if held is None or held[0] != version:
            return False
        return held[1] is not None or time.monotonic() - held[3] < self.retry_after

    def _load(self, name: str, version: str) -> tuple[str, OnlineModel | None, str, float]:
        key = model_key(self.state.prefix, name, version)
        try:
            fields = self.state.client.hgetall(key)
        except redis.RedisError:
            # Redis, not the model, failed: nothing to remember; the breaker paces the retries
            return version, None, "Redis unavailable", -float("inf")
        try:
            if not fields:
                raise ModelError(f"no model deployed with version {version}")
            model = unpack(fields, self.catalog)
        except ModelError as error:
            log.warning("list set %r version %s: model not loaded: %s", name, version, error)
            return version, None, str(error), time.monotonic()
        log.info(
            "list set %r version %s: model loaded (%d tracks)", name, version, len(model.tracks)
        )
        return version, model, "", time.monotonic()

    def status(self, name: str) -> dict[str, Any]:
        version = self.state.list_set(name).live_version()
        if version is None:
            return {"version": None, "loaded": False, "reason": "no active version"}
        held = self._held(name, version)
        out: dict[str, Any] = {"version": version, "loaded": held[1] is not None}
        if held[1] is None:
            out["reason"] = held[2]
        return out

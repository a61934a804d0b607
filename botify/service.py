"""What one replica serves: catalog, experiments, recommenders, Redis store and event log.

`Service` holds no per-user state (that lives in Redis), so replicas are interchangeable.
Redis faults never become 5xx: a recommender that needs Redis is skipped while the store's
breaker is open, and any Redis error mid-request is answered by the catalog-only fallback
recommender; the event then carries `"fallback": true`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import redis

from botify import recommenders
from botify.catalog import Catalog
from botify.events import EventLog
from botify.experiments import Experiments
from botify.recommenders import Context, Recommendation
from botify.store import CachedTopLists, RedisCursors, RedisStore

log = logging.getLogger(__name__)

_LIVE: weakref.WeakSet[Service] = weakref.WeakSet()


def _reseed_after_fork() -> None:
    # gunicorn forks workers from a preloaded app: without this every worker would draw the
    # same "random" tracks.
    for service in list(_LIVE):
        service.reseed()


os.register_at_fork(after_in_child=_reseed_after_fork)


class ReplayableRandom:
    """The recommenders' generator: shared by the worker's threads, unless a request brings its own
    seed (header `X-Botify-Seed`), in which case that request draws from a generator seeded with
    it. A client that sends seeds (the simulator does) gets replayable answers: the same requests
    get the same tracks in every run, whichever replica or thread serves them.
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self.shared = np.random.default_rng(seed)
        self._local = threading.local()

    def reseed_process(self) -> None:
        # gunicorn forks workers from a preloaded app: each worker gets its own stream.
        seq = np.random.SeedSequence(self.seed, spawn_key=(os.getpid(),))
        self.shared = np.random.Generator(np.random.PCG64(seq))

    def for_request(self, seed: int | None) -> None:
        self._local.generator = None if seed is None else np.random.Generator(np.random.PCG64(seed))

    def __getattr__(self, name: str):
        generator = getattr(self._local, "generator", None) or self.shared
        return getattr(generator, name)


class Service:
    def __init__(
        self,
        config: Mapping[str, Any],
        catalog: Catalog,
        experiments: Experiments,
        store: RedisStore,
        events: EventLog,
        catalog_fingerprint: Mapping[str, str | int] | None = None,
    ):
        self.catalog = catalog
        self.experiments = experiments
        self.store = store
        self.events = events
        self.replica = str(config["REPLICA"])
        self.max_user = int(config["MAX_USER"])
        self.max_body = int(config["MAX_BODY_BYTES"])
        self.seed = config.get("SEED")
        self.catalog_fingerprint = dict(catalog_fingerprint or {})
        prefix = store.prefix
        self.lists = {
            name: CachedTopLists(store.client, name, prefix, float(config["POINTER_CACHE_SECONDS"]))
            for name in sorted(experiments.list_sets())
        }
        self.ctx = Context(
            catalog=catalog,
            rng=ReplayableRandom(self.seed),
            lists=dict(self.lists),
            cursors=RedisCursors(store.client, prefix, int(config["CURSOR_TTL"])),
        )
        self.recommenders = {
            arm.name: recommenders.build(arm.recommender, self.ctx, **arm.params)
            for arm in experiments.routing.arms
        }
        for exp in experiments.experiments:  # arms of non-routing experiments must name real ones
            for arm in exp.arms:
                recommenders.get(arm.recommender)
        self.fallback = recommenders.build(str(config["FALLBACK"]), self.ctx)
        if self.fallback.uses_store:
            raise ValueError(f"fallback {config['FALLBACK']!r} must not need Redis")
        store.on_recovery.append(self._on_redis_recovery)
        _LIVE.add(self)

    def reseed(self) -> None:
        self.ctx.rng.reseed_process()

    # -- requests ------------------------------------------------------------------------------
    def next_track(
        self, user: int, track: int, played: float, seed: int | None = None
    ) -> tuple[int, bool, dict[str, str]]:
        """(recommended track, whether the fallback answered, the user's arms). With `seed`, every
        random draw of this request comes from a generator seeded with it (replayable)."""
        self.ctx.rng.for_request(seed)
        try:
            return self._next_track(user, track, played)
        finally:
            self.ctx.rng.for_request(None)

    def _next_track(self, user: int, track: int, played: float) -> tuple[int, bool, dict[str, str]]:
        arms = self.experiments.assign(user)
        recommender = self.recommenders[arms[self.experiments.route]]
        result: Recommendation | None = None
        if not recommender.uses_store:
            result = recommender.recommend(user, track, played)
        elif self.store.available():
            try:
                result = recommender.recommend(user, track, played)
                self.store.succeeded()
            except redis.RedisError as error:
                self._redis_failed(error)
        if result is None:
            result = Recommendation(self.fallback.recommend_next(user, track, played), True)
        return int(result.track), bool(result.fallback), arms

    def end_session(self, user: int) -> dict[str, str]:
        arms = self.experiments.assign(user)
        recommender = self.recommenders[arms[self.experiments.route]]
        if not recommender.uses_store:
            recommender.on_session_end(user)
        elif self.store.available():
            # A cursor left behind while Redis fails expires after CURSOR_TTL.
            try:
                recommender.on_session_end(user)
                self.store.succeeded()
            except redis.RedisError as error:
                self._redis_failed(error)
        return arms

    def log_event(
        self,
        message: str,
        start: float,
        user: int,
        track: int,
        played: float,
        recommendation: int | None,
        arms: dict[str, str],
        fallback: bool,
    ) -> None:
        self.events.write(
            {
                "message": message,
                "timestamp": int(time.time() * 1000),
                "user": user,
                "track": track,
                "time": played,
                "latency": time.perf_counter() - start,
                "recommendation": recommendation,
                "experiments": arms,
                "replica": self.replica,
                "fallback": fallback,
            }
        )

    def _redis_failed(self, error: Exception) -> None:
        if self.store.available():  # log once per outage window, not once per request
            log.warning("Redis failed (%s): answering from %s", error, self.fallback.name)
        self.store.failed()

    # -- readiness and what the service owns -----------------------------------------------------
    def refill(self) -> bool:
        """Write the catalog fingerprint if Redis lost it. True when something was written."""
        if not self.catalog_fingerprint or self.store.client.exists(self.store.catalog_key):
            return False
        self.store.write_catalog_fingerprint(self.catalog_fingerprint)
        return True

    def _on_redis_recovery(self) -> None:
        for lists in self.lists.values():
            lists.forget()  # the pointer may have changed (or vanished) while Redis was away
        if self.refill():
            log.warning("Redis came back without the catalog fingerprint: refilled")

    def readiness(self) -> dict[str, Any]:
        reasons: list[str] = []
        report: dict[str, Any] = {"replica": self.replica, "lists": {}}
        try:
            self.store.client.ping()
            report["refilled"] = self.refill()
            stored = self.store.read_catalog_fingerprint()
            ours = {k: str(v) for k, v in self.catalog_fingerprint.items()}
            if ours and stored != ours:
                reasons.append(f"Redis holds another catalog ({stored}) than this replica ({ours})")
            for name, lists in self.lists.items():
                version = super(CachedTopLists, lists).active_version()  # uncached
                users = int(lists.versions().get(version, {}).get("users", 0)) if version else 0
                report["lists"][name] = {"active": version, "users": users}
                if version is None:
                    reasons.append(f"list set {name!r} has no active version")
                elif users == 0:
                    reasons.append(f"list set {name!r} version {version} has no users")
            self.store.succeeded()
        except redis.RedisError as error:
            self.store.failed()
            reasons.append(f"Redis unavailable: {error}")
        report["ready"] = not reasons
        report["reasons"] = reasons
        return report

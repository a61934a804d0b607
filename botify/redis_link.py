"""The service's Redis connection and its health: one owner for the client, the breaker and the
keys the service itself owns. What recommenders read and move lives in `botify.user_state`.

- `RedisLink` owns the pooled client (short timeouts, one quick retry on a dead pooled
  connection) and a small circuit breaker: after an error the service answers from the
  catalog-only fallback for `REDIS_RETRY_AFTER` seconds, then tries Redis again, so a dead Redis
  costs no timeouts per request and a returning one is used again within a second.
- What the service owns in Redis and refills when Redis comes back empty: the catalog
  fingerprint `{prefix}:catalog` (size and digest of the catalog this replica serves), which
  readiness and the trainer can compare against. Lists belong to the trainer; cursors and
  sessions are per-session state whose loss only restarts sessions.
- `client_for(settings)`: every Botify process (service, trainer deploy, keeper) gets its client
  here, from the one `botify.settings.Settings` (URL, password); `connect(url, password)` is the
  same for a bare URL. A `redis+cluster://host:port` URL (`rediss+cluster://` with TLS) gives a
  Redis Cluster client that discovers the other nodes from that one; every key Botify reads
  together shares a hash tag, and SCAN and multi-key DEL go to every primary. A cluster client
  connects when it is built. The password stays out of URLs, which get printed and logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from botify.settings import ENV_PREFIX, Settings

log = logging.getLogger(__name__)

PASSWORD_ENV = ENV_PREFIX + "REDIS_PASSWORD"  # Settings.redis_password's variable
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def connect(url: str, password: str | None = None, **options) -> redis.Redis | RedisCluster:
    """A client for `url`: plain Redis, or Redis Cluster for a `redis+cluster://` URL, with
    `password` when the URL has none (passwords stay out of URLs, which get printed)."""
    password = password or None
    scheme, sep, rest = url.partition("://")
    if sep and scheme in CLUSTER_SCHEMES:
        return RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}://{rest}", password=password,
                                     **options)  # fmt: skip
    return redis.Redis.from_url(url, password=password, **options)


def client_for(settings: Settings, **options) -> redis.Redis | RedisCluster:
    """A client of the settings' Redis (`redis_url`, `redis_password`)."""
    return connect(settings.redis_url, settings.redis_password, **options)


class RedisLink:
    """The service's Redis: one pooled client per process, its health and the keys it owns."""

    def __init__(self, settings: Settings):
        self.url = settings.redis_url
        self.prefix = settings.key_prefix
        self.retry_after = settings.redis_retry_after
        self._failed_at: float | None = None  # last error: the breaker waits retry_after from it
        self._down_since: float | None = None  # first error of the current outage
        self._lock = threading.Lock()
        # redis-py's pool notices a fork and reconnects in the child, so a client built before
        # gunicorn forks (preload_app) is safe; one retry replaces a stale pooled connection after
        # a Redis restart instead of failing the request.
        self.client = client_for(
            settings,
            socket_timeout=settings.redis_socket_timeout,
            socket_connect_timeout=settings.redis_connect_timeout,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        self.on_recovery: list[
            Callable[[], None]
        ] = []  # run (best effort) when Redis answers again

    @property
    def catalog_key(self) -> str:
        return f"{self.prefix}:catalog"

    # -- circuit breaker ------------------------------------------------------------------------
    def available(self) -> bool:
        """False while the last error is fresher than `retry_after` (answer from the fallback)."""
        failed_at = self._failed_at
        return failed_at is None or time.monotonic() - failed_at >= self.retry_after

    def failed(self, error: BaseException | None = None) -> None:
        """Open the breaker; the first failure of an outage logs one warning."""
        now = time.monotonic()
        with self._lock:
            starting = self._down_since is None
            self._failed_at = now
            if starting:
                self._down_since = now
        if starting:
            log.warning(
                "Redis unavailable (%s): serving the catalog-only fallback until it answers",
                type(error).__name__ if error is not None else "error",
            )

    def succeeded(self) -> None:
        """Close the breaker; the end of an outage logs one warning and runs `on_recovery`."""
        if self._down_since is None:
            return
        with self._lock:
            since = self._down_since
            if since is None:
                return
            self._failed_at = self._down_since = None
        log.warning("Redis answers again after %.1f s", time.monotonic() - since)
        for callback in self.on_recovery:
            try:
                callback()
            except redis.RedisError as error:
                self.failed(error)
                return

    # -- what the service owns ------------------------------------------------------------------
    def write_catalog_fingerprint(self, fingerprint: Mapping[str, str | int]) -> None:
        fields: dict[Any, Any] = dict(fingerprint)
        self.client.hset(self.catalog_key, mapping=fields)

    def read_catalog_fingerprint(self) -> dict[str, str]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.catalog_key)  # type: ignore[assignment]
        return {k.decode(): v.decode() for k, v in raw.items()}

    def close(self) -> None:
        self.client.close()

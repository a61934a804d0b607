"""Recommendation lists -> a new Redis version, counted, switched on atomically; and rollback.

Uses botify.toplists.TopLists, the same class the service reads with, so both sides agree on keys
and packing. Versions are ordered by their creation time; the newest `keep` stay, older ones are
deleted (never the active one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import redis

from botify.toplists import TopLists


class DeployError(RuntimeError):
    """A list file or a Redis state that must not go live."""


@dataclass(frozen=True)
class Switch:
    active: str
    previous: str | None
    users: int = 0
    deleted: tuple[str, ...] = ()


def read_recs(path: str | Path) -> list[tuple[int, list[int]]]:
    """Parse and check a whole `{"user", "tracks"}` JSON-lines file before anything is written."""
    lists: list[tuple[int, list[int]]] = []
    seen: set[int] = set()
    with Path(path).open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                user, tracks = row["user"], row["tracks"]
            except (ValueError, KeyError, TypeError) as exc:
                raise DeployError(f"{path}:{n}: not a {{'user', 'tracks'}} JSON object") from exc
            ok_user = isinstance(user, int) and not isinstance(user, bool) and user >= 0
            ok_tracks = isinstance(tracks, list) and all(
                isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**32 for t in tracks
            )
            if not (ok_user and ok_tracks):
                raise DeployError(f"{path}:{n}: user must be an int >= 0, tracks a list of ints")
            if user in seen:
                raise DeployError(f"{path}:{n}: user {user} listed twice")
            seen.add(user)
            lists.append((user, tracks))
    if not lists:
        raise DeployError(f"{path}: no lists; refusing to deploy an empty version")
    return lists


def deploy(
    client: redis.Redis, lists: list[tuple[int, list[int]]], name: str = "core", keep: int = 3,
    meta: dict | None = None,
) -> Switch:  # fmt: skip
    """Write a new version, check its count by SCAN, activate it, prune versions beyond `keep`.

    Each version records the one it replaced (`replaces`), so rollback undoes the last switch.
    """
    top = TopLists(client, name)
    replaces = top.active_version()
    version, written = top.write(lists, meta={**(meta or {}), "replaces": replaces})
    found = top.count(version)
    if found != len(lists) or written != len(lists):
        top.delete(version)
        raise DeployError(
            f"version {version}: {found} lists in Redis, expected {len(lists)}; not activated"
        )
    previous = top.activate(version)
    if previous != replaces:  # another deploy switched in between: record the truth
        _set_replaces(top, version, previous)
    # the previous version always survives, so a rollback right after a deploy works
    older = list(top.versions())[: -max(keep, 2)]
    deleted = tuple(v for v in older if v not in (version, previous))
    for old in deleted:
        top.delete(old)
    return Switch(active=version, previous=previous, users=found, deleted=deleted)


def rollback(client: redis.Redis, name: str = "core") -> Switch:
    """Re-activate the version the active one replaced (undo the last deploy or rollback)."""
    top = TopLists(client, name)
    active = top.active_version()
    versions = top.versions()
    if active is None or active not in versions:
        raise DeployError(f"list set {name!r} has no active version to roll back from")
    target = versions[active].get("replaces")
    if target is None:
        raise DeployError(f"list set {name!r}: {active} replaced nothing; nothing to roll back to")
    if target not in versions:
        raise DeployError(f"list set {name!r}: {target}, replaced by {active}, was pruned")
    top.activate(target)
    return Switch(active=target, previous=active, users=top.count(target))


def _set_replaces(top: TopLists, version: str, previous: str | None) -> None:
    info = top.versions()[version]
    top.client.hset(top.versions_key, version, json.dumps({**info, "replaces": previous}))

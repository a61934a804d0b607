"""Going live: lists (user lists or item-keyed lists, and an online model) -> a new Redis version,
counted, switched on atomically; and rollback.

Used by `python -m trainer deploy|rollback` and by the keeper (`python -m ops.keeper`, through
`ops.journal.restore`), through `botify.toplists.TopLists`, the class the service reads with, so
both sides agree on keys and packing. Versions are ordered by their creation time; the newest
`keep` stay, older ones are deleted (never the active one, never the one it replaced).

A deploy may be recorded in a journal (`Recorder`; the one implementation is
`ops.journal.Journal`, the durable copy an emptied Redis is restored from): the version's
artefacts before the switch, the active version after it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from botify import item_lists as item_lists_module
from botify import online_model
from botify.item_lists import ItemListError, ItemLists, read_item_list_file
from botify.toplists import Client, ListFileError, TopLists, read_list_file


class DeployError(RuntimeError):
    """A list file, model or Redis state that must not go live."""


class Recorder(Protocol):
    """Where a deploy is recorded besides Redis (`ops.journal.Journal`)."""

    def record(
        self,
        name: str,
        version: str,
        lists: Sequence[tuple[int, Sequence[int]]],
        model: tuple[np.ndarray, np.ndarray, dict] | None,
        info: dict,
        items: ItemLists | None = None,
    ) -> None:
        """Keep the version's artefacts (before it is switched on)."""
        ...

    def activate(self, name: str, version: str) -> None:
        """Remember `version` as the active one of list set `name` (after the switch)."""
        ...


@dataclass(frozen=True)
class Switch:
    active: str
    previous: str | None
    users: int = 0
    deleted: tuple[str, ...] = ()
    model: bool = False
    items: int = 0  # items with an item-keyed list in the version


def read_lists(path: str | Path) -> list[tuple[int, list[int]]]:
    """The whole list file, checked before anything is written; refuses an empty one."""
    try:
        lists = read_list_file(path)
    except ListFileError as error:
        raise DeployError(str(error)) from error
    if not lists:
        raise DeployError(f"{path}: no lists; refusing to deploy an empty version")
    return lists


def read_items(path: str | Path) -> ItemLists:
    """The whole item-list file (the course's 2026 format), checked; refuses an empty one."""
    try:
        lists = read_item_list_file(path)
    except ItemListError as error:
        raise DeployError(str(error)) from error
    if not len(lists):
        raise DeployError(f"{path}: no item lists; refusing to deploy an empty version")
    return lists


def read_model(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(tracks, embeddings, meta) from a model's `item_embeddings.npz` (allow_pickle=False)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            tracks, embeddings = npz["tracks"], npz["embeddings"]
            meta = {"temperature": float(npz["temperature"])} if "temperature" in npz else {}
    except (OSError, ValueError, KeyError) as error:
        raise DeployError(f"{path}: not a readable model ({error})") from error
    if embeddings.ndim != 2 or len(tracks) != len(embeddings) or not len(tracks):
        raise DeployError(
            f"{path}: embeddings {embeddings.shape} do not match {len(tracks)} tracks"
        )
    return tracks, embeddings, {"kind": "core-ave", **meta}


def deploy(
    client: Client,
    lists: Sequence[tuple[int, Sequence[int]]],
    name: str = "core",
    *,
    prefix: str,
    keep: int = 3,
    meta: dict | None = None,
    model: tuple[np.ndarray, np.ndarray, dict] | None = None,
    journal: Recorder | None = None,
    version: str | None = None,
    items: ItemLists | None = None,
) -> Switch:
    """Write a new version of list set `name` under the key prefix `prefix` (the settings'
    `key_prefix`: the service's): user lists and/or item lists, and the model if given; check
    its count by SCAN, activate it, record it in the journal, prune versions beyond `keep`.

    Each version records the one it replaced (`replaces`), so rollback undoes the last switch.
    """
    if not lists and (items is None or not len(items)):
        raise DeployError(f"list set {name!r}: nothing to deploy (no user lists, no item lists)")
    top = TopLists(client, name, prefix)
    replaces = top.active_version()
    info = {**(meta or {}), "replaces": replaces, "model": model is not None}
    if items is not None:
        info["items"] = len(items)
    version, written = top.write(lists, version=version, meta=info)
    if model is not None:
        tracks, embeddings, model_meta = model
        fields: dict[Any, Any] = dict(online_model.pack(tracks, embeddings, model_meta))
        client.hset(online_model.model_key(top.prefix, name, version), mapping=fields)
    items_ok = True
    if items is not None:
        key = item_lists_module.items_key(top.prefix, name, version)
        packed: dict[Any, Any] = dict(item_lists_module.pack(items))
        client.hset(key, mapping=packed)
        items_ok = client.hget(key, "meta") == packed["meta"]
    found = top.count(version)
    if found != len(lists) or written != len(lists) or not items_ok:
        top.delete(version)
        raise DeployError(
            f"version {version}: {found} lists in Redis, expected {len(lists)}"
            f"{'' if items_ok else '; item lists missing'}; not activated"
        )
    if journal is not None:
        journal.record(name, version, lists, model, top.versions()[version], items=items)
    previous = top.activate(version)
    if journal is not None:
        journal.activate(name, version)
    if previous != replaces:  # another deploy switched in between: record the truth
        _set_replaces(top, version, previous)
    # the previous version always survives, so a rollback right after a deploy works
    older = list(top.versions())[: -max(keep, 2)]
    deleted = tuple(v for v in older if v not in (version, previous))
    for old in deleted:
        top.delete(old)
    return Switch(
        active=version, previous=previous, users=found, deleted=deleted, model=model is not None,
        items=0 if items is None else len(items),
    )  # fmt: skip


def rollback(
    client: Client, name: str = "core", *, prefix: str, journal: Recorder | None = None
) -> Switch:
    """Re-activate the version the active one replaced (undo the last deploy or rollback)."""
    top = TopLists(client, name, prefix)
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
    if journal is not None:
        journal.activate(name, target)
    return Switch(active=target, previous=active, users=top.count(target))


def _set_replaces(top: TopLists, version: str, previous: str | None) -> None:
    info = top.versions()[version]
    top.client.hset(top.versions_key, version, json.dumps({**info, "replaces": previous}))

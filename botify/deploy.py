"""Going live: lists (and an online model) -> a new Redis version, counted, switched on atomically;
rollback; and the deploy journal that lets an emptied Redis get its live version back.

Used by `python -m trainer deploy|rollback` and by the keeper (`python -m botify.keeper`), through
`botify.toplists.TopLists`, the class the service reads with, so both sides agree on keys and
packing. Versions are ordered by their creation time; the newest `keep` stay, older ones are
deleted (never the active one, never the one it replaced).

The journal (a folder, optional): every deployed version's artefacts as plain files, and which
version is active, per list set:

    <journal>/<name>/<version>/lists.jsonl   the list file (DESIGN.md format)
    <journal>/<name>/<version>/model.npz     the online model's arrays (when one was deployed)
    <journal>/<name>/<version>/meta.json     the version's metadata as deployed
    <journal>/<name>/ACTIVE                  the active version's name (rewritten atomically)

Redis may be emptied (a restart without persistence, a FLUSHALL); `restore` rewrites the active
version from the journal under its own name and switches it on, so replicas serve the same lists
and model as before. The journal is the durable copy; Redis is a cache of it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from botify import models
from botify.toplists import Client, ListFileError, TopLists, read_list_file


class DeployError(RuntimeError):
    """A list file, model or Redis state that must not go live."""


@dataclass(frozen=True)
class Switch:
    active: str
    previous: str | None
    users: int = 0
    deleted: tuple[str, ...] = ()
    model: bool = False


def read_lists(path: str | Path) -> list[tuple[int, list[int]]]:
    """The whole list file, checked before anything is written; refuses an empty one."""
    try:
        lists = read_list_file(path)
    except ListFileError as error:
        raise DeployError(str(error)) from error
    if not lists:
        raise DeployError(f"{path}: no lists; refusing to deploy an empty version")
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
    keep: int = 3,
    meta: dict | None = None,
    model: tuple[np.ndarray, np.ndarray, dict] | None = None,
    journal: str | Path | None = None,
    version: str | None = None,
) -> Switch:
    """Write a new version (lists, and the model if given), check its count by SCAN, activate
    it, record it in the journal, prune versions beyond `keep`.

    Each version records the one it replaced (`replaces`), so rollback undoes the last switch.
    """
    top = TopLists(client, name)
    replaces = top.active_version()
    info = {**(meta or {}), "replaces": replaces, "model": model is not None}
    version, written = top.write(lists, version=version, meta=info)
    if model is not None:
        tracks, embeddings, model_meta = model
        fields: dict[Any, Any] = dict(models.pack(tracks, embeddings, model_meta))
        client.hset(models.model_key(top.prefix, name, version), mapping=fields)
    found = top.count(version)
    if found != len(lists) or written != len(lists):
        top.delete(version)
        raise DeployError(
            f"version {version}: {found} lists in Redis, expected {len(lists)}; not activated"
        )
    if journal is not None:
        _journal_write(Path(journal), name, version, lists, model, top.versions()[version])
    previous = top.activate(version)
    if journal is not None:
        _journal_activate(Path(journal), name, version)
    if previous != replaces:  # another deploy switched in between: record the truth
        _set_replaces(top, version, previous)
    # the previous version always survives, so a rollback right after a deploy works
    older = list(top.versions())[: -max(keep, 2)]
    deleted = tuple(v for v in older if v not in (version, previous))
    for old in deleted:
        top.delete(old)
    return Switch(
        active=version, previous=previous, users=found, deleted=deleted, model=model is not None
    )


def rollback(client: Client, name: str = "core", journal: str | Path | None = None) -> Switch:
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
    if journal is not None:
        _journal_activate(Path(journal), name, target)
    return Switch(active=target, previous=active, users=top.count(target))


def restore(client: Client, journal: str | Path, name: str = "core") -> Switch | None:
    """If Redis lacks the journal's active version of `name` (or any active version), rewrite it
    from the journal under the same version and switch it on. None when nothing was needed (or
    the journal has no active version)."""
    journal = Path(journal)
    try:
        version = (journal / name / "ACTIVE").read_text().strip()
    except FileNotFoundError:
        return None
    top = TopLists(client, name)
    active = top.active_version()
    if active == version and version in top.versions():
        return None
    if active is not None and active != version and active in top.versions():
        return None  # someone switched Redis on purpose (e.g. a deploy without the journal)
    folder = journal / name / version
    lists = read_lists(folder / "lists.jsonl")
    model = read_model(folder / "model.npz") if (folder / "model.npz").exists() else None
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").exists() else {}
    if version in top.versions():  # a half-written leftover: start clean
        client.hdel(top.versions_key, version)
    meta = {k: v for k, v in meta.items() if k not in ("users", "created", "model")}
    switch = deploy(client, lists, name, keep=max(2, len(top.versions()) + 1), meta={
        **meta, "restored": True}, model=model, version=version)  # fmt: skip
    return switch


# -- the journal ---------------------------------------------------------------------------------
def _journal_write(journal, name, version, lists, model, info) -> None:
    folder = journal / name / version
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=_ensure(journal / name)))
    try:
        # mkdtemp makes it 0700; the keeper may run as another user (compose: the service's)
        staging.chmod(0o755)
        with open(staging / "lists.jsonl", "w", encoding="utf-8") as f:
            for user, tracks in lists:
                f.write(json.dumps({"user": int(user), "tracks": [int(t) for t in tracks]}) + "\n")
        if model is not None:
            tracks, embeddings, model_meta = model
            np.savez(staging / "model.npz", tracks=np.asarray(tracks), embeddings=np.asarray(
                embeddings, dtype=np.float32), **{k: np.asarray(v) for k, v in model_meta.items()
                                                  if isinstance(v, int | float)})  # fmt: skip
        (staging / "meta.json").write_text(json.dumps(info))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _journal_activate(journal: Path, name: str, version: str) -> None:
    pointer = _ensure(journal / name) / "ACTIVE"
    tmp = pointer.with_name(f".ACTIVE.{os.getpid()}")
    tmp.write_text(version + "\n")
    os.replace(tmp, pointer)


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _set_replaces(top: TopLists, version: str, previous: str | None) -> None:
    info = top.versions()[version]
    top.client.hset(top.versions_key, version, json.dumps({**info, "replaces": previous}))

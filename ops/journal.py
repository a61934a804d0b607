"""The deploy journal: the durable copy of every deployed version, from which an emptied Redis
gets its live version back.

A folder, per list set: every deployed version's artefacts as plain files, and which version is
active:

    <journal>/<name>/<version>/lists.jsonl   the list file (DESIGN.md format)
    <journal>/<name>/<version>/model.npz     the online model's arrays (when one was deployed)
    <journal>/<name>/<version>/items.jsonl   the item-keyed lists (the course's 2026 format), if any
    <journal>/<name>/<version>/meta.json     the version's metadata as deployed
    <journal>/<name>/ACTIVE                  the active version's name (rewritten atomically)

`Journal` is what `botify.deploy.deploy` and `rollback` record into (their `Recorder`). Redis may
be emptied (a restart without persistence, a FLUSHALL); `restore` rewrites the active version
from the journal under its own name and switches it on, so replicas serve the same lists and
model as before. The journal is the durable copy; Redis is a cache of it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from botify.deploy import Switch, deploy, read_items, read_lists, read_model
from botify.item_lists import ItemLists, write_item_list_file
from botify.toplists import Client, TopLists


class Journal:
    """A deploy journal folder (`botify.deploy.Recorder`)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def record(
        self,
        name: str,
        version: str,
        lists: Sequence[tuple[int, Sequence[int]]],
        model: tuple[np.ndarray, np.ndarray, dict] | None,
        info: dict,
        items: ItemLists | None = None,
    ) -> None:
        folder = self.root / name / version
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=_ensure(self.root / name)))
        try:
            # mkdtemp makes it 0700; the keeper may run as another user (compose: the service's)
            staging.chmod(0o755)
            with open(staging / "lists.jsonl", "w", encoding="utf-8") as f:
                for user, tracks in lists:
                    f.write(
                        json.dumps({"user": int(user), "tracks": [int(t) for t in tracks]}) + "\n"
                    )
            if model is not None:
                model_tracks, embeddings, model_meta = model
                scalars = {
                    k: np.asarray(v) for k, v in model_meta.items() if isinstance(v, int | float)
                }
                np.savez(staging / "model.npz", tracks=np.asarray(model_tracks),
                         embeddings=np.asarray(embeddings, dtype=np.float32), **scalars)  # fmt: skip
            if items is not None:
                write_item_list_file(staging / "items.jsonl", items.rows())
            (staging / "meta.json").write_text(json.dumps(info))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def activate(self, name: str, version: str) -> None:
        pointer = _ensure(self.root / name) / "ACTIVE"
        tmp = pointer.with_name(f".ACTIVE.{os.getpid()}")
        tmp.write_text(version + "\n")
        os.replace(tmp, pointer)

    def names(self) -> list[str]:
        """The list sets with an active version in the journal."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/ACTIVE"))

    def active(self, name: str) -> str | None:
        """The version the journal holds as active for `name`, or None."""
        try:
            return (self.root / name / "ACTIVE").read_text().strip()
        except FileNotFoundError:
            return None


def restore(
    client: Client, journal: str | os.PathLike, name: str = "core", *, prefix: str
) -> Switch | None:
    """If Redis lacks the journal's active version of `name` (or any active version) under the
    key prefix `prefix`, rewrite it from the journal under the same version and switch it on.
    None when nothing was needed (or the journal has no active version)."""
    root = Path(journal)
    version = Journal(root).active(name)
    if version is None:
        return None
    top = TopLists(client, name, prefix)
    active = top.active_version()
    if active == version and version in top.versions():
        return None
    if active is not None and active != version and active in top.versions():
        return None  # someone switched Redis on purpose (e.g. a deploy without the journal)
    folder = root / name / version
    has_users = (folder / "lists.jsonl").exists() and (folder / "lists.jsonl").stat().st_size > 0
    lists = read_lists(folder / "lists.jsonl") if has_users else []
    items = read_items(folder / "items.jsonl") if (folder / "items.jsonl").exists() else None
    model = read_model(folder / "model.npz") if (folder / "model.npz").exists() else None
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").exists() else {}
    if version in top.versions():  # a half-written leftover: start clean
        client.hdel(top.versions_key, version)
    meta = {k: v for k, v in meta.items() if k not in ("users", "created", "model", "items")}
    switch = deploy(client, lists, name, prefix=prefix, keep=max(2, len(top.versions()) + 1),
                    meta={**meta, "restored": True}, model=model, version=version,
                    items=items)  # fmt: skip
    return switch


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder

"""The trainer's way to go live: `botify.deploy` (the lists contract the service reads with),
recorded in the deploy journal (`ops.journal`) when a journal folder is given. The keeper, which
runs without the trainer's dependencies, restores from the same journal."""

from __future__ import annotations

import os

from botify import deploy as lists_deploy
from botify.deploy import DeployError, Switch, read_items, read_lists, read_model
from botify.toplists import Client
from ops.journal import Journal

read_recs = read_lists


def deploy(client: Client, lists, *, journal: str | os.PathLike | None = None, **options) -> Switch:
    """`botify.deploy.deploy`, recorded in the journal folder `journal` when given."""
    return lists_deploy.deploy(client, lists, journal=_journal(journal), **options)


def rollback(client: Client, *, journal: str | os.PathLike | None = None, **options) -> Switch:
    """`botify.deploy.rollback`, recorded in the journal folder `journal` when given."""
    return lists_deploy.rollback(client, journal=_journal(journal), **options)


def _journal(folder: str | os.PathLike | None) -> Journal | None:
    return None if folder is None else Journal(folder)


__all__ = [
    "DeployError",
    "Switch",
    "deploy",
    "read_items",
    "read_lists",
    "read_model",
    "read_recs",
    "rollback",
]

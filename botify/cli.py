"""Flask commands: `flask --app botify.app <command>` (configured like the service itself)."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


def _service():
    return current_app.extensions["botify"]


@click.command("load-catalog")
@with_appcontext
def load_catalog() -> None:
    """Write this catalog's fingerprint to Redis (what readiness compares against)."""
    service = _service()
    service.redis_link.write_catalog_fingerprint(service.catalog_fingerprint)
    click.echo(json.dumps(service.catalog_fingerprint))


@click.command("ready")
@with_appcontext
def ready() -> None:
    """Print the readiness report; exit 1 when not ready."""
    report = _service().readiness()
    click.echo(json.dumps(report, indent=2))
    sys.exit(0 if report["ready"] else 1)


@click.command("assign")
@click.argument("users", nargs=-1, type=click.IntRange(min=0), required=True)
@with_appcontext
def assign(users: tuple[int, ...]) -> None:
    """Print each user's arm in every experiment, one JSON line per user."""
    experiments = _service().experiments
    for user in users:
        click.echo(json.dumps({"user": user, "experiments": experiments.assign(user)}))


def register_commands(app: Flask) -> None:
    for command in (load_catalog, ready, assign):
        app.cli.add_command(command)

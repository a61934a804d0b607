"""The application factory: `create_app(config=None)`; gunicorn serves `'botify.app:create_app()'`.

Configuration, later wins: `botify.settings.DEFAULTS`, the file named by `BOTIFY_CONFIG` (JSON or
YAML), `BOTIFY_*` environment variables, then `config` (a mapping, used by tests). The catalog is
loaded here, once: with gunicorn's `preload_app` the forked workers share it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, jsonify
from flask_restful import Api
from werkzeug.exceptions import HTTPException

from botify import settings
from botify.api import add_resources
from botify.catalog import Catalog
from botify.event_log import EventLog
from botify.experiments import Experiments
from botify.item_lists import RedisItemLists
from botify.online_model import RedisModels
from botify.redis_link import RedisLink
from botify.service import Service
from botify.user_state import RedisState


def catalog_fingerprint(path: str | os.PathLike, catalog: Catalog) -> dict[str, str | int]:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return {"tracks": len(catalog), "artists": len(catalog.artist_names), "digest": digest}


def load_config(app: Flask, config: Mapping[str, Any] | None) -> None:
    app.config.from_mapping(settings.DEFAULTS)
    config_file = os.environ.get("BOTIFY_CONFIG")
    if config_file:
        app.config.from_mapping(settings.read_file(config_file))
    app.config.from_prefixed_env("BOTIFY")
    if config:
        app.config.from_mapping(settings.unprefixed(config))
    settings.normalize(app.config)
    # One byte more than allowed, so a chunked body that is too long is seen as too long.
    largest = max(int(app.config["MAX_BODY_BYTES"]), int(app.config["MAX_BATCH_BYTES"]))
    app.config["MAX_CONTENT_LENGTH"] = largest + 1
    app.config["ERROR_404_HELP"] = False  # flask-restful: no "did you mean" prose in messages
    # OPTIONS is not part of the API: 405 with Allow, like any other method a route lacks.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)  # no /static route: the service has no files
    load_config(app, config)
    if not app.logger.handlers or app.logger.level == logging.NOTSET:
        app.logger.setLevel(logging.INFO)

    catalog_path = app.config["CATALOG"]
    if not Path(catalog_path).is_file():
        raise FileNotFoundError(f"catalog {catalog_path!r} not found (set BOTIFY_CATALOG)")
    catalog = Catalog.from_tracks_json(catalog_path)
    link = RedisLink(
        app.config["REDIS_URL"],
        prefix=app.config["KEY_PREFIX"],
        socket_timeout=float(app.config["REDIS_SOCKET_TIMEOUT"]),
        connect_timeout=float(app.config["REDIS_CONNECT_TIMEOUT"]),
        retry_after=float(app.config["REDIS_RETRY_AFTER"]),
        password=app.config.get("REDIS_PASSWORD"),
    )
    state = RedisState(
        link.client,
        prefix=link.prefix,
        cursor_ttl=int(app.config["CURSOR_TTL"]),
        session_length=int(app.config["SESSION_LENGTH"]),
        session_ttl=int(app.config["SESSION_TTL"]),
        pointer_max_age=float(app.config["POINTER_CACHE_SECONDS"]),
        history_length=int(app.config["HISTORY_LENGTH"]),
        history_ttl=int(app.config["HISTORY_TTL"]),
    )
    service = Service(
        app.config,
        catalog,
        Experiments.from_file(app.config["EXPERIMENTS"]),
        state,
        events=EventLog(app.config["LOG_DIR"], int(app.config["LOG_MAX_BYTES"])),
        redis_link=link,
        catalog_fingerprint=catalog_fingerprint(catalog_path, catalog),
        models=RedisModels(state, catalog),
        item_lists=RedisItemLists(state, len(catalog)),
    )
    app.extensions["botify"] = service

    add_resources(Api(app), service)

    @app.errorhandler(HTTPException)
    def json_error(error: HTTPException):
        # Routes outside flask-restful (unknown paths, bad methods) answer JSON too.
        response = jsonify(message=error.description)
        response.headers.extend(
            (name, value) for name, value in error.get_headers() if name.lower() == "allow"
        )
        return response, error.code

    from botify.cli import register_commands

    register_commands(app)
    return app

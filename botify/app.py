"""The application factory: `create_app(config=None)`; gunicorn serves `'botify.app:create_app()'`.

Configuration: `botify.settings.Settings.load(config)`: defaults, the file named by
`BOTIFY_CONFIG` (JSON or YAML), `BOTIFY_*` environment variables, then `config` (a mapping, used
by tests); later wins. The settings are built once here and handed to the Redis link, the state,
the lists and the service (`app.extensions["botify"].settings`). The catalog is loaded here, once:
with gunicorn's `preload_app` the forked workers share it.
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

from botify.api import add_resources
from botify.catalog import Catalog
from botify.event_log import EventLog
from botify.experiments import Experiments
from botify.item_lists import RedisItemLists
from botify.online_model import RedisModels
from botify.redis_link import RedisLink
from botify.service import Service
from botify.settings import Settings
from botify.user_state import RedisState


def catalog_fingerprint(path: str | os.PathLike, catalog: Catalog) -> dict[str, str | int]:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return {"tracks": len(catalog), "artists": len(catalog.artist_names), "digest": digest}


def configure_flask(app: Flask, settings: Settings) -> None:
    """Flask's own keys (the service's settings stay in `Settings`)."""
    # One byte more than allowed, so a chunked body that is too long is seen as too long.
    app.config["MAX_CONTENT_LENGTH"] = max(settings.max_body_bytes, settings.max_batch_bytes) + 1
    app.config["ERROR_404_HELP"] = False  # flask-restful: no "did you mean" prose in messages
    # OPTIONS is not part of the API: 405 with Allow, like any other method a route lacks.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """The service's Flask app; `config` is a `Settings` or overrides for `Settings.load`."""
    settings = config if isinstance(config, Settings) else Settings.load(config)
    app = Flask(__name__, static_folder=None)  # no /static route: the service has no files
    configure_flask(app, settings)
    if not app.logger.handlers or app.logger.level == logging.NOTSET:
        app.logger.setLevel(logging.INFO)

    if not Path(settings.catalog).is_file():
        raise FileNotFoundError(f"catalog {settings.catalog!r} not found (set BOTIFY_CATALOG)")
    catalog = Catalog.from_tracks_json(settings.catalog)
    link = RedisLink(settings)
    state = RedisState(link.client, settings)
    service = Service(
        settings,
        catalog,
        Experiments.from_file(settings.experiments),
        state,
        events=EventLog(settings.log_dir, settings.log_max_bytes),
        redis_link=link,
        catalog_fingerprint=catalog_fingerprint(settings.catalog, catalog),
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

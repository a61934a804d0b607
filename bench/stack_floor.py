"""Peers for bench_service.py: the same stack serving apps that do (almost) nothing.

They run under the same gunicorn policy (ops/gunicorn_conf.py), the same nginx.conf and the
same wrk load as the service, so their throughput is the ceiling the stack itself puts on any
app on this machine, and the service's share of it says what is left to win inside the app.

- `bare_wsgi`: a plain WSGI function that reads the body and answers a constant JSON object
  (no framework, no validation, no Redis, no event log).
- `flask_echo()`: Flask + flask-restful, as the service: parses the JSON body and echoes the track
  back (no validation, no Redis, no event log).
- `flask_redis()`: the same plus one Redis round trip per request (a GET of the user's key, with
  the service's client, `botify.redis_link.connect`): the floor for an arm that reads Redis, as the
  list arms do once per request.

Both answer `GET /health` (the stack waits for it) and `POST /next/<user>`.
"""

from __future__ import annotations

from flask import Flask, request
from flask_restful import Api, Resource

_ANSWER = b'{"user": 0, "track": 0}\n'


def bare_wsgi(environ, start_response):
    environ["wsgi.input"].read()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(_ANSWER)))]
    )
    return [_ANSWER]


class _Health(Resource):
    def get(self):
        return {"status": "ok"}


class _Echo(Resource):
    def post(self, user: int):
        return {"user": user, "track": request.get_json()["track"]}


def flask_echo() -> Flask:
    app = Flask(__name__)
    api = Api(app)
    api.add_resource(_Health, "/health")
    api.add_resource(_Echo, "/next/<int:user>")
    return app


class _EchoRedis(Resource):
    def __init__(self, client):
        self.client = client

    def post(self, user: int):
        self.client.get(f"floor:{{{user}}}")
        return {"user": user, "track": request.get_json()["track"]}


def flask_redis() -> Flask:
    from botify.redis_link import client_for
    from botify.settings import Settings

    app = Flask(__name__)
    api = Api(app)
    api.add_resource(_Health, "/health")
    api.add_resource(_EchoRedis, "/next/<int:user>",
                     resource_class_args=(client_for(Settings.load()),))  # fmt: skip
    return app

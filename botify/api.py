"""The REST resources. Each gets the `Service` through its constructor (resource_class_kwargs).

Input is checked here, at the edge, before anything reaches a recommender or the log:
JSON bodies only (415), bounded size (413), `user` in 0..MAX_USER, `track` an int in the catalog,
`time` a finite number in [0, 1] (bools are not numbers), anything else 400 with a JSON
`{"message": ...}`.
"""

from __future__ import annotations

import json
import math
import os
import time

from flask import abort, request
from flask_restful import Resource

from botify.service import Service


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid number")


def read_play(service: Service) -> tuple[int, float]:
    """(track, time) from the JSON body of /next and /last, or abort with a 4xx."""
    if not request.is_json:
        abort(415, description="send a JSON body with Content-Type: application/json")
    length = request.content_length
    if length is not None and length > service.max_body:
        abort(413, description=f"body larger than {service.max_body} bytes")
    # A chunked body has no length: werkzeug stops reading at MAX_CONTENT_LENGTH (= max + 1).
    raw = request.get_data(cache=False)
    if len(raw) > service.max_body:
        abort(413, description=f"body larger than {service.max_body} bytes")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        abort(400, description="body is not valid JSON")
    if not isinstance(body, dict):
        abort(400, description='body must be a JSON object {"track": int, "time": float}')
    track, played = body.get("track"), body.get("time")
    if type(track) is not int:
        abort(400, description="track must be an integer")
    if track not in service.catalog:
        abort(400, description=f"track must be a catalog track id in 0..{len(service.catalog) - 1}")
    if type(played) not in (int, float) or not math.isfinite(played) or not 0 <= played <= 1:
        abort(400, description="time must be a finite number in [0, 1]")
    return track, float(played)


SEED_HEADER = "X-Botify-Seed"


def read_seed() -> int | None:
    """The optional per-request seed (replayable answers), an integer in [0, 2**64)."""
    raw = request.headers.get(SEED_HEADER)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20) or int(raw) >= 2**64:
        abort(400, description=f"{SEED_HEADER} must be an integer in [0, 2**64)")
    return int(raw)


def check_user(service: Service, user: int) -> int:
    if not 0 <= user <= service.max_user:
        abort(400, description=f"user must be in 0..{service.max_user}")
    return user


class _ServiceResource(Resource):
    def __init__(self, service: Service):
        self.service = service


class Hello(_ServiceResource):
    def get(self):
        return {
            "status": "alive",
            "message": "welcome to botify, the best toy music recommender",
            "replica": self.service.replica,
        }


class Health(_ServiceResource):
    """Liveness: the process serves requests. Never touches Redis."""

    def get(self):
        return {"status": "ok", "replica": self.service.replica, "pid": os.getpid()}


class Ready(_ServiceResource):
    """Readiness: Redis answers and every list set the routing arms need is live."""

    def get(self):
        report = self.service.readiness()
        return report, 200 if report["ready"] else 503


class Track(_ServiceResource):
    def get(self, track: int):
        if track not in self.service.catalog:
            abort(404, description="track not found")
        return self.service.catalog.info(track)


class NextTrack(_ServiceResource):
    def post(self, user: int):
        start = time.perf_counter()
        user = check_user(self.service, user)
        track, played = read_play(self.service)
        seed = read_seed()
        recommendation, fallback, arms = self.service.next_track(user, track, played, seed)
        self.service.log_event("next", start, user, track, played, recommendation, arms, fallback)
        return {"user": user, "track": recommendation}


class LastTrack(_ServiceResource):
    def post(self, user: int):
        start = time.perf_counter()
        user = check_user(self.service, user)
        track, played = read_play(self.service)
        arms = self.service.end_session(user)
        self.service.log_event("last", start, user, track, played, None, arms, False)
        return {"user": user}


class ExperimentList(_ServiceResource):
    def get(self):
        return self.service.experiments.to_dict()


class UserExperiments(_ServiceResource):
    def get(self, user: int):
        user = check_user(self.service, user)
        routing = self.service.experiments.routing
        arm = routing.assign(user)
        return {
            "user": user,
            "experiments": self.service.experiments.assign(user),
            "route": {"experiment": routing.name, "arm": arm.name, "recommender": arm.recommender},
        }


def add_resources(api, service: Service) -> None:
    kwargs = {"resource_class_kwargs": {"service": service}}
    api.add_resource(Hello, "/", **kwargs)
    api.add_resource(Health, "/health", **kwargs)
    api.add_resource(Ready, "/ready", **kwargs)
    api.add_resource(Track, "/track/<int:track>", **kwargs)
    api.add_resource(NextTrack, "/next/<int:user>", **kwargs)
    api.add_resource(LastTrack, "/last/<int:user>", **kwargs)
    api.add_resource(ExperimentList, "/experiments", **kwargs)
    api.add_resource(UserExperiments, "/experiments/<int:user>", **kwargs)

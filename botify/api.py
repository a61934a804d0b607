"""The REST resources. Each gets the `Service` through its constructor (resource_class_kwargs).

Input is checked here, at the edge, before anything reaches a recommender or the log, by one set
of rules for both paths (`parse_step`): ids in the path are ASCII decimal (`AsciiIntConverter`),
`user` in 0..MAX_USER, `track` an int in the catalog, `time` a finite number in [0, 1] (bools are
not numbers), `seed` an int in [0, 2**64). A bad per-request call is a 4xx with a JSON
`{"message": ...}`; in a batch, a bad step gets its own error entry and the others are served.

The batch path (`POST /batch/<shard>`, docs/service.md#batch):

    {"steps": [{"user": 7, "track": 42, "time": 0.5, "seed": 123},            # a /next
               {"user": 107, "track": 9, "time": 0.1, "message": "last"}]}   # a /last
 -> {"results": [{"user": 7, "track": 43}, {"user": 107}]}
    a bad step:  {"user": 7, "error": {"status": 400, "message": "..."}}

Every step of `/batch/<shard>` must belong to that shard (`botify.affinity`), so the balancer,
which routes a batch by its shard and a single call by its user's shard, keeps each user on one
replica on both paths. At most MAX_BATCH_STEPS steps and MAX_BATCH_BYTES bytes per batch.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import msgspec
from flask import Response, abort, request
from flask_restful import Resource
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.routing import BaseConverter

from botify import affinity, openapi
from botify.service import Service
from botify.step import MAX_SEED, SEED_HEADER, Step

_JSON = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


class AsciiIntConverter(BaseConverter):
    """A non-negative ASCII decimal id (werkzeug's `int` also takes other scripts' digits)."""

    regex = r"[0-9]+"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: Any) -> str:
        return str(int(value))


class Invalid(Exception):
    """A request, or one step of a batch, that breaks the contract: (status, message)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


try:  # gunicorn's errors for malformed chunked bodies (absent under other servers)
    from gunicorn.http.errors import ParseException as _ParseError
except ImportError:  # pragma: no cover

    class _ParseError(Exception):  # type: ignore[no-redef]
        pass


def read_json_body(limit: int) -> Any:
    """The request's JSON body (parsed), or abort with 413/415/400."""
    if not request.is_json:
        abort(415, description="send a JSON body with Content-Type: application/json")
    length = request.content_length
    if length is not None and length > limit:
        abort(413, description=f"body larger than {limit} bytes")
    try:
        # A chunked body has no length: werkzeug stops reading at MAX_CONTENT_LENGTH.
        raw = request.get_data(cache=False)
    except HTTPException:
        raise
    except (ClientDisconnected, OSError, ValueError, _ParseError) as error:
        abort(400, description=f"the body could not be read ({type(error).__name__})")
    if len(raw) > limit:
        abort(413, description=f"body larger than {limit} bytes")
    try:
        return _JSON.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        abort(400, description="body is not valid JSON")


def as_int(value: Any) -> int | None:
    """An integer read from JSON, else None. JSON has one number type, and JSON Schema's
    `integer` (the OpenAPI document's) is any number without a fractional part, so 3.0 is the
    integer 3. Bools are not numbers."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def check_user(service: Service, raw: Any) -> int:
    user = as_int(raw)
    if user is None or not 0 <= user <= service.max_user:
        raise Invalid(400, f"user must be an integer in 0..{service.max_user}")
    return user


def check_seed(raw: Any) -> int | None:
    if raw is None:
        return None
    seed = as_int(raw)
    if seed is None or not 0 <= seed < MAX_SEED:
        raise Invalid(400, "seed must be an integer in [0, 2**64)")
    return seed


def parse_step(service: Service, user: Any, body: Any, seed: Any, message: str) -> Step:
    """One step from its parts, by the contract's rules, or raise Invalid."""
    user = check_user(service, user)
    if not isinstance(body, dict):
        raise Invalid(400, 'body must be a JSON object {"track": int, "time": float}')
    track, played = as_int(body.get("track")), body.get("time")
    if track is None:
        raise Invalid(400, "track must be an integer")
    if track not in service.catalog:
        raise Invalid(400, f"track must be a catalog track id in 0..{len(service.catalog) - 1}")
    if not isinstance(played, int | float) or isinstance(played, bool):
        raise Invalid(400, "time must be a finite number in [0, 1]")
    if not math.isfinite(played) or not 0 <= played <= 1:
        raise Invalid(400, "time must be a finite number in [0, 1]")
    seed = check_seed(seed)
    return Step(message, user, track, float(played), service.new_seed() if seed is None else seed)


def read_seed_header() -> int | None:
    raw = request.headers.get(SEED_HEADER)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20) or int(raw) >= MAX_SEED:
        raise Invalid(400, f"{SEED_HEADER} must be an integer in [0, 2**64)")
    return int(raw)


def _json(payload: Any) -> Response:
    """A 200 JSON answer, encoded by msgspec (the hot paths skip flask-restful's json.dumps)."""
    return Response(_ENCODER.encode(payload), mimetype="application/json")


class _ServiceResource(Resource):
    def __init__(self, service: Service):
        self.service = service


class Hello(_ServiceResource):
    """The course's greeting: this process answers HTTP, nothing more (readiness is /ready)."""

    def get(self):
        return {
            "status": "alive",
            "message": "welcome to botify, the best toy music recommender",
            "replica": self.service.replica,
            "readiness": "/ready",
        }


class Health(_ServiceResource):
    """Liveness for supervisors (Docker's HEALTHCHECK): the process serves. Never touches Redis."""

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


class _PlayResource(_ServiceResource):
    message = "next"

    def post(self, user: int):
        started = time.perf_counter()
        service = self.service
        body = read_json_body(service.max_body)
        try:
            step = parse_step(service, user, body, read_seed_header(), self.message)
        except Invalid as error:
            abort(error.status, description=error.message)
        [outcome] = service.handle([step], [time.perf_counter() - started])
        answer: dict[str, int | None] = {"user": step.user}
        if self.message == "next":
            answer["track"] = outcome.recommendation
        return _json(answer)


class NextTrack(_PlayResource):
    message = "next"


class LastTrack(_PlayResource):
    message = "last"


class Batch(_ServiceResource):
    def post(self, shard: str):
        started = time.perf_counter()
        service = self.service
        shard_id = affinity.parse_shard(shard)
        if shard_id is None:
            abort(404, description=f"shard must be two ASCII digits 00..{affinity.SHARDS - 1}")
        body = read_json_body(service.max_batch_bytes)
        raw_steps = body.get("steps") if isinstance(body, dict) else None
        if not isinstance(raw_steps, list):
            abort(400, description='body must be a JSON object {"steps": [...]}')
        if len(raw_steps) > service.max_batch_steps:
            abort(413, description=f"more than {service.max_batch_steps} steps in one batch")

        results: list[dict[str, Any] | None] = [None] * len(raw_steps)
        steps: list[Step] = []
        where: list[int] = []
        seen: set[int] = set()
        parse_share = (time.perf_counter() - started) / max(len(raw_steps), 1)
        spent: list[float] = []
        for i, raw in enumerate(raw_steps):
            t0 = time.perf_counter()
            user = raw.get("user") if isinstance(raw, dict) else None
            try:
                if not isinstance(raw, dict):
                    raise Invalid(400, "a step must be a JSON object")
                message = raw.get("message", "next")
                if message not in ("next", "last"):
                    raise Invalid(400, 'message must be "next" or "last"')
                step = parse_step(service, user, raw, raw.get("seed"), message)
                if affinity.shard_of(step.user) != shard_id:
                    raise Invalid(
                        400,
                        f"user {step.user} belongs to shard {affinity.shard_name(step.user)}, "
                        f"not {shard} (shard = user mod {affinity.SHARDS})",
                    )
                if step.user in seen:
                    raise Invalid(400, f"user {step.user} has more than one step in this batch")
            except Invalid as error:
                entry: dict[str, Any] = {
                    "error": {"status": error.status, "message": error.message}
                }
                if as_int(user) is not None:
                    entry = {"user": as_int(user), **entry}
                results[i] = entry
                continue
            seen.add(step.user)
            steps.append(step)
            where.append(i)
            spent.append(parse_share + time.perf_counter() - t0)
        outcomes = service.handle(steps, spent)
        for i, step, outcome in zip(where, steps, outcomes, strict=True):
            results[i] = (
                {"user": step.user}
                if step.message == "last"
                else {"user": step.user, "track": outcome.recommendation}
            )
        return _json({"results": results})


class ExperimentList(_ServiceResource):
    def get(self):
        return self.service.experiments.to_dict()


class UserExperiments(_ServiceResource):
    def get(self, user: int):
        try:
            user = check_user(self.service, user)
        except Invalid as error:
            abort(error.status, description=error.message)
        routing = self.service.experiments.routing
        arm = routing.assign(user)
        return {
            "user": user,
            "experiments": self.service.experiments.assign(user),
            "route": {"experiment": routing.name, "arm": arm.name, "recommender": arm.recommender},
        }


class OpenApi(Resource):
    """This deployment's OpenAPI 3.1 document (`botify.openapi`), encoded once at start."""

    def __init__(self, document: bytes):
        self.document = document

    def get(self):
        return Response(self.document, mimetype="application/json")


def add_resources(api, service: Service) -> None:
    api.app.url_map.converters["id"] = AsciiIntConverter
    kwargs = {"resource_class_kwargs": {"service": service}}
    api.add_resource(Hello, "/", **kwargs)
    api.add_resource(Health, "/health", **kwargs)
    api.add_resource(Ready, "/ready", **kwargs)
    api.add_resource(Track, "/track/<id:track>", **kwargs)
    api.add_resource(NextTrack, "/next/<id:user>", **kwargs)
    api.add_resource(LastTrack, "/last/<id:user>", **kwargs)
    api.add_resource(Batch, "/batch/<shard>", **kwargs)
    api.add_resource(ExperimentList, "/experiments", **kwargs)
    api.add_resource(UserExperiments, "/experiments/<id:user>", **kwargs)
    document = openapi.encode(openapi.document(openapi.Limits.of(service)))
    api.add_resource(OpenApi, "/openapi.json", resource_class_kwargs={"document": document})

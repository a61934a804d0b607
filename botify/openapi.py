"""The HTTP interface written down once: an OpenAPI 3.1 document, served at `GET /openapi.json`.

Every body is a msgspec Struct below and its JSON Schema comes from msgspec, so the document is
generated, not written. The fields a step shares with the log line (`user`, `track`, `time`,
`message`) take their types from the event (`botify.event_schema.Event`, the one definition of the
line), narrowed to the deployment: `track` to the catalog, `user` to `MAX_USER`, a batch to
`MAX_BATCH_STEPS`. So `document(limits)` describes one running service exactly, and the Structs
are validators of the same rules: tests/botify/test_openapi.py checks that the service's own
edge check (`botify.api.parse_step`) accepts exactly what they accept, and tests/fuzz runs a
schema-driven fuzzer (Schemathesis) against the real stack with this document.

`python -m botify.openapi --tracks N --out FILE` writes the document for a catalog of N tracks
(docs/openapi.json is the default world's, kept current by a test).

Over 400 lines on purpose: one body per endpoint and its JSON errors, each a Struct with its
description, kept beside the document they generate so that neither can drift.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec

from botify import affinity
from botify.event_schema import Event
from botify.settings import Settings
from botify.step import MAX_SEED, SEED_HEADER

OPENAPI_VERSION: Final = "3.1.0"
_REF = "#/components/schemas/{name}"
_DEFAULT = Settings()  # a service's limits unless configured otherwise (defined once, there)


@dataclass(frozen=True)
class Limits:
    """What one deployment allows: the bounds the document and the body types carry."""

    tracks: int  # catalog ids are 0..tracks-1
    max_user: int = _DEFAULT.max_user
    max_batch_steps: int = _DEFAULT.max_batch_steps
    max_body_bytes: int = _DEFAULT.max_body_bytes
    max_batch_bytes: int = _DEFAULT.max_batch_bytes

    @classmethod
    def of(cls, service: Any) -> Limits:
        """The limits a `botify.service.Service` enforces."""
        return cls(
            tracks=len(service.catalog),
            max_user=service.max_user,
            max_batch_steps=service.max_batch_steps,
            max_body_bytes=service.max_body,
            max_batch_bytes=service.max_batch_bytes,
        )


# -- the event's field types, narrowed ---------------------------------------------------------
_EVENT_FIELDS: Final = {field.name: field.type for field in msgspec.structs.fields(Event)}
_CONSTRAINTS = ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern")


def event_type(name: str, **narrow: Any) -> Any:
    """The type of the event's field `name`, with its constraints tightened by `narrow`."""
    tp = _EVENT_FIELDS[name]
    if not narrow:
        return tp
    if typing.get_origin(tp) is not Annotated:
        return Annotated[tp, msgspec.Meta(**narrow)]
    base, *metas = typing.get_args(tp)
    constraints: dict[str, Any] = {}
    for meta in metas:
        constraints.update(
            {key: getattr(meta, key) for key in _CONSTRAINTS if getattr(meta, key) is not None}
        )
    return Annotated[base, msgspec.Meta(**{**constraints, **narrow})]


# msgspec bounds stop at int64; a seed's upper bound (uint64) is stated in the schema only, and
# msgspec refuses integers beyond uint64 when it decodes.
Seed = Annotated[int, msgspec.Meta(ge=0, extra_json_schema={"maximum": MAX_SEED - 1})]


@dataclass(frozen=True)
class Bodies:
    """The request and answer types of one deployment (`bodies(limits)`)."""

    step: type  # POST /next|/last body
    batch_step: type  # one item of POST /batch's `steps`
    batch: type  # POST /batch body
    next_answer: type
    last_answer: type


def bodies(limits: Limits) -> Bodies:
    user = event_type("user", le=limits.max_user)
    track = event_type("track", le=limits.tracks - 1)
    step = msgspec.defstruct(
        "StepBody", [("track", track), ("time", event_type("time"))], module=__name__
    )
    step.__doc__ = (
        "One step of a listening session: the track the listener just heard and the fraction "
        "of it heard. Unknown fields are ignored."
    )
    batch_step = msgspec.defstruct(
        "BatchStep",
        [
            ("user", user),
            ("track", track),
            ("time", event_type("time")),
            ("message", event_type("message"), "next"),
            ("seed", Seed | None, None),
        ],
        module=__name__,
    )
    batch_step.__doc__ = (
        'One step of one live session: a /next ("next", the default) or a /last ("last"). '
        "`seed` makes the answer replayable; without it the service draws one. Every step of "
        f"/batch/<shard> must belong to that shard (user mod {affinity.SHARDS}) and a user may "
        "have one step per batch. A step that breaks a rule does not fail the batch: it gets "
        "an error entry in `results` and the other steps are served."
    )
    batch = msgspec.defstruct(
        "BatchBody",
        # a class made at run time: typed for msgspec, which reads it, not for mypy
        [("steps", Annotated[list[batch_step], msgspec.Meta(max_length=limits.max_batch_steps)])],  # type: ignore[valid-type]
        module=__name__,
    )
    batch.__doc__ = (
        f"At most {limits.max_batch_steps} steps and {limits.max_batch_bytes} bytes (413 beyond)."
    )
    next_answer = msgspec.defstruct(
        "NextAnswer", [("user", user), ("track", track)], forbid_unknown_fields=True,
        module=__name__,
    )  # fmt: skip
    next_answer.__doc__ = "The recommended track: a catalog id."
    last_answer = msgspec.defstruct(
        "LastAnswer", [("user", user)], forbid_unknown_fields=True, module=__name__
    )
    last_answer.__doc__ = "The session is closed: its cursor and live session are cleared."
    return Bodies(step, batch_step, batch, next_answer, last_answer)


# -- answers that do not depend on the deployment -----------------------------------------------
class Error(msgspec.Struct):
    """Every error is JSON. `status` is set on the balancer's own errors (deploy/nginx.conf)."""

    message: str
    status: int | None = None


class StepErrorDetail(msgspec.Struct, forbid_unknown_fields=True):
    status: Annotated[int, msgspec.Meta(ge=400, le=499)]
    message: str


class StepError(msgspec.Struct, forbid_unknown_fields=True):
    """A batch step that broke a rule; `user` is present when the step had an integer user."""

    error: StepErrorDetail
    user: int | None = None


class TrackInfo(msgspec.Struct):
    track: Annotated[int, msgspec.Meta(ge=0)]
    artist: str
    title: str
    genre: str


class Hello(msgspec.Struct):
    """The course's greeting: this process answers HTTP (readiness is /ready)."""

    status: Literal["alive"]
    message: str
    replica: str
    readiness: str


class Health(msgspec.Struct):
    """Liveness: the process serves. Never touches Redis."""

    status: Literal["ok"]
    replica: str
    pid: int


class ListStatus(msgspec.Struct):
    active: str | None
    users: Annotated[int, msgspec.Meta(ge=0)]  # user lists of the live version
    items: Annotated[int, msgspec.Meta(ge=0)] = 0  # item-keyed lists of the live version


class Readiness(msgspec.Struct):
    """200 when Redis answers and every list set the routing arms need is live, else 503 with
    the reasons. `models`: each online model's load status; `item_lists`: each item-list set's
    load status; `refilled`: catalog keys written."""

    ready: bool
    reasons: list[str]
    replica: str
    lists: dict[str, ListStatus]
    models: dict[str, dict[str, Any]] | None = None
    item_lists: dict[str, dict[str, Any]] | None = None
    refilled: Any = None


class Arm(msgspec.Struct):
    name: str
    recommender: str
    params: dict[str, Any]
    weight: float  # relative share of the covered users (botify.experiments)


class Experiment(msgspec.Struct):
    name: str
    coverage: float  # share of users in the experiment
    arms: list[Arm]


class ExperimentsConfig(msgspec.Struct):
    """The experiments this replica runs; `route` names the one that decides /next."""

    route: str
    experiments: list[Experiment]


class Route(msgspec.Struct):
    experiment: str
    arm: str
    recommender: str


class UserExperiments(msgspec.Struct):
    """The user's arm in every experiment (what every event logs) and the one that routes."""

    user: int
    experiments: dict[str, str]
    route: Route


# -- the document ---------------------------------------------------------------------------
def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _ref(name: str) -> str:
    return _REF.format(name=name)


def _errors(*codes: int) -> dict[str, Any]:
    why = {
        400: "Bad input: the message says which rule was broken.",
        404: "No such resource (e.g. an id that is not ASCII decimal, an unknown track).",
        413: "The body is larger than allowed.",
        415: "The body is not sent as Content-Type: application/json.",
    }
    return {str(code): _json(_ref("Error"), why[code]) for code in codes}


def _operation(op_id: str, summary: str, ok: str, ok_text: str, *codes: int, **extra) -> dict:
    return {
        "operationId": op_id,
        "summary": summary,
        **extra,
        "responses": {"200": _json(_ref(ok), ok_text), **_errors(*codes)},
    }


def _user_param(limits: Limits) -> dict[str, Any]:
    return {
        "name": "user",
        "in": "path",
        "required": True,
        "description": "The listener's id (ASCII decimal).",
        "schema": msgspec.json.schema(event_type("user", le=limits.max_user)),
    }


def _play(limits: Limits, message: str, answer: str) -> dict[str, Any]:
    body = "StepBody"
    return {
        "parameters": [
            _user_param(limits),
            {
                "name": SEED_HEADER,
                "in": "header",
                "required": False,
                "description": "The step's seed: the same seed gives the same answer, on any "
                "replica and on either path. Without it the service draws one.",
                "schema": msgspec.json.schema(Seed),
            },
        ],
        "post": _operation(
            f"{message}Track",
            "Ask for the next track" if message == "next" else "Close the listening session",
            answer,
            "The step is served and logged (one event line).",
            400,
            404,
            413,
            415,
            requestBody={
                "required": True,
                "description": f"At most {limits.max_body_bytes} bytes.",
                "content": {"application/json": {"schema": {"$ref": _ref(body)}}},
            },
        ),  # fmt: skip
    }


def document(limits: Limits) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a service with these limits (plain JSON types)."""
    types = bodies(limits)
    _, schemas = msgspec.json.schema_components(
        [
            types.step, types.batch_step, types.batch, types.next_answer, types.last_answer,
            StepError, Error, TrackInfo, Hello, Health, Readiness, ExperimentsConfig,
            UserExperiments, Event,
        ],
        ref_template=_REF,
    )  # fmt: skip
    schemas["BatchAnswer"] = {
        "title": "BatchAnswer",
        "description": "One result per step, in the order of the steps.",
        "type": "object",
        "properties": {
            "results": {
                "type": "array",
                "maxItems": limits.max_batch_steps,
                "items": {
                    "anyOf": [{"$ref": _ref(n)} for n in ("NextAnswer", "LastAnswer", "StepError")]
                },
            }
        },
        "required": ["results"],
        "additionalProperties": False,
    }
    schemas["Event"]["description"] = (
        "Not an HTTP body: the line each served step appends to the service's event log "
        "(botify/event_schema.py, the one definition; exported to Parquet by script.export)."
    )
    shard = {
        "name": "shard",
        "in": "path",
        "required": True,
        "description": f"Two ASCII digits: user mod {affinity.SHARDS} of every step. The "
        "balancer routes a batch by it, so each user stays on one replica.",
        "schema": {"type": "string", "pattern": "^[0-9]{2}$"},
    }
    paths: dict[str, Any] = {
        "/": {"get": _operation("hello", "The course's greeting", "Hello", "Alive.")},
        "/health": {"get": _operation("health", "Liveness", "Health", "The process serves.")},
        "/ready": {
            "get": {
                **_operation("ready", "Readiness", "Readiness", "Ready to serve every arm."),
                "responses": {
                    "200": _json(_ref("Readiness"), "Ready to serve every arm."),
                    "503": _json(_ref("Readiness"), "Not ready: `reasons` says why."),
                },
            }
        },
        "/track/{track}": {
            "parameters": [
                {
                    "name": "track",
                    "in": "path",
                    "required": True,
                    "description": "A catalog id (ASCII decimal).",
                    "schema": msgspec.json.schema(event_type("track", le=limits.tracks - 1)),
                }
            ],
            "get": _operation("track", "A track's metadata", "TrackInfo", "The track.", 404),
        },
        "/next/{user}": _play(limits, "next", "NextAnswer"),
        "/last/{user}": _play(limits, "last", "LastAnswer"),
        "/batch/{shard}": {
            "parameters": [shard],
            "post": _operation(
                "batch",
                "Many sessions' steps in one call (the simulator's fast path)",
                "BatchAnswer",
                "Every step answered: a result or its own error entry; each served step is "
                "logged (one event line each).",
                400,
                404,
                413,
                415,
                requestBody={
                    "required": True,
                    "description": f"At most {limits.max_batch_bytes} bytes.",
                    "content": {"application/json": {"schema": {"$ref": _ref("BatchBody")}}},
                },
            ),  # fmt: skip
        },
        "/experiments": {
            "get": _operation("experiments", "The experiments", "ExperimentsConfig", "The config.")
        },
        "/experiments/{user}": {
            "parameters": [_user_param(limits)],
            "get": _operation(
                "userExperiments", "A user's arms", "UserExperiments", "The arms.", 400, 404
            ),
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document of this deployment.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Botify",
            "version": "1",
            "summary": "A recommender service for simulated listeners",
            "description": (
                f"Bounds of this deployment: tracks 0..{limits.tracks - 1}, users "
                f'0..{limits.max_user}. Every error is JSON {{"message": ...}}; bad input is '
                "a 4xx, never a 5xx. A method a path lacks is a 405 with Allow. Through the "
                "balancer, every request of one user goes to one replica."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=1, sort_keys=False).encode() + b"\n"


def main(argv: list[str] | None = None) -> None:
    import click

    @click.command(help="Write the OpenAPI document of a service with these limits.")
    @click.option("--tracks", type=click.IntRange(min=1), required=True, help="catalog size")
    @click.option("--out", type=click.Path(dir_okay=False), default="-", help="file, - = stdout")
    def write(tracks: int, out: str) -> None:
        data = encode(document(Limits(tracks=tracks)))
        with click.open_file(out, "wb") as f:
            f.write(data)

    write.main(args=argv, prog_name="python -m botify.openapi")


if __name__ == "__main__":
    main()

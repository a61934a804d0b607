"""The OpenAPI document (botify/openapi.py): a valid OpenAPI 3.1 document, served at /openapi.json
for this deployment's limits, generated from the event's field types, and the service's own
validation accepts exactly what its schemas accept. tests/fuzz fuzzes the real stack with it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from botify import openapi
from botify.api import Invalid, check_seed, parse_step
from botify.event_schema import Event

from .conftest import N_TRACKS

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORLD_TRACKS = 50_000  # sim.world's default shape: docs/openapi.json describes it


def test_the_served_document_is_valid_openapi_3_1_for_this_deployment(app, client):
    answer = client.get("/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    served = answer.json
    validate(served)  # openapi-spec-validator: picks the 3.1 rules from "openapi": "3.1.0"
    assert served["openapi"] == "3.1.0"
    service = app.extensions["botify"]
    assert served == openapi.document(openapi.Limits.of(service))
    schemas = served["components"]["schemas"]
    assert schemas["StepBody"]["properties"]["track"]["maximum"] == N_TRACKS - 1
    assert schemas["BatchStep"]["properties"]["user"]["maximum"] == service.max_user
    assert schemas["BatchBody"]["properties"]["steps"]["maxItems"] == service.max_batch_steps


def test_every_route_of_the_app_is_documented(app, client):
    served = client.get("/openapi.json").json
    routes = {
        (rule.rule.replace("<id:", "{").replace("<", "{").replace(">", "}"), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in served["paths"].items() for method in item}
    documented -= {(path, "parameters") for path in served["paths"]}
    assert routes == documented


def test_docs_copy_is_the_default_worlds_document():
    """docs/openapi.json (linked from the README) is what `python -m botify.openapi --tracks
    50000` writes: the document of a default deployment, never edited by hand."""
    checked_in = json.loads((REPO / "docs" / "openapi.json").read_text())
    assert checked_in == openapi.document(openapi.Limits(tracks=DEFAULT_WORLD_TRACKS))
    validate(checked_in)


def test_shared_fields_have_the_event_types():
    """One definition: a body's user, track, time and message are the event's, narrowed."""
    event = msgspec.json.schema(Event)["$defs"]["Event"]["properties"]
    limits = openapi.Limits(tracks=N_TRACKS, max_user=1000)
    _, schemas = msgspec.json.schema_components(
        [openapi.bodies(limits).batch_step, openapi.bodies(limits).step]
    )
    for body in ("BatchStep", "StepBody"):
        for name, schema in schemas[body]["properties"].items():
            if name in event:
                narrowed = {"track": N_TRACKS - 1, "user": 1000}.get(name)
                expected = dict(event[name], **({"maximum": narrowed} if narrowed else {}))
                expected.pop("default", None)
                assert {k: v for k, v in schema.items() if k != "default"} == expected, name


# -- the service's edge accepts exactly what the document's schemas accept ----------------------
MAX_USER = 1000
BOUNDARIES = [
    -1, 0, 1, N_TRACKS - 1, N_TRACKS, MAX_USER, MAX_USER + 1, 2**63, 2**64 - 1, 2**64,
    -1e-9, -0.0, 0.0, 0.5, 1.0, 1.0000001, 1.5, 3.0, 3.5, 1e300, 2.0**64,
]  # fmt: skip
numbers = st.one_of(
    st.sampled_from(BOUNDARIES), st.integers(), st.floats(allow_nan=False, allow_infinity=False)
)
values = st.one_of(
    numbers, st.booleans(), st.none(), st.text(max_size=3), st.lists(numbers, max_size=1)
)
valid_steps = st.fixed_dictionaries(
    {
        "user": st.integers(0, MAX_USER),
        "track": st.integers(0, N_TRACKS - 1),
        "time": st.floats(0, 1),
    },
    optional={"message": st.sampled_from(["next", "last"]), "seed": st.integers(0, 2**64 - 1)},
)


@st.composite
def steps(draw) -> dict:
    """A valid step with at most one field replaced, added or removed: near the boundary."""
    step = draw(valid_steps)
    key = draw(st.sampled_from(["user", "track", "time", "message", "seed", "extra", None]))
    if key is not None:
        if draw(st.booleans()):
            step.pop(key, None)
        else:
            step[key] = draw(st.one_of(values, st.sampled_from(["next", "last", "skip"])))
    return step


def example_steps(edges):
    def decorate(test):
        for step in edges:
            test = example(step=step)(test)
        return test

    return decorate


class _Service:
    max_user = MAX_USER
    catalog = range(N_TRACKS)

    @staticmethod
    def new_seed() -> int:
        return 7


def _service_accepts(step: dict) -> bool:
    try:
        message = step.get("message", "next")
        if message not in ("next", "last"):
            raise Invalid(400, "message")
        parse_step(_Service, step.get("user"), step, step.get("seed"), message)
        check_seed(step.get("seed"))
    except Invalid:
        return False
    return True


@pytest.fixture(scope="module")
def batch_step_schema():
    document = openapi.document(openapi.Limits(tracks=N_TRACKS, max_user=_Service.max_user))
    return jsonschema.Draft202012Validator(document["components"]["schemas"]["BatchStep"])


ONE = {"user": 1, "track": 3, "time": 0.5}
EDGES = [  # each bound from both sides, always tried
    {**ONE, field: value}
    for field, values in {
        "user": [-1, 0, MAX_USER, MAX_USER + 1, 1.0, 1.5, True],
        "track": [-1, 0, N_TRACKS - 1, N_TRACKS, 3.0, 3.5, "3"],
        "time": [-1e-9, 0, 1, 1.0000001, False, "0.5"],
        "seed": [-1, 0, 2**64 - 1, 2**64, None, 7.0],
        "message": ["next", "last", "skip", None],
    }.items()
    for value in values
]


@settings(max_examples=1000)
@given(steps())
@example_steps(EDGES)
def test_a_batch_step_is_served_iff_the_schema_accepts_it(batch_step_schema, step):
    # (JSON cannot carry NaN or infinity: test_validation.py covers them)
    assert _service_accepts(step) == batch_step_schema.is_valid(step), step

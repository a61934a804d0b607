"""Line validation: the fast (pyarrow) and slow (botify.event_schema.decode) paths accept exactly the
same lines, and what the service's encoder writes is read back unchanged."""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from botify.event_schema import ARROW_SCHEMA, Event, decode, encode
from script.event_parser import _parse_slowly, conform, parse_chunk

GOOD = {
    "message": "next",
    "timestamp": 1767225600000,
    "user": 7,
    "track": 42,
    "time": 0.75,
    "latency": 0.0012,
    "recommendation": 43,
    "experiments": {"AB": "T1", "COLLECT": "C"},
    "replica": "recommender-1",
}


def line(**changes) -> bytes:
    event = {**GOOD, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


def replaced(old: str, new: str) -> bytes:
    return json.dumps(GOOD).replace(old, new).encode()


ACCEPTED = {
    "good": line(),
    "last with null recommendation": line(message="last", recommendation=None),
    "integer time": line(time=1),
    "no experiments logged": line(experiments={}),
    "fallback true": line(fallback=True),
    "null fallback reads as absent (false)": line(fallback=None),
    "propensity": line(propensity=0.01),
    "propensity 1": line(propensity=1),
    "null propensity": line(propensity=None),
    "extra nested field": line(debug={"a": [1, 2]}),
    "null arm reads as not logged": line(experiments={"AB": None}),
    "missing recommendation reads as null": line(recommendation=...),
    "user -0 is 0": replaced('"user": 7', '"user": -0'),
    "largest int64": line(user=2**63 - 1),
}

REJECTED = {
    "truncated": line()[:60],
    "not an object": b"[1, 2, 3]",
    "message unknown": line(message="skip"),
    "message not a string": line(message=5),
    "user as float": line(user=7.0),
    "user as string": line(user="7"),
    "user as bool": line(user=True),
    "user too large for int64": line(user=2**70),
    "negative track": line(track=-1),
    "time NaN": replaced('"time": 0.75', '"time": NaN'),
    "latency Infinity": replaced('"latency": 0.0012', '"latency": Infinity'),
    "time above 1": line(time=1.5),
    "time as bool": line(time=False),
    "negative latency": line(latency=-0.1),
    "missing user": line(user=...),
    "null timestamp": line(timestamp=None),
    "missing experiments": line(experiments=...),
    "experiments a list": line(experiments=["AB"]),
    "arm not a string": line(experiments={"AB": 1}),
    "replica not a string": line(replica=3),
    "recommendation as float": line(recommendation=4.5),
    "duplicate key": replaced('"user": 7', '"user": 7, "user": 8'),
    "invalid utf-8": line()[:-3] + b'\xff"}',
    "duplicate arm": replaced('"AB": "T1"', '"AB": "T1", "AB": "C"'),
    "empty experiment name": line(experiments={"": "C"}),
    "fallback not a bool": line(fallback=1),
    "fallback as string": line(fallback="true"),
    "propensity 0": line(propensity=0.0),
    "propensity above 1": line(propensity=1.5),
    "negative propensity": line(propensity=-0.5),
    "propensity as string": line(propensity="0.5"),
    "timestamp in exponent form": replaced("1767225600000", "1.7672256e12"),
    "null message": line(message=None),
    "null replica": line(replica=None),
    "null experiments": line(experiments=None),
    "latency out of float range": replaced('"latency": 0.0012', '"latency": 1e400'),
    "two objects on a line": line() + b" " + line(),
}


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_lines_agree_on_both_paths(raw):
    fast = parse_chunk(raw + b"\n")
    slow = _parse_slowly([raw], "x", 1)
    assert fast.bad == [] and slow.bad == []
    assert fast.table.to_pylist() == slow.table.to_pylist()
    assert fast.table.num_rows == 1


@pytest.mark.parametrize("raw", REJECTED.values(), ids=REJECTED.keys())
def test_rejected_lines_agree_on_both_paths(raw):
    fast = parse_chunk(raw + b"\n", "f.jsonl", 10)
    slow = _parse_slowly([raw], "f.jsonl", 10)
    assert fast.table.num_rows == slow.table.num_rows == 0
    assert len(fast.bad) == 1 and fast.bad[0].line == 10 and fast.bad[0].source == "f.jsonl"
    assert fast.bad[0].reason == slow.bad[0].reason


def test_values_and_experiment_columns():
    parsed = parse_chunk(line() + b"\n" + line(user=8, experiments={"AB": "C"}) + b"\n")
    assert parsed.fast
    assert parsed.table.column_names == [
        "message", "timestamp", "user", "track", "time", "latency", "recommendation", "replica",
        "fallback", "propensity", "team", "exp_AB", "exp_COLLECT",
    ]  # fmt: skip
    assert parsed.table.to_pylist()[1] == {
        **{k: v for k, v in GOOD.items() if k != "experiments"},
        "user": 8,
        "fallback": False,
        "propensity": None,
        "team": None,
        "exp_AB": "C",
        "exp_COLLECT": None,
    }


def test_a_bad_line_sets_aside_only_itself_with_its_number_and_reason():
    chunk = b"\n".join([line(user=1), b"", line(user=2, time=float("nan")), line(user=3), b"{oops"])
    parsed = parse_chunk(chunk, "a.jsonl", 100)
    assert not parsed.fast
    assert parsed.table["user"].to_pylist() == [1, 3]
    assert [(b.line, b.reason) for b in parsed.bad] == [
        (102, "not valid JSON (JSON is malformed: invalid character (byte 80))"),
        (104, parsed.bad[1].reason),
    ]
    assert parsed.bad[1].reason.startswith("not valid JSON")
    assert parsed.bad[1].raw == "{oops"


def test_blank_input():
    assert parse_chunk(b"\n \n").table.num_rows == 0


def test_reasons_are_the_contracts():
    reasons = {
        name: _parse_slowly([REJECTED[name]], "f", 1).bad[0].reason
        for name in ("message unknown", "user as float", "negative track", "duplicate key")
    }
    assert reasons == {
        "message unknown": "Invalid enum value 'skip' - at `$.message`",
        "user as float": "Expected `int`, got `float` - at `$.user`",
        "negative track": "Expected `int` >= 0 - at `$.track`",
        "duplicate key": "not valid JSON (duplicate key)",
    }


def test_fallback_kept_and_defaults_to_false():
    chunk = b"\n".join([line(fallback=True), line(), line(fallback=None), line(fallback=False)])
    for parsed in (parse_chunk(chunk), _parse_slowly(chunk.split(b"\n"), "x", 1)):
        assert parsed.table["fallback"].to_pylist() == [True, False, False, False]
        assert parsed.table.schema.field("fallback").type == ARROW_SCHEMA.field("fallback").type


def test_conform_fills_a_dataset_written_before_fallback_existed():
    old = ARROW_SCHEMA.empty_table().drop_columns(["fallback"])
    assert conform(old).schema == ARROW_SCHEMA
    rows = parse_chunk(line() + b"\n").table.drop_columns(["fallback"])
    assert conform(rows)["fallback"].to_pylist() == [False]


def test_propensity_kept_and_null_where_not_logged():
    chunk = b"\n".join([line(propensity=0.25), line(), line(propensity=None), line(propensity=1)])
    for parsed in (parse_chunk(chunk), _parse_slowly(chunk.split(b"\n"), "x", 1)):
        assert parsed.table["propensity"].to_pylist() == [0.25, None, None, 1.0]
        assert parsed.table.schema.field("propensity").type == ARROW_SCHEMA.field("propensity").type


def test_conform_leaves_propensity_null_in_a_dataset_written_before_it_existed():
    old = ARROW_SCHEMA.empty_table().drop_columns(["fallback", "propensity"])
    assert conform(old).schema == ARROW_SCHEMA
    rows = parse_chunk(line() + b"\n" + line(user=8) + b"\n").table
    rows = rows.drop_columns(["propensity"])
    assert conform(rows)["propensity"].to_pylist() == [None, None]


def test_team_kept_and_null_in_a_line_written_before_it_existed():
    """An old line (no `team`) exports with team null, beside lines of an interleaving arm; a
    team outside a, b, both is refused by both paths with the contract's reason."""
    chunk = b"\n".join([line(), line(team="a"), line(team="both"), line(team=None)])
    for parsed in (parse_chunk(chunk), _parse_slowly(chunk.split(b"\n"), "x", 1)):
        assert parsed.bad == []
        assert parsed.table["team"].to_pylist() == [None, "a", "both", None]
    assert parse_chunk(line() + b"\n").fast  # an old line stays on the fast path
    fast, slow = parse_chunk(line(team="c") + b"\n"), _parse_slowly([line(team="c")], "x", 1)
    assert fast.table.num_rows == slow.table.num_rows == 0
    assert fast.bad[0].reason == slow.bad[0].reason
    assert "team" in fast.bad[0].reason
    old = ARROW_SCHEMA.empty_table().drop_columns(["team"])  # a dataset exported before `team`
    assert conform(old).schema == ARROW_SCHEMA
    rows = parse_chunk(line() + b"\n").table.drop_columns(["team"])
    assert conform(rows)["team"].to_pylist() == [None]


# Property tests: random events, then random damage to one field.
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
ints = st.integers(0, 2**63 - 1) | st.sampled_from([0, 2**63 - 1])
fractions = st.floats(0.0, 1.0) | st.sampled_from([0.0, 1.0, 1e-300])
events = st.builds(
    Event,
    message=st.sampled_from(["next", "last"]),
    timestamp=ints,
    user=ints,
    track=ints,
    time=fractions,
    latency=st.floats(0.0, 1e6) | st.sampled_from([0.0, 5e-324]),
    recommendation=st.none() | ints,
    experiments=st.dictionaries(names.filter(bool), names, max_size=3),
    replica=names,
    fallback=st.booleans(),
    propensity=st.none() | st.floats(1e-300, 1.0) | st.sampled_from([1.0, 5e-324]),
    team=st.none() | st.sampled_from(["a", "b", "both"]),
)
WEIRD = st.sampled_from(
    [None, -1, -0.0, 0.5, 1.5, 2**63, 2**64, -(2**63), "7", "next", True, False, [], {}, 1e300]
) | st.floats(allow_nan=True, allow_infinity=True)
FIELDS = [*Event.__struct_fields__, "extra"]


def damaged(event: Event, field: str | None, value: object, drop: bool) -> bytes:
    data = msgspec.to_builtins(event)
    if field is not None:
        if drop:
            data.pop(field, None)
        elif field == "experiments" and data["experiments"] and not isinstance(value, dict):
            data["experiments"][next(iter(data["experiments"]))] = value  # damage one arm
        else:
            data[field] = value
    return json.dumps(data).encode()  # NaN and Infinity come out as JSON would never write them


def verdicts(raw: bytes):
    fast = parse_chunk(raw + b"\n", "f", 1)
    slow = _parse_slowly([raw], "f", 1)
    return fast, slow


@settings(max_examples=120, deadline=None)
@given(events, st.none() | st.sampled_from(FIELDS), WEIRD, st.booleans())
def test_both_paths_agree_on_damaged_lines(event, field, value, drop):
    raw = damaged(event, field, value, drop)
    fast, slow = verdicts(raw)
    assert [b.reason for b in fast.bad] == [b.reason for b in slow.bad]
    assert fast.table.to_pylist() == slow.table.to_pylist()
    assert fast.table.num_rows + len(fast.bad) == 1


@settings(max_examples=400, deadline=None)  # one field of ten damaged: enough to hit each
@given(events, st.sampled_from(Event.__struct_fields__), WEIRD, st.just(False))
def test_readers_follow_the_contract_up_to_null_reads_as_absent(event, field, value, drop):
    """Where no field is null or absent, the reader accepts a line iff botify.event_schema.decode does."""
    assume(value is not None and not drop and field != "extra")
    raw = damaged(event, field, value, drop)
    try:
        decode(raw)
        contract_accepts = True
    except msgspec.DecodeError:
        contract_accepts = False
    fast, _ = verdicts(raw)
    assert (fast.table.num_rows == 1) == contract_accepts


@settings(max_examples=60, deadline=None)
@given(st.lists(events, min_size=1, max_size=20))
def test_what_the_service_writes_reads_back_unchanged(batch):
    chunk = b"".join(encode(event) for event in batch)
    parsed = parse_chunk(chunk)
    assert parsed.bad == []
    assert parsed.fast or b"NaN" in chunk or b"Infinity" in chunk  # those go slow, see parse_chunk
    for row, event in zip(parsed.table.to_pylist(), batch, strict=True):
        expected = msgspec.to_builtins(event)
        experiments = expected.pop("experiments")
        arms = {k.removeprefix("exp_"): v for k, v in row.items() if k.startswith("exp_")}
        assert {k: v for k, v in arms.items() if v is not None} == experiments
        got = {k: row[k] for k in expected}
        assert got == expected
        assert math.copysign(1, got["time"]) == math.copysign(1, event.time)

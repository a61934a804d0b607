"""The event-log line format (DESIGN.md) and its validation, fast path and slow path.

A chunk of JSON lines is first parsed by pyarrow's JSON reader with an explicit schema; only a
chunk that fails there (a malformed line, a wrong type) or fails the semantic checks is parsed
again line by line with :func:`json.loads`, which can say which line is bad and why. Both paths
end in the same semantic checks (:func:`semantic_problems`), so they accept the same lines.

Experiments become one string column per experiment, ``exp_<name>`` (null where an event did not
log that experiment): analysis then needs no map unpacking, and pandas reads it as is. Fields the
service may add beyond the contract (``fallback``, ...) are ignored, never a reason to reject.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

EXPERIMENT_PREFIX = "exp_"
MESSAGES = ("next", "last")

#: The fixed columns of every dataset, in order; ``exp_<name>`` string columns follow, sorted.
FIXED_SCHEMA = pa.schema(
    [
        ("message", pa.string()),
        ("timestamp", pa.int64()),
        ("user", pa.int64()),
        ("track", pa.int64()),
        ("time", pa.float64()),
        ("latency", pa.float64()),
        ("recommendation", pa.int64()),
        ("replica", pa.string()),
    ]
)
_INT_FIELDS = ("timestamp", "user", "track")
_FLOAT_FIELDS = ("time", "latency")
_STR_FIELDS = ("message", "replica")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_PARSE_OPTIONS = pj.ParseOptions(explicit_schema=FIXED_SCHEMA, unexpected_field_behavior="infer")


@dataclass
class BadLine:
    """One rejected line: where it came from, why, and its text (for the quarantine file)."""

    source: str
    line: int
    reason: str
    raw: str

    def to_json(self) -> str:
        return json.dumps(
            {"source": self.source, "line": self.line, "reason": self.reason, "raw": self.raw}
        )


@dataclass
class ParsedChunk:
    table: pa.Table
    bad: list[BadLine] = field(default_factory=list)
    fast: bool = True


class _SlowPath(Exception):
    """The fast reader cannot vouch for this chunk; parse it line by line."""


def experiment_columns(schema: pa.Schema) -> list[str]:
    return sorted(name for name in schema.names if name.startswith(EXPERIMENT_PREFIX))


def empty_table() -> pa.Table:
    return FIXED_SCHEMA.empty_table()


def conform(table: pa.Table) -> pa.Table:
    """Fixed columns first in their declared types, then the experiment columns sorted."""
    exp = experiment_columns(table.schema)
    columns = [table.column(f.name).cast(f.type) for f in FIXED_SCHEMA]
    columns += [table.column(name).cast(pa.string()) for name in exp]
    return pa.table(columns, names=FIXED_SCHEMA.names + exp)


def semantic_problems(table: pa.Table) -> list[tuple[str, np.ndarray]]:
    """(reason, row mask) for every check that some row fails, in the order checks are listed."""
    checks: list[tuple[str, pa.ChunkedArray | pa.Array]] = []
    for name in FIXED_SCHEMA.names:
        if name != "recommendation":
            checks.append((f"missing or null field {name!r}", pc.is_null(table[name])))
    checks.append(
        (
            "message is not 'next' or 'last'",
            pc.invert(pc.is_in(table["message"], pa.array(MESSAGES))),
        )
    )
    for name in ("timestamp", "user", "track", "recommendation"):
        checks.append((f"negative {name}", pc.less(table[name], 0)))
    for name in _FLOAT_FIELDS:
        checks.append((f"{name} is not finite", pc.invert(pc.is_finite(table[name]))))
    checks.append(("latency is negative", pc.less(table["latency"], 0.0)))
    checks.append(
        ("time outside [0, 1]", pc.or_(pc.less(table["time"], 0.0), pc.greater(table["time"], 1.0)))
    )
    problems = []
    for reason, mask in checks:
        values = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        if values.any():
            problems.append((reason, values))
    return problems


def _from_arrow(raw: pa.Table) -> pa.Table:
    """Normalize what pyarrow's reader produced; raise _SlowPath when it is not clean."""
    if "experiments" not in raw.schema.names:
        raise _SlowPath
    experiments = raw["experiments"]
    if not pa.types.is_struct(experiments.type) or experiments.null_count:
        raise _SlowPath
    columns = {f.name: raw[f.name] for f in FIXED_SCHEMA}
    for index in range(experiments.type.num_fields):
        child = experiments.type.field(index)
        if pa.types.is_null(child.type):  # only nulls seen: the experiment was not logged
            continue
        if not pa.types.is_string(child.type) or not child.name:
            raise _SlowPath
        columns[EXPERIMENT_PREFIX + child.name] = pa.chunked_array(
            [chunk.field(index) for chunk in experiments.chunks], type=child.type
        )
    table = conform(pa.table(columns))
    if semantic_problems(table):
        raise _SlowPath
    return table


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _is_int(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and _INT64_MIN <= value <= _INT64_MAX
    )


def check_types(event: object) -> str | None:
    """Why a decoded line does not have the contract's fields and types (None when it does)."""
    if not isinstance(event, dict):
        return "not a JSON object"
    for name in _INT_FIELDS:
        if name not in event or event[name] is None:
            return f"missing or null field {name!r}"
        if not _is_int(event[name]):
            return f"{name} is not an int64 integer"
    for name in _FLOAT_FIELDS:
        value = event.get(name)
        if value is None:
            return f"missing or null field {name!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} is not a number"
        if isinstance(value, int) and not _is_int(value):
            return f"{name} is out of range"
    for name in _STR_FIELDS:
        if event.get(name) is None:
            return f"missing or null field {name!r}"
        if not isinstance(event[name], str):
            return f"{name} is not a string"
    recommendation = event.get("recommendation")
    if recommendation is not None and not _is_int(recommendation):
        return "recommendation is not an int64 integer or null"
    experiments = event.get("experiments")
    if not isinstance(experiments, dict):
        return "experiments is not an object"
    for name, arm in experiments.items():
        if not name:
            return "empty experiment name"
        if arm is not None and not isinstance(arm, str):
            return f"arm of experiment {name!r} is not a string"
    return None


def _parse_slowly(lines: list[bytes], source: str, first_line: int) -> ParsedChunk:
    rows: list[dict] = []
    raws: list[tuple[int, str]] = []
    bad: list[BadLine] = []
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        number = first_line + offset
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        try:
            event = json.loads(line, object_pairs_hook=_reject_duplicate_keys)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            bad.append(BadLine(source, number, f"not valid JSON ({error})", text))
            continue
        reason = check_types(event)
        if reason is not None:
            bad.append(BadLine(source, number, reason, text))
            continue
        row = {name: event.get(name) for name in FIXED_SCHEMA.names}
        row["time"], row["latency"] = float(event["time"]), float(event["latency"])
        for name, arm in event["experiments"].items():
            if arm is not None:  # null arm = not logged, as the fast path reads it
                row[EXPERIMENT_PREFIX + name] = arm
        rows.append(row)
        raws.append((number, text))
    if not rows:
        return ParsedChunk(empty_table(), bad, fast=False)
    exp_names = sorted({key for row in rows for key in row if key.startswith(EXPERIMENT_PREFIX)})
    schema = pa.schema(list(FIXED_SCHEMA) + [(name, pa.string()) for name in exp_names])
    table = pa.Table.from_pylist(rows, schema=schema)
    problems = semantic_problems(table)
    if problems:
        keep = np.ones(table.num_rows, dtype=bool)
        for reason, mask in problems:
            for index in np.flatnonzero(mask & keep):
                number, text = raws[index]
                bad.append(BadLine(source, number, reason, text))
            keep &= ~mask
        table = table.filter(pa.array(keep))
    bad.sort(key=lambda item: item.line)
    return ParsedChunk(table, bad, fast=False)


def _valid_utf8(chunk: bytes) -> bool:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_chunk(chunk: bytes, source: str = "<bytes>", first_line: int = 1) -> ParsedChunk:
    """Parse whole JSON lines; every non-blank line ends up in the table or in ``bad``."""
    if not chunk.strip():
        return ParsedChunk(empty_table())
    if _valid_utf8(chunk):  # pyarrow would replace bad bytes silently; let the slow path judge
        try:
            raw = pj.read_json(io.BytesIO(chunk), parse_options=_PARSE_OPTIONS)
            return ParsedChunk(_from_arrow(raw))
        except (pa.ArrowInvalid, _SlowPath):
            pass
    return _parse_slowly(chunk.split(b"\n"), source, first_line)

"""Event-log lines -> Arrow tables, by a fast path (pyarrow) and a slow path (the contract's decoder).

The line format is `botify.event_schema` (the one definition every writer and reader imports). A chunk
of lines is first parsed by pyarrow's JSON reader with the contract's Arrow schema, and its rows
are checked, vectorized, against constraints read off the contract's `Event` type (ranges, the
message names, required fields). Only a chunk that fails there is parsed again line by line with
`botify.event_schema.decode`, which says which line is bad and why.

Both paths accept exactly the same lines. pyarrow cannot tell a missing field from a null one, so
readers take one liberty with the contract, the same on both paths: **a null field reads as an
absent one**. `recommendation` absent or null is null, `fallback` absent or null is false (logs
written before it existed lack it), `propensity` absent or null is null (unknown: logs written
before it existed lack it), an arm given as null is an experiment not logged. Duplicate
keys are refused (pyarrow refuses them; msgspec alone would keep the last), and so is anything
else `decode` refuses. Fields beyond the contract are ignored, never a reason to reject.

Experiments become one string column per experiment, `exp_<name>` (null where an event did not
log that experiment): analysis then needs no map unpacking, and pandas reads it as is.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import msgspec
import msgspec.inspect as mi
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from botify.event_schema import ARROW_SCHEMA, EXPERIMENT_PREFIX, Event, decode

_EVENT = mi.type_info(Event)
assert isinstance(_EVENT, mi.StructType)
_FIELDS = {f.name: f for f in _EVENT.fields}
_EXPERIMENTS = mi.DictType(mi.StrType(min_length=1), mi.StrType())
if _FIELDS["experiments"].type != _EXPERIMENTS:  # the fast path checks exactly this shape
    raise NotImplementedError(
        f"experiments is now {_FIELDS['experiments'].type}: update _from_arrow"
    )
_PARSE_OPTIONS = pj.ParseOptions(explicit_schema=ARROW_SCHEMA, unexpected_field_behavior="infer")


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
    return ARROW_SCHEMA.empty_table()


def conform(table: pa.Table) -> pa.Table:
    """Fixed columns first in their declared types, then the experiment columns sorted.

    A column with a default (`fallback`) that the table lacks or holds nulls in gets the default:
    datasets exported before the column existed read as if every event had logged it false. A
    column whose default is null (`propensity`) stays null where it was not logged.
    """
    exp = experiment_columns(table.schema)
    columns = []
    for f in ARROW_SCHEMA:
        default = _FIELDS[f.name].default
        if f.name in table.schema.names:
            column = table.column(f.name).cast(f.type)
            if default not in (msgspec.NODEFAULT, None) and column.null_count:
                column = pc.fill_null(column, pa.scalar(default, f.type))
        elif default is None:
            column = pa.nulls(table.num_rows, f.type)
        elif default is not msgspec.NODEFAULT:
            column = pa.array(np.full(table.num_rows, default), f.type)
        else:
            raise KeyError(f"column {f.name!r} missing")
        columns.append(column)
    columns += [table.column(name).cast(pa.string()) for name in exp]
    return pa.table(columns, names=ARROW_SCHEMA.names + exp)


def _nullable(info: mi.Type) -> bool:
    return isinstance(info, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in info.types)


def _violations(column: pa.ChunkedArray, info: mi.Type, required: bool) -> list:
    """Boolean arrays, true where a value breaks the contract's constraints on this field."""
    if isinstance(info, mi.UnionType):  # `int | None`: null allowed, the int's bounds apply
        (info,) = [t for t in info.types if not isinstance(t, mi.NoneType)]
        required = False
    masks = [pc.is_null(column)] if required else []
    if isinstance(info, mi.LiteralType):
        # is_in says false for a null: a null is judged by `required` above, not here
        masks.append(
            pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, pa.array(info.values))))
        )
    elif isinstance(info, mi.IntType | mi.FloatType):
        if info.multiple_of is not None:
            raise NotImplementedError("multiple_of: teach the fast path this constraint")
        if isinstance(info, mi.FloatType):  # JSON has no NaN or Infinity
            masks.append(pc.invert(pc.is_finite(column)))
        bounds = [(info.ge, pc.less), (info.gt, pc.less_equal)]
        bounds += [(info.le, pc.greater), (info.lt, pc.greater_equal)]
        masks += [op(column, bound) for bound, op in bounds if bound is not None]
    elif isinstance(info, mi.StrType):
        if info.min_length is not None or info.max_length is not None or info.pattern:
            raise NotImplementedError("string constraints: teach the fast path this constraint")
    elif not isinstance(info, mi.BoolType):
        raise NotImplementedError(f"a column of type {info}: teach the fast path to check it")
    return masks


def _violates_contract(table: pa.Table) -> bool:
    """Whether any row breaks a constraint of `Event` (checked before defaults are filled: a
    null in a column with a default reads as absent, which is fine)."""
    for name in ARROW_SCHEMA.names:
        spec = _FIELDS[name]
        required = spec.required and not _nullable(spec.type)
        for mask in _violations(table[name], spec.type, required):
            if pc.any(pc.fill_null(mask, False)).as_py():
                return True
    return False


def _from_arrow(raw: pa.Table) -> pa.Table:
    """Normalize what pyarrow's reader produced; raise _SlowPath when it is not clean."""
    if "experiments" not in raw.schema.names:
        raise _SlowPath
    experiments = raw["experiments"]
    if not pa.types.is_struct(experiments.type) or experiments.null_count:
        raise _SlowPath
    columns = {f.name: raw[f.name] for f in ARROW_SCHEMA}
    for index in range(experiments.type.num_fields):
        child = experiments.type.field(index)
        if pa.types.is_null(child.type):  # only nulls seen: the experiment was not logged
            continue
        if not pa.types.is_string(child.type) or not child.name:
            raise _SlowPath
        columns[EXPERIMENT_PREFIX + child.name] = pa.chunked_array(
            [chunk.field(index) for chunk in experiments.chunks], type=child.type
        )
    table = pa.table(columns)
    if _violates_contract(table):
        raise _SlowPath
    return conform(table)


class _Rejected(ValueError):
    """A line the contract refuses; the message is the reason."""


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _absent_nulls(obj: object) -> object:
    """The readers' one liberty: a null field reads as absent (see the module docstring)."""
    if not isinstance(obj, dict):
        return obj
    fixed = dict(obj)
    for name, spec in _FIELDS.items():
        if _nullable(spec.type):
            fixed.setdefault(name, None)
        elif not spec.required and name in fixed and fixed[name] is None:
            del fixed[name]
    if isinstance(fixed.get("experiments"), dict):
        fixed["experiments"] = {k: v for k, v in fixed["experiments"].items() if v is not None}
    return fixed


def decode_line(line: bytes) -> Event:
    """One line as the readers take it: `botify.event_schema.decode` plus the readers' liberty."""
    try:
        obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        event = decode(line)
    except msgspec.ValidationError as error:
        lenient = _absent_nulls(obj)
        if lenient == obj:
            raise _Rejected(str(error)) from None
        try:
            event = decode(msgspec.json.encode(lenient))
        except msgspec.ValidationError as again:
            raise _Rejected(str(again)) from None
    except ValueError as error:  # msgspec.DecodeError, JSONDecodeError, UnicodeDecodeError
        raise _Rejected(f"not valid JSON ({error})") from None
    return event


def _parse_slowly(lines: list[bytes], source: str, first_line: int) -> ParsedChunk:
    events: list[Event] = []
    bad: list[BadLine] = []
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            events.append(decode_line(line))
        except _Rejected as error:
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            bad.append(BadLine(source, first_line + offset, str(error), text))
    if not events:
        return ParsedChunk(empty_table(), bad, fast=False)
    columns = {f.name: pa.array([getattr(e, f.name) for e in events], f.type) for f in ARROW_SCHEMA}
    names = sorted({name for e in events for name in e.experiments})
    for name in names:
        columns[EXPERIMENT_PREFIX + name] = pa.array(
            [e.experiments.get(name) for e in events], pa.string()
        )
    return ParsedChunk(conform(pa.table(columns)), bad, fast=False)


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
    # pyarrow would replace bad UTF-8 silently and read NaN/Infinity (no JSON numbers) wherever
    # they are, extra fields included: let the slow path judge such chunks (rare; the literals
    # may also sit inside a string, which costs only time)
    if _valid_utf8(chunk) and b"NaN" not in chunk and b"Infinity" not in chunk:
        try:
            raw = pj.read_json(io.BytesIO(chunk), parse_options=_PARSE_OPTIONS)
            # pyarrow reads `{...} {...}` on one line as two rows; a line must be one object
            lines = chunk.count(b"\n") + (not chunk.endswith(b"\n"))
            if raw.num_rows != lines:
                raise _SlowPath
            return ParsedChunk(_from_arrow(raw))
        except (pa.ArrowInvalid, _SlowPath):
            pass
    return _parse_slowly(chunk.split(b"\n"), source, first_line)

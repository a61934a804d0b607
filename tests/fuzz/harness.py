"""Schema-driven fuzzing of a running Botify: Schemathesis reads the service's own /openapi.json
and sends what it generates; every answer goes through Schemathesis's checks, and afterwards the
event log is compared with what was acknowledged.

`fuzz(url, log_root, cases)` runs, for every operation of the document, `cases` requests of valid
data (positive mode) and `cases` of data that breaks the document (negative mode: wrong types,
out-of-range ids, missing fields, bad path segments), and returns a `Report`:

- `failures`: every check that failed, by Schemathesis code: ST101/ST102 a 5xx (a server error),
  ST103-ST110 an answer that breaks the document (undocumented status, wrong content type, a body
  that is not its schema), ST201-ST205 bad input accepted or good input refused, a method a path
  lacks not answered 405 with Allow; plus BATCH when a batch's per-step results disagree with
  the rules (below). Response time is not checked: a test must not depend on the machine's speed.
- `lost` / `unexpected`: acknowledged steps with no event line, and event lines nobody was
  acknowledged for (a served /next|/last or batch step is one line each); `invalid`: log lines
  that do not decode as a `botify.event_schema.Event`.

The batch path answers a bad step with an error entry inside a 200, so "bad input is a 4xx" does
not hold per step; for /batch the generic negative-data check is replaced by an exact one: a step
gets an error entry if and only if it breaks BatchStep's schema (the document's), its user is not
in the path's shard, or its user already had a step in the batch. So that valid batches reach the
serving path (a random user is in the shard 1 time in 100), positive batches have their users
moved into the shard and made distinct before they are sent; the case stays schema-valid.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import max_response_time
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import negative_data_rejection

from botify import affinity, event_schema

SERVER_ERROR = ("ST101", "ST102")
BREAKS_DOCUMENT = ("ST103", "ST104", "ST105", "ST106", "ST107", "ST108", "ST109", "ST110")
BATCH = "BATCH"  # our own check of a batch's per-step results

Step = tuple[str, int, int, float]  # (message, user, track, time): what one event line records


@dataclass
class Report:
    cases: Counter = field(default_factory=Counter)  # operation label -> requests sent
    statuses: Counter = field(default_factory=Counter)  # (operation label, status) -> count
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (code, operation, text)
    acknowledged: Counter = field(default_factory=Counter)  # Step -> times acknowledged
    logged: Counter = field(default_factory=Counter)  # Step -> event lines written meanwhile
    invalid: list[str] = field(default_factory=list)  # log lines that are not an Event
    seconds: float = 0.0

    @property
    def lost(self) -> Counter:
        return self.acknowledged - self.logged

    @property
    def unexpected(self) -> Counter:
        return self.logged - self.acknowledged

    def count(self, *codes: str) -> int:
        return sum(1 for code, _, _ in self.failures if not codes or code in codes)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": sum(self.cases.values()),
            "per_operation": dict(self.cases),
            "seconds": round(self.seconds, 1),
            "server_errors": self.count(*SERVER_ERROR),
            "breaking_the_document": self.count(*BREAKS_DOCUMENT),
            "other_failures": self.count() - self.count(*SERVER_ERROR, *BREAKS_DOCUMENT),
            "acknowledged_steps": sum(self.acknowledged.values()),
            "event_lines": sum(self.logged.values()),
            "lost_lines": sum(self.lost.values()),
            "unexpected_lines": sum(self.unexpected.values()),
            "invalid_lines": len(self.invalid),
        }

    def problems(self, limit: int = 8) -> str:
        """A readable list of what went wrong (empty when nothing did)."""
        out = [f"{code} {op}: {text[:1500]}" for code, op, text in self.failures[:limit]]
        out += [f"lost: {step} x{n}" for step, n in list(self.lost.items())[:limit]]
        out += [f"unexpected: {step} x{n}" for step, n in list(self.unexpected.items())[:limit]]
        out += [f"invalid line: {line[:300]}" for line in self.invalid[:limit]]
        return "\n".join(out)


def read_log(log_root: Path) -> tuple[Counter, list[str]]:
    """Every event line under `log_root` as a Step, and the lines that do not decode."""
    steps: Counter = Counter()
    invalid: list[str] = []
    for path in sorted(Path(log_root).rglob("events-*.jsonl*")):
        for line in path.read_bytes().splitlines():
            try:
                e = event_schema.decode(line)
            except ValueError as error:
                invalid.append(f"{path.name}: {error}: {line[:200]!r}")
                continue
            steps[(e.message, e.user, e.track, e.time)] += 1
    return steps, invalid


def _integer(value: Any) -> int:
    return int(value)  # JSON's 3.0 is the integer 3 (the service reads it so)


def _has_input(operation) -> bool:
    return bool(len(operation.path_parameters) + len(operation.headers) + len(operation.body))


class _Batches:
    """The /batch/{shard} rules the document cannot say, and the shaping of positive batches."""

    def __init__(self, document: dict[str, Any]):
        schemas = document["components"]["schemas"]
        self.step_schema = {**schemas["BatchStep"], "$defs": {}}
        self.validator = jsonschema.Draft202012Validator(self.step_schema)
        self.max_user = schemas["BatchStep"]["properties"]["user"]["maximum"]

    def shape(self, case) -> None:
        body, shard = case.body, case.path_parameters.get("shard")
        if not (isinstance(body, dict) and isinstance(body.get("steps"), list)):
            return
        if not (isinstance(shard, str) and affinity.parse_shard(shard) is not None):
            return
        seen: set[int] = set()
        for step in body["steps"]:
            user = step.get("user") if isinstance(step, dict) else None
            if type(user) is not int:
                continue
            user = user - user % affinity.SHARDS + int(shard)
            while user > self.max_user or user in seen:
                user -= affinity.SHARDS
            if user >= 0:
                step["user"] = user
                seen.add(user)

    def expected_errors(self, shard: str, steps: list[Any]) -> list[bool]:
        """For each step: must it get an error entry?"""
        out, seen = [], set()
        for step in steps:
            bad = not self.validator.is_valid(step)
            if not bad:
                user = _integer(step["user"])
                bad = affinity.shard_of(user) != int(shard) or user in seen
                seen.add(user)
            out.append(bad)
        return out


def fuzz(
    url: str,
    log_root: Path,
    cases: int,
    *,
    operations: Iterable[str] | None = None,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Fuzz every operation (or those whose label is in `operations`, e.g. "POST /next/{user}")
    with `cases` positive and `cases` negative requests. `seed` None: the same cases every run
    (derandomized); else Hypothesis draws from that seed."""
    report = Report()
    before, _ = read_log(log_root)
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    document = requests.get(f"{url}/openapi.json", timeout=10).json()
    batches = _Batches(document)
    session = requests.Session()
    wanted = set(operations) if operations is not None else None
    for result in schema.get_all_operations():
        operation = result.ok()
        if wanted is not None and operation.label not in wanted:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not _has_input(operation):
                continue  # nothing to break
            _run(operation, mode, url, session, cases, seed, batches, report)
            if progress:
                progress(f"{operation.label} {mode.value}: {report.cases[operation.label]} sent")
    session.close()
    after, report.invalid = read_log(log_root)
    report.logged = after - before
    report.seconds = time.monotonic() - started
    return report


def _run(operation, mode, url, session, cases, seed, batches, report) -> None:
    label = operation.label
    is_batch = label.startswith("POST /batch/")
    excluded = [max_response_time] + ([negative_data_rejection] if is_batch else [])

    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every failure is counted
        verbosity=hypothesis.Verbosity.quiet,
    )
    @given(operation.as_strategy(generation_mode=mode))
    def one(case) -> None:
        if is_batch and mode is GenerationMode.POSITIVE:
            batches.shape(case)
        response = case.call(base_url=url, session=session, timeout=30)
        report.cases[label] += 1
        report.statuses[(label, response.status_code)] += 1
        valid = True
        try:
            case.validate_response(response, excluded_checks=excluded)
        except FailureGroup as group:
            valid = False
            for failure in group.exceptions:
                report.failures.append((_code(failure), label, str(failure)))
        except Failure as failure:
            valid = False
            report.failures.append((_code(failure), label, str(failure)))
        if response.status_code == 200:  # served, so logged: even when the answer is wrong
            _acknowledge(case, response.json() if valid else None, is_batch, batches, report)

    if seed is not None:
        one = hypothesis.seed(seed)(one)
    one()


def _code(failure: Failure) -> str:
    return getattr(failure, "code", "ST901")


def _acknowledge(case, answer: Any, is_batch: bool, batches: _Batches, report: Report) -> None:
    """Count what a 200 acknowledged: one Step per served /next|/last or batch step."""
    label = case.operation.label
    if label.startswith(("POST /next/", "POST /last/")):
        message = label.split("/")[1]
        user = _integer(case.path_parameters["user"])
        body = case.body
        report.acknowledged[(message, user, _integer(body["track"]), float(body["time"]))] += 1
    elif is_batch and answer is not None:  # a broken answer is reported, not read
        steps = case.body["steps"]
        results = answer["results"]
        if len(results) != len(steps):
            report.failures.append((BATCH, label, f"{len(results)} results for {len(steps)} steps"))
            return
        must_fail = batches.expected_errors(case.path_parameters["shard"], steps)
        for step, result, bad in zip(steps, results, must_fail, strict=True):
            if ("error" in result) != bad:
                report.failures.append(
                    (BATCH, label, f"step {step!r} answered {result!r}; error expected: {bad}")
                )
            elif not bad:
                message = step.get("message", "next")
                key = (
                    message,
                    _integer(step["user"]),
                    _integer(step["track"]),
                    float(step["time"]),
                )
                report.acknowledged[key] += 1

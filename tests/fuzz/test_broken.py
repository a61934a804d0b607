"""The fuzzer can fail: the harness of test_fuzz.py against a replica (real gunicorn, real Redis)
whose app has one endpoint deliberately broken (broken.py) must report exactly that kind of
failure, on the broken operation, within the same bounded budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.stack import LocalStack

from .harness import fuzz

REPO = Path(__file__).resolve().parents[2]
CASES = 50

BROKEN = {  # kind -> (the operation fuzzed, the failure codes it must raise, lost lines?)
    # a 500 is a server error (ST101) and a status the document does not list (ST103)
    "server_error": ("POST /next/{user}", {"ST101", "ST103"}, False),
    "schema": ("POST /last/{user}", {"ST108"}, False),  # a body that breaks its schema
    "lost_line": ("POST /batch/{shard}", set(), True),  # every answer right; a line missing
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_endpoint_is_caught(kind, world_dir, sticky_experiments, tmp_path):
    operation, codes, loses_lines = BROKEN[kind]
    env = {"BOTIFY_BROKEN": kind, "PYTHONPATH": str(REPO)}
    with LocalStack(world_dir, sticky_experiments, tmp_path / "logs", replicas=1, nginx=False,
                    env=env, target="tests.fuzz.broken:create_app()") as stack:  # fmt: skip
        report = fuzz(stack.url, stack.log_dir, CASES, operations=[operation])
    summary = report.summary()
    print(f"\n{kind}: {summary}\n{report.problems(limit=1)}")
    assert {code for code, _, _ in report.failures} == codes, report.problems()
    assert bool(report.lost) == loses_lines, summary
    assert not report.unexpected and not report.invalid, report.problems()

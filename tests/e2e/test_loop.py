"""The whole closed loop (`python -m demo`) at a tiny size: every stage feeds the next."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARMS = {"C", "T1", "T2", "T3"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("loop") / "run"
    cmd = [
        sys.executable, "-m", "demo", "--run-dir", str(run_dir), "--quiet",
        "--tracks", "2000", "--users", "200", "--dim", "16",
        "--collect-episodes", "1500", "--ab-episodes", "800", "--processes", "2",
        "--epochs", "1", "--seed", "7",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_world_and_both_days_of_traffic(tiny_run):
    for name in ("tracks.json", "tracks.npy", "users.json"):
        assert (tiny_run / "world" / name).stat().st_size > 0
    for day in ("day1-sim.json", "day2-sim.json"):
        assert json.loads((tiny_run / day).read_text())


def test_training_produced_lists_that_were_deployed(tiny_run):
    lines = (tiny_run / "recommendations_core.json").read_text().splitlines()
    lists = [json.loads(line) for line in lines]
    assert lists and all(len(row["tracks"]) > 0 for row in lists)
    metrics = json.loads((tiny_run / "model" / "metrics.json").read_text())
    assert metrics
    log = (tiny_run / "logs" / "deploy.log").read_text()
    assert "core" in log


def test_report_has_all_four_arms(tiny_run):
    report = tiny_run / "report"
    for name in ("report.md", "effects.csv", "report.json", "ab_test.png"):
        assert (report / name).stat().st_size > 0, name
    events = pd.read_parquet(tiny_run / "data" / "all")
    assert len(events) > 0
    text = (report / "report.md").read_text()
    for arm in ARMS:
        assert f"| {arm}" in text or f"{arm} " in text, arm
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["model_metrics"]


def test_stack_left_no_processes(tiny_run):
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tiny_run) not in out


def test_a_failing_step_names_itself_and_its_log(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "demo", "--run-dir", str(run_dir), "--quiet",
        "--tracks", "500", "--users", "50", "--dim", "8", "--experiments", "no-such-file.yml",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "step 'stack' failed" in proc.stderr
    assert str(run_dir / "logs" / "stack.log") in proc.stderr
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(run_dir) not in out  # nothing left running

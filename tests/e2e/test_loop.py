"""The whole closed loop (`python -m demo`) at a tiny size: every stage feeds the next."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
TREATMENTS = {"T1", "T2", "T3", "T4"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("loop") / "run"
    cmd = [
        sys.executable, "-m", "demo", "--run-dir", str(run_dir), "--quiet",
        "--tracks", "2000", "--users", "200", "--dim", "16",
        "--collect-episodes", "1100", "--ab-episodes", "800", "--processes", "2",
        "--epochs", "1", "--seed", "7", "--ceiling-sessions", "50",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_world_and_both_days_of_traffic(tiny_run):
    for name in ("tracks.json", "tracks.npy", "users.json"):
        assert (tiny_run / "world" / name).stat().st_size > 0
    day1 = json.loads((tiny_run / "day1-sim.json").read_text())
    day2 = json.loads((tiny_run / "day2-sim.json").read_text())
    assert day1["days"][0]["sessions"] == 2200
    assert day2["days"][0]["sessions"] == 1600
    assert day1["transport"] == "batch" and day1["steps"] > 2200


def test_day_one_ran_the_course_collection_and_trained_the_ab_model_on_it(tiny_run):
    """Day 1 as the course's seminar 2 collected it: TopPop over the top 10, 100 and 1,000
    tracks, a third of the users each, no model; the A/B day's CORE learns from all of it."""
    events = pd.read_parquet(tiny_run / "data" / "all")
    day1 = events[events["exp_TOP_POP"].notna()]
    assert set(day1["exp_TOP_POP"]) == {"T1", "T2", "T3"}
    assert day1["exp_AB"].isna().all()
    # each arm plays only its top-k (by the catalog's popularity: T1's ten tracks are T2's first)
    served = day1[day1["message"] == "next"].dropna(subset=["recommendation"])
    played = served.groupby("exp_TOP_POP")["recommendation"].nunique()
    assert played["T1"] <= 10 < played["T2"] <= 100 < played["T3"] <= 1000
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    [trained] = manifest["trained"]
    assert trained["tag"] == "" and trained["dataset"]["plays"] == len(day1)
    counts = {row["count"]: row for row in manifest["day1_dataset_vs_seed"]}
    assert set(counts) == {"rows", "interactions", "tracks"}
    assert counts["rows"]["ours"] == len(day1) and counts["rows"]["seed"] == 2_923_898


def test_training_produced_lists_and_a_model_that_went_live(tiny_run):
    lines = (tiny_run / "train" / "recommendations_core.json").read_text().splitlines()
    lists = [json.loads(line) for line in lines]
    assert lists and all(len(row["tracks"]) > 0 for row in lists)
    metrics = json.loads((tiny_run / "train" / "model" / "metrics.json").read_text())
    assert 0 <= metrics["test"]["CORE"]["recall@10"] <= 1
    assert metrics["test"]["CORE"]["recall@10"] > metrics["test"]["Pop"]["recall@10"]
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    version = manifest["ab_days"][0]["version"]
    # deploy printed the version it switched on, and the journal holds it with the model
    assert (tiny_run / "logs" / "deploy.log").read_text().split()[-1] == version
    assert (tiny_run / "journal" / "core" / "ACTIVE").read_text().strip() == version
    assert (tiny_run / "journal" / "core" / version / "model.npz").stat().st_size > 0


def test_report_compares_every_arm_with_control(tiny_run):
    report = tiny_run / "report"
    for name in ("report.md", "effects.csv", "report.json", "ab_test.png"):
        assert (report / name).stat().st_size > 0, name
    events = pd.read_parquet(tiny_run / "data" / "all")
    assert set(events["exp_AB"].dropna()) == {"C"} | TREATMENTS
    data = json.loads((report / "report.json").read_text())
    effects = data["effects"]
    assert {e["arm"] for e in effects} == TREATMENTS
    assert all(e["control_users"] > 10 and e["treatment_users"] > 10 for e in effects)
    # CUPED (day 1 is the pre-period) and the sequential view by default, said in the header
    assert data["cuped"]["enabled"]
    # day 1 ran its own experiment, salted apart from AB: an untreated pre-period (the report
    # would skip CUPED for a metric whose pre-period means differ between the AB arms)
    decision = [e for e in effects if e["metric"] == "mean_time_per_session"]
    assert all(e["method"] == "cuped" for e in decision)
    assert len(data["sequential"]["looks"]) == 10 and not any(e["sequential"] for e in effects)
    # the seed's effects beside ours, each with a verdict
    seed = {row["arm"]: row for row in data["reference"]}
    assert data["reference_label"] == "seed" and set(seed) == {"T1", "T2", "T3"}
    assert seed["T1"]["reference_pct"] == 40.6 and seed["T1"]["effect_pct"] is not None
    assert "## Against the seed" in (report / "report.md").read_text()
    header = (report / "report.md").read_text().split("\n\n")[1]
    assert "CUPED: on, by default where a pre-period exists" in header
    assert "sequential view: on" in header and "config/experiments.yml" in header
    assert {g["arm"] for g in data["guardrails"]} == TREATMENTS
    assert (report / "sequential.png").stat().st_size > 0
    ceiling = json.loads((tiny_run / "ceiling-day2.json").read_text())
    oracle, random = (ceiling["agents"][a]["mean_time_per_session"] for a in ("oracle", "random"))
    assert oracle > random > 0
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["model_metrics"]["test"]["CORE"]


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or environment names `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in seen:
            found.append(int(entry.name))
    return found


def test_stack_left_no_processes(tiny_run):
    # replicas carry the run folder in their environment (BOTIFY_LOG_DIR), nginx in its arguments
    assert processes_mentioning(str(tiny_run)) == []
    redis_pid = json.loads((tiny_run / "manifest.json").read_text())["redis_pid"]
    assert not Path(f"/proc/{redis_pid}").exists()


def test_a_failing_step_names_itself_and_its_log(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "demo", "--run-dir", str(run_dir), "--quiet",
        "--tracks", "500", "--users", "50", "--dim", "8", "--experiments", "no-such-file.yml",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "step 'config' failed: stack.experiments" in proc.stderr  # before any step ran
    assert "no-such-file.yml" in (run_dir / "logs" / "config.log").read_text()
    assert str(run_dir / "logs" / "config.log") in proc.stderr
    assert processes_mentioning(str(run_dir)) == []  # nothing left running


def test_a_stack_that_cannot_start_names_its_log(tmp_path):
    experiments = tmp_path / "unknown.yml"
    experiments.write_text(
        "experiments:\n  - name: COLLECT\n    arms:\n      - {name: C, recommender: no_such}\n"
    )
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "demo", "--run-dir", str(run_dir), "--quiet",
        "--tracks", "500", "--users", "50", "--dim", "8",
        "--collect-experiments", str(experiments),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "step 'stack' failed" in proc.stderr
    assert str(run_dir / "logs" / "stack-day1.log") in proc.stderr
    assert processes_mentioning(str(run_dir)) == []  # nothing left running

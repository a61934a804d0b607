"""The demo runs any experiments file (issue 23, item 6): one whose arms read no list set (nothing
to train), and one with only the course's 2026 arms (item lists trained by the zoo or given in the
course's format, user lists of the course's shape), each as a tiny whole loop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from .test_loop import ROOT, processes_mentioning

TINY = ["--quiet", "--tracks", "2000", "--users", "200", "--dim", "16",
        "--collect-episodes", "600", "--ab-episodes", "800", "--processes", "2", "--seed", "7",
        "--ceiling-sessions", "0", "--collect-experiments",
        str(ROOT / "config" / "experiments-collect-2026.yml")]  # fmt: skip


def run_demo(run_dir: Path, *extra: str) -> None:
    cmd = [sys.executable, "-m", "demo", "--run-dir", str(run_dir), *TINY, *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def write_experiments(path: Path, name: str, arms: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"route": name, "experiments": [{"name": name, "arms": arms}]}))
    return path


@pytest.fixture(scope="module")
def catalog_only_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("catalog-only")
    experiments = write_experiments(folder / "experiments.yml", "STICKY", [
        {"name": "C", "recommender": "sticky_artist"},
        {"name": "T1", "recommender": "sticky_artist_mixed"},
        {"name": "T2", "recommender": "sticky_artist_2026"},
    ])  # fmt: skip
    run_demo(folder / "run", "--experiments", str(experiments))
    return folder / "run"


def test_an_experiments_file_without_list_arms_runs_with_nothing_to_train(catalog_only_run):
    manifest = json.loads((catalog_only_run / "manifest.json").read_text())
    assert manifest["trained"] == [] and manifest["ab_days"][0].get("list_sets") is None
    assert not list((catalog_only_run / "logs").glob("deploy*.log"))
    report = json.loads((catalog_only_run / "report" / "report.json").read_text())
    assert {e["arm"] for e in report["effects"]} == {"T1", "T2"}
    assert not report.get("reference")  # the seed's effects are of another experiment's arms
    events = pd.read_parquet(catalog_only_run / "data" / "all")
    assert not events.loc[events["exp_STICKY"].notna(), "fallback"].any()
    assert processes_mentioning(str(catalog_only_run)) == []


@pytest.fixture(scope="module")
def course_2026_run(tmp_path_factory) -> tuple[Path, dict[int, list[int]]]:
    """C: i2i over SasRec-I2I lists given in the course's file format; T1: i2i over LightFM-I2I
    lists the zoo trains; T2: user lists of the course's shape (some users, 200 tracks each)
    served by indexed with a Random fallback."""
    folder = tmp_path_factory.mktemp("course-2026")
    rng = np.random.default_rng(3)
    with open(folder / "sasrec_i2i.jsonl", "w") as f:
        for item in range(2000):
            neighbours = rng.choice(2000, 10, replace=False).tolist()
            f.write(json.dumps({"item_id": item, "recommendations": neighbours}) + "\n")
    hstu = {u: rng.choice(2000, 200, replace=False).tolist() for u in range(0, 200, 2)}
    with open(folder / "hstu_recommendations.json", "w") as f:
        for user, tracks in hstu.items():
            f.write(json.dumps({"user": user, "tracks": tracks}) + "\n")
    experiments = write_experiments(folder / "experiments.yml", "HSTU", [
        {"name": "C", "recommender": "i2i", "params": {"lists": "sasrec_i2i"}},
        {"name": "T1", "recommender": "i2i", "params": {"lists": "lightfm_i2i"}},
        {"name": "T2", "recommender": "indexed", "params": {"lists": "hstu", "fallback": "random"}},
    ])  # fmt: skip
    config = yaml.safe_load((ROOT / "config" / "demo.yml").read_text())
    config["zoo"]["epochs"] = {"lightfm_i2i": 2}
    (folder / "demo.yml").write_text(yaml.safe_dump(config))
    run_demo(folder / "run", "--config", str(folder / "demo.yml"), "--experiments",
             str(experiments), "--lists", f"sasrec_i2i={folder / 'sasrec_i2i.jsonl'}",
             "--lists", f"hstu={folder / 'hstu_recommendations.json'}")  # fmt: skip
    return folder / "run", hstu


def test_the_2026_arms_get_their_lists_trained_or_given_and_go_live(course_2026_run):
    run, _ = course_2026_run
    manifest = json.loads((run / "manifest.json").read_text())
    (trained,) = manifest["trained"]
    sets = trained["list_sets"]
    assert set(sets) == {"sasrec_i2i", "lightfm_i2i", "hstu"}
    assert sets["sasrec_i2i"]["source"].endswith("sasrec_i2i.jsonl")
    assert sets["lightfm_i2i"]["source"] == "trainer zoo lightfm_i2i"
    assert sets["lightfm_i2i"]["metrics"]["kind"] == "items"
    for name, deployed in sets.items():  # journaled, so the keeper can restore each
        assert (run / "journal" / name / "ACTIVE").read_text().strip() == deployed["version"]
    assert (run / "journal" / "sasrec_i2i" / sets["sasrec_i2i"]["version"] / "items.jsonl").exists()
    effects = json.loads((run / "report" / "report.json").read_text())["effects"]
    assert {e["arm"] for e in effects} == {"T1", "T2"}


def test_the_2026_arms_serve_from_their_lists(course_2026_run):
    run, hstu = course_2026_run
    events = pd.read_parquet(run / "data" / "all")
    day2 = events[events["exp_HSTU"].notna() & (events["message"] == "next")]
    by_arm = dict(tuple(day2.groupby("exp_HSTU")))
    assert by_arm["C"]["fallback"].mean() < 0.01  # every track has a list of 10
    # user lists: users with one are served from it, the others by Random, and the log says so
    t2 = by_arm["T2"]
    listed = t2["user"].isin(list(hstu))
    assert listed.any() and (~listed).any()
    assert not t2.loc[listed, "fallback"].any() and t2.loc[~listed, "fallback"].all()
    served = zip(t2.loc[listed, "user"], t2.loc[listed, "recommendation"], strict=True)
    assert all(track in hstu[user] for user, track in served)


def test_grading_runs_the_loop_twice_and_the_runs_agree(course_2026_run, tmp_path):
    """`python -m demo.grade`: two runs from fresh Redis on the run's lists, same seed, the same
    effects to the last digit, so the course's rule accepts; ab_result.json in its schema."""
    run, _ = course_2026_run
    grade = tmp_path / "grade"
    config = run / "config.yml"  # the run's own experiments file and given lists
    settings = yaml.safe_load(config.read_text())
    cmd = [sys.executable, "-m", "demo.grade", "--experiments", settings["stack"]["experiments"],
           "--seed", "11", "--episodes", "150", "--processes", "1", "--from-run", str(run),
           "--run-dir", str(grade), "--quiet"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    assert "ACCEPTED" in proc.stdout
    saved = json.loads((grade / "reproducibility.json").read_text())
    assert saved["accepted"] and [r["seed"] for r in saved["runs"]] == [11, 11]
    firsts = [json.loads((grade / f"run-{i}" / "report" / "ab_result.json").read_text())
              for i in (1, 2)]  # fmt: skip
    replayed = [[r for r in f["all_effects"] if r["metric"] != "mean_request_latency"]
                for f in firsts]  # fmt: skip
    assert replayed[0] == replayed[1]  # replayed exactly: every metric but the latency
    document = json.loads((grade / "ab_result.json").read_text())
    assert list(document) == ["all_effects"] and document == firsts[0]
    assert {row["treatment"] for row in document["all_effects"]} == {"T1", "T2"}
    assert processes_mentioning(str(grade)) == []

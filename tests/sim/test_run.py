from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sim import run
from sim.config import load_config


def invoke(argv):
    """`python -m sim.run ARGV` in this process."""
    return CliRunner().invoke(run.cli, [str(a) for a in argv])


@pytest.fixture
def config_file(tmp_path, small_world_dir):
    path = tmp_path / "env.yml"
    path.write_text(f"world:\n  dir: {small_world_dir}\nseed: 5\n")
    return path


def summary(tmp_path, config_file, *args, name="s.json"):
    out = tmp_path / name
    argv = ["--episodes", "40", "--config", str(config_file), "--days", "2",
            "--summary-json", str(out), *args]  # fmt: skip
    done = invoke(argv)
    assert done.exit_code == 0, done.output
    return json.loads(out.read_text()), done.stdout


def test_single_same_seed_same_sessions(tmp_path, config_file):
    a, out = summary(tmp_path, config_file, "single", "--recommender", "sticky_artist", "--seed", 3)
    b, _ = summary(tmp_path, config_file, "single", "--recommender", "sticky_artist", "--seed", 3)
    c, _ = summary(tmp_path, config_file, "single", "--recommender", "sticky_artist", "--seed", 4)
    assert a["sessions_sha256"] == b["sessions_sha256"] != c["sessions_sha256"]
    assert [d["day"] for d in a["days"]] == [1, 2]
    assert all(d["sessions"] == 40 for d in a["days"])
    assert set(a["days"][0]) == {
        "day",
        "sessions",
        "time_mean",
        "time_sem",
        "tracks_mean",
        "tracks_sem",
    }
    assert "| day | sessions | time mean | time sem | tracks mean | tracks sem |" in out


def test_multi_distinct_reproducible_streams(tmp_path, config_file):
    args = ("multi", "--processes", "2", "--recommender", "dummy", "--seed", "3")
    a, _ = summary(tmp_path, config_file, *args)
    b, _ = summary(tmp_path, config_file, *args)
    assert a["sessions_sha256"] == b["sessions_sha256"]
    assert a["days"][0]["sessions"] == 80
    config = load_config(config_file)
    parts = [run.simulate(run.Job(config, "dummy", 20, 1, 3, i, 2)) for i in range(2)]
    assert parts[0] != parts[1]  # the processes do not replay each other's sessions


def test_days_default_to_one_without_a_terminal(tmp_path, config_file, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    out = tmp_path / "s.json"
    argv = ["--episodes", "5", "--config", str(config_file), "--summary-json", str(out),
            "single", "--recommender", "oracle", "--seed", "1"]  # fmt: skip
    assert invoke(argv).exit_code == 0
    assert [d["day"] for d in json.loads(out.read_text())["days"]] == [1]


def test_missing_world_is_generated_from_the_config(tmp_path):
    config = tmp_path / "env.yml"
    world = tmp_path / "world"
    config.write_text(
        f"world: {{dir: {world}, seed: 3, tracks: 300, users: 20, dim: 4}}\nseed: 1\n"
    )
    argv = ["--episodes", "3", "--config", str(config), "--days", "1",
            "single", "--recommender", "random"]  # fmt: skip
    done = invoke(argv)
    assert done.exit_code == 0 and "generating world seed=3" in done.stderr
    assert (world / "tracks.npy").exists()


def test_remote_errors_exit_1(tmp_path, config_file):
    argv = ["--episodes", "1", "--config", str(config_file), "--url", "http://127.0.0.1:9",
            "--days", "1", "single", "--recommender", "remote"]  # fmt: skip
    config_file.write_text(config_file.read_text() + "remote: {retries: 0}\n")
    done = invoke(argv)
    assert done.exit_code == 1 and "error: POST http://127.0.0.1:9/batch/" in done.stderr


def test_unknown_config_keys_are_rejected(tmp_path):
    path = tmp_path / "env.yml"
    path.write_text("user_model: {session_budgte: 3}\n")
    with pytest.raises(ValueError, match="session_budgte"):
        load_config(path)


def test_multi_processes_own_disjoint_users(config_file):
    """Process i of P only simulates users u with u % P == i (no user in two processes at once)."""
    config = load_config(config_file)
    for i in range(3):
        sessions = run.simulate(run.Job(config, "dummy", 30, 1, 3, process=i, processes=3))
        users = {user for _, user, _, _ in sessions}
        assert len(users) > 5 and all(u % 3 == i for u in users)

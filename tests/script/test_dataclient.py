"""dataclient: docker command construction (no engine here), local copies, running as a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from script import dataclient

REPO = Path(__file__).resolve().parents[2]
PS = '{{.Names}}\t{{.Label "com.docker.compose.container-number"}}'


class FakeDocker:
    """Answers docker commands like an engine with the given containers; records every call."""

    def __init__(self, containers: dict[str, int], env: dict[str, str] | None = None):
        self.containers, self.env, self.calls = containers, env or {}, []

    def __call__(self, command):
        self.calls.append(list(command))
        if command[:2] == ["docker", "ps"]:
            return "".join(f"{name}\t{n}\n" for name, n in self.containers.items())
        if command[:2] == ["docker", "inspect"]:
            return "PATH=/usr/bin\n" + "".join(f"{k}={v}\n" for k, v in self.env.items())
        return ""


def test_docker_commands(tmp_path):
    docker = FakeDocker(
        {"botify-recommender-2": 2, "botify-recommender-1": 1}, {"BOTIFY_LOG_DIR": "/logs/"}
    )
    pulled = dataclient.pull_from_docker(
        tmp_path / "pull", 2, project="botify", run=docker, echo=False
    )
    assert docker.calls[0] == [
        "docker", "ps", "--filter", "label=com.docker.compose.service=recommender",
        "--filter", "label=com.docker.compose.project=botify", "--format", PS,
    ]  # fmt: skip
    copies = [c for c in docker.calls if c[:2] == ["docker", "cp"]]
    assert copies == [
        ["docker", "cp", "botify-recommender-1:/logs/.", str(tmp_path / "pull" / "recommender-1")],
        ["docker", "cp", "botify-recommender-2:/logs/.", str(tmp_path / "pull" / "recommender-2")],
    ]
    assert pulled == [tmp_path / "pull" / "recommender-1", tmp_path / "pull" / "recommender-2"]


def test_docker_log_dir_default_and_override(tmp_path):
    docker = FakeDocker({"b-recommender-1": 1})
    dataclient.pull_from_docker(tmp_path, None, run=docker, echo=False)
    assert docker.calls[-1][2] == "b-recommender-1:/app/log/."
    docker = FakeDocker(
        {"botify-recommender-1": 1, "botify-recommender-2": 2}, {"BOTIFY_LOG_ROOT": "/logs"}
    )
    dataclient.pull_from_docker(tmp_path, None, run=docker, echo=False)
    assert [c[2] for c in docker.calls if c[1] == "cp"] == [
        "botify-recommender-1:/logs/recommender-1/.",
        "botify-recommender-2:/logs/recommender-2/.",
    ]  # the compose file's shared volume: each replica's own folder
    docker = FakeDocker({"b-recommender-1": 1}, {"BOTIFY_LOG_DIR": "/x"})
    dataclient.pull_from_docker(tmp_path, 1, log_dir="/data/log", run=docker, echo=False)
    assert docker.calls[-1][2] == "b-recommender-1:/data/log/."
    assert not any(c[1] == "inspect" for c in docker.calls)


def test_docker_too_few_containers(tmp_path):
    with pytest.raises(dataclient.PullError, match="asked for 3 replica"):
        dataclient.pull_from_docker(tmp_path, 3, run=FakeDocker({"r-1": 1}), echo=False)
    with pytest.raises(dataclient.PullError, match="no running container"):
        dataclient.pull_from_docker(tmp_path, None, run=FakeDocker({}), echo=False)


def test_docker_not_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(dataclient.shutil, "which", lambda name: None)
    done = CliRunner().invoke(dataclient.cli, ["--recommender", "2", "log2local", str(tmp_path)])
    assert done.exit_code == 1
    err = done.stderr
    assert "'docker' is not installed" in err and "--local-logs LOGROOT" in err


def make_log_root(root: Path) -> None:
    for replica in (1, 2):
        folder = root / f"recommender-{replica}"
        folder.mkdir(parents=True)
        for name in ("events-10.jsonl", "events-10.jsonl.1", "events-10.jsonl.2"):
            (folder / name).write_text(f"{replica} {name}\n")


def test_local_copies_rotated_files(tmp_path):
    make_log_root(tmp_path / "root")
    pulled = dataclient.pull_from_local(tmp_path / "pull", tmp_path / "root")
    assert [p.name for p in pulled] == ["recommender-1", "recommender-2"]
    rotated = tmp_path / "pull" / "recommender-2" / "events-10.jsonl.2"
    assert rotated.read_text() == "2 events-10.jsonl.2\n"
    assert len(list((tmp_path / "pull").rglob("events-*"))) == 6
    with pytest.raises(dataclient.PullError, match="missing recommender-3"):
        dataclient.pull_from_local(tmp_path / "pull", tmp_path / "root", replicas=3)
    with pytest.raises(dataclient.PullError, match="no log root"):
        dataclient.pull_from_local(tmp_path / "pull", tmp_path / "missing")


def test_runs_as_a_file_from_the_repo_root(tmp_path):
    make_log_root(tmp_path / "root")
    command = [sys.executable, "script/dataclient.py", "--recommender", "2"]
    command += ["--local-logs", str(tmp_path / "root"), "log2local", str(tmp_path / "pull")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "2 replica folder(s), 6 file(s)" in result.stdout
    usage = subprocess.run(
        [sys.executable, "script/dataclient.py", "log2local"], cwd=REPO, capture_output=True,
        text=True,
    )  # fmt: skip
    assert usage.returncode == 2 and "Missing argument 'LOCAL_DIR'" in usage.stderr


def test_export_subcommand(tmp_path):
    folder = tmp_path / "logs" / "recommender-1"
    folder.mkdir(parents=True)
    from tests.script.test_event_parser import line

    (folder / "events-1.jsonl").write_bytes(line() + b"\n")
    done = CliRunner().invoke(
        dataclient.cli, ["export", str(tmp_path / "logs"), "--out", str(tmp_path / "ds")]
    )
    assert done.exit_code == 0 and "dataset events  1" in done.stdout

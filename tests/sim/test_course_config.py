"""The course's own env.yml (sim/config/env.yml of the course repository) runs `python -m sim.run`
unchanged: its three sections map onto Botify's config; what cannot be mapped fails clearly."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sim import run
from sim.config import load_config
from sim.user_model import UserModelParams
from tests.sim.fake_service import FakeService

# the course's file as it ships (paths relative to where the simulator runs), plus defaults
COURSE_ENV = """\
track_catalog_config:
  track_meta_path: data/tracks.json
  track_embeddings_path: data/{embeddings}

user_catalog_config:
  user_catalog_path: data/users.json
  default_consume_bias: 4.5
  default_session_budget: 6

remote_recommender_config:
  host: 127.0.0.1
  port: {port}
"""


@pytest.fixture
def course_dir(tmp_path, small_world_dir, monkeypatch) -> Path:
    """A course checkout's layout: data/tracks.json, data/embeddings.npy, data/users.json."""
    data = tmp_path / "course" / "data"
    data.mkdir(parents=True)
    shutil.copy(small_world_dir / "tracks.json", data / "tracks.json")
    shutil.copy(small_world_dir / "tracks.npy", data / "embeddings.npy")  # the 2026 file name
    shutil.copy(small_world_dir / "users.json", data / "users.json")
    monkeypatch.chdir(tmp_path / "course")
    monkeypatch.delenv("BOTIFY_URL", raising=False)
    return tmp_path / "course"


def course_env(course_dir: Path, port: int = 5001, embeddings: str = "embeddings.npy") -> Path:
    path = course_dir / "env.yml"
    path.write_text(COURSE_ENV.format(port=port, embeddings=embeddings))
    return path


def test_the_course_env_maps_onto_botifys_config(course_dir):
    config = load_config(course_env(course_dir))
    assert config.remote.url == "http://127.0.0.1:5001"
    assert config.world_files == (
        Path("data/tracks.json"), Path("data/embeddings.npy"), Path("data/users.json")
    )  # fmt: skip
    assert config.user_model == UserModelParams(consume_bias=4.5, session_budget=6)
    world = config.load_world()
    assert world.embeddings.shape == np.load("data/embeddings.npy").shape


def test_sim_run_with_the_course_env_talks_to_the_remote_it_names(course_dir):
    with FakeService(next_track=lambda track: (track + 1) % 10) as service:
        port = int(service.url.rsplit(":", 1)[1])
        argv = ["--episodes", "5", "--config", str(course_env(course_dir, port)), "--days", "1",
                "single", "--recommender", "remote", "--seed", "42", "--transport", "request"]  # fmt: skip
        done = CliRunner().invoke(run.cli, argv)
        assert done.exit_code == 0, done.output
    paths = [path for path, _ in service.requests]
    assert sum(p.startswith("/last/") for p in paths) == 5 and any(
        p.startswith("/next/") for p in paths
    )
    assert "## remote: 5 sessions" in done.stdout


def test_the_course_env_and_botifys_run_the_same_sessions(course_dir, small_world_dir, tmp_path):
    """The same world and defaults through either file: the same sessions, digest for digest."""
    botify_env = tmp_path / "botify.yml"
    botify_env.write_text(textwrap.dedent(f"""\
        world: {{dir: {small_world_dir}}}
        user_model: {{consume_bias: 4.5, session_budget: 6}}
        """))  # fmt: skip
    shutil.copy(small_world_dir / "tracks.npy", course_dir / "data" / "tracks.npy")
    digests = []
    for config in (course_env(course_dir, embeddings="tracks.npy"), botify_env):
        out = tmp_path / f"{config.stem}.json"
        argv = ["--episodes", "30", "--config", str(config), "--days", "1", "--summary-json",
                str(out), "single", "--recommender", "sticky_artist", "--seed", "3"]  # fmt: skip
        assert CliRunner().invoke(run.cli, argv).exit_code == 0
        digests.append(json.loads(out.read_text())["sessions_sha256"])
    assert digests[0] == digests[1]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("host:", "hots:"),
            r"remote_recommender_config: unknown keys \['hots'\]",
        ),
        (lambda t: t + "seed: 3\n", r"unknown sections \['seed'\].*cannot be mixed"),
        (
            lambda t: t.replace("  user_catalog_path: data/users.json\n", ""),
            r"missing \['users.json'\]",
        ),
        (
            lambda t: t.replace("default_consume_bias", "default_consume_bais"),
            "default_consume_bais",
        ),
    ],
)
def test_a_course_env_that_cannot_be_mapped_fails_clearly(course_dir, edit, message):
    path = course_env(course_dir)
    path.write_text(edit(path.read_text()))
    with pytest.raises(ValueError, match=message):
        load_config(path)


def test_missing_course_data_is_named(course_dir):
    (course_dir / "data" / "users.json").unlink()
    with pytest.raises(FileNotFoundError, match="data/users.json"):
        load_config(course_env(course_dir)).load_world()


def test_the_2026_generator_keys_are_ignored_and_botify_sections_still_checked(course_dir):
    path = course_env(course_dir)
    path.write_text(
        path.read_text().replace("user_catalog_config:\n", "user_catalog_config:\n  users: 10000\n")
        + "artists_config: {model: x}\n"
    )
    assert load_config(path).remote.url == "http://127.0.0.1:5001"
    botify = course_dir / "botify.yml"
    botify.write_text("world: {dir: data}\nremotes: {}\n")
    with pytest.raises(ValueError, match=r"unknown sections \['remotes'\]"):
        load_config(botify)

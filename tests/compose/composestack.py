"""The compose stack as the compose tests drive it: one compose project of its own (so a stack of
yours is left alone), a free port, a fresh password, the repository's commands on the host.
Used by test_compose.py (`make compose-test`) and test_chaos.py (`make compose-chaos`)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from ops.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
WORLD = {"seed": 42, "tracks": 1000, "users": 600}  # the default 100 dimensions


def say(text: str) -> None:
    print(f"[compose] {text}", flush=True)


class Stack:
    def __init__(self, work: Path, project: str):
        self.work = work
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.world = work / "world"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BOTIFY_")},
            "BOTIFY_PORT": str(self.port),
            "BOTIFY_WORLD": str(self.world),
            "BOTIFY_REDIS_PASSWORD": secrets.token_hex(12),
            "COMPOSE_PROJECT_NAME": project,
        }

    def compose(self, *args: str, timeout: float = 600, check: bool = True, quiet: bool = False):
        command = ["docker", "compose", "-p", self.project, "-f", str(ROOT / "docker-compose.yml")]
        if not quiet:
            say("$ docker compose " + " ".join(args))
        result = subprocess.run(
            [*command, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            pytest.fail(f"docker compose {' '.join(args)} failed:\n{result.stderr[-4000:]}")
        return result

    def host(self, *args: str, timeout: float = 900) -> str:
        """A repository command on the host (the venv's python), its stdout."""
        say("$ " + " ".join(args))
        result = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except OSError:
            return 0, {}

    def post(self, path: str, body: dict) -> int:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    def wait(self, what: str, check, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                logs = self.compose("logs", "--tail", "30", check=False, quiet=True).stdout
                pytest.fail(f"timed out waiting for {what}\n{logs[-6000:]}")
            time.sleep(1)

    def simulate(self, sessions: int, seed: int) -> tuple[int, int]:
        """The simulator through nginx, batch path; returns (sessions, /next steps)."""
        out = self.host(
            "-m", "sim.run", "--episodes", str(sessions), "--world", str(self.world),
            "--url", self.url, "--days", "1", "--batch-size", "512",
            "single", "--recommender", "remote", "--seed", str(seed), "--transport", "batch",
        )  # fmt: skip
        found = re.search(r"## remote: (\d+) sessions, (\d+) steps in ([\d.]+) s", out)
        assert found, out
        say(found.group(0))
        return int(found.group(1)), int(found.group(2))

    def pull(self, replicas: int, name: str, since_ms: int = 0) -> pd.DataFrame:
        """dataclient.py --recommender N log2local, then the exporter. Returns the pulled event
        lines from `since_ms` on (with `fallback` and `experiments` as logged) after checking
        that the exported dataset holds exactly them and each folder only its replica's."""
        pulled = self.work / name
        self.host("script/dataclient.py", "--project", self.project, "--recommender", str(replicas),
                  "log2local", str(pulled))  # fmt: skip
        rows = []
        for folder in sorted(pulled.iterdir()):
            files = sorted(path.name for path in folder.iterdir())
            say(f"  {folder.name}: {len(files)} file(s) {files[:4]}")
            for path in folder.glob("events-*.jsonl*"):
                rows += [{**json.loads(line), "folder": folder.name} for line in path.open()]
        events = pd.DataFrame(rows)
        assert (events["replica"] == events["folder"]).all()  # named after its compose number
        self.host("-m", "script.export", str(pulled), "--out", str(self.work / f"{name}.parquet"))
        exported = pd.read_parquet(self.work / f"{name}.parquet", columns=["user", "replica"])
        assert len(exported) == len(events)
        events = events[events["timestamp"] >= since_ms].copy()
        events["arm"] = events["experiments"].map(lambda arms: arms["AB"])
        return events

    def redis_cli(self, *args: str) -> str:
        """redis-cli in the redis container, authenticated from its own environment."""
        command = 'REDISCLI_AUTH="$BOTIFY_REDIS_PASSWORD" redis-cli "$@"'
        return self.compose("exec", "-T", "redis", "sh", "-c", command, "redis-cli", *args).stdout

    def trainer_image(self) -> None:
        index = os.environ.get("TORCH_INDEX")
        if index:
            command = [
                "docker", "build", "--network", "host", "--build-arg", f"TORCH_INDEX={index}",
                "-f", "trainer/Dockerfile", "-t", "botify-trainer", ".",
            ]  # fmt: skip
            say("$ " + " ".join(command))
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
            if result.returncode != 0:
                pytest.fail(f"trainer image build failed:\n{result.stderr[-4000:]}")
        else:
            built = self.compose("--profile", "trainer", "build", "trainer", timeout=3600,
                                 check=False)  # fmt: skip
            if built.returncode != 0:
                pytest.fail(
                    "trainer image build failed; where builds cannot reach the torch index, set "
                    f"TORCH_INDEX to a local one (README):\n{built.stderr[-4000:]}"
                )

    def world_files(self) -> None:
        """The small world on the host, readable by the replicas (uid 10001) through the bind."""
        self.host("-m", "sim.world", "--out", str(self.world),
                  *(f"--{k}={v}" for k, v in WORLD.items()))  # fmt: skip
        for path in [self.world, *self.world.iterdir()]:
            mode = path.stat().st_mode | stat.S_IRGRP | stat.S_IROTH | stat.S_IXOTH * path.is_dir()
            path.chmod(mode)


@contextmanager
def compose_stack(project: str) -> Iterator[Stack]:
    """A Stack in a fresh work folder; `down -v` and the folder removed at the end."""
    work = Path(tempfile.mkdtemp(prefix=f"{project}-"))
    work.chmod(0o755)  # the replicas (uid 10001) read the bind-mounted world below it
    running = Stack(work, project)
    try:
        yield running
    finally:
        running.compose("--profile", "trainer", "down", "-v", "--remove-orphans", check=False,
                        timeout=300)  # fmt: skip
        left = running.compose("ps", "-a", "-q", check=False, quiet=True).stdout.strip()
        say(f"down -v: {'nothing left' if not left else 'LEFT: ' + left}")
        shutil.rmtree(work, ignore_errors=True)

"""BOTIFY_KEY_PREFIX set once reaches every side: the trainer deploys under it, the replicas serve
from it, the keeper restores under it (issue 20: the deploy path and the keeper used to ignore it,
so the service waited forever for lists written under `botify:`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import redis

from ops.stack import LocalStack
from tests.stack.conftest import N_TRACKS

PREFIX = "lab-7"  # not the default


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wait_ready(url: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, report = get(url + "/ready")
        if status == 200:
            return report
        assert time.monotonic() < deadline, f"not ready in {timeout:.0f} s: {report}"
        time.sleep(0.2)


def test_a_deploy_under_a_key_prefix_is_served_and_restored(world_dir, tmp_path):
    experiments = tmp_path / "lists.yml"
    experiments.write_text(
        "route: L\nexperiments:\n  - name: L\n    arms:\n"
        "      - {name: C, recommender: sorted_indexed, params: {lists: core}}\n"
    )
    lists = {user: [(user * 7 + i) % N_TRACKS for i in range(20)] for user in range(50)}
    recs = tmp_path / "recs.jsonl"
    recs.write_text("".join(json.dumps({"user": u, "tracks": t}) + "\n" for u, t in lists.items()))
    journal = tmp_path / "journal"
    env = {"BOTIFY_KEY_PREFIX": PREFIX}  # what a user sets, once, for every process
    with LocalStack(world_dir, experiments, tmp_path / "logs", replicas=1, nginx="off",
                    env=env, journal=journal, wait_for="health") as stack:  # fmt: skip
        # the trainer's own command line, as a user runs it
        deployed = subprocess.run(
            [sys.executable, "-m", "trainer", "deploy", "--recs", str(recs),
             "--redis-url", stack.redis_url, "--journal", str(journal)],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr
        version = deployed.stdout.strip()
        report = wait_ready(stack.url)
        assert report["lists"] == {"core": {"active": version, "users": len(lists), "items": 0}}
        client = redis.Redis.from_url(stack.redis_url)
        keys = {key.decode() for key in client.scan_iter(count=1000)}
        assert keys and all(key.startswith(PREFIX + ":") for key in keys), sorted(keys)[:5]
        # served from the deployed lists: a fresh session starts at the list's first track
        for user in (3, 17):
            answer = post(f"{stack.url}/next/{user}", {"track": lists[user][-1] + 1, "time": 0.5})
            assert answer["track"] == lists[user][0]

        client.flushall()  # Redis emptied: the keeper restores the version under the prefix
        assert wait_ready(stack.url)["lists"]["core"]["active"] == version
        assert client.exists(f"{PREFIX}:lists:core:active")
        assert post(f"{stack.url}/next/5", {"track": 0, "time": 1.0})["track"] == lists[5][0]
        client.close()

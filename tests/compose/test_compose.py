"""The compose stack for real, as a user runs it (`make compose-test`; see conftest.py).

One scenario, in order, against its own compose project (so a stack of yours is left alone):
build the images; `up --scale recommender=2`; the simulator through nginx on the batch path;
`script/dataclient.py --recommender 2 log2local`, export: every acknowledged step on disk, each
replica's folder named `recommender-<n>` like its events, each user in one replica's file, both
replicas served; the trainer profile; /ready turns true and the list arms serve from Redis
(`fallback: false`); Redis emptied -> the keeper restores the live version from the journal;
scale to 3 (the new replica gets users, each still on one replica) and back to 2;
`docker compose down -v`. Each step prints what it saw.

TORCH_INDEX=URL builds the trainer image with `docker build --network host --build-arg
TORCH_INDEX=URL` (a local wheel index, README); otherwise compose builds it from the default index.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from .composestack import compose_stack, say

PROJECT = "botify-compose-test"
LIST_ARMS = ("T1", "T2", "T3")  # the list recommenders of config/experiments.yml
SESSIONS = 6000  # day 1: enough liked chains for CORE after the 3-core


@pytest.fixture(scope="module")
def stack():
    with compose_stack(PROJECT) as running:
        yield running


def test_the_compose_stack_end_to_end(stack):
    # -- the images and a small world (the replicas and the simulator read the same files) ------
    started = time.monotonic()
    stack.compose("build", "recommender", timeout=3600)
    stack.trainer_image()
    say(f"images built in {time.monotonic() - started:.0f} s")
    stack.world_files()

    # -- up with two replicas -----------------------------------------------------------------
    stack.compose("up", "-d", "--scale", "recommender=2", timeout=900)
    stack.wait("nginx and both replicas", lambda: stack.get("/health")[0] == 200, timeout=300)
    status, ready = stack.get("/ready")
    say(f"/ready before training: {status} {ready.get('reasons')}")
    assert status == 503 and "list set 'core' has no active version" in ready["reasons"]
    upstream = stack.compose("exec", "-T", "nginx", "cat", "/etc/nginx/botify-upstream.conf").stdout
    say("nginx upstream: " + " | ".join(upstream.split("\n")).strip(" |"))
    assert len(upstream.strip().splitlines()) == 2

    # -- day 1 through nginx: every acknowledged step on disk, one replica per user -----------
    sessions, steps = stack.simulate(SESSIONS, seed=1)
    day1 = stack.pull(2, "day1")
    by_replica = day1.groupby("replica").size().to_dict()
    replicas_per_user = day1.groupby("user")["replica"].nunique()
    say(f"day 1: {len(day1)} events (expected {steps} /next + {sessions} /last), by replica "
        f"{by_replica}, {day1['user'].nunique()} users, the most replicas one user has: "
        f"{replicas_per_user.max()}")  # fmt: skip
    assert len(day1) == steps + sessions
    assert (day1["message"] == "last").sum() == sessions
    assert set(by_replica) == {"recommender-1", "recommender-2"}  # named, both served
    assert replicas_per_user.max() == 1

    # -- the trainer profile, then the list arms serve from Redis ---------------------------------
    started = time.monotonic()
    trained = stack.compose("--profile", "trainer", "run", "--rm", "trainer", timeout=3600)
    said = trained.stdout.splitlines() + trained.stderr.splitlines()
    say(f"trainer ran in {time.monotonic() - started:.0f} s:")
    for line in said:
        if re.search(r"^interactions: |lists? (and a model)?;? ?active|lists -> ", line):
            say("  " + line)
    stack.wait("/ready after the deploy", lambda: stack.get("/ready")[0] == 200, timeout=60)
    ready = stack.get("/ready")[1]
    active = ready["lists"]["core"]["active"]
    say(f"/ready: 200, core {active} with {ready['lists']['core']['users']} users, "
        f"model {ready.get('models', {}).get('core')}")  # fmt: skip
    assert ready["lists"]["core"]["users"] > 100
    listed = {
        json.loads(line)["user"]
        for line in stack.compose("exec", "-T", "keeper", "cat",
                                  f"/journal/core/{active}/lists.jsonl", quiet=True).stdout.splitlines()
    }  # fmt: skip
    assert len(listed) == ready["lists"]["core"]["users"]  # the journal holds the live version

    since = int(time.time() * 1000)
    sessions2, steps2 = stack.simulate(600, seed=2)
    day2 = stack.pull(2, "day2", since)
    nexts = day2[day2["message"] == "next"]
    served = nexts[nexts["arm"].isin(LIST_ARMS) & nexts["user"].isin(listed)]
    say(
        f"day 2: {len(day2)} events; list arms for users with a list: {len(served)} /next, "
        f"fallback {int(served['fallback'].sum())}; per arm fallback rate "
        f"{nexts.groupby('arm')['fallback'].mean().round(3).to_dict()}"
    )
    assert len(day2) == steps2 + sessions2
    assert len(served) > 100 and not served["fallback"].any()
    assert day2.groupby("user")["replica"].nunique().max() == 1

    # -- Redis emptied: the keeper restores the journal's live version ----------------------------
    stack.redis_cli("FLUSHALL")
    stack.wait("the keeper's restore", lambda: stack.get("/ready")[0] == 200, timeout=60)
    again = stack.get("/ready")[1]["lists"]["core"]
    keeper_log = stack.compose("logs", "keeper", quiet=True).stdout
    restores = [
        line.split("WARNING ")[-1] for line in keeper_log.splitlines() if "restored" in line
    ]
    say(f"after FLUSHALL: /ready 200 again, core {again['active']} ({again['users']} users); "
        f"keeper: {restores}")  # fmt: skip
    assert again["active"] == active and again["users"] == len(listed)
    assert f"restored {active}" in keeper_log

    # -- scale to 3: the new replica gets users; each user still on one replica -------------------
    stack.compose("up", "-d", "--scale", "recommender=3", "--no-recreate", timeout=600)
    three = lambda: len(stack.compose(  # noqa: E731
        "exec", "-T", "nginx", "cat", "/etc/nginx/botify-upstream.conf", quiet=True,
    ).stdout.strip().splitlines()) == 3  # fmt: skip
    stack.wait("nginx to take the third replica", three, timeout=180)
    since = int(time.time() * 1000)
    sessions3, steps3 = stack.simulate(600, seed=3)
    day3 = stack.pull(3, "day3", since)
    by_replica = day3.groupby("replica").size().to_dict()
    say(f"3 replicas: {len(day3)} events, by replica {by_replica}")
    assert len(day3) == steps3 + sessions3
    assert set(by_replica) == {"recommender-1", "recommender-2", "recommender-3"}
    assert day3.groupby("user")["replica"].nunique().max() == 1

    # -- and back to 2: nginx drops the removed replica, every request still answered -----------
    stack.compose("up", "-d", "--scale", "recommender=2", "--no-recreate", timeout=600)
    two = lambda: len(stack.compose(  # noqa: E731
        "exec", "-T", "nginx", "cat", "/etc/nginx/botify-upstream.conf", quiet=True,
    ).stdout.strip().splitlines()) == 2  # fmt: skip
    stack.wait("nginx to drop the third replica", two, timeout=180)
    statuses = {stack.post(f"/next/{user}", {"track": 1, "time": 0.5}) for user in range(300)}
    running = stack.compose("ps", "-q", "recommender", quiet=True).stdout.split()
    nginx_log = stack.compose("logs", "nginx", quiet=True).stdout
    changes = [line.split("nginx-upstream: ")[-1] for line in nginx_log.splitlines()
               if "replicas changed" in line]  # fmt: skip
    say(f"back to 2: {len(running)} replicas running, 300 requests -> {statuses}; nginx: {changes}")
    assert len(running) == 2 and statuses == {200} and len(changes) >= 2

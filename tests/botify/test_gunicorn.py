"""The app under a real gunicorn (preloaded, 2 workers) over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from ops.redis_server import free_port

from .conftest import read_events, service_config, user_list
from .test_api import first_user


@pytest.fixture
def gunicorn(redis_url, tracks_json, tmp_path):
    port = free_port()
    config = service_config(redis_url, tracks_json, tmp_path / "log", "recommender-1")
    env = {**os.environ, **{f"BOTIFY_{key}": value for key, value in config.items()}}
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    args += ["--preload", "--graceful-timeout", "5", "botify.app:create_app()"]
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{url}/health", timeout=1)
            break
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"gunicorn did not start: {proc.stderr.read()}")
            time.sleep(0.1)
    try:
        yield proc, url, tmp_path / "log"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_simulator_sessions_over_http_then_graceful_stop(gunicorn, core_lists):
    proc, url, log_dir = gunicorn
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    acknowledged = 0
    user = first_user("T1")
    with requests.Session() as http:
        for _session in range(3):
            track, reward, seen = 7, 1.0, []
            for _ in range(5):
                answer = http.post(f"{url}/next/{user}", json={"track": track, "time": reward})
                assert (
                    answer.status_code == 200
                    and answer.headers["Content-Type"] == "application/json"
                )
                track, reward = answer.json()["track"], 0.8
                seen.append(track)
                acknowledged += 1
            assert seen == user_list(user)[:5]
            last = http.post(
                f"{url}/last/{user}", data=f'{{"track": {track}, "time": 0.0}}', headers=headers
            )
            assert last.json() == {"user": user}
            acknowledged += 1
        assert http.get(f"{url}/ready").status_code == 200
        chunked = http.post(
            f"{url}/next/{user}",
            data=iter([b'{"track": 1, "time": 0.5, "pad": "', b"x" * 100_000, b'"}']),
            headers=headers,
        )
        assert chunked.status_code == 413 and "message" in chunked.json()
        bad = http.post(f"{url}/next/{user}", data='{"track": 1, "time": NaN}', headers=headers)
        assert bad.status_code == 400 and "message" in bad.json()

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    files = sorted(p.name for p in log_dir.iterdir())
    assert files and all(f.startswith("events-") and f.endswith(".jsonl") for f in files)
    assert f"events-{proc.pid}.jsonl" not in files  # the master never writes: workers do
    events = read_events(log_dir)
    assert len(events) == acknowledged
    assert {e["replica"] for e in events} == {"recommender-1"}

"""Running the loop's steps: each a public command in a child process, logged and timed, and the
local stack (`python -m ops.stack up`) as a child that is always stopped."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from demo.settings import ROOT


class StepFailed(RuntimeError):
    def __init__(self, step: str, log: Path, detail: str):
        super().__init__(f"step '{step}' failed: {detail}\n  its log: {log}")
        self.step, self.log = step, log


@dataclass
class Runner:
    run_dir: Path
    quiet: bool = False
    started: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        minutes, seconds = divmod(int(elapsed), 60)  # whole seconds: never "03:60"
        print(f"[{minutes:02d}:{seconds:02d}] {text}", file=sys.stderr, flush=True)

    def run(self, step: str, args: list[str], env: dict | None = None) -> None:
        """Run `python <args>` from the repo root; its output goes to the step's log (and live
        to the terminal unless quiet)."""
        log_path = self.logs / f"{step}.log"
        cmd = [sys.executable, *args]
        self.say(f"{step}: {' '.join(args)}")
        t0 = time.monotonic()
        with open(log_path, "wb") as log:
            log.write(("$ python " + " ".join(args) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
            stream = proc.stdout
            assert isinstance(stream, io.BufferedReader)
            for chunk in iter(lambda: stream.read1(4096), b""):
                log.write(chunk)
                if not self.quiet:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
            rc = proc.wait()
        self.timings[step] = round(time.monotonic() - t0, 1)
        if rc != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise StepFailed(step, log_path, f"exit code {rc}\n    " + "\n    ".join(tail))
        self.say(f"{step}: done in {self.timings[step]:.1f} s")


class Stack:
    """`python -m ops.stack up` as a child process; stopped (whole process group) on exit."""

    def __init__(self, runner: Runner, args: list[str], log_name: str = "stack"):
        self.runner, self.args = runner, args
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log_path = runner.logs / f"{log_name}.log"

    def __enter__(self) -> Stack:
        self.runner.say("stack: python " + " ".join(self.args))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, *self.args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,
        )
        ready = threading.Event()

        def read_stdout() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                self.log.write(raw)
                self.log.flush()
                if line.startswith("READY ") and not ready.is_set():
                    self.url = line.split(None, 1)[1].rstrip("/")
                    ready.set()

        threading.Thread(target=read_stdout, daemon=True).start()
        deadline = time.monotonic() + 120
        while not ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise StepFailed("stack", self.log_path, "the stack did not become ready")
        self.runner.say(f"stack: serving at {self.url}")
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Anything the stack left behind in its process group goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.log.close()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.runner.say("stack: stopped")

    def get_json(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def list_sets(self) -> set[str]:
        """The list sets the running service serves from (its `/ready`): nothing to train and
        deploy for an experiments file whose arms read none."""
        _, body = self.get_json("/ready")
        return set(body.get("lists", {}))

    def wait_live(
        self, versions: dict[str, str], timeout: float = 30, pointer_cache: float = 1.0
    ) -> dict:
        """Until /ready is ok with each list set's version active (and their models and item
        lists loaded), then one pointer cache period, so every replica's cached pointer has moved
        to them too."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.get_json("/ready")
            live = body.get("lists", {})
            if status == 200 and all(
                live.get(n, {}).get("active") == v for n, v in versions.items()
            ):
                time.sleep(pointer_cache + 0.1)
                return body
            if time.monotonic() > deadline:
                raise StepFailed("deploy", self.log_path, f"service not ready: {body}")
            time.sleep(0.2)

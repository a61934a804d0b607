"""The closed loop, step by step, each step a subprocess running a public Botify command."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from botify.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "demo.yml"


class StepFailed(RuntimeError):
    def __init__(self, step: str, log: Path, detail: str):
        super().__init__(f"step '{step}' failed: {detail}\n  its log: {log}")
        self.step, self.log = step, log


# -- configuration -----------------------------------------------------------------------------
def load_config(path: Path, overrides: dict[str, object]) -> dict:
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return config


# Flags that override config keys: flag -> (dotted key, type, help).
OVERRIDES = {
    "seed": ("seed", int, "the run's seed (every step derives its own)"),
    "tracks": ("world.tracks", int, "tracks in the generated world"),
    "users": ("world.users", int, "users in the generated world"),
    "dim": ("world.dim", int, "embedding dimensions of the world"),
    "world_seed": ("world.seed", int, "seed of the generated world"),
    "world": (
        "world.dir",
        str,
        "use this world folder (e.g. the course's data) instead of generating one",
    ),
    "replicas": ("stack.replicas", int, "recommender replicas"),
    "nginx": ("stack.nginx", str, "auto|on|off"),
    "experiments": ("stack.experiments", str, "experiments YAML"),
    "collect_episodes": ("collect.episodes", int, "day-1 sessions"),
    "ab_episodes": ("ab.episodes", int, "day-2 (A/B) sessions"),
    "epochs": ("train.epochs", int, "CORE epochs"),
    "variant": ("train.variant", str, "CORE variant: ave|trm"),
    "min_time": ("train.min_time", float, "a play counts as liked above this fraction"),
    "experiment": ("ab.experiment", str, "experiment to analyse"),
    "alpha": ("ab.alpha", float, "significance level"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="demo config YAML")
    parser.add_argument("--run-dir", type=Path, help="run folder (default runs/<timestamp>)")
    parser.add_argument("--quiet", action="store_true", help="no live output of the steps")
    parser.add_argument("--processes", type=int, help="simulator processes (both days)")
    for flag, (_, typ, help_) in OVERRIDES.items():
        parser.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, help=help_)
    return parser.parse_args(argv)


# -- running steps -----------------------------------------------------------------------------
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
        print(f"[{elapsed // 60:02.0f}:{elapsed % 60:02.0f}] {text}", file=sys.stderr, flush=True)

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
            assert proc.stdout is not None
            for chunk in iter(lambda: proc.stdout.read1(4096), b""):
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
    """`python -m botify.stack up` as a child process; stopped (whole process group) on exit."""

    def __init__(self, runner: Runner, args: list[str]):
        self.runner, self.args = runner, args
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log_path = runner.logs / "stack.log"

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

    def wait_ready(self, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.get_json("/ready")
            if status == 200:
                return body
            if time.monotonic() > deadline:
                raise StepFailed("deploy", self.log_path, f"service not ready: {body}")
            time.sleep(0.2)


# -- the loop ----------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("botify", "numpy", "pandas", "scipy", "statsmodels", "torch", "recbole", "redis"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def args(*parts: object) -> list[str]:
    return [str(part) for part in parts]


def run_loop(config: dict, run_dir: Path, quiet: bool = False) -> dict:
    runner = Runner(run_dir, quiet=quiet)
    runner.logs.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    seed = int(config["seed"])
    w, st, t = config["world"], config["stack"], config["train"]
    experiment = config["ab"]["experiment"]
    stack_logs, model = run_dir / "service-logs", run_dir / "model"
    recs = run_dir / "recommendations_core.json"

    # 1. the world: generated unless a folder (e.g. the course data) is given
    world = Path(w["dir"]) if w.get("dir") else run_dir / "world"
    if not w.get("dir"):
        runner.run("world", args("-m", "sim.world", "--out", world, "--seed", w["seed"],
                                 "--tracks", w["tracks"], "--users", w["users"], "--dim", w["dim"]))  # fmt: skip

    def simulate(day: str, episodes: int, processes: int, day_seed: int, url: str) -> None:
        runner.run(f"{day}-simulate", args(
            "-m", "sim.run", "--world", world, "--url", url, "--episodes", episodes, "--days", 1,
            "--summary-json", run_dir / f"{day}-sim.json",
            "multi", "--processes", processes, "--recommender", "remote", "--seed", day_seed))  # fmt: skip

    # 2. the stack; Redis belongs to the run so the lists outlive any replica
    with RedisServer() as redis_server:
        runner.say(f"redis: {redis_server.url}")
        stack_args = args(
            "-m", "botify.stack", "up", "--world", world, "--experiments", st["experiments"],
            "--log-dir", stack_logs, "--replicas", st["replicas"], "--nginx", st["nginx"],
            "--redis-url", redis_server.url, "--port", st.get("port", 0))  # fmt: skip
        with Stack(runner, stack_args) as stack:
            # 3. day 1: no model yet, so every arm serves the control recommender
            _, ready = stack.get_json("/ready")
            runner.say(f"day 1: service readiness before training: {ready}")
            c = config["collect"]
            simulate("day1", c["episodes"], c["processes"], seed, stack.url)

            # 4. export -> prepare -> train -> top-100 -> deploy (the service keeps running)
            pull1, day1 = run_dir / "pull" / "day1", run_dir / "data" / "day1"
            runner.run("day1-pull", args("script/dataclient.py", "--local-logs", stack_logs,
                                         "log2local", pull1))  # fmt: skip
            runner.run("day1-export", args("-m", "script.export", pull1, "--out", day1))
            runner.run("prepare", args("-m", "trainer", "prepare", "--data", day1,
                                       "--out", run_dir / "dataset", "--min-time", t["min_time"]))  # fmt: skip
            runner.run("train", args("-m", "trainer", "train", "--dataset", run_dir / "dataset",
                                     "--out", model, "--variant", t["variant"],
                                     "--epochs", t["epochs"], "--seed", seed))  # fmt: skip
            runner.run(
                "recommend", args("-m", "trainer", "recommend", "--model", model, "--out", recs)
            )
            runner.run("deploy", args("-m", "trainer", "deploy", "--recs", recs,
                                      "--redis-url", redis_server.url, "--name", "core"))  # fmt: skip
            ready = stack.wait_ready()
            day2_from_ms = int(time.time() * 1000)
            runner.say(f"deploy: the running service serves the new lists: {ready}")

            # 5. day 2: the A/B test
            ab = config["ab"]
            simulate("day2", ab["episodes"], ab["processes"], seed + 1, stack.url)
        # the stack is stopped: every worker has flushed its log
    # 6. export -> A/B report of day 2
    pull2, events, report = run_dir / "pull" / "all", run_dir / "data" / "all", run_dir / "report"
    runner.run("pull", args("script/dataclient.py", "--local-logs", stack_logs, "log2local", pull2))
    runner.run("export", args("-m", "script.export", pull2, "--out", events))
    runner.run("report", args("-m", "script.ab", "--data", events, "--experiment", experiment,
                              "--out", report, "--alpha", config["ab"]["alpha"],
                              "--since", day2_from_ms))  # fmt: skip

    manifest = {
        "config": config,
        "seed": seed,
        "versions": versions(),
        "world": str(world),
        "day2_from_ms": day2_from_ms,
        "simulation": {
            "day1": read_json(run_dir / "day1-sim.json"),
            "day2": read_json(run_dir / "day2-sim.json"),
        },
        "dataset": read_json(run_dir / "dataset" / "prepare.json"),
        "model_metrics": read_json(model / "metrics.json"),
        "report": str(report / "report.md"),
        "picture": str(report / "ab_test.png"),
        "step_seconds": runner.timings,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    total = time.monotonic() - runner.started
    runner.say(f"done in {total / 60:.1f} min: {report / 'report.md'}, {report / 'ab_test.png'}")
    return manifest


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    overrides = {key: getattr(ns, flag) for flag, (key, _, _) in OVERRIDES.items()}
    if ns.processes is not None:
        overrides["collect.processes"] = overrides["ab.processes"] = ns.processes
    config = load_config(ns.config, overrides)
    run_dir = ns.run_dir or ROOT / "runs" / time.strftime("%Y%m%d-%H%M%S")
    # SIGTERM unwinds like Ctrl-C, so the stack and Redis are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run_loop(config, run_dir, quiet=ns.quiet)
    except StepFailed as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\ninterrupted; the stack and Redis were stopped", file=sys.stderr)
        sys.exit(130)

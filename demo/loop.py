"""The closed loop, step by step, each step a subprocess running a public Botify command."""

from __future__ import annotations

import argparse
import contextlib
import io
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

from ops.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "demo.yml"


class StepFailed(RuntimeError):
    def __init__(self, step: str, log: Path, detail: str):
        super().__init__(f"step '{step}' failed: {detail}\n  its log: {log}")
        self.step, self.log = step, log


# -- configuration -----------------------------------------------------------------------------
def load_config(path: Path, overrides: dict[str, object], quick: bool = False) -> dict:
    """The YAML config, then (with `quick`) its `quick` section of dotted keys, then flags."""
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    quick_sizes = config.pop("quick", {}) or {}
    if quick:
        overrides = {**quick_sizes, **{k: v for k, v in overrides.items() if v is not None}}
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
    "collect_episodes": ("collect.episodes", int, "day-1 sessions per simulator process"),
    "ab_episodes": ("ab.episodes", int, "sessions per simulator process of each A/B day"),
    "days": ("days", int, "A/B days; before each, CORE retrains on everything logged so far"),
    "transport": ("sim.transport", str, "batch (one call per shard and round) | request"),
    "ceiling_sessions": (
        "ceiling.sessions",
        int,
        "sessions per process the oracle and random run for the report's ceiling (0: none)",
    ),
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
    parser.add_argument("--processes", type=int, help="simulator processes (every day)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the small run (the config's `quick` sizes): a smoke check in a few minutes",
    )
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

    def wait_live(self, version: str, timeout: float = 30, pointer_cache: float = 1.0) -> dict:
        """Until /ready is ok with `version` active (and its model loaded), then one pointer
        cache period, so every replica's cached pointer has moved to it too."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.get_json("/ready")
            if status == 200 and body.get("lists", {}).get("core", {}).get("active") == version:
                time.sleep(pointer_cache + 0.1)
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
    w, st, t, ab, sim = (
        config["world"],
        config["stack"],
        config["train"],
        config["ab"],
        config["sim"],
    )
    experiment = ab["experiment"]
    stack_logs, journal = run_dir / "service-logs", run_dir / "journal"
    ab_days = int(config.get("days", 1))

    # 1. the world: generated unless a folder (e.g. the course data) is given
    world = Path(w["dir"]) if w.get("dir") else run_dir / "world"
    if not w.get("dir"):
        runner.run("world", args("-m", "sim.world", "--out", world, "--seed", w["seed"],
                                 "--tracks", w["tracks"], "--users", w["users"], "--dim", w["dim"]))  # fmt: skip

    def simulate(day: str, episodes: int, processes: int, day_seed: int, url: str) -> None:
        runner.run(f"{day}-simulate", args(
            "-m", "sim.run", "--world", world, "--url", url, "--episodes", episodes, "--days", 1,
            "--batch-size", sim["batch_size"], "--summary-json", run_dir / f"{day}-sim.json",
            "multi", "--processes", processes, "--recommender", "remote", "--seed", day_seed,
            "--transport", sim["transport"]))  # fmt: skip

    def export(step: str, pull: Path, events: Path) -> None:
        runner.run(f"{step}-pull", args("script/dataclient.py", "--local-logs", stack_logs,
                                        "log2local", pull))  # fmt: skip
        runner.run(f"{step}-export", args("-m", "script.export", pull, "--out", events))

    windows: list[tuple[int, int, int]] = []  # (day, from ms, until ms) of each A/B day
    days: list[dict] = []
    # 2. the stack; Redis belongs to the run so the lists outlive any replica
    with RedisServer() as redis_server:
        runner.say(f"redis: {redis_server.url}")
        redis_pid = redis_server.pid
        stack_args = args(
            "-m", "ops.stack", "up", "--world", world, "--experiments", st["experiments"],
            "--log-dir", stack_logs, "--replicas", st["replicas"], "--nginx", st["nginx"],
            "--redis-url", redis_server.url, "--port", st.get("port", 0),
            "--journal", journal)  # fmt: skip
        with Stack(runner, stack_args) as stack:
            # 3. day 1: no model yet, so every arm serves the control recommender
            _, ready = stack.get_json("/ready")
            runner.say(f"day 1: service readiness before training: {ready}")
            c = config["collect"]
            simulate("day1", c["episodes"], c["processes"], seed, stack.url)

            for day in range(2, ab_days + 2):
                # 4. everything logged so far -> prepare -> train -> top-100 -> deploy (lists
                #    and the online model, one version; the service keeps running)
                tag = "" if ab_days == 1 else f"-day{day}"
                data, work = run_dir / "data" / f"before-day{day}", run_dir / f"train{tag}"
                export(f"before-day{day}", run_dir / "pull" / f"before-day{day}", data)
                runner.run(f"prepare{tag}", args("-m", "trainer", "prepare", "--data", data,
                                                 "--out", work / "dataset", "--min-time", t["min_time"]))  # fmt: skip
                runner.run(f"train{tag}", args("-m", "trainer", "train", "--dataset", work / "dataset",
                                               "--out", work / "model", "--variant", t["variant"],
                                               "--epochs", t["epochs"], "--seed", seed, "--no-progress"))  # fmt: skip
                recs = work / "recommendations_core.json"
                runner.run(f"recommend{tag}", args("-m", "trainer", "recommend", "--model",
                                                   work / "model", "--out", recs))  # fmt: skip
                runner.run(f"deploy{tag}", args("-m", "trainer", "deploy", "--recs", recs, "--model",
                                                work / "model", "--journal", journal,
                                                "--redis-url", redis_server.url, "--name", "core"))  # fmt: skip
                version = (runner.logs / f"deploy{tag}.log").read_text().split()[-1]
                ready = stack.wait_live(version)
                runner.say(f"deploy: the running service serves version {version}: {ready}")

                # 5. an A/B day
                day_seed = seed + day - 1
                since = int(time.time() * 1000)
                simulate(f"day{day}", ab["episodes"], ab["processes"], day_seed, stack.url)
                windows.append((day, since, int(time.time() * 1000) + 1))
                if config["ceiling"]["sessions"]:
                    runner.run(f"ceiling-day{day}", args(
                        "-m", "sim.ceiling", "--world", world, "--seed", day_seed,
                        "--processes", ab["processes"], "--sessions", config["ceiling"]["sessions"],
                        "--out", run_dir / f"ceiling-day{day}.json"))  # fmt: skip
                days.append({"day": day, "version": version, "model": str(work / "model"),
                             "dataset": read_json(work / "dataset" / "prepare.json"),
                             "model_metrics": read_json(work / "model" / "metrics.json")})  # fmt: skip
        # the stack is stopped: every worker has flushed its log
    # 6. export -> the A/B report of every A/B day (the last one in report/)
    events = run_dir / "data" / "all"
    export("all", run_dir / "pull" / "all", events)
    reports = []
    for day, since, until in windows:
        out = run_dir / "report" if day == windows[-1][0] else run_dir / "reports" / f"day{day}"
        ceiling = run_dir / f"ceiling-day{day}.json"
        # CUPED on the days before the first A/B day (untreated), the sequential view
        runner.run(f"report-day{day}", args(
            "-m", "script.ab", "--data", events, "--experiment", experiment, "--out", out,
            "--alpha", ab["alpha"], "--since", since, "--until", until,
            "--experiments", st["experiments"], "--pre-until", windows[0][1], "--sequential",
            *(["--ceiling", ceiling] if ceiling.exists() else [])))  # fmt: skip
        reports.append(out)
    if len(reports) > 1:  # each arm's metric per day, with intervals
        runner.run("days", args("-m", "script.ab", "days", "--report", *reports,
                                "--label", *(f"day {d}" for d, _, _ in windows),
                                "--out", run_dir / "report"))  # fmt: skip

    last = days[-1]
    manifest = {
        "config": config,
        "seed": seed,
        "versions": versions(),
        "world": str(world),
        "ab_days": [
            {**d, "from_ms": f, "until_ms": u} for d, (_, f, u) in zip(days, windows, strict=True)
        ],
        "simulation": {p.stem: read_json(p) for p in sorted(run_dir.glob("day*-sim.json"))},
        "dataset": last["dataset"],
        "model_metrics": last["model_metrics"],
        "report": str(run_dir / "report" / "report.md"),
        "picture": str(run_dir / "report" / "ab_test.png"),
        "step_seconds": runner.timings,
        "redis_pid": redis_pid,  # stopped with the run (tests check nothing is left running)
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    total = time.monotonic() - runner.started
    runner.say(f"done in {total / 60:.1f} min: {manifest['report']}, {manifest['picture']}")
    return manifest


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    overrides = {key: getattr(ns, flag) for flag, (key, _, _) in OVERRIDES.items()}
    if ns.processes is not None:
        overrides["collect.processes"] = overrides["ab.processes"] = ns.processes
    config = load_config(ns.config, overrides, quick=ns.quick)
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

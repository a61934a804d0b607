"""The closed loop, step by step, each step a subprocess running a public Botify command.

Day 1 collects the training data: `collect.episodes` sessions per process under
`collect.experiments` (by default the course's seminar-2 TopPop arms, which need no model;
config/experiments-collect.yml says why). The stack then restarts with the A/B experiments
(`stack.experiments`) and, before each A/B day, CORE retrains on everything logged.
"""

from __future__ import annotations

import json
import platform
import signal
import sys
import time
from importlib import metadata
from pathlib import Path

import click
import yaml

from botify.experiments import Experiments
from demo.settings import DEFAULT_CONFIG, OVERRIDES, ROOT, load_config
from demo.steps import Runner, Stack, StepFailed
from ops.redis_server import RedisServer
from sim.course import SEED_AB, SEED_DATASET
from trainer.zoo import MODELS as ZOO_MODELS

SEED_EXPERIMENTS = "config/experiments.yml"  # the seed's experiment AB (C, T1-T3) and our T4


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


def dataset_vs_seed(rows: int | None, prepared: dict | None) -> list[dict]:
    """Day 1's dataset against the seed's (`sim.course.SEED_DATASET`), with the tolerances of
    the fidelity issue: rows +-3 %, interactions +-10 %, tracks +-15 % after the seed's filter."""
    ours = {"rows": rows, **{k: (prepared or {}).get(k) for k in ("interactions", "tracks")}}
    out = []
    for key, tolerance in (("rows", 0.03), ("interactions", 0.10), ("tracks", 0.15)):
        seed, value = SEED_DATASET[key], ours[key]
        holds = value is not None and abs(value / seed - 1) <= tolerance
        out.append({"count": key, "seed": seed, "ours": value, "tolerance": tolerance,
                    "holds": holds})  # fmt: skip
    return out


class Loop:
    """One run of the loop in `run_dir`; each method is a stage of it."""

    def __init__(self, config: dict, run_dir: Path, quiet: bool = False):
        self.config, self.run_dir = config, run_dir
        self.runner = Runner(run_dir, quiet=quiet)
        self.runner.logs.mkdir(parents=True, exist_ok=True)
        self.seed = int(config["seed"])
        self.stack_logs, self.journal = run_dir / "service-logs", run_dir / "journal"
        self.trained: list[dict] = []
        self.world = Path()

    def make_world(self) -> Path:
        """The world: generated unless a folder (e.g. the course data) is given."""
        w = self.config["world"]
        if w.get("dir"):
            return Path(w["dir"])
        world = self.run_dir / "world"
        self.runner.run("world", args("-m", "sim.world", "--out", world, "--seed", w["seed"],
                                      "--tracks", w["tracks"], "--users", w["users"],
                                      "--dim", w["dim"]))  # fmt: skip
        return world

    def stack(self, world: Path, redis_url: str, experiments: str, name: str) -> Stack:
        st = self.config["stack"]
        return Stack(self.runner, args(
            "-m", "ops.stack", "up", "--world", world, "--experiments", experiments,
            "--log-dir", self.stack_logs, "--replicas", st["replicas"], "--nginx", st["nginx"],
            "--redis-url", redis_url, "--port", st.get("port", 0), "--journal", self.journal),
            log_name=name)  # fmt: skip

    def simulate(self, step: str, world: Path, episodes: int, processes: int, seed: int,
                 url: str) -> None:  # fmt: skip
        sim = self.config["sim"]
        self.runner.run(f"{step}-simulate", args(
            "-m", "sim.run", "--world", world, "--url", url, "--episodes", episodes, "--days", 1,
            "--batch-size", sim["batch_size"], "--summary-json", self.run_dir / f"{step}-sim.json",
            "multi", "--processes", processes, "--recommender", "remote", "--seed", seed,
            "--transport", sim["transport"]))  # fmt: skip

    def export(self, step: str) -> Path:
        """Every replica's logs so far -> one Parquet dataset (`data/<step>`)."""
        pull, events = self.run_dir / "pull" / step, self.run_dir / "data" / step
        self.runner.run(f"{step}-pull", args("script/dataclient.py", "--local-logs",
                                             self.stack_logs, "log2local", pull))  # fmt: skip
        self.runner.run(f"{step}-export", args("-m", "script.export", pull, "--out", events))
        return events

    def train_and_deploy(self, tag: str, stack: Stack, redis_url: str) -> dict | None:
        """Everything logged so far -> every list set the running arms read (the service's
        `/ready` names them), each trained and deployed as one new version: `core` by CORE (lists
        and model), a list set named after a model of the course's zoo by `trainer zoo` (user or
        item lists), one given by `lists` in the config (`--lists NAME=FILE`) from that file ->
        live in the running service. Skipped (None) when no arm reads a list set."""
        needed = stack.list_sets()
        if not needed:
            self.runner.say(f"train{tag}: no arm serves from a list set; nothing to train")
            return None
        given = {name: Path(path) for name, path in (self.config.get("lists") or {}).items()}
        unknown = sorted(needed - given.keys() - {"core"} - ZOO_MODELS.keys())
        if unknown:
            log = self.runner.logs / f"train{tag}.log"
            log.write_text(f"list sets without a recipe: {unknown}\n")
            raise StepFailed(f"train{tag}", log, f"the arms read list set(s) {unknown}, which "
                             f"nothing here trains: give each as --lists NAME=FILE")  # fmt: skip
        data = self.export(f"before{tag}")
        found: dict = {"tag": tag, "list_sets": {}}
        versions: dict[str, str] = {}
        for name in sorted(needed):
            if name in given:
                deployed = self.deploy_file(tag, name, given[name], redis_url)
            elif name == "core":
                deployed = self.train_core(tag, data, redis_url)
                found.update({k: v for k, v in deployed.items() if k != "source"})
            else:
                deployed = self.train_zoo(tag, name, data, redis_url)
            versions[name] = deployed["version"]
            found["list_sets"][name] = deployed
        ready = stack.wait_live(versions)
        self.runner.say(f"deploy: the running service serves {versions}: {ready}")
        self.trained.append(found)
        return found

    def train_core(self, tag: str, data: Path, redis_url: str) -> dict:
        """prepare -> CORE -> top-100 -> deploy lists and model as list set `core`."""
        t = self.config["train"]
        work = self.run_dir / f"train{tag}"
        self.runner.run(f"prepare{tag}", args("-m", "trainer", "prepare", "--data", data,
                                              "--out", work / "dataset", "--min-time",
                                              t["min_time"]))  # fmt: skip
        self.runner.run(f"train{tag}", args("-m", "trainer", "train", "--dataset", work / "dataset",
                                            "--out", work / "model", "--variant", t["variant"],
                                            "--epochs", t["epochs"], "--seed", self.seed,
                                            "--negatives", t.get("negatives", 0),
                                            "--no-progress"))  # fmt: skip
        recs = work / "recommendations_core.json"
        self.runner.run(f"recommend{tag}", args("-m", "trainer", "recommend", "--model",
                                                work / "model", "--out", recs))  # fmt: skip
        version = self.deploy(f"deploy{tag}", "core", recs, redis_url, "--model", work / "model")
        return {"source": "CORE", "version": version, "file": str(recs),
                "model": str(work / "model"),
                "dataset": read_json(work / "dataset" / "prepare.json"),
                "model_metrics": read_json(work / "model" / "metrics.json")}  # fmt: skip

    def train_zoo(self, tag: str, name: str, data: Path, redis_url: str) -> dict:
        """`trainer zoo NAME` on the logs -> its list file -> deploy as list set NAME."""
        out = self.run_dir / f"train{tag}" / "zoo" / f"{name}.jsonl"
        epochs = (self.config.get("zoo") or {}).get("epochs", {}).get(name)
        catalog = self.world / "tracks.json"
        self.runner.run(f"zoo-{name}{tag}", args(
            "-m", "trainer", "zoo", name, "--data", data, "--out", out, "--catalog", catalog,
            "--no-progress", *(["--epochs", epochs] if epochs else [])))  # fmt: skip
        version = self.deploy(f"deploy-{name}{tag}", name, out, redis_url)
        return {"source": f"trainer zoo {name}", "version": version, "file": str(out),
                "metrics": read_json(out.with_name(out.name + ".json"))}  # fmt: skip

    def deploy_file(self, tag: str, name: str, path: Path, redis_url: str) -> dict:
        """A given list file (ours or the course's, user or item lists) as list set NAME."""
        version = self.deploy(f"deploy-{name}{tag}", name, path, redis_url)
        return {"source": str(path), "version": version, "file": str(path)}

    def deploy(self, step: str, name: str, recs: Path, redis_url: str, *extra) -> str:
        """`trainer deploy` into the run's journal; the version it switched on."""
        self.runner.run(step, args("-m", "trainer", "deploy", "--recs", recs, *extra,
                                   "--journal", self.journal, "--redis-url", redis_url,
                                   "--name", name))  # fmt: skip
        return (self.runner.logs / f"{step}.log").read_text().split()[-1]

    def ab_experiment(self) -> str:
        """The experiment the report analyses: `ab.experiment`, else the one the A/B days'
        experiments file routes by."""
        name = self.config["ab"].get("experiment")
        if name:
            return str(name)
        path = Path(self.config["stack"]["experiments"])
        return Experiments.from_file(path if path.is_absolute() else ROOT / path).route

    def check_experiments(self) -> None:
        """Both experiments files parse (recommenders aside), before any minute is spent."""
        for key in ("collect", "stack"):
            path = self.config[key].get("experiments")
            if not path:
                continue
            try:
                Experiments.from_file(ROOT / path if not Path(path).is_absolute() else path)
            except (OSError, ValueError, yaml.YAMLError) as error:
                log = self.runner.logs / "config.log"
                log.write_text(f"{key}.experiments = {path}: {error}\n")
                raise StepFailed("config", log, f"{key}.experiments: {error}") from None

    def run(self) -> dict:
        config, runner = self.config, self.runner
        (self.run_dir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.check_experiments()
        c, ab = config["collect"], config["ab"]
        ab_days = int(config.get("days", 1))
        world = self.world = self.make_world()
        windows: list[tuple[int, int, int]] = []  # (day, from ms, until ms) of each A/B day
        days: list[dict] = []
        # Redis belongs to the run, so the lists outlive the stacks of day 1 and the A/B days.
        with RedisServer() as redis_server:
            url = redis_server.url
            runner.say(f"redis: {url}")
            redis_pid = redis_server.pid
            collect = c.get("experiments") or config["stack"]["experiments"]
            with self.stack(world, url, collect, "stack-day1") as stack:
                _, ready = stack.get_json("/ready")
                runner.say(f"day 1: service readiness before any model: {ready}")
                self.simulate("day1", world, c["episodes"], c["processes"], self.seed + 10_000,
                              stack.url)  # fmt: skip
            with self.stack(world, url, config["stack"]["experiments"], "stack") as stack:
                for day in range(2, ab_days + 2):
                    tag = "" if ab_days == 1 else f"-day{day}"
                    trained = self.train_and_deploy(tag, stack, url)
                    day_seed = self.seed + day - 1
                    since = int(time.time() * 1000)
                    self.simulate(f"day{day}", world, ab["episodes"], ab["processes"], day_seed,
                                  stack.url)  # fmt: skip
                    windows.append((day, since, int(time.time() * 1000) + 1))
                    if config["ceiling"]["sessions"]:
                        runner.run(f"ceiling-day{day}", args(
                            "-m", "sim.ceiling", "--world", world, "--seed", day_seed,
                            "--processes", ab["processes"], "--sessions",
                            config["ceiling"]["sessions"],
                            "--out", self.run_dir / f"ceiling-day{day}.json"))  # fmt: skip
                    days.append({"day": day, **(trained or {})})
            # the stacks are stopped: every worker has flushed its log
        reports = self.reports(windows)
        return self.manifest(world, days, windows, reports, redis_pid)

    def reports(self, windows: list[tuple[int, int, int]]) -> list[Path]:
        """Export -> the A/B report of every A/B day (the last one in report/), with the seed's
        effects beside ours."""
        ab = self.config["ab"]
        events = self.export("all")
        # the seed's effects are of the seed's experiment (AB of config/experiments.yml): beside
        # any other experiment they would compare unlike arms
        experiments = Path(self.config["stack"]["experiments"])
        seeds_own = (
            self.ab_experiment() == "AB"
            and (experiments if experiments.is_absolute() else ROOT / experiments).resolve()
            == (ROOT / SEED_EXPERIMENTS).resolve()
        )
        reference = self.run_dir / "seed-effects.json"
        if seeds_own:
            reference.write_text(json.dumps({"label": "seed", "metric": "mean_time_per_session",
                                             "effects": SEED_AB}))  # fmt: skip
        reports = []
        for day, since, until in windows:
            last = day == windows[-1][0]
            out = self.run_dir / "report" if last else self.run_dir / "reports" / f"day{day}"
            ceiling = self.run_dir / f"ceiling-day{day}.json"
            # CUPED on everything before the first A/B day (untreated by AB); fixed-horizon
            # intervals for the day's decision (and the seed's effects beside them, whose
            # intervals were fixed-horizon too), and the sequential view of where each arm
            # would have stopped
            self.runner.run(f"report-day{day}", args(
                "-m", "script.ab", "--data", events, "--experiment", self.ab_experiment(),
                "--out", out, "--alpha", ab["alpha"], "--since", since, "--until", until,
                "--experiments", self.config["stack"]["experiments"],
                "--pre-until", windows[0][1], "--sequential-view",
                *(["--reference", reference] if seeds_own else []),
                *(["--ceiling", ceiling] if ceiling.exists() else [])))  # fmt: skip
            reports.append(out)
        if len(reports) > 1:  # each arm's metric per day, with intervals
            self.runner.run("days", args("-m", "script.ab", "days", "--report", *reports,
                                         "--label", *(f"day {d}" for d, _, _ in windows),
                                         "--out", self.run_dir / "report"))  # fmt: skip
        return reports

    def manifest(
        self, world: Path, days: list[dict], windows, reports, redis_pid: int | None
    ) -> dict:
        run_dir, runner = self.run_dir, self.runner
        # day 1's dataset: what the first model after day 1 trained on
        first = next((t for t in self.trained if t["tag"] in ("", "-day2")), None)
        prepared = first.get("dataset") if first else None
        dataset = dataset_vs_seed((prepared or {}).get("plays"), prepared)
        manifest = {
            "config": self.config,
            "seed": self.seed,
            "versions": versions(),
            "world": str(world),
            "trained": self.trained,
            "ab_days": [
                {**d, "from_ms": f, "until_ms": u}
                for d, (_, f, u) in zip(days, windows, strict=True)
            ],  # fmt: skip
            "simulation": {p.stem: read_json(p) for p in sorted(run_dir.glob("day*-sim.json"))},
            "day1_dataset_vs_seed": dataset,
            "dataset": days[-1].get("dataset"),
            "model_metrics": days[-1].get("model_metrics"),
            "report": str(run_dir / "report" / "report.md"),
            "picture": str(run_dir / "report" / "ab_test.png"),
            "step_seconds": runner.timings,
            "redis_pid": redis_pid,  # stopped with the run (tests check nothing is left running)
        }
        (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
        for row in dataset if prepared else ():  # no CORE, no dataset to compare
            runner.say(f"day-1 dataset vs the seed: {row['count']} {row['ours']} "
                       f"(seed {row['seed']:,} +- {row['tolerance']:.0%}): "
                       f"{'holds' if row['holds'] else 'does not hold'}")  # fmt: skip
        total = time.monotonic() - runner.started
        runner.say(f"done in {total / 60:.1f} min: {manifest['report']}, {manifest['picture']}")
        return manifest


def parse_list_files(values: tuple[str, ...]) -> dict[str, str]:
    """`NAME=FILE` options -> {name: absolute path}; a bad one is a usage error."""
    out = {}
    for value in values:
        name, _, path = value.partition("=")
        if not name or not path:
            raise click.BadParameter(f"{value!r} is not NAME=FILE", param_hint="--lists")
        if not Path(path).is_file():
            raise click.BadParameter(f"{path}: no such file", param_hint="--lists")
        out[name] = str(Path(path).resolve())
    return out


def run_loop(config: dict, run_dir: Path, quiet: bool = False) -> dict:
    return Loop(config, run_dir, quiet).run()


def _override_options(func):
    for flag, (_, typ, help_) in reversed(OVERRIDES.items()):
        func = click.option("--" + flag.replace("_", "-"), flag, type=typ, help=help_)(func)
    return func


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="demo config YAML",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="run folder (default runs/<timestamp>)",
)
@click.option("--quiet", is_flag=True, help="no live output of the steps")
@click.option(
    "--lists",
    "list_files",
    multiple=True,
    metavar="NAME=FILE",
    help="deploy FILE as list set NAME instead of training it (user lists or item lists, ours "
    "or the course's, e.g. sasrec_i2i=sasrec_i2i.jsonl); repeatable",
)
@click.option("--processes", type=click.IntRange(1), help="simulator processes (every day)")
@click.option(
    "--quick",
    is_flag=True,
    help="the small run (the config's `quick` sizes): a smoke check in a few minutes",
)
@_override_options
def main(config_path: Path, run_dir: Path | None, quiet: bool, list_files: tuple[str, ...],
         processes: int | None, quick: bool, **flags) -> None:  # fmt: skip
    """The seed's experiment as one command: world -> stack -> day 1 (collection) -> CORE ->
    the A/B days -> report, all in one run folder (`python -m demo`, `make demo`)."""
    overrides = {key: flags[flag] for flag, (key, _, _) in OVERRIDES.items()}
    if processes is not None:
        overrides["collect.processes"] = overrides["ab.processes"] = processes
    config = load_config(config_path, overrides, quick=quick)
    config["lists"] = {**(config.get("lists") or {}), **parse_list_files(list_files)}
    run_dir = run_dir or ROOT / "runs" / time.strftime("%Y%m%d-%H%M%S")
    # SIGTERM unwinds like Ctrl-C, so the stack and Redis are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run_loop(config, run_dir, quiet=quiet)
    except StepFailed as e:
        click.echo(f"\nFAILED: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("\ninterrupted; the stack and Redis were stopped", err=True)
        sys.exit(130)

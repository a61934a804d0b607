"""The course's 2026 grading, run as the course runs it: the A/B loop twice with a fixed SEED and
EPISODES, each run's effects as `ab_result.json`, and the reproducibility rule.

    python -m demo.grade --experiments config/experiments-2026.yml --seed SEED --episodes EPISODES
                         (--from-run RUN | --lists NAME=FILE ...) [--seeds K] [--run-dir DIR]
    make grade SEED=31337 EPISODES=1000 ARGS="--from-run runs/<a demo run>"

Each run starts from nothing but the lists: a fresh Redis (no cursor, session or listening history
left by the run before), the local stack with the experiments file, every list set its arms read
deployed (from a demo run that trained them, `--from-run`, or given files, `--lists`: ours or
the course's, e.g. `sasrec_i2i=sasrec_i2i.jsonl`), EPISODES sessions per simulator process with
SEED, then export and the A/B report (`python -m script.ab`) and its `ab_result.json`
(`python -m script.grade result`). Finally the course's rule over the runs
(`script.ab.grade.check`): `RUN_DIR/ab_result.json` (the first run's, the course's artefact),
`RUN_DIR/reproducibility.json`, and the table on the terminal.

Our runs replay exactly, so two runs with one seed agree to the last digit and the rule always
holds. `--seeds K` runs K seeds (SEED, SEED + 1, ...) instead and reports each effect's spread
across them and the rule over every pair: whether the effect survives another draw of the
simulated users, which is what the course's rule is after.

Exit status: 0 accepted, 1 a step failed or the result is not accepted, 2 usage.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import click

from demo.loop import Loop, parse_list_files, read_json
from demo.settings import DEFAULT_CONFIG, ROOT, load_config
from demo.steps import StepFailed
from ops.redis_server import RedisServer
from script.ab.grade import (
    GRADED_METRIC,
    MAX_DIFF_PP,
    GradeError,
    ab_result,
    check,
    read_report,
    verdict_table,
    write_json,
)


def sources_from_run(run: Path) -> dict[str, tuple[str, str | None]]:
    """{list set: (list file, model dir or None)} of the last list sets a demo run trained."""
    manifest = read_json(run / "manifest.json")
    if not manifest or not manifest.get("trained"):
        raise click.BadParameter(
            f"{run}: not a demo run that trained lists", param_hint="--from-run"
        )
    out = {}
    for name, deployed in manifest["trained"][-1].get("list_sets", {}).items():
        if deployed.get("file"):
            out[name] = (deployed["file"], deployed.get("model") if name == "core" else None)
    return out


class Grader:
    def __init__(self, config: dict, run_dir: Path, sources: dict, quiet: bool = False):
        self.config, self.run_dir, self.sources, self.quiet = config, run_dir, sources, quiet

    def run_once(self, label: str, world: Path, seed: int, episodes: int, processes: int) -> Path:
        """One run of the loop in RUN_DIR/<label>: its report folder."""
        loop = Loop(self.config, self.run_dir / label, quiet=self.quiet)
        runner, experiments = loop.runner, self.config["stack"]["experiments"]
        with RedisServer() as redis_server:
            url = redis_server.url
            with loop.stack(world, url, experiments, "stack") as stack:
                needed = stack.list_sets()
                missing = sorted(needed - self.sources.keys())
                if missing:
                    log = runner.logs / "lists.log"
                    log.write_text(f"no list file for {missing}\n")
                    raise StepFailed("lists", log, f"the arms read list set(s) {missing}: give "
                                     "each as --lists NAME=FILE, or --from-run a demo run that "
                                     "trained them")  # fmt: skip
                versions = {}
                for name in sorted(needed):
                    file, model = self.sources[name]
                    extra = ["--model", model] if model else []
                    versions[name] = loop.deploy(f"deploy-{name}", name, Path(file), url, *extra)
                if versions:
                    stack.wait_live(versions)
                since = int(time.time() * 1000)
                loop.simulate("ab", world, episodes, processes, seed, stack.url)
                until = int(time.time() * 1000) + 1
        events = loop.export("all")
        report = loop.run_dir / "report"
        runner.run("report", ["-m", "script.ab", "--data", str(events), "--experiment",
                              loop.ab_experiment(), "--out", str(report), "--since", str(since),
                              "--until", str(until)])  # fmt: skip
        runner.run("ab-result", ["-m", "script.grade", "result", "--report", str(report)])
        return report


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--experiments", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=ROOT / "config" / "experiments-2026.yml", show_default=True,
              help="the A/B experiments file")  # fmt: skip
@click.option("--seed", type=int, required=True, envvar="SEED", help="the simulated day's seed")
@click.option("--episodes", type=click.IntRange(1), required=True, envvar="EPISODES",
              help="sessions per simulator process")  # fmt: skip
@click.option("--seeds", type=click.IntRange(2), default=None,
              help="K runs with seeds SEED .. SEED+K-1 instead of two with SEED")  # fmt: skip
@click.option("--processes", type=click.IntRange(1), default=2, show_default=True)
@click.option("--from-run", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="a demo run whose trained lists (and world) to use")  # fmt: skip
@click.option("--lists", "list_files", multiple=True, metavar="NAME=FILE",
              help="a list file for list set NAME (user or item lists); repeatable")  # fmt: skip
@click.option("--world", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="a world folder (default: the run's, else the generated one)")  # fmt: skip
@click.option("--metric", "metrics", multiple=True, default=(GRADED_METRIC,), show_default=True,
              help="the metric the rule applies to (repeatable)")  # fmt: skip
@click.option("--max-diff", type=click.FloatRange(min=0), default=MAX_DIFF_PP, show_default=True)
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="default: runs/grade-<timestamp>")  # fmt: skip
@click.option("--quiet", is_flag=True, help="no live output of the steps")
def main(experiments, seed, episodes, seeds, processes, from_run, list_files, world, metrics,
         max_diff, run_dir, quiet) -> None:  # fmt: skip
    """Run the A/B loop twice (or with K seeds), write ab_result.json, apply the course's rule."""
    config = load_config(DEFAULT_CONFIG, {"stack.experiments": str(experiments.resolve())})
    sources: dict[str, tuple[str, str | None]] = sources_from_run(from_run) if from_run else {}
    sources.update({name: (path, None) for name, path in parse_list_files(list_files).items()})
    run_dir = run_dir or ROOT / "runs" / time.strftime("grade-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    if world is None and from_run is not None:
        world = Path((read_json(from_run / "manifest.json") or {}).get("world", ""))
    if world is None or not (world / "tracks.json").is_file():
        world = Loop(config, run_dir, quiet=quiet).make_world()
    runs = [(f"run-{i + 1}", seed if seeds is None else seed + i) for i in range(seeds or 2)]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    grader = Grader(config, run_dir, sources, quiet=quiet)
    try:
        reports = [grader.run_once(label, world, s, episodes, processes) for label, s in runs]
    except StepFailed as error:
        click.echo(f"\nFAILED: {error}", err=True)
        sys.exit(1)
    results = [ab_result(read_report(report)) for report in reports]
    try:
        verdicts = check(results, metrics, max_diff)
    except GradeError as error:
        click.echo(f"\nFAILED: {error}", err=True)
        sys.exit(1)
    accepted = all(v.accepted for v in verdicts)
    write_json(run_dir / "ab_result.json", results[0])
    write_json(run_dir / "reproducibility.json", {
        "mode": "seeds" if seeds else "repeat", "experiments": str(experiments),
        "episodes": episodes, "processes": processes,
        "runs": [{"label": label, "seed": s, "report": str(r)}
                 for (label, s), r in zip(runs, reports, strict=True)],
        "rule": {"same_sign": True, "max_diff_pp": max_diff, "metrics": list(metrics)},
        "verdicts": [{**v.__dict__, "accepted": v.accepted} for v in verdicts],
        "accepted": accepted,
    })  # fmt: skip
    click.echo(f"\n{len(runs)} runs of {episodes} sessions per process "
               f"({'seeds ' + ', '.join(str(s) for _, s in runs) if seeds else f'seed {seed} twice'})"
               f", experiments {experiments.name}:\n")  # fmt: skip
    click.echo(verdict_table(verdicts, max_diff))
    same_sign = all(v.same_sign for v in verdicts)
    within = all(v.within_bound for v in verdicts)
    click.echo(f"\nsame sign in every run: {'yes' if same_sign else 'no'}; every two runs within "
               f"{max_diff:g} pp: {'yes' if within else 'no'} -> "
               f"{'ACCEPTED' if accepted else 'NOT ACCEPTED'}")  # fmt: skip
    click.echo(f"-> {run_dir / 'ab_result.json'}, {run_dir / 'reproducibility.json'}")
    click.echo(json.dumps({"accepted": accepted, "runs": len(runs)}))
    if not accepted:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""The course's seminar recommenders on our world, against the course's table, untuned.

    python bench/bench_zoo.py [--world-seed 42 | --world DIR] [--collect-sessions 120000]
                              [--ab-sessions 150000] [--seed 1488] [--work runs/zoo]

The out-of-sample test of the simulated world (issue 23): the world was calibrated to Random,
StickyArtist and TopPop only (`sim.calibrate`); the four seminar recommenders below were never
looked at while it was built. Steps, each the lab's own code:

1. collect the seminars' training data as the course collected it: the service in-process with
   `config/experiments-collect-2025.yml` (the week-1 STICKY_ARTIST experiment: one user in nine
   on StickyArtist, the rest on Random), `--collect-sessions` sessions, logged by the service's
   event log and exported by `script.export` (the course's data_10k held 961,131 events: about
   120,000 sessions);
2. train UserBased, LightFM, contextual and GCF on it (`trainer.zoo`, each as the course's
   notebook did, untuned);
3. run the course's A/B (`config/experiments-zoo.yml`: C Random, T1 StickyArtist, T2 TopPop[100],
   T3 UserBased, T4 LightFM, T5 contextual, T6 GCF; users split by the arm hash) for
   `--ab-sessions` sessions, in-process (the course's table has 15 sessions per user on average;
   150,000 sessions over our 10,000 users give the same);
4. print ours next to the course's rows (`sim.course.VS_RANDOM`): the effect on mean time and
   tracks per session against Random with 95 % Welch intervals (the A/B report's statistics,
   per-user means with the first track included), each row's verdict (better, not significant,
   worse), whether it matches the course's, and whether the course's point lies inside our
   interval. The last line is one JSON object with every figure.

Exit status 0 whatever the verdicts: a validation reports, it does not pass or fail.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from botify.experiments import Experiments  # noqa: E402
from sim.batch import BatchSimulator, run_key  # noqa: E402
from sim.calibrate import effect  # noqa: E402
from sim.config import load_config  # noqa: E402
from sim.course import RANDOM_LEVEL, TIME, TRACKS, CourseEffect, course_effect  # noqa: E402
from sim.transport import InProcess, ServicePolicy  # noqa: E402
from sim.user_model import Population  # noqa: E402
from sim.world import generate  # noqa: E402

COLLECT = ROOT / "config" / "experiments-collect-2025.yml"
ZOO = ROOT / "config" / "experiments-zoo.yml"
MODELS = ("user_based", "lightfm", "contextual", "gcf")


def progress_bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="session", mininterval=1.0, file=sys.stderr)


def world_and_population(folder: Path | None, seed: int):
    """The world in `folder`, or the default one generated with `seed`, and its listeners."""
    settings = load_config(None)
    if folder is not None:
        settings.world_dir = folder
        world = settings.load_world()
    else:
        world = generate(seed, settings.world_shape)
    return world, Population(world, settings.user_model)


def collect(
    world, population, sessions: int, seed: int, work: Path, config: Path = COLLECT
) -> Path:
    """The seminars' data (or `config`'s): the service in-process with the collection
    experiment, logged and exported."""
    from script.export import export

    logs, events = work / "logs", work / "events"
    transport = InProcess.build(
        world.catalog, experiments=Experiments.from_file(config), log_dir=logs
    )
    with progress_bar(sessions, "collect") as bar:
        BatchSimulator(population, run_key(seed, 0, 1), progress=bar.update).run(
            ServicePolicy(transport), sessions
        )
    transport.service.events.close()
    summary = export([logs], events)
    print(f"collected {sessions:,} sessions: {summary.events_added:,} events", file=sys.stderr)
    return events


def train(events: Path, work: Path, models) -> dict[str, dict]:
    from trainer.zoo import train as train_model

    found = {}
    for name in models:
        started = time.perf_counter()
        metrics = train_model(name, events, work / "lists" / f"{name}.jsonl")
        print(f"trained {name} in {time.perf_counter() - started:.0f} s: "
              f"{json.dumps(metrics)}", file=sys.stderr)  # fmt: skip
        found[name] = metrics
    return found


def ab(world, population, sessions: int, seed: int, work: Path, models) -> dict[str, dict]:
    """The course's A/B in-process: per arm, per metric, the per-user values."""
    from measure.metrics import users_from_sessions

    experiments = Experiments.from_file(ZOO)
    lists = {name: work / "lists" / f"{name}.jsonl" for name in models}
    transport = InProcess.build(world.catalog, experiments=experiments, lists=lists)
    with progress_bar(sessions, "A/B") as bar:
        results = BatchSimulator(population, run_key(seed, 0, 2), progress=bar.update).run(
            ServicePolicy(transport), sessions
        )
    users = users_from_sessions(*results.as_logged())
    route = experiments.routing
    arm_of = np.array([route.assign(int(u)).name for u in users["user"]])
    recommender = {arm.name: (arm.recommender, dict(arm.params)) for arm in route.arms}
    return {
        arm: {
            "recommender": recommender[arm],
            "users": int((arm_of == arm).sum()),
            TIME: users.loc[arm_of == arm, TIME].to_numpy(float),
            TRACKS: users.loc[arm_of == arm, TRACKS].to_numpy(float),
        }
        for arm in recommender
    }


def verdict(low: float, high: float) -> str:
    return "better" if low > 0 else "worse" if high < 0 else "not significant"


ROWS = {  # course row -> our arm
    "sticky_artist": "T1",
    "toppop": "T2",
    "user_based": "T3",
    "lightfm": "T4",
    "contextual": "T5",
    "gcf": "T6",
}
CALIBRATED = {"sticky_artist", "toppop"}  # the world was tuned to these (sim.calibrate)


def compare(arms: dict[str, dict]) -> list[dict]:
    out = []
    control = arms["C"]
    for row, arm in ROWS.items():
        for metric in (TIME, TRACKS):
            course: CourseEffect = course_effect(row, metric)
            ours = effect(arms[arm][metric], control[metric])
            out.append({
                "recommender": course.label, "row": row, "metric": metric, "arm": arm,
                "calibrated": row in CALIBRATED,
                "ours": [round(ours.percent, 2), round(ours.low, 2), round(ours.high, 2)],
                "course": [round(course.percent, 2), round(course.low, 2), round(course.high, 2)],
                "ours_verdict": verdict(ours.low, ours.high),
                "course_verdict": verdict(course.low, course.high),
                "same_verdict": verdict(ours.low, ours.high) == verdict(course.low, course.high),
                "course_point_inside": bool(ours.low <= course.percent <= ours.high),
            })  # fmt: skip
    return out


def _pct(values) -> str:
    point, low, high = values
    return f"{point:+.1f} % [{low:+.1f}, {high:+.1f}]"


def table(rows: list[dict], arms: dict[str, dict]) -> str:
    lines = [
        "| recommender | metric | ours vs Random | course | verdict: ours / course | "
        "course's point in our CI |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["recommender"] + (" (calibrated)" if r["calibrated"] else "")
        metric = "time per session" if r["metric"] == TIME else "tracks per session"
        same = "same" if r["same_verdict"] else "DIFFERENT"
        lines.append(
            f"| {name} | {metric} | {_pct(r['ours'])} | {_pct(r['course'])} | "
            f"{r['ours_verdict']} / {r['course_verdict']} ({same}) | "
            f"{'yes' if r['course_point_inside'] else 'no'} |"
        )
    c = arms["C"]
    lines.append(
        f"\nRandom's level: ours {c[TIME].mean():.3f} time, {c[TRACKS].mean():.3f} tracks per "
        f"session ({c['users']:,} users); the course's {RANDOM_LEVEL[TIME]:.3f} and "
        f"{RANDOM_LEVEL[TRACKS]:.3f}."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=None, help="a world folder")
    parser.add_argument("--world-seed", type=int, default=42, help="the generated world's seed")
    parser.add_argument("--collect-sessions", type=int, default=120_000)
    parser.add_argument("--ab-sessions", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=1488, help="the simulated days' seed")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "zoo", help="work folder")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ns = parser.parse_args()
    started = time.perf_counter()
    world, population = world_and_population(ns.world, ns.world_seed)
    ns.work.mkdir(parents=True, exist_ok=True)
    timings = {}
    t0 = time.perf_counter()
    events = collect(world, population, ns.collect_sessions, ns.seed, ns.work)
    timings["collect"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    trained = train(events, ns.work, ns.models)
    timings["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    arms = ab(world, population, ns.ab_sessions, ns.seed, ns.work, ns.models)
    timings["ab"] = time.perf_counter() - t0
    rows = compare(arms) if set(ns.models) == set(MODELS) else []
    world_name = str(ns.world) if ns.world else f"generated, world seed {ns.world_seed}"
    print(f"## The course's seminar recommenders on our world ({world_name}), untuned\n")
    print(f"Trained on {ns.collect_sessions:,} sessions collected the course's way; A/B of "
          f"{ns.ab_sessions:,} sessions, seed {ns.seed}.\n")  # fmt: skip
    print(table(rows, arms) + "\n")
    validation = [r for r in rows if not r["calibrated"]]
    recommenders = sorted({r["row"] for r in validation})
    same = [n for n in recommenders if all(r["same_verdict"] for r in validation if r["row"] == n)]
    inside = [n for n in recommenders
              if all(r["course_point_inside"] for r in validation if r["row"] == n)]  # fmt: skip
    print(f"Same verdict as the course on both metrics: {len(same)} of {len(recommenders)} "
          f"({', '.join(same) or 'none'}); the course's point inside our interval on both: "
          f"{len(inside)} of {len(recommenders)} ({', '.join(inside) or 'none'}).")  # fmt: skip
    print(f"({time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ")", file=sys.stderr)  # fmt: skip
    print(json.dumps({"rows": rows, "trained": trained, "same_verdict": same,
                      "course_point_inside": inside,
                      "random_level": {m: float(arms["C"][m].mean()) for m in (TIME, TRACKS)},
                      "users_per_arm": {a: v["users"] for a, v in arms.items()},
                      "seconds": {k: round(v, 1) for k, v in timings.items()}}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

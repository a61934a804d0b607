"""Trainer time and quality at the seed's scale: today's recipe (RecBole) vs the lean trainer.

    .venv/bin/python bench/bench_trainer.py            # everything below (~25 min on 2 cores)
    .venv/bin/python bench/bench_trainer.py --quick    # the default recipe only (~4 min)
    PYTHONPATH=. python bench/bench_trainer.py --device cuda --quick   # a GPU machine, no RecBole

1. Day 1 of the seed-scale demo, generated in-process by the simulator: 400,000 sessions of
   uniformly drawn users on the default world (`sim.world` seed 42), each served by
   StickyArtist (the catalog-only recommender day 1 runs); every event the service would log,
   in the exporter's Parquet layout. The artist discount caps every follow-up at time 0.80, so
   the only liked plays are the sessions' first tracks, drawn by the simulator's listener.
2. The default recipe as the product runs it, in a fresh process (allocator settings as
   `python -m trainer` sets them): prepare -> train -> top-100 for every user, each stage timed.
3. Today's recipe (RecBole's pipeline, CORE-trm, length 20) on the same prepared dataset, in
   its own process, with the time of each stage: dataset, dataloaders, one pass over the
   training batches alone, the model steps, validation, test; then the same top-100.
4. Held-out quality of both on the same split (last liked track per user, every track ranked).
5. `--recipes`: more lean recipes (5 epochs each) for the speed/quality trade-off.
6. `--ab N`: the A/B in-process: N day-2 sessions per arm through the simulator and the service's
   recommender classes (C StickyArtist; T1 sorted, T2 cooler, T3 random pick from each model's
   top-100 lists), to check that the seed's ranking (T1, T2 > T3 > C) holds for each model.

The machine is shared: the load average is printed beside the timings; compare within a run.
The last line is one JSON object with the figures.

On a machine without RecBole (or numpy >= 2) use --quick: it needs torch, numpy, pandas and
pyarrow, and this repository on PYTHONPATH; scipy is replaced by a stub if it is missing (the
simulator imports it only for listening times, computed here with numpy alike).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(64 << 30)}
SEED_RUN = {"interactions": 393_883, "users": 10_000, "tracks": 9_701}  # the README's real run
GOAL_SECONDS = 240
# lean recipes: overrides of trainer.train.RECIPE
RECIPES = {
    "default": {},
    "today-lean": {"dnn_type": "trm", "MAX_ITEM_LIST_LENGTH": 20},
    "ave-20": {"dnn_type": "ave", "MAX_ITEM_LIST_LENGTH": 20},
    "ave-50": {"dnn_type": "ave", "MAX_ITEM_LIST_LENGTH": 50},
    "trm-10": {"dnn_type": "trm", "MAX_ITEM_LIST_LENGTH": 10},
}


def _scipy_stub() -> None:
    """sim.user_model imports scipy.special.expit; a numpy one will do where scipy is missing."""
    try:
        import scipy.special  # noqa: F401
    except ImportError:
        special = types.ModuleType("scipy.special")
        special.expit = lambda x: 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
        sys.modules["scipy"] = types.ModuleType("scipy")
        sys.modules["scipy.special"] = special


def day_one_events(sessions: int = 400_000, world_seed: int = 42, seed: int = 0) -> pd.DataFrame:
    """The events of day 1 of the seed-scale demo (see the top): the service's own classes
    in-process (StickyArtist, in-memory state) write their event logs, the exporter reads them."""
    _scipy_stub()
    from script.export import DATA_FILE, export
    from sim.batch import BatchSimulator, run_key
    from sim.transport import InProcess, ServicePolicy
    from sim.user_model import Population
    from sim.world import generate

    world = generate(world_seed)
    with tempfile.TemporaryDirectory(prefix="bench-day1-") as tmp:
        service = InProcess.build(world.catalog, "sticky_artist", log_dir=Path(tmp) / "logs")
        done = [0]

        def progress(n: int) -> None:
            done[0] += n
            if done[0] // 50_000 != (done[0] - n) // 50_000:
                print(f"  day 1: {done[0]:,} / {sessions:,} sessions", file=sys.stderr, flush=True)

        simulator = BatchSimulator(Population(world), run_key(seed, 1), progress=progress)
        simulator.run(ServicePolicy(service), sessions)
        service.service.events.close()
        export([Path(tmp) / "logs"], Path(tmp) / "dataset")
        return pd.read_parquet(Path(tmp) / "dataset" / DATA_FILE)


# -- children: each measured setting runs in a fresh process ------------------------------------


def run_pipeline(events: Path, work: Path, recipe: str, device: str | None, prepare: bool) -> dict:
    """prepare -> train -> top-100, what `python -m trainer prepare|train|recommend` run."""
    from trainer.model import write_recommendations
    from trainer.prepare import prepare as prepare_dataset
    from trainer.train import train

    seconds = {}
    if prepare:
        started = time.perf_counter()
        summary = prepare_dataset(events, work / "dataset")
        seconds["prepare"] = time.perf_counter() - started
    started = time.perf_counter()
    metrics = train(work / "dataset", work / f"model-{recipe}", overrides=RECIPES[recipe],
                    show_progress=False, device=device)  # fmt: skip
    seconds["train"] = time.perf_counter() - started
    started = time.perf_counter()
    users = write_recommendations(work / f"model-{recipe}", work / f"recs-{recipe}.jsonl")
    seconds["top100"] = time.perf_counter() - started
    out = {"recipe": recipe, "seconds": seconds, "metrics": metrics, "lists": users,
           "recs": str(work / f"recs-{recipe}.jsonl")}  # fmt: skip
    if prepare:
        out["dataset"] = summary.line()
    return out


def run_reference(work: Path) -> dict:
    """Today's recipe through RecBole, then the same top-100."""
    from trainer.model import write_recommendations
    from trainer.recbole_reference import train_reference

    started = time.perf_counter()
    metrics = train_reference(work / "dataset", work / "model-recbole",
                              {"dnn_type": "trm", "MAX_ITEM_LIST_LENGTH": 20})  # fmt: skip
    seconds = {"train": time.perf_counter() - started}
    started = time.perf_counter()
    users = write_recommendations(work / "model-recbole", work / "recs-recbole.jsonl")
    seconds["top100"] = time.perf_counter() - started
    return {"recipe": "today (RecBole)", "seconds": seconds, "metrics": metrics, "lists": users,
            "recs": str(work / "recs-recbole.jsonl")}  # fmt: skip


def step_variants(work: Path, recipe: str, rounds: int = 10, batch: int = 2048) -> dict:
    """Seconds per 1,000 samples of one training step, each speed-up switched on in turn.

    The variants take turns on the same batch (real histories of the dataset) in one process,
    so other processes' load spreads over all of them; the minimum and median are reported.
    """
    import torch

    from trainer.core_net import CORE, FastDropout
    from trainer.data import histories, leave_one_out, read_chains
    from trainer.model import ARCH_KEYS
    from trainer.train import RECIPE

    split = leave_one_out(read_chains(work / "dataset"))
    settings = {**RECIPE, **RECIPES[recipe]}
    torch.manual_seed(0)
    model = CORE(split.n_items, {k: settings[k] for k in ARCH_KEYS})
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    positions = split.train[torch.randperm(len(split.train))[:batch]]
    seq, target = histories(split, positions, model.max_len), split.items[positions]
    bits = next(m.bits for m in model.modules() if isinstance(m, FastDropout))
    variants = {  # (dropout masks from PCG64, chunked cross-entropy)
        "torch dropout, torch cross-entropy": (None, None),
        "+ PCG64 dropout masks": (bits, None),
        "+ chunked cross-entropy (default)": (bits, CORE.loss_chunk),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    model.train()
    for _ in range(rounds + 1):  # the first round warms up
        for name, (generator, chunk) in variants.items():
            for module in model.modules():
                if isinstance(module, FastDropout):
                    module.bits = generator
            model.loss_chunk = chunk
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            model.loss(seq, target).backward()
            optimizer.step()
            times[name].append((time.perf_counter() - started) / batch * 1000)
    return {
        "recipe": recipe,
        "threads": torch.get_num_threads(),
        "s_per_1k": {
            name: {"min": min(t[1:]), "median": float(np.median(t[1:]))}
            for name, t in times.items()
        },  # fmt: skip
    }


def child(args: list[str]) -> dict:
    """Run this script as a child with the allocator settings; its last stdout line is JSON."""
    started, cpu = time.perf_counter(), _children_cpu()
    out = subprocess.run([sys.executable, __file__, *args], env={**os.environ, **MALLOC},
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode:
        sys.exit(f"child {args} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = _children_cpu() - cpu
    result["load"] = os.getloadavg()[0]
    return result


def _children_cpu() -> float:
    """CPU seconds (user + system) of finished children: less sensitive to others' load."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the A/B -----------------------------------------------------------------------------------


def ab_test(recs: dict[str, Path], sessions: int, world_seed: int = 42, seed: int = 7) -> dict:
    """Mean session time per arm, each arm on the same simulator seed (day 2 of the demo)."""
    from sim.batch import BatchSimulator, run_key
    from sim.transport import InProcess, ServicePolicy
    from sim.user_model import Population
    from sim.world import generate

    world = generate(world_seed)
    population = Population(world)

    def session_times(name: str, lists: Path | None) -> np.ndarray:
        policy = ServicePolicy(
            InProcess.build(world.catalog, name, lists={"core": lists} if lists else None)
        )
        # + 1.0: the first track, heard in full, is logged with time 1.0 and counted by
        # script.ab's mean_time_per_session; the simulator's total counts recommended tracks only
        return BatchSimulator(population, run_key(seed, 2)).run(policy, sessions).time + 1.0

    control = session_times("sticky_artist", None)
    out = {"C": {"mean": float(control.mean())}}
    for model, path in recs.items():
        for arm, name in (("T1", "sorted_indexed"), ("T2", "cooler_indexed"), ("T3", "indexed")):
            times = session_times(name, path)
            effect = times.mean() / control.mean() - 1
            se = np.sqrt(times.var(ddof=1) / len(times) + control.var(ddof=1) / len(control))
            out[f"{model} {arm}"] = {"mean": float(times.mean()), "effect": float(effect),
                                     "ci95": float(1.96 * se / control.mean())}  # fmt: skip
    return out


def seed_ranking(ab: dict, model: str) -> bool:
    """T1, T2 and T3 each above C (95 % intervals), and T1 and T2 ahead of T3 (means)."""
    arms = [ab[f"{model} {arm}"] for arm in ("T1", "T2", "T3")]
    above = all(a["effect"] - a["ci95"] > 0 for a in arms)
    return above and min(arms[0]["mean"], arms[1]["mean"]) > arms[2]["mean"]


# -- the report --------------------------------------------------------------------------------


def stage_rows(result: dict) -> dict[str, float]:
    """Seconds per stage, in one vocabulary for both pipelines."""
    s, m = result["seconds"], result["metrics"]["seconds"]
    rows = {"prepare (events -> chains)": s["prepare"]} if "prepare" in s else {}
    if "create_dataset" in m:  # RecBole
        rows["dataset build (RecBole create_dataset)"] = m["config"] + m["create_dataset"]
        rows["dataloader build (data_preparation)"] = m["data_preparation"]
        rows["  one pass over the training batches alone"] = m["batches"]
    else:
        rows["dataset build + split (read, index arrays)"] = m["load"]
    rows["model steps (all epochs)"] = sum(m["train"])
    rows["validation (all epochs)"] = sum(m["valid"])
    rows["test (CORE + Pop)"] = m["test"]
    rows["top-100 for every user"] = s["top100"]
    accounted = sum(v for k, v in rows.items() if not k.startswith("  "))
    rows["process start, imports, model files"] = result["wall_seconds"] - accounted
    rows["wall clock"] = result["wall_seconds"]
    return rows


def print_stages(results: list[dict]) -> None:
    names = []
    for r in results:
        for key in stage_rows(r):
            if key not in names:
                names.append(key)
    table = [stage_rows(r) for r in results]
    print(f"\n{'seconds':<46}" + "".join(f"{r['recipe']:>18}" for r in results))
    for key in names:
        cells = "".join(f"{t[key]:>18.1f}" if key in t else f"{'-':>18}" for t in table)
        print(f"{key:<46}{cells}")
    print(f"{'epochs x samples':<46}" + "".join(
        f"{r['metrics']['epochs_run']} x {r['metrics']['train_samples_per_epoch']:,}".rjust(18)
        for r in results))  # fmt: skip
    print(f"{'CPU seconds (user + system, all threads)':<46}"
          + "".join(f"{r['cpu_seconds']:>18.1f}" for r in results))  # fmt: skip
    print(f"{'load average at the end':<46}" + "".join(f"{r['load']:>18.2f}" for r in results))


def print_quality(results: list[dict]) -> None:
    keys = ["recall@10", "ndcg@10", "mrr@10", "recall@100", "ndcg@100"]
    print(
        f"\nheld-out quality (same dataset, same split){'':<4}" + "".join(f"{k:>11}" for k in keys)
    )
    for r in results:
        label = f"{r['recipe']}: {r['metrics']['model']}, length {r['metrics']['settings']['MAX_ITEM_LIST_LENGTH']}"
        print(
            f"  {label:<45}"
            + "".join(f"{r['metrics']['test']['CORE'].get(k, math.nan):>11.4f}" for k in keys)
        )
    for r in results:
        pop = r["metrics"]["test"]["Pop"]
        print(
            f"  {'Pop (' + r['recipe'] + ')':<45}"
            + "".join(f"{pop.get(k, math.nan):>11.4f}" for k in keys)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--sessions", type=int, default=400_000, help="day-1 sessions")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--quick", action="store_true",
                        help="default recipe (and today's settings on the lean path) only")  # fmt: skip
    parser.add_argument("--recipes", default="", help=f"more lean recipes: {','.join(RECIPES)}")
    parser.add_argument("--ab", type=int, default=20_000, help="A/B sessions per arm (0: none)")
    parser.add_argument("--events", type=Path,
                        help="day-1 events (events.parquet from an earlier run's --work) instead of "
                        "generating them")  # fmt: skip
    parser.add_argument("--work", type=Path, help="keep data and models here (default: a temp dir)")
    parser.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns._child:
        kind, work, *rest = ns._child
        if kind == "steps":
            result = step_variants(Path(work), rest[0])
        elif kind == "pipeline":
            recipe, prepare = rest
            result = run_pipeline(Path(work) / "events.parquet", Path(work), recipe, ns.device,
                                  prepare == "prepare")  # fmt: skip
        else:
            result = run_reference(Path(work))
        print(json.dumps(result))
        return

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as tmp:
        work = ns.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if ns.events:
            events = pd.read_parquet(ns.events)
            ns.sessions = int((events["message"] == "last").sum())
        else:
            events = day_one_events(ns.sessions)
        events.to_parquet(work / "events.parquet")
        liked = int((events["time"] > 0.8).sum())
        print(f"day 1: {ns.sessions:,} sessions, {len(events):,} events, {liked:,} liked plays "
              f"(generated in {time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip

        device = ["--device", ns.device] if ns.device else []
        default = child([*device, "--_child", "pipeline", str(work), "default", "prepare"])
        print(f"prepared: {default['dataset']}\n  the real seed-scale run: "
              + ", ".join(f"{k} {v:,}" for k, v in SEED_RUN.items()), flush=True)  # fmt: skip
        results = [default]
        extra = ["today-lean"] if ns.quick else [r for r in ns.recipes.split(",") if r]
        if not ns.quick and importlib.util.find_spec("recbole") is None:
            print("recbole is not installed: today's recipe through RecBole is left out")
        elif not ns.quick:
            results.append(child(["--_child", "reference", str(work)]))
        for recipe in extra:
            results.append(child([*device, "--_child", "pipeline", str(work), recipe, "-"]))
        print_stages(results)
        print_quality(results)
        if not ns.quick:
            print("\ninside one training step (batch 2048, real histories), s per 1k samples, "
                  "min / median of 10, the variants taking turns:")  # fmt: skip
        for recipe in () if ns.quick else ("default", "today-lean"):
            steps = child(["--_child", "steps", str(work), recipe])
            first = None
            for name, t in steps["s_per_1k"].items():
                first = first or t["median"]
                print(
                    f"  {recipe:<11} {name:<38} {t['min']:.3f} / {t['median']:.3f}"
                    f"  ({first / t['median']:.2f}x)"
                )
            print(f"  (load average {steps['load']:.2f}, {steps['threads']} threads)")
        goal = "met" if default["wall_seconds"] <= GOAL_SECONDS else "NOT met"
        print(f"\ndefault recipe, prepare + train + top-100: {default['wall_seconds']:.0f} s "
              f"(goal {GOAL_SECONDS} s: {goal}; device {default['metrics']['device']})")  # fmt: skip
        for r in results[1:]:
            print(
                f"  {r['recipe']}: {r['wall_seconds']:.0f} s, "
                f"{r['wall_seconds'] / default['wall_seconds']:.1f}x the default's time"
            )

        ab = {}
        if ns.ab and not ns.quick:
            ab = ab_test({r["recipe"]: Path(r["recs"]) for r in results}, ns.ab)
            print(f"\nA/B in-process, {ns.ab:,} day-2 sessions per arm: mean session time, "
                  f"effect vs C (95 % CI)\n  C StickyArtist {ab['C']['mean']:.3f}")  # fmt: skip
            for arm, r in ab.items():
                if arm != "C":
                    print(
                        f"  {arm:<26} {r['mean']:.3f}  {r['effect']:+.1%} "
                        f"[{r['effect'] - r['ci95']:+.1%}, {r['effect'] + r['ci95']:+.1%}]"
                    )
            for r in results:
                print(f"  {r['recipe']}: the seed's ranking holds: {seed_ranking(ab, r['recipe'])}")
    summary = {
        "default_wall_seconds": round(default["wall_seconds"], 1),
        "goal_seconds": GOAL_SECONDS,
        "device": default["metrics"]["device"],
        "results": {
            r["recipe"]: {
                "wall_seconds": round(r["wall_seconds"], 1),
                "stages": {k: round(v, 1) for k, v in stage_rows(r).items()},
                "test": r["metrics"]["test"],
            }
            for r in results
        },  # fmt: skip
        "ab": ab,
        "load_average": os.getloadavg(),
        "bench_seconds": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Which arm's logs teach CORE more? Retrain on day 1 plus one arm's day-2 logs, then A/B the lists.

    python bench/bench_arm_data.py --run runs/<a demo run with --days 2 or more> [--arms C T4]
                                   [--sessions 20000]

From a demo run's export of everything before its day 3 (`data/before-day3`), for each arm: the
day-1 events plus the day-2 events of that arm's users (each arm holds about a fifth of the
users), through `trainer prepare` -> `train` (the default recipe, 5 epochs) -> top-100. Also day 1
alone, for reference. Each model's lists then serve T1 (sorted_indexed) and T2 (cooler_indexed)
in-process against StickyArtist on the same simulated sessions (`bench_trainer.ab_test`), so the
models are compared by what the product does with them, not by held-out metrics on different
datasets. Printed: liked interactions each arm's day 2 added, and each model's effects.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a demo run with --days >= 2")
    parser.add_argument("--arms", nargs="+", default=["C", "T4"])
    parser.add_argument("--experiment", default="AB")
    parser.add_argument("--sessions", type=int, default=20_000, help="A/B sessions per arm")
    ns = parser.parse_args()

    from bench_trainer import ab_test

    from trainer.model import write_recommendations
    from trainer.prepare import prepare
    from trainer.train import train

    manifest = json.loads((ns.run / "manifest.json").read_text())
    days = {d["day"]: d for d in manifest["ab_days"]}
    if 2 not in days or 3 not in days:
        print(f"{ns.run}: needs a run with --days 2 or more", file=sys.stderr)
        return 1
    events = pd.read_parquet(ns.run / "data" / "before-day3")
    day2 = (events["timestamp"] >= days[2]["from_ms"]) & (events["timestamp"] < days[2]["until_ms"])
    base = events[events["timestamp"] < days[2]["from_ms"]]
    column = f"exp_{ns.experiment}"
    world_seed = manifest["config"]["world"]["seed"]
    print(f"{ns.run}: day 1 {len(base):,} events; day 2 {int(day2.sum()):,} events")

    recs: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="bench-arm-data-") as tmp:
        for label, arm in [("day 1 only", None), *((f"day 1 + {a}'s day 2", a) for a in ns.arms)]:
            added = events[day2 & (events[column] == arm)] if arm else events.iloc[:0]
            data = pd.concat([base, added])
            work = Path(tmp) / (arm or "base")
            work.mkdir()
            data.to_parquet(work / "events.parquet")
            summary = prepare(work / "events.parquet", work / "dataset")
            liked = int((added["time"] > 0.8).sum())
            sessions = int((added["message"] == "last").sum())
            train(work / "dataset", work / "model", show_progress=False)
            write_recommendations(work / "model", work / "recs.jsonl")
            recs[label] = work / "recs.jsonl"
            per = f", {liked / sessions:.2f} per session" if sessions else ""
            print(f"{label:<22} adds {sessions:,} sessions, {liked:,} liked plays{per}; "
                  f"prepared: {summary.line()}", flush=True)  # fmt: skip
        ab = ab_test(recs, ns.sessions, world_seed=world_seed)
    print(f"\nA/B in-process, {ns.sessions:,} sessions per arm, effect vs C (95 % CI); "
          f"C {ab['C']['mean']:.3f}")  # fmt: skip
    for label in recs:
        cells = [
            f"{arm} {ab[f'{label} {arm}']['effect']:+.1%} "
            f"[{ab[f'{label} {arm}']['effect'] - ab[f'{label} {arm}']['ci95']:+.1%}, "
            f"{ab[f'{label} {arm}']['effect'] + ab[f'{label} {arm}']['ci95']:+.1%}]"
            for arm in ("T1", "T2")
        ]
        print(f"  lists from {label:<22} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())

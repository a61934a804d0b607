"""What each part of the session arm (`session_core`) is worth, in-process, on the same sessions.

    python bench/bench_session.py --model MODEL_DIR [--lists RECS] [--world data/world]
                                  [--sessions 4000]

MODEL_DIR is a trained model directory (its item_embeddings.npz, as `python -m trainer recommend`
writes it; a demo run keeps it in runs/<run>/train/model). Every variant below runs the same
simulated sessions (one simulator key: the same users, first tracks and listener draws) through
the service's own classes on in-memory state, and prints mean session time (counting the first
track, as the A/B report does) with its ratio to StickyArtist, beside random and the oracle:

- `session_core`, the default weights (CORE 1, genre 1, popularity 0.5, artist discount 0.5);
- each part switched off in turn, and CORE alone;
- the seed's best list arm (T2, cooler_indexed) over `--lists` when given.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as a service worker runs (gunicorn_conf)

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from benchlib import ensure_world  # noqa: E402

from sim.batch import BatchSimulator, OraclePolicy, RandomPolicy, run_key  # noqa: E402
from sim.transport import InProcess, ServicePolicy  # noqa: E402
from sim.user_model import Population  # noqa: E402
from sim.world import World  # noqa: E402

VARIANTS: dict[str, dict] = {
    "session_core (default)": {},
    "  without CORE": {"core_weight": 0.0},
    "  without genre share": {"genre_weight": 0.0},
    "  without popularity": {"pop_weight": 0.0},
    "  without artist discount": {"artist_discount": 1.0},
    "  CORE alone": {"genre_weight": 0.0, "pop_weight": 0.0, "artist_discount": 1.0},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=Path("data/world"))
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory")
    parser.add_argument("--lists", type=Path, default=None, help="its top-100 lists (JSON lines)")
    parser.add_argument("--sessions", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=11)
    ns = parser.parse_args()
    ensure_world(ns.world)
    world = World.load(ns.world)
    population = Population(world)
    lists = {"core": ns.lists} if ns.lists else None
    models = {"core": ns.model / "item_embeddings.npz"}
    print(f"world {ns.world}; model {ns.model}; {ns.sessions} sessions per agent, the same ones; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip

    def mean_time(policy) -> tuple[float, float]:
        started = time.perf_counter()
        result = BatchSimulator(population, run_key(ns.seed, 5)).run(policy, ns.sessions)
        return float(result.time.mean()) + 1.0, time.perf_counter() - started  # + the first track

    agents: dict[str, object] = {
        "random": RandomPolicy(),
        "sticky_artist (C)": ServicePolicy(InProcess.build(world.catalog, "sticky_artist")),
    }
    if lists:
        agents["cooler_indexed (T2)"] = ServicePolicy(
            InProcess.build(world.catalog, "cooler_indexed", lists=lists)
        )
    for label, params in VARIANTS.items():
        agents[label] = ServicePolicy(
            InProcess.build(world.catalog, "session_core", lists=lists, models=models, **params)
        )
    agents["oracle"] = OraclePolicy()
    print(f"{'agent':<28}{'mean time':>10}{'vs C':>9}{'seconds':>9}")
    control = None
    for label, policy in agents.items():
        value, seconds = mean_time(policy)
        if label.startswith("sticky_artist"):
            control = value
        ratio = f"{value / control:.2f}x" if control else ""
        print(f"{label:<28}{value:>10.3f}{ratio:>9}{seconds:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

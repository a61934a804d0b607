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
- with `--lists`: the seed's list arms T1 (sorted_indexed, the seed's rule: the track after the
  previous one in the list, else the list's first) and T2 (cooler_indexed), and the walk T1 served
  before the seed's rule (a cursor that moves one down the list per /next, whatever the previous
  track was; emulated here), so the rule's effect shows on the same sessions.
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


class CursorWalk:
    """T1 before the seed's rule: list[cursor], cursor + 1 per /next, back to 0 on /last."""

    def __init__(self, path: Path, fallback):
        from botify.toplists import read_list_file

        self.lists = dict(read_list_file(path))
        self.fallback, self.cursor = fallback, {}

    def step(self, sim, act, end):
        for row in end.tolist():
            self.cursor.pop(int(sim.user[row]), None)
        out = self.fallback.step(sim, act, end)  # users without a list
        for j, row in enumerate(act.tolist()):
            user = int(sim.user[row])
            tracks = self.lists.get(user)
            if tracks:
                position = self.cursor.get(user, 0)
                out[j], self.cursor[user] = tracks[position % len(tracks)], position + 1
        return out


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
        for name, label in (("sorted_indexed", "T1"), ("cooler_indexed", "T2")):
            agents[f"{name} ({label})"] = ServicePolicy(
                InProcess.build(world.catalog, name, lists=lists)
            )
        sticky = ServicePolicy(InProcess.build(world.catalog, "sticky_artist"))
        agents["T1 before: cursor walk"] = CursorWalk(ns.lists, sticky)
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

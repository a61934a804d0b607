"""Each recommender's own cost per recommendation, in-process, on the 50,000-track world.

    python bench/bench_recommenders.py [--world data/world] [--model DIR] [--sessions 300]

Every registered recommender serves simulated sessions one step at a time through the service's
own code path (`botify.service.Service.serve`: arms, state ops, the recommender) on in-memory
state, so the figure is the service's CPU per recommendation without HTTP and Redis. List arms
get a list of 100 tracks for every user; the session arm gets a model: `--model DIR` (a trained
model directory, its item_embeddings.npz) or, by default, random embeddings of the size CORE
learns at the seed's scale (10,000 tracks x 64). One BLAS thread, as a service worker has
(ops/gunicorn_conf.py). Printed per recommender: mean, p50 and p99 in
microseconds (the issue's bound for the session arm: p99 <= 1 ms), and the load average.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as a service worker runs (gunicorn_conf)

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from benchlib import ensure_world  # noqa: E402

from botify import recommenders  # noqa: E402
from botify.experiments import Experiments  # noqa: E402
from botify.online_model import MemoryModels, OnlineModel  # noqa: E402
from botify.service import Service  # noqa: E402
from botify.settings import Settings  # noqa: E402
from botify.step import Step  # noqa: E402
from botify.user_state import MemoryState  # noqa: E402
from sim.batch import BatchSimulator, run_key  # noqa: E402
from sim.user_model import Population  # noqa: E402
from sim.world import World  # noqa: E402


class Timed:
    """A policy that serves each step alone through `Service.serve`, timing it."""

    def __init__(self, service: Service):
        self.service, self.seconds = service, []

    def step(self, sim, act, end):
        out = np.empty(len(act), dtype=np.int64)
        for row in end.tolist():
            self.service.serve([Step("last", int(sim.user[row]), int(sim.last_track[row]), 0.0, 0)])
        seeds = sim.service_seeds(act).tolist()
        for j, row in enumerate(act.tolist()):
            step = Step("next", int(sim.user[row]), int(sim.last_track[row]),
                        float(sim.last_time[row]), seeds[j])  # fmt: skip
            started = time.perf_counter()
            (outcome,) = self.service.serve([step])
            self.seconds.append(time.perf_counter() - started)
            out[j] = outcome.recommendation
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=Path("data/world"))
    parser.add_argument("--model", type=Path, default=None, help="a trained model directory")
    parser.add_argument("--sessions", type=int, default=300, help="per recommender")
    parser.add_argument("--names", nargs="+", default=None, help="default: every registered one")
    ns = parser.parse_args()
    ensure_world(ns.world)
    world = World.load(ns.world)
    catalog, population = world.catalog, Population(world)
    rng = np.random.default_rng(0)
    lists = {u: rng.choice(world.n_tracks, 100, replace=False) for u in range(world.n_users)}
    if ns.model is not None:
        models = MemoryModels.from_files({"core": ns.model / "item_embeddings.npz"}, catalog)
        source = str(ns.model)
    else:
        tracks = rng.choice(world.n_tracks, 10_000, replace=False)
        embeddings = rng.standard_normal((10_000, 64)).astype(np.float32)
        models = MemoryModels({"core": OnlineModel.from_arrays(tracks, embeddings, catalog)})
        source = "random embeddings, 10,000 tracks x 64"
    print(f"world {ns.world}: {world.n_tracks} tracks; model: {source}; {ns.sessions} sessions "
          f"per recommender, one step at a time; load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    print(f"{'recommender':<16}{'steps':>8}{'mean us':>10}{'p50 us':>10}{'p99 us':>10}")
    for name in ns.names or recommenders.names():
        arm = {"name": "C", "recommender": name}
        experiments = Experiments.from_dict({"experiments": [{"name": "B", "arms": [arm]}]})
        service = Service(
            Settings(replica="in-process"),
            catalog,
            experiments,
            MemoryState({"core": lists}),
            models=models,
        )
        policy = Timed(service)
        BatchSimulator(population, run_key(3), batch_size=1).run(policy, ns.sessions)
        us = np.asarray(policy.seconds) * 1e6
        print(f"{name:<16}{len(us):>8}{us.mean():>10.0f}{np.percentile(us, 50):>10.0f}"
              f"{np.percentile(us, 99):>10.0f}", flush=True)  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

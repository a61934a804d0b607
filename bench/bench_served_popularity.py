"""Why list arms gain what they gain: the time each served track got on an A/B day, by arm, split by
whether it is one of the catalogue's most popular tracks (README "Against the seed").

    python bench/bench_served_popularity.py --run runs/seed-scale [--top 1000]

A served track's time is read from the user's next event, whose track is the previous
recommendation (the export's columns; the world's hidden truth is not read).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from botify.catalog import Catalog


def popularity_rank(world: Path) -> np.ndarray:
    """0 for the most popular track, one entry per track id (the service's own order: TopPop's
    `Catalog.toppop`)."""
    toppop = Catalog.from_tracks_json(world / "tracks.json").toppop
    rank = np.empty(len(toppop), dtype=np.int64)
    rank[toppop] = np.arange(len(toppop))
    return rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a demo run folder")
    parser.add_argument("--top", type=int, default=1000, help="popular = among the top N tracks")
    parser.add_argument("--experiment", default="AB")
    ns = parser.parse_args()
    rank = popularity_rank(ns.run / "world")
    events = pd.read_parquet(ns.run / "data" / "all")
    column = f"exp_{ns.experiment}"
    day = events[events[column].notna()].sort_values(["user", "timestamp"], kind="stable")
    day = day.assign(previous=day.groupby("user")["recommendation"].shift())
    served = day[day["track"] == day["previous"]]
    served = served.assign(popular=rank[served["track"].to_numpy()] < ns.top)
    table = served.groupby([column, "popular"])["time"].agg(["mean", "count"])
    print(f"{ns.run}: time of served tracks by arm, popular = among the top {ns.top}")
    print("arm   outside: mean (plays)   inside: mean (plays)")
    for arm in sorted(served[column].unique()):
        cells = []
        for popular in (False, True):
            mean, count = table.loc[(arm, popular)] if (arm, popular) in table.index else (0, 0)
            cells.append(f"{mean:.3f} ({int(count):,})")
        print(f"{arm:<5} {cells[0]:>22} {cells[1]:>22}")


if __name__ == "__main__":
    main()

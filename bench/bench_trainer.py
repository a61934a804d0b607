"""Trainer speed and quality: RecBole's defaults vs this project's tuned setting.

    .venv/bin/python bench/bench_trainer.py [--batches 4] [--quality-epochs 3] [--full-epoch]

1. Speed at the seed's scale (synthetic logs: 10,000 users, ~600k liked plays, ~35k tracks):
   seconds per 1,000 training samples, median over a few batches (after a warm-up batch), for each
   setting in its own process (glibc reads MALLOC_* only at start), extrapolated to one epoch.
   Extrapolations from a few batches ran ~13 % optimistic against full epochs (NOTES-recbole.md);
   --full-epoch also trains one whole epoch of the tuned setting.
2. Top-100 for 10,000 users from their full chains (trainer.model.top_k + JSON lines).
3. Held-out quality (Recall/NDCG/MRR @10 on the last liked track) of both settings, trained the
   same number of epochs on a smaller synthetic dataset, next to RecBole's Pop.
The machine is shared: other processes on the 2 cores inflate every figure; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(64 << 30)}
SETTINGS = {
    # what the seed ran: RecBole's CORE defaults, sequence length 50, batch 2048
    "defaults": {"env": {}, "config": {"dnn_type": "trm", "MAX_ITEM_LIST_LENGTH": 50}},
    # trainer/core.yaml + the allocator settings `python -m trainer` re-executes itself with
    "tuned": {"env": MALLOC, "config": {"dnn_type": "trm", "MAX_ITEM_LIST_LENGTH": 20}},
    "tuned-len10": {"env": MALLOC, "config": {"dnn_type": "trm", "MAX_ITEM_LIST_LENGTH": 10}},
    "tuned-ave": {"env": MALLOC, "config": {"dnn_type": "ave", "MAX_ITEM_LIST_LENGTH": 20}},
}


def measure_speed(dataset: Path, setting: str, batches: int, full_epoch: bool) -> dict:
    """Runs inside a child process: train `batches` batches, time them."""
    import torch
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, init_seed

    from trainer.recbole_edge import make_config, quiet_recbole, scratch_cwd

    with quiet_recbole(), scratch_cwd():
        config = make_config(dataset, {**SETTINGS[setting]["config"], "show_progress": False})
        init_seed(config["seed"], True)
        train_data, _, _ = data_preparation(config, create_dataset(config))
        model = get_model("CORE")(config, train_data._dataset)
        if setting != "defaults":  # RecBole as the seed ran it leaves autograd anomaly mode on
            torch.autograd.set_detect_anomaly(False)
        optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
        model.train()

        def step(batch) -> int:
            optimizer.zero_grad()
            model.calculate_loss(batch).backward()
            optimizer.step()
            return len(batch)

        iterator = iter(train_data)
        step(next(iterator))  # warm-up
        per_1k = []  # per batch: the median resists other processes' bursts on shared cores
        for _ in range(batches):
            started = time.perf_counter()
            samples = step(next(iterator))
            per_1k.append((time.perf_counter() - started) / samples * 1000)
        per_1k_median = float(np.median(per_1k))
        result = {
            "setting": setting,
            "s_per_1k_samples": round(per_1k_median, 3),
            "s_per_1k_best_batch": round(min(per_1k), 3),
            "train_samples": len(train_data._dataset),
            "extrapolated_epoch_min": round(
                per_1k_median * len(train_data._dataset) / 1000 / 60, 1
            ),
            "threads": torch.get_num_threads(),
        }
        if full_epoch:
            started = time.perf_counter()
            for batch in train_data:
                step(batch)
            result["measured_epoch_min"] = round((time.perf_counter() - started) / 60, 1)
    return result


def measure_top100(dataset: Path) -> dict:
    """Top-100 for every user with a CORE-trm scorer of the seed's size (random weights)."""
    import torch

    from trainer.model import CoreScorer, SavedModel, top_k
    from trainer.recbole_edge import make_config, quiet_recbole, scratch_cwd
    from trainer.train import read_chains

    with quiet_recbole(), scratch_cwd():
        config = make_config(dataset, {})
    arch = {k: config[k] for k in ("embedding_size", "n_layers", "n_heads", "inner_size",
            "hidden_dropout_prob", "attn_dropout_prob", "hidden_act", "layer_norm_eps",
            "initializer_range", "temperature", "MAX_ITEM_LIST_LENGTH", "dnn_type")}  # fmt: skip
    chains = read_chains(dataset)
    tracks = np.unique(chains["tracks"])
    torch.manual_seed(0)
    model = SavedModel(
        CoreScorer(len(tracks) + 1, arch).eval(), tracks, chains["users"], chains["offsets"],
        chains["tracks"], {},
    )  # fmt: skip
    with tempfile.TemporaryFile("w") as f:
        started = time.perf_counter()
        n = 0
        for user, best in top_k(model, k=100):
            f.write(json.dumps({"user": user, "tracks": best}) + "\n")
            n += 1
        seconds = time.perf_counter() - started
    return {"users": n, "tracks": len(tracks), "top100_seconds": round(seconds, 2)}


def child(args: list[str], env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def synthetic_events(
    users: int = 10_000,
    tracks: int = 36_000,
    plays_per_user: float = 100.0,
    session_length: float = 10.0,
    liked_share: float = 0.6,
    genre_size: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """Synthetic listening logs with sequential structure, in the exported-Parquet column layout.

    Tracks sit in genres of `genre_size` consecutive ids; a session picks one of the user's favourite
    genres and walks through it in small steps, so the next liked track depends on the recent ones
    (what CORE models). Used by bench/bench_trainer.py; not a substitute for the simulator.
    """
    rng = np.random.default_rng(seed)
    genres = tracks // genre_size
    genre_weight = 1.0 / np.arange(1, genres + 1) ** 0.5
    genre_weight /= genre_weight.sum()
    favourites = rng.choice(genres, size=(users, 3), p=genre_weight)

    per_user = np.maximum(rng.poisson(plays_per_user, users), 4)
    user = np.repeat(np.arange(users), per_user)
    n = len(user)
    first_of_user = np.r_[True, user[1:] != user[:-1]]
    new_session = first_of_user | (rng.random(n) < 1.0 / session_length)
    session = np.cumsum(new_session) - 1
    session_user = user[new_session]
    session_genre = favourites[session_user, rng.integers(0, 3, len(session_user))]

    step = rng.choice([-2, -1, 1, 1, 2, 3], size=n)
    start = (genre_size * rng.beta(0.6, 2.0, len(session_user))).astype(np.int64)
    step[new_session] = start
    walk = np.cumsum(step)
    walk -= np.repeat(walk[new_session] - start, np.diff(np.r_[np.flatnonzero(new_session), n]))
    track = session_genre[session] * genre_size + np.mod(walk, genre_size)

    liked = rng.random(n) < liked_share
    time = np.where(liked, rng.uniform(0.81, 1.0, n), rng.uniform(0.0, 0.8, n)).round(2)
    last_of_session = np.r_[new_session[1:], True]
    timestamp = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 1000
    return pd.DataFrame(
        {
            "message": np.where(last_of_session, "last", "next"),
            "timestamp": timestamp,
            "user": user.astype(np.int64),
            "track": track.astype(np.int64),
            "time": time,
            "latency": np.full(n, 0.001),
            "recommendation": pd.array(np.where(last_of_session, -1, track), dtype="Int64"),
            "replica": "bench",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=6, help="timed batches per setting")
    parser.add_argument("--quality-epochs", type=int, default=2)
    parser.add_argument("--quality-users", type=int, default=600)
    parser.add_argument("--full-epoch", action="store_true", help="also train one full tuned epoch")
    parser.add_argument("--settings", default="defaults,tuned,tuned-len10,tuned-ave")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns._child:
        kind, dataset, *rest = ns._child
        if kind == "speed":
            print(json.dumps(measure_speed(Path(dataset), rest[0], ns.batches, ns.full_epoch)))
        else:
            print(json.dumps(measure_top100(Path(dataset))))
        return

    from trainer.prepare import prepare
    from trainer.train import train

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as tmp:
        tmp = Path(tmp)
        synthetic_events(users=10_000, tracks=44_000, seed=0).to_parquet(tmp / "seed.parquet")
        summary = prepare(tmp / "seed.parquet", tmp / "seedscale")
        print(f"seed-scale synthetic dataset: {summary.line()}", flush=True)

        speeds = {}
        for setting in [] if ns.skip_speed else ns.settings.split(","):
            full = ns.full_epoch and setting == "tuned"
            args = ["--batches", str(ns.batches), *(["--full-epoch"] if full else [])]
            speeds[setting] = child(
                [*args, "--_child", "speed", str(tmp / "seedscale"), setting],
                SETTINGS[setting]["env"],
            )
            print(json.dumps(speeds[setting]), flush=True)
        base = speeds.get("defaults")
        if speeds:
            print("\nspeed at seed scale (training step only; s per 1k samples -> min per epoch)")
        for setting, r in speeds.items():
            ratio = f"{base['s_per_1k_samples'] / r['s_per_1k_samples']:.1f}x" if base else "-"
            measured = (
                f", measured {r['measured_epoch_min']} min" if "measured_epoch_min" in r else ""
            )
            print(
                f"  {setting:<10} {r['s_per_1k_samples']:6.2f} s/1k -> {r['extrapolated_epoch_min']:5.1f} min/epoch{measured}  speed-up vs defaults {ratio}"
            )

        top = child(["--_child", "top100", str(tmp / "seedscale")], MALLOC)
        print(
            f"\ntop-100 for {top['users']:,} users over {top['tracks']:,} tracks (CORE-trm, len 20): {top['top100_seconds']} s",
            flush=True,
        )

        if not ns.skip_quality:
            synthetic_events(users=ns.quality_users, tracks=3_000, seed=1).to_parquet(
                tmp / "small.parquet"
            )
            small = prepare(tmp / "small.parquet", tmp / "small")
            print(f"\nquality dataset: {small.line()}; {ns.quality_epochs} epochs each")
            rows, pop = {}, {}
            for setting in ("defaults", "tuned", "tuned-len10", "tuned-ave"):
                m = train(tmp / "small", tmp / f"model-{setting}", epochs=ns.quality_epochs,
                          overrides=SETTINGS[setting]["config"], show_progress=False)  # fmt: skip
                rows[setting] = m["test"]["CORE"] | {"s/epoch": m["seconds_per_epoch"]}
                pop = m["test"]["Pop"] | {"s/epoch": float("nan")}
            rows["Pop"] = pop
            keys = ["recall@10", "ndcg@10", "mrr@10", "recall@100"]
            print(f"  {'':<10}" + "".join(f"{k:>12}" for k in [*keys, "s/epoch"]))
            for name, r in rows.items():
                cells = "".join(f"{r[k]:>12.4f}" for k in keys)
                print(f"  {name:<10}{cells}{r['s/epoch']:>12.1f}")
    print(
        f"\nbench total {time.perf_counter() - began:.0f} s (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()

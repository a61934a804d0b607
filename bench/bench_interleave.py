"""Interleaving against the A/B on the demo's arm pairs: sessions to a verdict, and carry-over.

    .venv/bin/python bench/bench_interleave.py [--world data/world] [--run runs/<demo run>]
                                               [--sessions 20000] [--t4-sessions 4000]
                                               [--picture docs/img/interleave.png] [--out FILE]

Everything runs in-process through the service's own classes on in-memory state, on the pools
of `bench/pools.py` (those of `bench_ab_truth.py`):

1. **World** `--world` (the default world generated there when missing); a **pre-period** of
   `--pre-sessions` StickyArtist sessions, logged, and a small CORE trained on its logs as the
   demo trains on day 1 (`--epochs`); or `--run DIR`: a demo run's lists and model.
2. **Pools on the same sessions**: every pure arm of the demo (C, T1, T2, T3, T4 of
   config/experiments.yml) and one interleaving arm per pair (T1 vs C, T3 vs C, T1 vs T2, T4 vs
   T1; a is the first, as config/experiments-interleave.yml), each over the same `--sessions`
   sessions (`--t4-sessions` for T4 and its pair: T4's sessions are long and its steps cost
   more), every pool logged and exported, so the credit is `python -m script.ab interleave`'s
   own (`script.ab.interleave`).
3. **The A/B** of a pair: its two pure pools as the arms, per session (time per session, the
   report's metric, counted per session here as interleaving counts sessions): its effect, its
   Welch p-value, and the sessions an A/B needs in all (both arms) to detect that effect with
   80 % power at 95 %: 2 (z_0.975 + z_0.8)^2 (var_a + var_b) / effect^2.
   **Interleaving** of the pair: per session a's mean credited time per step minus b's, its
   t p-value, and the sessions it needs: (z_0.975 + z_0.8)^2 var / mean^2 usable sessions (both
   sides credited at least once), over the usable share of the sessions run. The ratio of the
   two and whether the verdicts (the preferred side at 95 %, or none) agree.
4. **Carry-over**: each side's mean credited time per step inside the interleaving arm against
   the same recommender's mean time per step in its own pure pool (each step's listening time,
   from the logs, as the credit counts it). A side whose picks follow the session (StickyArtist
   serves the artist of the track just heard, also when the other side picked it; a list arm
   restarts at its top when the track just heard is not in its list) is not measured alone.

Prints both tables and one JSON line; draws `--picture`.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as a service worker runs (gunicorn_conf)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pools import (  # noqa: E402
    ARMS,
    EXTRA_ARMS,
    POOL,
    PRE,
    WORLD,
    load_world,
    run_pools,
    simulate,
    train_source,
)

from script.ab import interleave as il  # noqa: E402

PAIRS = (("T1", "C"), ("T3", "C"), ("T1", "T2"), ("T4", "T1"))  # (a, b): the pairs
PARAMS = {  # each demo arm as an interleaving side (config/experiments.yml's params)
    "C": {"name": "sticky_artist"},
    "T1": {"name": "sorted_indexed", "lists": "core"},
    "T2": {"name": "cooler_indexed", "lists": "core"},
    "T3": {"name": "indexed", "lists": "core"},
    "T4": {"name": "session_core", "lists": "core"},
}
RUNS = 2  # each pool: two runs of its sessions (run keys POOL and POOL + 3), side by side
Z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)  # 95 %, 80 % power


def pair_name(a: str, b: str) -> str:
    return f"{a}x{b}"


def ab_test(pool_a: dict, pool_b: dict, alpha: float) -> dict:
    """The A/B of two pure pools, per session: effect a - b, Welch p, sessions needed in all."""
    x, y = pool_a["time"], pool_b["time"]
    effect = float(x.mean() - y.mean())
    var = float(x.var(ddof=1) + y.var(ddof=1))
    p = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
    needed = 2 * Z**2 * var / effect**2 if effect else math.inf
    verdict = "none" if not p < alpha else ("a" if effect > 0 else "b")
    return {"effect": effect, "relative": effect / float(y.mean()), "p": p,
            "sessions_needed": needed, "verdict": verdict, "sessions": len(x) + len(y)}  # fmt: skip


def logged_steps(data: Path) -> pd.DataFrame:
    """Every step of an exported pool as interleaving's credit takes it; a pure pool's steps are
    all given to side a, so its credit is each served track's listening time.

    A pool's two runs (`RUNS`, exported apart) ran side by side, so one user's sessions of the
    two overlap in time: ordered by timestamp together they would interleave. Each run's users
    are told apart (the run in the user id's high bits): a user's events then follow each other
    as they did, within one run."""
    runs = []
    for run in range(RUNS):
        events = il.load_interleaved(data / str(run))
        events["user"] += run << 32
        runs.append(events)
    events = pd.concat(runs, ignore_index=True)
    if events["team"].isna().all():  # a pure arm: every next step is the arm's own
        events["team"] = np.where(events["message"] == "next", "a", None)
    return events


def side_steps(credit: pd.DataFrame, side: str) -> dict:
    """A side's credited steps: mean listening time, and the share that served a track already
    served (and credited) earlier in the session."""
    repeat = credit.duplicated(["user", "session", "track"])
    mine = credit["team"] == side
    return {"time": float(credit.loc[mine, "time"].mean()), "repeats": float(repeat[mine].mean())}


def draw(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    names = [r["pair"] for r in rows]
    x = np.arange(len(rows))
    ab = [r["ab"]["sessions_needed"] for r in rows]
    inter = [r["sessions_needed"] for r in rows]
    left.bar(x - 0.2, ab, 0.4, label="A/B (both arms)", color="#888")
    left.bar(x + 0.2, inter, 0.4, label="interleaving", color="#1f77b4")
    for i, r in enumerate(rows):
        left.annotate(f"{r['ratio']:.1f}x", (i, max(ab[i], inter[i])), ha="center", va="bottom")
    left.set_yscale("log")
    left.set_xticks(x, [f"{n}\nA/B {r['ab']['verdict']}, IL {r['interleaving']['verdict']}"
                        for n, r in zip(names, rows, strict=True)])  # fmt: skip
    left.set_ylabel("sessions for 80 % power at 95 % (log)")
    left.set_title("Sessions to a verdict: A/B vs interleaving")
    left.legend()
    labels, alone, inside = [], [], []
    for r in rows:
        for side in ("a", "b"):
            labels.append(f"{r[side]} in {r['pair']}")
            alone.append(r["carry_over"][side]["alone"])
            inside.append(r["carry_over"][side]["inside"])
    y = np.arange(len(labels))
    right.barh(y - 0.2, alone, 0.4, label="alone (its own pool)", color="#888")
    right.barh(y + 0.2, inside, 0.4, label="inside interleaving (credited)", color="#ff7f0e")
    right.set_yticks(y, labels)
    right.invert_yaxis()
    right.set_xlabel("mean listening time per served step")
    right.set_title("Carry-over: a side's time inside interleaving vs alone")
    right.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])


def count(n: float) -> str:
    return "inf" if not math.isfinite(n) else f"{math.ceil(n):,}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=Path("data/world"))
    parser.add_argument("--run", type=Path, default=None,
                        help="a demo run folder: its lists and model instead of a small CORE")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pre-sessions", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=2, help="the small CORE's epochs")
    parser.add_argument("--sessions", type=int, default=20_000, help="sessions of each pool")
    parser.add_argument("--t4-sessions", type=int, default=4_000,
                        help="sessions of T4's pools (T4, T1 beside it, T4xT1)")  # fmt: skip
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--picture", type=Path, default=ROOT / "docs" / "img" / "interleave.png")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    ns = parser.parse_args()
    started = time.perf_counter()
    timings: dict[str, float] = {}

    from script.export import export

    world, population = load_world(ns.world, ns.seed)
    print(f"world {ns.world}: {world.n_tracks:,} tracks, {world.n_users:,} users; seed "
          f"{ns.seed}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)  # fmt: skip

    scratch = tempfile.TemporaryDirectory(prefix="bench-interleave-")
    work = Path(scratch.name)
    t0 = time.perf_counter()
    if ns.run is not None:
        lists = ns.run / "train" / "recommendations_core.json"
        model = ns.run / "train" / "model" / "item_embeddings.npz"
        source = f"the demo run {ns.run}"
    else:
        print(f"pre-period: {ns.pre_sessions:,} sessions of C, logged; a small CORE on its "
              "logs", flush=True)  # fmt: skip
        simulate("C", ns.pre_sessions, PRE, log_dir=work / "pre", progress=True)
        lists, model = train_source(work / "pre", work / "train", ns.epochs)
        source = f"a small CORE ({ns.epochs} epochs) trained on {ns.pre_sessions:,} logged sessions"
    WORLD.update(lists=lists, model=model)
    timings["lists and model"] = time.perf_counter() - t0

    for a, b in PAIRS:
        EXTRA_ARMS[pair_name(a, b)] = ("interleave", {"a": PARAMS[a], "b": PARAMS[b]})
    # T4 and its pair run on fewer sessions (a prefix of the others' keys: the same sessions);
    # T1 runs again beside them so that pair's A/B has its control on exactly those sessions
    sizes = {name: ns.sessions for name in [*ARMS, *EXTRA_ARMS]}
    sizes.update({"T4": ns.t4_sessions, pair_name("T4", "T1"): ns.t4_sessions})
    EXTRA_ARMS["T1@T4"] = (ARMS["T1"], {})
    sizes["T1@T4"] = ns.t4_sessions
    jobs = []
    for name, n in sizes.items():  # two runs per pool (one per process), the same two keys
        half = n // 2
        jobs += [(name, half, POOL, 0.0, work / "logs" / name / "0"),
                 (name, n - half, POOL + 3, 0.0, work / "logs" / name / "1")]  # fmt: skip
    assert RUNS == 2
    jobs.sort(key=lambda job: -job[1] * (3 if "T4" in job[0] else 1))  # long jobs first
    t0 = time.perf_counter()
    pools = run_pools(jobs, ns.processes)
    timings["pools"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    data: dict[str, Path] = {}
    for name in tqdm(sizes, desc="export", file=sys.stderr):
        data[name] = work / "data" / name
        for run in range(RUNS):
            export([work / "logs" / name / str(run)], data[name] / str(run))
    fallback = {}  # an arm on its fallback is not the arm meant (no list for the user, ...)
    for name, path in data.items():
        events = pd.concat(pd.read_parquet(path / str(run), columns=["message", "fallback"])
                           for run in range(RUNS))  # fmt: skip
        fallback[name] = float(events.loc[events["message"] == "next", "fallback"].mean())
    pairs = {pair_name(a, b) for a, b in PAIRS}
    alone = {name: side_steps(il.credit_steps(logged_steps(data[name])), "a")
             for name in sizes if name not in pairs}  # fmt: skip
    rows = []
    for a, b in tqdm(PAIRS, desc="pairs", file=sys.stderr):
        name = pair_name(a, b)
        b_pool = "T1@T4" if a == "T4" else b
        steps = logged_steps(data[name])
        result = il.analyse(steps, alpha=ns.alpha)
        credit = il.credit_steps(steps)
        pref = result["preference"]["session"]
        ab = ab_test(pools[a], pools[b_pool], ns.alpha)
        # a session with no step credited to one side (one step long, or all "both") says
        # nothing: the sessions to run are the usable ones needed over their share
        usable = pref.n / sizes[name]
        needed = pref.units_needed / usable
        agree = (
            "-" if ab["verdict"] == "none" else ("yes" if ab["verdict"] == pref.verdict else "NO")
        )
        carry = {}
        for side, arm in (("a", a), ("b", b_pool)):
            inside = side_steps(credit, side)
            carry[side] = {"alone": alone[arm]["time"], "inside": inside["time"],
                           "repeats_alone": alone[arm]["repeats"], "repeats_inside": inside["repeats"]}  # fmt: skip
        rows.append({
            "pair": name, "a": a, "b": b, "sessions": sizes[name], "ab": ab,
            "interleaving": pref.to_dict(), "both_share": result["both_share"],
            "usable": usable, "sessions_needed": needed,
            "ratio": ab["sessions_needed"] / needed, "agree": agree,
            "carry_over": carry,
        })  # fmt: skip
    timings["export and credit"] = time.perf_counter() - t0
    scratch.cleanup()

    table = [["pair (a vs b)", "sessions per pool", "A/B: effect on time per session (a vs b)",
              "A/B p", "A/B needs (both arms)", "interleaving: a - b per step [95 % CI]",
              "IL p", "share won by a", "steps both picked", "IL needs (usable share)", "A/B / IL", "verdicts (A/B, IL)", "agree"]]  # fmt: skip
    for r in rows:
        p, ab = r["interleaving"], r["ab"]
        table.append([
            f"{r['a']} vs {r['b']}", f"{r['sessions']:,}",
            f"{100 * ab['relative']:+.1f} %", f"{ab['p']:.2g}", count(ab["sessions_needed"]),
            f"{p['mean']:+.4f} [{p['lower']:+.4f}, {p['upper']:+.4f}]", f"{p['p_value']:.2g}",
            f"{100 * p['win_share']:.1f} %", f"{100 * r['both_share']:.1f} %",
            f"{count(r['sessions_needed'])} ({100 * r['usable']:.0f} %)", f"{r['ratio']:.1f}x",
            f"{ab['verdict']}, {p['verdict']}", r["agree"],
        ])  # fmt: skip
    carry_rows = [["pair", "side", "time per step alone", "inside interleaving", "inside / alone",
                   "repeats alone", "repeats inside"]]  # fmt: skip
    for r in rows:
        for side in ("a", "b"):
            c = r["carry_over"][side]
            carry_rows.append([r["pair"], f"{side}: {r[side]}", f"{c['alone']:.4f}",
                               f"{c['inside']:.4f}", f"{c['inside'] / c['alone']:.2f}",
                               f"{100 * c['repeats_alone']:.1f} %",
                               f"{100 * c['repeats_inside']:.1f} %"])  # fmt: skip
    print("\n" + markdown(table) + "\n")
    print("Carry-over: each side's mean listening time per served step, alone (its own pool) and "
          "inside the interleaving arm (the steps credited to it), and the share of those steps "
          "that served a track already served earlier in the session:\n")  # fmt: skip
    print(markdown(carry_rows) + "\n")
    print("steps served by the fallback (no list for the user): " + ", ".join(
        f"{name} {100 * share:.1f} %" for name, share in fallback.items()) + "\n")  # fmt: skip
    if max(fallback.values()) > 0.2:
        print("WARNING: an arm served more than 20 % of its steps from its fallback: it is not the "
              "arm meant (more --pre-sessions give more users a list)\n")  # fmt: skip
    draw(rows, ns.picture)
    total = time.perf_counter() - started
    print(f"lists and model: {source}. Same sessions in every pool (T4's pools: the first "
          f"{ns.t4_sessions:,}). picture: {ns.picture}")  # fmt: skip
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
          + f"; total {total:.0f} ({total / 60:.1f} min)")  # fmt: skip
    out = {"world": str(ns.world), "seed": ns.seed, "source": source, "seconds": total,
           "timings": timings, "pairs": rows, "fallback": fallback, "args": {k: str(v) for k, v in vars(ns).items()}}  # fmt: skip
    if ns.out is not None:
        ns.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

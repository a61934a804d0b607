"""Do offline numbers predict the A/B? Held-out metrics and off-policy estimates against the
online effect, over eleven arms in one world (issue 19).

    python bench/bench_offline_online.py [--world DIR | --world-seed 42] [--collect-sessions 100000]
        [--ope-sessions 30000] [--ab-sessions 110000] [--no-ope] [--core-epochs 1 5] [--zoo-epochs N] [--seed 1489]
        [--work runs/offline-online] [--fresh] [--picture docs/img/offline_online.png]
        [--replot OUTPUT]

Steps, each the lab's own code, each cached in `--work` (`--fresh` redoes them):

1. **Day 1**: the demo's collection (`config/experiments-collect.yml`: TopPop over the top 10,
   100 and 1,000, a third of the users each), `--collect-sessions` sessions through the service's
   own classes in-process, logged by its event log (with each step's propensity) and exported.
2. **Held out**: each user's last liked play (`trainer.prepare.liked_plays`) leaves the training
   events; every model below trains on the rest, so the held-out play is new to all of them.
3. **Models**: CORE at `--core-epochs` (two sizes: the lists `core_e<N>`, the model of the last
   one also drives the session arm) and the course's seminar recommenders (`trainer.zoo`:
   user_based, lightfm, contextual, gcf), as the demo and bench_zoo train them.
4. **Offline**: Recall@10 and NDCG@10 of each arm's top 10 for each held-out user (user lists:
   their first 10; contextual: the list of the user's last training play; TopPop: the 10 most
   popular; Random: the expectation, 10 / catalog size). StickyArtist and the session arm have no
   list: no offline figure.
5. **Off-policy**: `script.ope` on an exploration day (`--ope-sessions`), which no model trained
   on (a model judged on the logs it learned from holds what the logging policy happened to
   serve each user, and no importance weight corrects that). Day 1's TopPop arms cover too
   little of what the candidates serve (measured: every arm refused), so this day's policy is a
   `mixture` (`botify/recommenders/mixture.py`) over every candidate that can tell its chance of
   another's track, a coin per step, each event logging the exact marginal propensity. Indexed
   (user_based, lightfm, gcf) cannot be a side and so gets no support. For each arm: IPS, SNIPS,
   DM and DR of its per-step mean listening time, or a refusal.
6. **Online**: the A/B in-process (`--ab-sessions` sessions; C = StickyArtist, users split by the
   arm hash): each arm's effect on mean time per session against C (the report's Welch interval)
   and its per-step mean time (time heard per recommended track, a ratio over users with the
   delta method's interval), which is what the off-policy estimates estimate.

Then the table, Kendall's tau between each offline signal and the online effect, the share of
arms whose OPE estimate lies inside the online per-step interval (where support holds), and a
scatter picture. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_zoo import collect, progress_bar, world_and_population  # noqa: E402

from botify.experiments import Experiments  # noqa: E402
from sim.batch import BatchSimulator, run_key  # noqa: E402
from sim.calibrate import effect  # noqa: E402
from sim.transport import InProcess, ServicePolicy  # noqa: E402

COLLECT = ROOT / "config" / "experiments-collect.yml"
ZOO = ("user_based", "lightfm", "contextual", "gcf")
K = 10
Z95 = 1.959963984540054


def arms_config(core_lists: list[str]) -> list[dict]:
    """The A/B's arms: C = StickyArtist, then every candidate (the zoo wired as the course's
    server wired it, CORE's lists as the seed's T1, the session arm on the larger CORE)."""
    arms = [
        {"name": "C", "recommender": "sticky_artist"},
        {"name": "random", "recommender": "random"},
        {"name": "toppop", "recommender": "toppop", "params": {"k": 100}},
    ]
    for lists in core_lists:
        arms.append({"name": lists, "recommender": "sorted_indexed", "params": {"lists": lists}})
    for name in ("user_based", "lightfm", "gcf"):
        arms.append({"name": name, "recommender": "indexed",
                     "params": {"lists": name, "fallback": "random"}})  # fmt: skip
    arms.append({"name": "contextual", "recommender": "contextual",
                 "params": {"lists": "contextual", "fallback": "random"}})  # fmt: skip
    arms.append({"name": "session_core", "recommender": "session_core",
                 "params": {"lists": core_lists[-1]}})  # fmt: skip
    return arms


# --------------------------------------------------------------------------- held out, trained
def split_held_out(events_dir: Path, work: Path) -> tuple[Path, pd.DataFrame]:
    """Training events without each user's last liked play, and those plays (user, track, last
    training track)."""
    from trainer.prepare import liked_plays

    out, held_path = work / "train_events", work / "held_out.parquet"
    if out.exists() and held_path.exists():
        return out, pd.read_parquet(held_path)
    events = pd.read_parquet(events_dir)
    liked = liked_plays(events)
    held = liked.groupby("user", sort=True).tail(1)
    key = ["user", "track", "timestamp"]
    drop = events[key].reset_index().merge(held[key], on=key)["index"]
    train = events.drop(index=drop.to_numpy())
    plays = train.loc[train["message"].isin(("next", "last"))].sort_values(["user", "timestamp"])
    last_play = plays.groupby("user")["track"].last().rename("last_track")
    held = held.merge(last_play, left_on="user", right_index=True, how="left")
    out.mkdir(parents=True, exist_ok=True)
    train.to_parquet(out / "part-0.parquet", index=False)
    held.to_parquet(held_path, index=False)
    return out, held


def train_core(train_events: Path, work: Path, epochs: int) -> tuple[Path, Path, dict]:
    """CORE as the demo trains it (its config's sampled softmax), `epochs` epochs: lists and
    model."""
    from demo.settings import load_config as demo_config

    negatives = demo_config(ROOT / "config" / "demo.yml", {})["train"]["negatives"]
    home = work / f"core_e{epochs}"
    recs, model = home / "recs.jsonl", home / "model"
    if not recs.exists():
        python = [sys.executable, "-m", "trainer"]
        steps = (
            ["prepare", "--data", train_events, "--out", home / "dataset"],
            ["train", "--dataset", home / "dataset", "--out", model, "--epochs", epochs,
             "--negatives", negatives, "--no-progress"],
            ["recommend", "--model", model, "--out", recs],
        )  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        for step in steps:
            done = subprocess.run([*python, *map(str, step)], env=env, capture_output=True,
                                  text=True)  # fmt: skip
            if done.returncode:
                sys.exit(f"trainer {step[0]} failed:\n{done.stdout}\n{done.stderr}")
    metrics = json.loads((model / "metrics.json").read_text())["test"]["CORE"]
    return recs, model / "item_embeddings.npz", metrics


def train_zoo(train_events: Path, work: Path, epochs: int | None) -> dict[str, Path]:
    from trainer.zoo import train as train_model

    files = {}
    for name in ZOO:
        out = work / "lists" / f"{name}.jsonl"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            train_model(name, train_events, out, epochs=epochs)
            print(f"  trained {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        files[name] = out
    return files


# ------------------------------------------------------------------------------------ offline
@dataclass(frozen=True)
class Offline:
    recall: float
    ndcg: float
    users: int


def rank_metrics(top: list[list[int]], held: np.ndarray) -> Offline:
    """Recall@K and NDCG@K with one held-out item per user (RecBole's, as the trainer's)."""
    recall = ndcg = 0.0
    for tracks, target in zip(top, held.tolist(), strict=True):
        if target in tracks[:K]:
            rank = tracks[:K].index(target)
            recall += 1.0
            ndcg += 1.0 / math.log2(rank + 2)
    n = max(len(held), 1)
    return Offline(recall / n, ndcg / n, len(held))


def offline_metrics(held: pd.DataFrame, lists: dict[str, Path], catalog) -> dict[str, Offline]:
    from botify.item_lists import read_item_list_file
    from botify.toplists import read_list_file

    users, targets = held["user"].to_numpy(), held["track"].to_numpy()
    out: dict[str, Offline] = {}
    n = len(catalog)
    expected_ndcg = sum(1.0 / math.log2(r + 2) for r in range(K)) / n
    out["random"] = Offline(K / n, expected_ndcg, len(users))
    popular = [int(t) for t in catalog.toppop[:K]]
    out["toppop"] = rank_metrics([popular] * len(users), targets)
    for name, path in lists.items():
        if name == "contextual":
            by_item = dict(read_item_list_file(path).rows())
            last = held["last_track"].fillna(-1).astype(int).tolist()
            top = [by_item.get(t, []) for t in last]
        else:
            by_user = dict(read_list_file(path))
            top = [by_user.get(int(u), []) for u in users]
        out[name] = rank_metrics(top, targets)
    return out


# ------------------------------------------------------------------------------------- online
@dataclass(frozen=True)
class Online:
    users: int
    effect: float  # mean time per session against C, %
    low: float
    high: float
    step_time: float  # time heard per recommended track
    step_low: float
    step_high: float


def ratio_interval(num: np.ndarray, den: np.ndarray) -> tuple[float, float, float]:
    """sum(num) / sum(den) over users, with the delta method's 95 % interval."""
    r = num.sum() / den.sum()
    n = len(num)
    se = math.sqrt(np.var(num - r * den, ddof=1) / n) / den.mean()
    return r, r - Z95 * se, r + Z95 * se


def online_ab(world, population, sessions: int, seed: int, arms: list[dict],
              lists: dict[str, Path], model: Path) -> dict[str, Online]:  # fmt: skip
    experiments = Experiments.from_dict({"experiments": [{"name": "AGREE", "arms": arms}]})
    core = arms[-1]["params"]["lists"]
    transport = InProcess.build(world.catalog, experiments=experiments, lists=lists,
                                models={core: model})  # fmt: skip
    with progress_bar(sessions, "A/B") as bar:
        results = BatchSimulator(population, run_key(seed, 0, 2), progress=bar.update).run(
            ServicePolicy(transport), sessions
        )
    frame = pd.DataFrame({"user": results.user, "logged": results.time + 1.0,
                          "time": results.time, "steps": results.tracks})  # fmt: skip
    per_user = frame.groupby("user").agg(
        logged=("logged", "sum"), time=("time", "sum"), steps=("steps", "sum"),
        sessions=("user", "size"),
    )  # fmt: skip
    route = experiments.routing
    per_user["arm"] = [route.assign(int(u)).name for u in per_user.index]
    per_session = {a: g["logged"].to_numpy() / g["sessions"].to_numpy()
                   for a, g in per_user.groupby("arm")}  # fmt: skip
    out = {}
    for arm, group in per_user.groupby("arm"):
        e = effect(per_session[arm], per_session["C"])
        step = ratio_interval(group["time"].to_numpy(float), group["steps"].to_numpy(float))
        out[str(arm)] = Online(len(group), e.percent, e.low, e.high, *step)
    return out


# ------------------------------------------------------------------------------- off-policy
def exploration_arm(arms: list[dict]) -> dict:
    """The OPE day's logging policy: one `mixture` over every candidate that can be a side (it
    must tell its chance of another side's track; an Indexed side reads its whole list for it),
    equal weights."""
    from botify.recommenders.mixture import can_be_side

    sides = [
        {"name": a["recommender"], **a.get("params", {})}
        for a in arms
        if can_be_side(a["recommender"])
    ]
    return {"name": "explore", "recommender": "mixture", "params": {"sides": sides}}


def explore(world, population, ns, arms: list[dict], lists, model: Path) -> Path:
    """A day of `--ope-sessions` sessions under the exploration arm, logged and exported."""
    from script.export import export

    work = ns.work / "ope"
    events = work / "events"
    if events.exists():
        return events
    core = arms[-1]["params"]["lists"]
    arm = exploration_arm(arms)
    experiments = Experiments.from_dict({"experiments": [{"name": "EXPLORE", "arms": [arm]}]})
    transport = InProcess.build(world.catalog, experiments=experiments, lists=lists,
                                models={core: model}, log_dir=work / "logs")  # fmt: skip
    with progress_bar(ns.ope_sessions, "explore") as bar:
        BatchSimulator(population, run_key(ns.seed, 0, 3), progress=bar.update).run(
            ServicePolicy(transport), ns.ope_sessions
        )
    transport.service.events.close()
    summary = export([work / "logs"], events)
    sides = ", ".join(side["name"] for side in arm["params"]["sides"])
    print(f"OPE day: {ns.ope_sessions:,} sessions under a mixture of {sides}: "
          f"{summary.events_added:,} events", file=sys.stderr)  # fmt: skip
    return events


def off_policy(ope_events: Path, arms: list[dict], lists, model: Path, catalog) -> dict:
    """Each arm's estimates from the OPE day's logs (`script.ope`), or why it has none. Every
    candidate is replayed on the same logged steps, loaded once."""
    from script.ope import Candidate, evaluate_logged, load

    logged = load(ope_events, None, (), None, None)
    core = arms[-1]["params"]["lists"]
    out = {}
    for arm in arms:
        params = dict(arm.get("params", {}))
        used = {params["lists"]} if "lists" in params else set()
        candidate = Candidate(
            arm["name"], arm["recommender"], params,
            lists={n: lists[n] for n in used},
            models={core: model} if arm["recommender"] == "session_core" else {},
        )  # fmt: skip
        started = time.perf_counter()
        result = evaluate_logged(logged, candidate, catalog, progress=False)
        print(f"  OPE {arm['name']}: {result.matched:,} matched of {result.steps:,}, ESS "
              f"{result.ess:,.0f} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)  # fmt: skip
        out[arm["name"]] = {
            "supported": result.refusal is None, "why": result.refusal, "ess": result.ess,
            "matched": result.matched, "steps": result.steps,
            "mean_weight": [result.mean_weight.value, result.mean_weight.low,
                            result.mean_weight.high],
            **{k.lower(): [e.value, e.low, e.high] for k, e in result.estimates.items()},
        }  # fmt: skip
    return out


# ----------------------------------------------------------------------------------- report
def kendall(x: dict[str, float], y: dict[str, float]) -> tuple[float, float, int]:
    from scipy.stats import kendalltau

    names = [n for n in x if n in y and x[n] is not None and not math.isnan(x[n])]
    if len(names) < 3:
        return math.nan, math.nan, len(names)
    tau = kendalltau([x[n] for n in names], [y[n] for n in names])
    return float(tau.statistic), float(tau.pvalue), len(names)


def picture(rows: list[dict], path: Path) -> None:
    """Each offline signal against the online effect; OPE's panel shows its support instead
    when no arm has an estimate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("recall", "held-out Recall@10"), ("ndcg", "held-out NDCG@10"),
              ("ope_dr", "OPE (DR): per-step time")]  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.8))
    for ax, (key, label) in zip(axes, panels, strict=True):
        shown = [r for r in rows if r.get(key) is not None]
        if key == "ope_dr" and not shown:
            support = [(r["arm"], r["ope"].get("mean_weight")) for r in rows]
            support = [(a, w) for a, w in support if w is not None]
            ax.barh([a for a, _ in support], [100 * min(w[0], 2.0) for _, w in support],
                    xerr=[[100 * (w[0] - w[1]) for _, w in support],
                          [100 * (w[2] - w[0]) for _, w in support]], capsize=3)  # fmt: skip
            ax.axvline(90, color="red", lw=1, ls="--", label="needed for an estimate (90 %)")
            ax.set_xlabel("OPE support: share of the arm's choices the logging policy serves, %")
            ax.set_title("every arm refused: the logs do not cover it", fontsize=10)
            ax.legend(fontsize=8)
            continue
        if key == "ope_dr":  # the estimate against what it estimates: per-step time online
            for r in shown:
                dr = r["ope"]["dr"]
                ax.errorbar(dr[0], r["step_time"], xerr=[[dr[0] - dr[1]], [dr[2] - dr[0]]],
                            yerr=[[r["step_time"] - r["step_low"]], [r["step_high"] - r["step_time"]]],
                            fmt="o", capsize=3)  # fmt: skip
                ax.annotate(r["arm"], (dr[0], r["step_time"]), fontsize=8, xytext=(4, -10),
                            textcoords="offset points")  # fmt: skip
            top = max(max(r["step_high"], r["ope"]["dr"][2]) for r in shown) * 1.05
            ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--", label="estimate = online")
            ax.set_xlabel(label)
            ax.set_ylabel("online: time per recommended track")
            ax.legend(fontsize=8, loc="upper left")
            continue
        for r in shown:
            ax.errorbar(r[key], r["effect"], yerr=[[r["effect"] - r["low"]], [r["high"] - r["effect"]]],
                        fmt="o", capsize=3)  # fmt: skip
            ax.annotate(r["arm"], (r[key], r["effect"]), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")  # fmt: skip
        ax.set_xlabel(label)
        ax.set_ylabel("online: mean time per session vs C, %")
        ax.axhline(0, color="grey", lw=0.5)
    fig.suptitle("Offline signals against the online A/B (95 % intervals)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=None, help="a world folder")
    parser.add_argument("--world-seed", type=int, default=42)
    parser.add_argument("--collect-sessions", type=int, default=100_000)
    parser.add_argument("--ab-sessions", type=int, default=110_000)
    parser.add_argument(
        "--ope-sessions",
        type=int,
        default=30_000,
        help="the OPE day: sessions under day 1's logging policy, not trained on",
    )
    parser.add_argument("--core-epochs", type=int, nargs=2, default=[1, 5])
    parser.add_argument("--zoo-epochs", type=int, default=None, help="default: the course's")
    parser.add_argument("--seed", type=int, default=1489)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "offline-online")
    parser.add_argument("--fresh", action="store_true", help="redo every cached step")
    parser.add_argument("--no-ope", action="store_true", help="skip the off-policy estimates")
    parser.add_argument("--replot", type=Path, default=None,
                        help="only redraw the picture from a run's output (its last line)")  # fmt: skip
    parser.add_argument(
        "--picture", type=Path, default=ROOT / "docs" / "img" / "offline_online.png"
    )
    ns = parser.parse_args()
    if ns.replot is not None:
        picture(json.loads(ns.replot.read_text().strip().splitlines()[-1])["rows"], ns.picture)
        return 0
    started, timings = time.perf_counter(), {}
    if ns.fresh and ns.work.exists():
        import shutil

        shutil.rmtree(ns.work)
    ns.work.mkdir(parents=True, exist_ok=True)
    world, population = world_and_population(ns.world, ns.world_seed)

    t0 = time.perf_counter()
    events = ns.work / "events"
    if not events.exists():
        collect(world, population, ns.collect_sessions, ns.seed, ns.work, config=COLLECT)
    train_events, held = split_held_out(events, ns.work)
    timings["collect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    lists: dict[str, Path] = {}
    core_lists, trainer_metrics, model = [], {}, Path()
    for epochs in ns.core_epochs:
        recs, model, metrics = train_core(train_events, ns.work, epochs)
        name = f"core_e{epochs}"
        lists[name], trainer_metrics[name] = recs, metrics
        core_lists.append(name)
    lists.update(train_zoo(train_events, ns.work, ns.zoo_epochs))
    timings["train"] = time.perf_counter() - t0
    arms = arms_config(core_lists)

    offline = offline_metrics(held, lists, world.catalog)
    t0 = time.perf_counter()
    online = online_ab(world, population, ns.ab_sessions, ns.seed, arms, lists, model)
    timings["ab"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ope = (
        {a["name"]: {"supported": False, "why": "--no-ope"} for a in arms}
        if ns.no_ope
        else off_policy(
            explore(world, population, ns, arms, lists, model), arms, lists, model, world.catalog
        )
    )
    timings["ope"] = time.perf_counter() - t0

    rows = []
    for arm in arms:
        name, on = arm["name"], online[arm["name"]]
        off = offline.get(name)
        est = ope[name]
        dr = est.get("dr") if est.get("supported") else None
        rows.append({
            "arm": name, "recommender": arm["recommender"], "users": on.users,
            "recall": off.recall if off else None, "ndcg": off.ndcg if off else None,
            "ope_supported": bool(est.get("supported")), "ope_why": est.get("why"),
            "ope_ess": est.get("ess"), "ope_dr": dr and dr[0], "ope": est,
            "effect": on.effect, "low": on.low, "high": on.high,
            "step_time": on.step_time, "step_low": on.step_low, "step_high": on.step_high,
        })  # fmt: skip
    report(rows, trainer_metrics, ns)
    picture(rows, ns.picture)
    print(f"picture: {ns.picture}", file=sys.stderr)
    timings["total"] = time.perf_counter() - started
    print("(" + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ")", file=sys.stderr)
    print(json.dumps({"rows": rows, "core": trainer_metrics,
                      "seconds": {k: round(v, 1) for k, v in timings.items()}}, default=str))  # fmt: skip
    return 0


def _f(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(rows: list[dict], trainer_metrics: dict, ns) -> None:
    print(f"## Offline signals against the online A/B ({ns.collect_sessions:,} day-1 sessions, "
          f"A/B of {ns.ab_sessions:,}, seed {ns.seed})\n")  # fmt: skip
    print(
        "| arm | Recall@10 | NDCG@10 | OPE: IPS / SNIPS / DM / DR, per-step time (ESS) | "
        "online per-step time [95 %] | inside | online: mean time per session vs C |"
    )
    print("|---|---|---|---|---|---|---|")
    inside = []
    for r in rows:
        est = r["ope"]
        if est.get("supported"):
            ope = " / ".join(_f(est[k][0], ".3f") for k in ("ips", "snips", "dm", "dr"))
            ope += f" (ESS {est['ess']:,.0f})"
            dr = est["dr"][0]
            hit = r["step_low"] <= dr <= r["step_high"]
            inside.append(hit)
            mark = "yes" if hit else "no"
        elif "mean_weight" in est:
            w, matched = est["mean_weight"], est["matched"]
            ope = (f"refused: support {100 * w[0]:.1f} % [{100 * w[1]:.1f}, {100 * w[2]:.1f}], "
                   f"{matched:,} matched, ESS {est['ess']:,.0f}")  # fmt: skip
            mark = "-"
        else:
            ope, mark = f"refused: {est.get('why')}", "-"
        print(f"| {r['arm']} | {_f(r['recall'], '.4f')} | {_f(r['ndcg'], '.4f')} | {ope} | "
              f"{r['step_time']:.3f} [{r['step_low']:.3f}, {r['step_high']:.3f}] | {mark} | "
              f"{r['effect']:+.1f} % [{r['low']:+.1f}, {r['high']:+.1f}] |")  # fmt: skip
    online = {r["arm"]: r["effect"] for r in rows if r["arm"] != "C"}
    print()
    for key, label in (("recall", "Recall@10"), ("ndcg", "NDCG@10"), ("ope_dr", "OPE (DR)")):
        signal = {r["arm"]: r[key] for r in rows if r["arm"] != "C" and r[key] is not None}
        tau, p, n = kendall(signal, online)
        print(f"Kendall's tau, {label} against the online effect: {tau:+.2f} (p {p:.3f}, {n} arms)")
    steps = {r["arm"]: r["step_time"] for r in rows}
    dr = {r["arm"]: r["ope_dr"] for r in rows if r["ope_dr"] is not None}
    tau, p, n = kendall(dr, steps)
    print(f"Kendall's tau, OPE (DR) against the online per-step time: {tau:+.2f} (p {p:.3f}, "
          f"{n} arms)")  # fmt: skip
    share = sum(inside) / len(inside) if inside else math.nan
    print(
        f"OPE (DR) inside the online per-step interval: {sum(inside)} of {len(inside)} arms "
        f"with support ({share:.0%}); goal >= 80 %"
    )
    for name, m in trainer_metrics.items():
        print(f"{name}: the trainer's own held-out Recall@10 {m['recall@10']}, NDCG@10 "
              f"{m['ndcg@10']}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

"""The A/B report's statistics against ground truth: how often they are wrong, measured.

    .venv/bin/python bench/bench_ab_truth.py [--world data/world] [--run runs/<demo run>]
                                             [--replicates 2000] [--out truth.json]

A/B platforms only ever see real users, so none can check its methods against the truth. The
simulator knows it: each arm's true mean comes from a large in-process run, and thousands of
A/A and A/B tests replay cheaply. Every test below runs the report's own code (`script.ab.compare`
on `SampleMean`/`CupedSample` summaries, `script.ab.plan`, `botify.experiments`' assignment).

1. **World**: `--world DIR` (generated there with the default seed when missing).
2. **Pre-period** (the demo's day 1 in small): `--pre-sessions` sessions, every user served by
   StickyArtist (C) through the service's own classes in-process, with event logs. Its users'
   metrics are CUPED's covariate.
3. **The list arms' lists and the session arm's model**: by default a small CORE trained on that
   pre-period's logs exactly as the demo trains it on day 1 (`python -m trainer prepare`, `train
   --epochs 2`, `recommend`): a weaker model than the demo's 400,000-session one, learned only from
   what the service logged. `--run DIR` takes a demo run's own (`DIR/train/recommendations_core.json`,
   `DIR/train/model`) instead.
4. **Pools**: each arm (C, T1 = sorted_indexed, T2 = cooler_indexed, T3 = indexed, T4 =
   session_core, with those lists and that model) runs simulated sessions in-process, the
   service's own classes on in-memory state: C `--pool` sessions, T1-T3 `--demo-pool`, T4 (about
   0.5 ms a step in-process) `--t4-pool`. Sessions are keyed by their index, so session i has the
   same user, first track and listener draws under every arm, and per-user state ends with each
   session: a session's outcome under an arm is what that user would have had under it. Each
   arm's **true mean** is its user-level mean over its whole pool (the large in-process run). A
   replicate draws its sessions from the pools at random, so replicates are nearly independent
   simulated experiments; the output says how much of a pool each one draws.
5. **An arm with a known effect** (the mixed arm): StickyArtist whose every recommendation is
   replaced, with a fixed probability (a coin per step, from the session's key), by the oracle's
   (`sim.oracle`: the best next track for the hidden session), run on the very sessions of C's
   pool; its true effect is measured on the whole pool against C's (the same sessions: a paired,
   precise truth). `--mix auto` picks the probability that makes its effect the MDE of
   `--planned-users` users an arm (from a one-week probe at 5 %). The oracle beats C on any
   world, where the list arms' small CORE may not; mixing per step keeps every session a little
   better rather than a few sessions much better (a heavy tail no 2,000-user test averages out).
6. **7-day tests at the planned size**: the pools' first week (which no replicate draws) is the
   pilot. `plan` (the arithmetic of `python -m script.ab plan`) gives the users per arm that
   detect the mixed arm's true effect with 80 % power twice: from a pilot A/B week (the C users'
   and the mixed arm's users' variances, `plan --treatment`) and from C alone (equal variances,
   as gbstats' calculator). The experiment's coverage (GrowthBook's, `botify.experiments`)
   admits that many users a week of `--day-sessions` sessions a day. Per replicate (a fresh salt,
   a fresh week):
   - A/A (C against C): the fixed-horizon test looked at once (day 7); the naive report looked
     at after every day (stop at the first p < 0.05); the sequential test looked at every day;
   - A/B (the mixed arm against C): power at day 7; CUPED's interval against the plain one (how
     much narrower) and both intervals' coverage of the true effect.
7. **The demo's arms**: a day of `--demo-day` sessions, the five arms of config/experiments.yml
   by the real assignment (a fresh salt per day); coverage of each arm's true effect by the
   report's interval (Fieller's, CUPED as the demo's report), the plain Fieller interval,
   gbstats' delta interval and the report's interval before this version (the difference's
   interval divided by the control mean).

Each figure comes with its 95 % Monte Carlo interval (Wilson's for a share; mean +- 1.96 standard
errors for a mean), and whether the method holds its promise within it ("yes*": only within the
table-wide interval, Bonferroni over every check, since with some 40 checks about two 95 %
intervals miss by chance alone). Replicates run in `--processes` forked workers. The last line
is one JSON object with every figure (`--out FILE` writes it too).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as a service worker runs (gunicorn_conf)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import special as scipy_special  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pools import (  # noqa: E402
    ARMS,
    POLICIES,
    POOL,
    PRE,
    WORLD,
    load_world,
    run_pools,
    service_policy,
    simulate,
    train_source,
    user_values,
)

from botify.experiments import Arm, Experiment  # noqa: E402
from measure.stats import SampleMean, Settings  # noqa: E402
from script.ab import estimate as est  # noqa: E402
from script.ab.compare import Effect, compare  # noqa: E402
from script.ab.cuped import CupedSample  # noqa: E402
from script.ab.plan import pilot_from_metrics, plan  # noqa: E402

METRIC = "mean_time_per_session"
MIX_PURPOSE = 0xB1A5  # the mixed arm's per-session coin (its own hash stream)
Z95 = 1.959964


class OracleMix:
    """The arm with a known effect: C's recommendations, each replaced with probability `share`
    by the oracle's (the best next track for the hidden session, `sim.oracle`); a coin per step
    from the session's key, so a session always gets the same coins. The oracle watches every
    track of the session (it never repeats one) and answers only its share; StickyArtist is
    stateless, so it answers the rest as if alone."""

    def __init__(self, base, share: float):
        self.base, self.share = base, share
        self.sessions: dict = {}  # session index -> OracleSession

    def step(self, sim, act: np.ndarray, end: np.ndarray) -> np.ndarray:
        from sim.batch import Draws
        from sim.oracle import OracleSession

        for row in end.tolist():
            self.sessions.pop(int(sim.index[row]), None)
        out = np.asarray(self.base.step(sim, act, end), dtype=np.int64)
        picked = Draws.uniform(sim.key[act], sim.steps[act], MIX_PURPOSE) < self.share
        for j, row in enumerate(act.tolist()):
            index = int(sim.index[row])
            session = self.sessions.get(index)
            if session is None:
                session = self.sessions[index] = OracleSession(
                    sim.pop, sim.user[row], sim.anchor[row], sim.played[row, 0]
                )
            elif sim.steps[row]:
                session.observe(int(sim.last_track[row]))
            if picked[j]:
                out[j] = session.choose()
        return out


POLICIES["MIX"] = lambda share: OracleMix(service_policy("C"), share)  # C, part oracle


# ------------------------------------------------------------------------------- summaries
def summary(users, values, n_users: int, pre: np.ndarray | None) -> SampleMean | CupedSample:
    ids, means = user_values(users, values, n_users)
    if pre is None:
        return SampleMean.of(means)
    return CupedSample.of(means, pre[ids])  # NaN: no pre-period data (counted 0, as gbstats)


def truth(pool: dict, metric: str, n_users: int) -> tuple[float, float]:
    """An arm's true mean (user-level, over its whole pool) and its standard error."""
    _, means = user_values(pool["user"], pool[metric], n_users)
    return float(means.mean()), float(means.std(ddof=1) / math.sqrt(len(means)))


def relative_truth(arm: tuple[float, float], control: tuple[float, float]) -> tuple[float, float]:
    r = arm[0] / control[0] - 1
    se = (arm[0] / control[0]) * math.hypot(arm[1] / arm[0], control[1] / control[0])
    return r, se  # (treated as independent: an upper bound for pools sharing their sessions)


# ------------------------------------------------------------------------------- Monte Carlo
@dataclass
class Share:
    hits: int
    n: int

    @property
    def value(self) -> float:
        return self.hits / self.n if self.n else math.nan

    def interval(self, z: float = Z95) -> tuple[float, float]:
        """Wilson's interval (95 % by default)."""
        if not self.n:
            return math.nan, math.nan
        p, n = self.value, self.n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return centre - half, centre + half


@dataclass
class Mean:
    values: list[float]

    @property
    def value(self) -> float:
        return float(np.mean(self.values))

    def interval(self, z: float = Z95) -> tuple[float, float]:
        half = z * float(np.std(self.values, ddof=1)) / math.sqrt(len(self.values))
        return self.value - half, self.value + half


def covers(effect: Effect, true_pct: float) -> bool | None:
    if effect.lower_pct is None or effect.upper_pct is None:
        return None
    return effect.lower_pct <= true_pct <= effect.upper_pct


# ------------------------------------------------------------------------------- experiments
# ------------------------------------------------------------------------------- replicates
_STATE: dict = {}  # what the replicate workers read; set before they fork


def parallel(kind: str, n: int, processes: int, seed: int, desc: str) -> list[dict]:
    """`n` replicates of `kind` over `processes` forked workers (each chunk its own seed)."""
    chunks = [c for c in np.array_split(np.arange(n), max(processes, 1) * 10) if len(c)]
    seeds = np.random.SeedSequence(seed).spawn(len(chunks))
    out: list[dict] = []
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as workers, tqdm(total=n, desc=desc, file=sys.stderr) as bar:
        for part in workers.imap(
            _chunk, [(kind, c, s) for c, s in zip(chunks, seeds, strict=True)]
        ):
            out += part
            bar.update(len(part))
    return out


def _chunk(task) -> list[dict]:
    kind, replicates, seed = task
    rng = np.random.default_rng(seed)
    run = {"week": week_replicate, "power": power_replicate, "day": day_replicate}[kind]
    return [run(int(r), rng) for r in replicates]


def pilot_week(ns, control: dict, mix: dict, pre: np.ndarray, n_users: int) -> tuple:
    """The pilots, from the pools' first week (which no replicate draws): the C arm alone, and a
    pilot A/B (the week's users split by a salt, half of them served the mixed arm)."""
    week = ns.days * ns.day_sessions
    users, split = control["user"][:week], Experiment("PILOT", (Arm("C", "x"), Arm("B", "x")))
    treated = split.arm_indices(np.arange(n_users))[users] == 1

    def metrics(pool: dict, keep: np.ndarray) -> pd.DataFrame:
        ids, means = user_values(users[keep], pool["time"][:week][keep], n_users)
        sessions = np.bincount(users[keep], minlength=n_users)[ids]
        return pd.DataFrame({"user": ids, METRIC: means, "sessions": sessions})

    pre_frame = pd.DataFrame({"user": np.arange(n_users), METRIC: pre}).dropna()
    alone = pilot_from_metrics(metrics(control, np.ones(week, bool)), METRIC, "C", pre_frame)
    pilot_ab = pilot_from_metrics(
        metrics(control, ~treated), METRIC, "pilot A/B", pre_frame, metrics(mix, treated)
    )
    return alone, pilot_ab


def week_replicate(r: int, rng) -> dict:
    """A/A and A/B (mixed arm vs C) tests of a week at the planned size, looked at daily."""
    st = _STATE
    control, mix, pre, n_users = st["C"], st["mix"], st["pre"], st["n_users"]
    days, per_day = st["days"], st["per_day"]
    experiment = Experiment(f"WEEK{r}", (Arm("A", "x"), Arm("B", "x")), coverage=st["coverage"])
    arm = experiment.arm_indices(np.arange(n_users))
    drawn = rng.choice(st["candidates"], days * per_day, replace=False)
    day_of = np.repeat(np.arange(1, days + 1), per_day)
    session_arm = arm[control["user"][drawn]]
    fixed, sequential = st["fixed"], st["sequential"]
    out: dict = {"aa": [], "aa_seq": [], "ab_seq": []}
    for day in range(1, days + 1):
        keep = day_of <= day
        a, b = drawn[keep & (session_arm == 0)], drawn[keep & (session_arm == 1)]
        c_sum = summary(control["user"][a], control["time"][a], n_users, None)
        b_sum = summary(control["user"][b], control["time"][b], n_users, None)  # A/A: C twice
        m_sum = summary(mix["user"][b], mix["time"][b], n_users, None)  # A/B: the mixed arm
        out["aa"].append(bool(compare(METRIC, "B", c_sum, b_sum, fixed).significant))
        out["aa_seq"].append(bool(compare(METRIC, "B", c_sum, b_sum, sequential).significant))
        seq = compare(METRIC, "B", c_sum, m_sum, sequential)
        out["ab_seq"].append(bool(seq.significant) and (seq.diff or 0) > 0)
    raw = compare(METRIC, "B", c_sum, m_sum, fixed)
    adjusted = compare(
        METRIC, "B",
        summary(control["user"][a], control["time"][a], n_users, pre),
        summary(mix["user"][b], mix["time"][b], n_users, pre),
        fixed,
    )  # fmt: skip
    true_pct = 100 * st["true_mix"]
    return {
        "aa_once": out["aa"][-1],
        "aa_daily": any(out["aa"]),
        "aa_seq": any(out["aa_seq"]),
        "power": bool(raw.significant) and (raw.diff or 0) > 0,
        "power_seq": any(out["ab_seq"]),
        "users": (raw.control_users + raw.treatment_users) / 2,
        "narrower": adjusted.ci_narrower_pct,
        "cover_raw": covers(raw, true_pct),
        "cover_cuped": covers(adjusted, true_pct),
        "cover_seq": covers(seq, true_pct),
    }


def power_replicate(r: int, rng) -> dict:
    """The mixed arm against C, one look after a week, at the equal-variance plan's size."""
    st = _STATE
    control, mix, n_users = st["C"], st["mix"], st["n_users"]
    experiment = Experiment(
        f"EQUAL{r}", (Arm("A", "x"), Arm("B", "x")), coverage=st["coverage_equal"]
    )
    arm = experiment.arm_indices(np.arange(n_users))
    drawn = rng.choice(st["candidates"], st["days"] * st["per_day"], replace=False)
    session_arm = arm[control["user"][drawn]]
    a, b = drawn[session_arm == 0], drawn[session_arm == 1]
    c_sum = summary(control["user"][a], control["time"][a], n_users, None)
    m_sum = summary(mix["user"][b], mix["time"][b], n_users, None)
    raw = compare(METRIC, "B", c_sum, m_sum, st["fixed"])
    return {"power": bool(raw.significant) and (raw.diff or 0) > 0,
            "users": (raw.control_users + raw.treatment_users) / 2}  # fmt: skip


def day_replicate(r: int, rng) -> dict:
    """A demo day: the five arms by the real assignment; each interval against the truth."""
    st = _STATE
    pools, pre, n_users, truths = st["pools"], st["pre"], st["n_users"], st["truths"]
    names = list(ARMS)
    experiment = Experiment(f"DAY{r}", tuple(Arm(n, ARMS[n]) for n in names))
    arm = experiment.arm_indices(np.arange(n_users))
    chosen = {}
    for i, name in enumerate(names):  # each session of the arm's users, with the day's share
        pool = pools[name]
        take = (arm[pool["user"]] == i) & (rng.random(len(pool["user"])) < st["share"][name])
        chosen[name] = np.flatnonzero(take)
    out: dict = {}
    for metric in ("time", "tracks"):  # per session: mean_time_per_session, mean_tracks_...
        c, rows = pools["C"], chosen["C"]
        base = summary(c["user"][rows], c[metric][rows], n_users, None)
        base_cuped = summary(c["user"][rows], c[metric][rows], n_users, pre[metric])
        for name in names[1:]:
            p, rows = pools[name], chosen[name]
            treat = summary(p["user"][rows], p[metric][rows], n_users, None)
            treat_cuped = summary(p["user"][rows], p[metric][rows], n_users, pre[metric])
            true_pct = 100 * truths[name][metric][0]
            plain = compare(METRIC, name, base, treat, st["fixed"])
            cuped = compare(METRIC, name, base_cuped, treat_cuped, st["fixed"])
            seq = compare(METRIC, name, base_cuped, treat_cuped, st["sequential"])
            estimate = est.welch(base, treat)  # type: ignore[arg-type]
            delta = est.relative_delta_interval(
                estimate, est.Method(st["alpha"]).critical(estimate)
            )
            old = None
            if plain.diff_lower is not None and plain.control_mean:
                low, high = (100 * plain.diff_lower / plain.control_mean,
                             100 * plain.diff_upper / plain.control_mean)  # type: ignore[operator]  # fmt: skip
                old = low <= true_pct <= high
            out[(name, metric)] = {
                "fieller": covers(plain, true_pct),
                "cuped": covers(cuped, true_pct),
                "seq": covers(seq, true_pct),
                "delta": None if delta is None else 100 * delta[0] <= true_pct <= 100 * delta[1],
                "old": old,
            }
    return out


# ------------------------------------------------------------------------------- the table
def share_of(flags: list) -> Share:
    known = [f for f in flags if f is not None]
    return Share(sum(bool(f) for f in known), len(known))


def verdict(figure, target: float, z_family: float, at_most=False, at_least=False) -> str:
    """yes: the promise is inside the figure's 95 % MC interval; yes*: outside it but inside the
    table-wide interval (Bonferroni over every check: some 95 % intervals miss by chance alone);
    NO: outside both."""
    for z, word in ((Z95, "yes"), (z_family, "yes*")):
        low, high = figure.interval(z)
        if (at_most and low <= target) or (at_least and high >= target):
            return word
        if not (at_most or at_least) and low <= target <= high:
            return word
    return "NO"


def cell(figure, mark: str = "") -> str:
    low, high = figure.interval()
    return f"{100 * figure.value:.1f} % [{100 * low:.1f}, {100 * high:.1f}]{mark}"


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=Path("data/world"))
    parser.add_argument("--run", type=Path, default=None,
                        help="a demo run folder: its lists and model instead of a small CORE")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--replicates", type=int, default=2000, help="7-day A/A and A/B tests")
    parser.add_argument("--demo-replicates", type=int, default=1000, help="demo days")
    parser.add_argument("--pre-sessions", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=2, help="the small CORE's epochs")
    parser.add_argument("--pool", type=int, default=200_000, help="sessions of C and the mixed arm")
    parser.add_argument("--demo-pool", type=int, default=40_000, help="sessions of T1, T2 and T3")
    parser.add_argument("--t4-pool", type=int, default=12_000, help="sessions of T4")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--day-sessions", type=int, default=2_000)
    parser.add_argument("--demo-day", type=int, default=4_000,
                        help="sessions of a demo day (the demo's is 20,000; T4 costs time)")  # fmt: skip
    parser.add_argument("--mix", default="auto",
                        help="the oracle's share of the mixed arm's recommendations (auto: its "
                        "true effect is "
                        "the MDE of --planned-users)")  # fmt: skip
    parser.add_argument("--planned-users", type=int, default=1500,
                        help="users per arm the 7-day tests are planned to need (--mix auto)")  # fmt: skip
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--tuning", type=float, default=5000, help="the sequence's N*")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    ns = parser.parse_args()
    started = time.perf_counter()
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    world, population = load_world(ns.world, ns.seed)
    n_users = world.n_users
    timings["warm-up"] = time.perf_counter() - t0
    print(f"world {ns.world}: {world.n_tracks:,} tracks, {n_users:,} users; seed {ns.seed}; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)  # fmt: skip

    # the pre-period's logs and the small CORE live here until the last pool has run
    scratch = tempfile.TemporaryDirectory(prefix="bench-ab-truth-")
    work = Path(scratch.name)
    print(f"pre-period: {ns.pre_sessions:,} sessions of C, logged", flush=True)
    t0 = time.perf_counter()
    pre_pool = simulate("C", ns.pre_sessions, PRE, log_dir=work / "logs", progress=True)
    timings["pre-period"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if ns.run is not None:
        lists = ns.run / "train" / "recommendations_core.json"
        model = ns.run / "train" / "model" / "item_embeddings.npz"
        source = f"the demo run {ns.run}"
    else:
        lists, model = train_source(work / "logs", work / "train", ns.epochs)
        source = f"a small CORE ({ns.epochs} epochs) trained on the pre-period's logs"
    WORLD.update(lists=lists, model=model)
    timings["lists and model"] = time.perf_counter() - t0
    print(f"lists and model: {source}", flush=True)

    t0 = time.perf_counter()
    # C and the mixed arm run the same sessions (two runs each, one per process); the demo
    # days need no such pairing, so each other arm runs on its own
    half, t4_half = ns.pool // 2, ns.t4_pool // 2
    pools = run_pools(
        [("T4", t4_half, POOL + 1, 0.0), ("T4", ns.t4_pool - t4_half, POOL + 2, 0.0),
         ("C", half, POOL, 0.0), ("C", ns.pool - half, POOL + 3, 0.0),
         ("T1", ns.demo_pool, POOL, 0.0), ("T2", ns.demo_pool, POOL, 0.0),
         ("T3", ns.demo_pool, POOL, 0.0)],
        ns.processes,
    )  # fmt: skip
    timings["pools"] = time.perf_counter() - t0

    pre = {}
    for metric in ("time", "tracks"):
        ids, means = user_values(pre_pool["user"], pre_pool[metric], n_users)
        pre[metric] = np.full(n_users, np.nan)
        pre[metric][ids] = means
    truths: dict[str, dict] = {name: {} for name in ARMS}
    for metric in ("time", "tracks"):
        control = truth(pools["C"], metric, n_users)
        for name in ARMS:
            truths[name][metric] = relative_truth(truth(pools[name], metric, n_users), control)
    alone, _ = pilot_week(ns, pools["C"], pools["C"], pre["time"], n_users)
    t0 = time.perf_counter()
    if ns.mix == "auto":  # the oracle's share that makes the mixed arm's effect the MDE there
        target = plan(alone, users_per_arm=ns.planned_users, alpha=ns.alpha, arms=2).mde
        probe = simulate("MIX", ns.day_sessions * ns.days, POOL, share=0.05)
        per_share = relative_truth(truth(probe, "time", n_users),
                                   truth(pools["C"], "time", n_users))[0] / 0.05  # fmt: skip
        mix_share = round(min(1.0, target / max(per_share, 1e-9)), 4)
    else:
        mix_share = float(ns.mix)
    half = ns.pool // 2
    mix = run_pools(
        [("MIX", half, POOL, mix_share), ("MIX", ns.pool - half, POOL + 3, mix_share)],
        ns.processes,
    )["MIX"]
    timings["mixed arm"] = time.perf_counter() - t0
    scratch.cleanup()
    mix_truth = relative_truth(truth(mix, "time", n_users), truth(pools["C"], "time", n_users))
    print("true effects on mean_time_per_session (whole pools): " + ", ".join(
        f"{n} {100 * truths[n]['time'][0]:+.2f} % (+- {100 * truths[n]['time'][1]:.2f})"
        for n in list(ARMS)[1:]) + f"; the mixed arm ({100 * mix_share:.2f} % of its recommendations "
        f"the oracle's) {100 * mix_truth[0]:+.2f} % (+- {100 * mix_truth[1]:.2f})", flush=True)  # fmt: skip

    # the plans: a pilot A/B week (both arms' variances) and the control alone (equal variances)
    alone, pilot_ab = pilot_week(ns, pools["C"], mix, pre["time"], n_users)
    planned = plan(pilot_ab, mde=mix_truth[0], alpha=ns.alpha, arms=2)
    planned_equal = plan(alone, mde=mix_truth[0], alpha=ns.alpha, arms=2)
    reached = alone.users  # users with a session in a week
    coverage = min(1.0, 2 * planned.users_per_arm / reached)
    coverage_equal = min(1.0, 2 * planned_equal.users_per_arm / reached)
    print(f"plan from the pilot A/B week: {planned.users_per_arm:,} users per arm (variance ratio "
          f"{planned.variance_ratio:.2f}); from C alone (equal variances): "
          f"{planned_equal.users_per_arm:,}; a week reaches {reached:,} users -> coverage "
          f"{coverage:.3f} and {coverage_equal:.3f}", flush=True)  # fmt: skip
    week = ns.days * ns.day_sessions
    _STATE.update(
        C=pools["C"], mix=mix, pre=pre["time"], n_users=n_users, days=ns.days,
        per_day=ns.day_sessions, coverage=coverage, coverage_equal=coverage_equal,
        candidates=np.arange(week, len(pools["C"]["user"])), true_mix=mix_truth[0],
        fixed=Settings(alpha=ns.alpha), alpha=ns.alpha,
        sequential=Settings(alpha=ns.alpha, sequential=True, tuning=ns.tuning),
    )  # fmt: skip
    t0 = time.perf_counter()
    weekly = parallel("week", ns.replicates, ns.processes, ns.seed, "7-day tests")
    equal = parallel("power", ns.replicates, ns.processes, ns.seed + 1, "equal-variance plan")
    timings["7-day tests"] = time.perf_counter() - t0
    _STATE.update(
        pools=pools, pre=pre, truths=truths,
        share={name: ns.demo_day / len(pools[name]["user"]) for name in ARMS},
    )  # fmt: skip
    t0 = time.perf_counter()
    demo = parallel("day", ns.demo_replicates, ns.processes, ns.seed + 2, "demo days")
    timings["demo days"] = time.perf_counter() - t0

    # ---- the tables
    kinds = (("cuped", "the report: CUPED, Fieller"), ("fieller", "plain, Fieller"),
             ("delta", "plain, delta (gbstats)"), ("old", "before: diff / control mean"))  # fmt: skip
    checks = 8 + (len(ARMS) - 1) * 2 * len(kinds)  # the rows with a promise and a verdict
    z_family = float(scipy_special.ndtri(1 - 0.05 / (2 * checks)))
    figures: dict[str, dict] = {}

    def record(key: str, figure, holds: str) -> str:
        low, high = figure.interval()
        figures[key] = {"value": figure.value, "low": low, "high": high, "holds": holds}
        return holds

    def flags(records: list[dict], key: str) -> Share:
        return share_of([r[key] for r in records])

    n_arm = planned.users_per_arm
    users = np.mean([r["users"] for r in weekly])
    rows = [["check", "promise", "measured [95 % MC interval]", "holds"]]

    def add(key: str, check: str, promise: str, figure, holds: str) -> None:
        rows.append([check, promise, cell(figure), record(key, figure, holds)])

    aa = flags(weekly, "aa_once")
    add("aa_fixed_once", f"A/A at the planned size ({n_arm:,} users/arm): fixed-horizon "
        f"Welch, one look at day {ns.days}", "5 %", aa, verdict(aa, ns.alpha, z_family))  # fmt: skip
    aa = flags(weekly, "aa_daily")
    add("aa_naive_daily", f"A/A: the naive report peeked at after every day of {ns.days}",
        "none (the inflation)", aa, "-")  # fmt: skip
    aa = flags(weekly, "aa_seq")
    add("aa_sequential_daily", "A/A: the sequential test peeked at daily", "<= 5 %", aa,
        verdict(aa, ns.alpha, z_family, at_most=True))  # fmt: skip
    # a plan bigger than a week reaches runs at full coverage, below its size: no verdict
    reached_a, reached_b = coverage < 1, coverage_equal < 1
    power = flags(weekly, "power")
    add("power_pilot_ab", f"power at plan's size from a pilot A/B ({n_arm:,} users/arm), "
        f"true effect {100 * mix_truth[0]:+.2f} %" + ("" if reached_a else " (size not reached)"),
        "80 %", power, verdict(power, 0.8, z_family) if reached_a else "-")  # fmt: skip
    power = flags(equal, "power")
    add("power_equal_variances", f"power at plan's size from C alone, equal variances as "
        f"gbstats' ({planned_equal.users_per_arm:,} users/arm)"
        + ("" if reached_b else " (size not reached)"), "80 % if the variances were "
        f"equal (ratio {planned.variance_ratio:.2f})", power,
        verdict(power, 0.8, z_family) if reached_b else "-")  # fmt: skip
    power = flags(weekly, "power_seq")
    add("power_sequential_daily", "power at the pilot A/B's size, sequential, stopped at the "
        "first daily look that excludes 0", "below 80 % (the price)", power, "-")  # fmt: skip
    narrower = Mean([r["narrower"] / 100 for r in weekly if r["narrower"] is not None])
    add("cuped_narrower", "CUPED: the interval narrower by (the same A/B tests)", "> 0",
        narrower, "yes" if narrower.interval()[0] > 0 else "NO")  # fmt: skip
    for key, label, at_least in (("cover_cuped", "CUPED", False), ("cover_raw", "plain", False),
                                 ("cover_seq", "sequential (plain)", True)):  # fmt: skip
        share = flags(weekly, key)
        add(key, f"coverage of the mixed arm's true effect, {label}",
            ">= 95 %" if at_least else "95 %", share,
            verdict(share, 0.95, z_family, at_least=at_least))  # fmt: skip

    demo_rows = [["arm", "metric", "true effect", *(words for _, words in kinds)]]
    for name in list(ARMS)[1:]:
        for metric, label in (("time", "mean_time_per_session"),
                              ("tracks", "mean_tracks_per_session")):  # fmt: skip
            records = [r[(name, metric)] for r in demo]
            value, se = truths[name][metric]
            line = [name, label, f"{100 * value:+.1f} % (+-{100 * se:.1f})"]
            for kind, _ in kinds:
                share = flags(records, kind)
                holds = record(
                    f"demo_{name}_{metric}_{kind}", share, verdict(share, 0.95, z_family)
                )
                line.append(cell(share, {"yes": "", "yes*": " *"}.get(holds, " NO")))
            demo_rows.append(line)

    print("\n" + markdown(rows) + "\n")
    print(f"Coverage of each demo arm's true effect, {ns.demo_replicates:,} demo days "
          "(promise: 95 %):\n")  # fmt: skip
    print(markdown(demo_rows))
    missed = sum(f["holds"] == "NO" for f in figures.values())
    chance = sum(f["holds"] == "yes*" for f in figures.values())
    print(f"\n{checks} checks: {missed} miss their promise; {chance} (marked *) miss only their own "
          f"95 % MC interval, inside the table-wide one (Bonferroni over the {checks}: about "
          f"{checks / 20:.0f} such misses are expected by chance alone).")  # fmt: skip
    total = time.perf_counter() - started
    demo_share = ", ".join(f"{n} {100 * s / len(ARMS):.1f} %" for n, s in _STATE["share"].items())
    print(
        f"\n{ns.replicates:,} 7-day tests per plan ({ns.day_sessions:,} sessions a day; users "
        f"per arm at day {ns.days}: {users:,.0f} on average, planned {n_arm:,}; each test draws "
        f"{100 * week * coverage / len(_STATE['candidates']):.1f} % of the C and mixed pools); "
        f"{ns.demo_replicates:,} demo days of {ns.demo_day:,} sessions (each draws of the arms' "
        f"pools: {demo_share}). Lists and model: {source}. CUPED's covariate: each user's "
        f"mean over {ns.pre_sessions:,} pre-period sessions (correlation with a week's "
        f"{alone.correlation:.2f})."
    )
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
          + f"; total {total:.0f} ({total / 60:.1f} min)")  # fmt: skip
    result = {
        "world": str(ns.world), "seed": ns.seed, "source": source, "seconds": total,
        "timings": timings, "true_effects": {n: truths[n] for n in ARMS},
        "mix_share": mix_share, "mix_true_effect": mix_truth,
        "planned_users_per_arm": n_arm, "planned_equal_variances": planned_equal.users_per_arm,
        "variance_ratio": planned.variance_ratio, "mean_users_per_arm": users,
        "coverage": coverage, "coverage_equal": coverage_equal, "pilot_cv": alone.cv(),
        "pilot_correlation": alone.correlation, "figures": figures,
        "args": {k: str(v) for k, v in vars(ns).items()},
    }  # fmt: skip
    if ns.out is not None:
        ns.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

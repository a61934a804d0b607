"""The A/B report: the course's metrics and Welch intervals, Holm, SRM, A/A, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import mmh3
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from script import ab, export
from script.ab.notebook import notebook_user_metrics
from script.fake_logs import FakeLogSpec, fake_events, write_logs


def small_events() -> pd.DataFrame:
    """Hand-made: 3 users in C, 3 in T1, one unfinished session, events out of order."""
    rows = [
        # user, arm, timestamp, message, time, latency (s)
        (1, "C", 10, "next", 0.5, 0.001),
        (1, "C", 20, "last", 0.25, 0.003),
        (1, "C", 30, "next", 1.0, 0.002),
        (1, "C", 40, "last", 0.0, 0.002),
        (1, "C", 50, "next", 0.9, 0.010),  # unfinished: not counted
        (2, "C", 15, "last", 0.4, 0.001),
        (3, "C", 12, "next", 0.2, 0.004),
        (3, "C", 11, "next", 0.1, 0.002),  # earlier timestamp, later in the file
        (3, "C", 13, "last", 0.3, 0.003),
        (4, "T1", 10, "next", 0.8, 0.002),
        (4, "T1", 11, "last", 0.9, 0.002),
        (5, "T1", 10, "next", 0.7, 0.001),
        (5, "T1", 20, "next", 0.6, 0.001),
        (5, "T1", 30, "last", 0.5, 0.004),
        (6, "T1", 5, "last", 1.0, 0.003),
        (6, "T1", 6, "last", 0.75, 0.001),
        (7, "T1", 5, "next", 0.75, 0.001),  # no finished session at all
    ]
    return pd.DataFrame(rows, columns=["user", "arm", "timestamp", "message", "time", "latency"])


def ratio_t(control: np.ndarray, treatment: np.ndarray, ratio: float) -> float:
    """Welch-type t of the hypothesis mean(treatment) = ratio * mean(control), from raw values:
    Fieller's interval is the set of ratios this test does not reject."""
    n0, n1, s0, s1 = len(control), len(treatment), control.var(ddof=1), treatment.var(ddof=1)
    return (treatment.mean() - ratio * control.mean()) / np.sqrt(s1 / n1 + ratio**2 * s0 / n0)


def course_welch(control: np.ndarray, treatment: np.ndarray, alpha: float):
    """The notebook's dof() and ci(), plus the two-sided p-value of the same t: (lower, upper, p)."""
    n0, n1, s0, s1 = len(control), len(treatment), control.var(ddof=1), treatment.var(ddof=1)
    dof = (s0 / n0 + s1 / n1) ** 2 / (s0**2 / n0**2 / (n0 - 1) + s1**2 / n1**2 / (n1 - 1))
    se = np.sqrt(s0 / n0 + s1 / n1)
    half = stats.t.ppf(1 - alpha / 2, dof) * se
    effect = treatment.mean() - control.mean()
    return effect - half, effect + half, 2 * stats.t.sf(abs(effect) / se, dof)


def test_user_metrics_match_the_notebook_exactly():
    events = small_events()
    ours = ab.user_metrics(events).sort_values(["arm", "user"], ignore_index=True)
    reference = notebook_user_metrics(events).sort_values(["arm", "user"], ignore_index=True)
    pd.testing.assert_frame_equal(ours, reference, check_dtype=False, rtol=1e-12)
    assert ours["user"].tolist() == [1, 2, 3, 4, 5, 6]
    assert ours["sessions"].tolist() == [2, 1, 1, 1, 1, 2]
    assert ours["time"].tolist() == pytest.approx([1.75, 0.4, 0.6, 1.7, 1.8, 1.75])
    assert ours["mean_request_latency"].tolist() == pytest.approx([2.0, 1.0, 3.0, 2.0, 2.0, 2.0])


def test_effects_pinned_and_equal_to_the_course_formula():
    metrics = ab.user_metrics(small_events())
    effects = {e.metric: e for e in ab.compare_all(metrics, "C", 0.05)}
    assert {e.arm for e in effects.values()} == {"T1"}
    for name, e in effects.items():
        control = metrics.loc[metrics["arm"] == "C", name].to_numpy(float)
        treatment = metrics.loc[metrics["arm"] == "T1", name].to_numpy(float)
        lower, upper, p_value = course_welch(control, treatment, 0.05)
        assert (e.diff_lower, e.diff_upper) == pytest.approx((lower, upper), rel=1e-10)
        assert e.p_value == pytest.approx(p_value, rel=1e-10)
        assert e.effect_pct == pytest.approx(e.diff / e.control_mean * 100)
        # the % interval is Fieller's: at each bound the t of "treatment = (1 + r) control" is
        # the critical value (the same t-quantile as the difference's interval)
        critical = (
            (upper - lower)
            / 2
            / np.sqrt(control.var(ddof=1) / len(control) + treatment.var(ddof=1) / len(treatment))
        )
        if e.status == "unbounded_pct":  # 3 users: the control mean is not surely above 0
            assert e.lower_pct is None and e.p_value is not None, name
            continue
        for bound, sign in ((e.lower_pct, 1), (e.upper_pct, -1)):
            t = ratio_t(control, treatment, 1 + bound / 100)
            assert t == pytest.approx(sign * critical, rel=1e-8), name
    tps = effects["mean_time_per_session"]  # C: 0.875, 0.4, 0.6; T1: 1.7, 1.8, 0.875
    assert tps.control_mean == pytest.approx(0.625)
    assert tps.treatment_mean == pytest.approx(1.4583333333333333)
    assert tps.effect_pct == pytest.approx(133.33333333333331)
    # 3 users an arm: the control mean is uncertain too, so the interval is wide and lopsided
    # (the difference's interval divided by 0.625 said [-36.9, +303.5])
    assert (tps.lower_pct, tps.upper_pct) == pytest.approx((-29.0507946, 808.9420119))
    assert tps.p_value == pytest.approx(0.0868636221)
    assert tps.significant is False
    holm = sorted(e.p_value for e in effects.values() if e.p_value is not None)
    assert effects["mean_request_latency"].status == effects["time"].status == "unbounded_pct"
    assert min(e.p_holm for e in effects.values() if e.p_holm is not None) == pytest.approx(
        min(1.0, holm[0] * len(holm))
    )


def test_not_enough_data_is_a_status_not_a_crash():
    metrics = pd.DataFrame(
        {"user": [1, 2, 3], "arm": ["C", "C", "T1"], **{m: [1.0, 2.0, 3.0] for m in ab.METRICS}}
    )
    metrics.loc[:, "sessions"] = [2.0, 2.0, 2.0]
    effects = ab.compare_all(metrics, "C", 0.05)
    assert {e.status for e in effects} == {"too_few_users"}
    assert "needs at least 2 users" in effects[0].message and effects[0].p_value is None
    same = pd.DataFrame({"user": [1, 2, 3, 4], "arm": ["C", "C", "T1", "T1"], "time": [1.0] * 4})
    (effect,) = ab.compare_all(same, "C", 0.05, names=("time",))
    assert effect.status == "no_variance" and effect.effect_pct is None
    zero = pd.DataFrame(
        {"user": [1, 2, 3, 4], "arm": ["C", "C", "T1", "T1"], "time": [0, 0, 1, 2.0]}
    )
    (effect,) = ab.compare_all(zero, "C", 0.05, names=("time",))
    assert effect.status == "zero_control_mean" and effect.p_value is not None


@pytest.fixture(scope="module")
def effect_events() -> pd.DataFrame:
    spec = FakeLogSpec(users=3000, arms=("C", "T1", "T2"), effects={"T1": 1.3}, seed=11)
    return fake_events(spec)


def test_an_injected_effect_is_found_and_covered(effect_events):
    effects = ab.compare_all(ab.user_metrics(effect_events), "C", 0.05)
    found = {(e.arm, e.metric): e for e in effects}
    true_pct = 30.0  # per-track time x1.3, independent of sessions and tracks
    for metric in ("mean_time_per_session", "time"):
        e = found[("T1", metric)]
        assert e.lower_pct < true_pct < e.upper_pct
        assert e.significant and e.significant_holm
    assert not found[("T2", "mean_time_per_session")].significant_holm


def test_aa_flags_about_alpha(effect_events):
    """Identical arms (C vs T2 users, re-split by 400 salts): about 5 % flagged at alpha 0.05."""
    metrics = ab.user_metrics(effect_events[effect_events["arm"] != "T1"])
    users = metrics["user"].to_numpy()
    flagged = []  # (metric, significant)
    for salt in range(400):
        seed = mmh3.hash(f"AA{salt}", signed=False)
        treated = np.array([mmh3.hash(str(u), seed=seed, signed=False) % 2 for u in users]) == 1
        for name in ab.METRICS:
            values = metrics[name].to_numpy(float)
            effect = ab.compare_arm(name, "T1", values[~treated], values[treated], 0.05)
            flagged.append((name, effect.significant))
    rate = np.mean([significant for _, significant in flagged])
    assert 0.02 <= rate <= 0.08, rate  # seen: 0.044
    for name in ab.METRICS:
        assert 0.02 <= np.mean([s for m, s in flagged if m == name]) <= 0.08, name


def test_srm_fires_on_a_skewed_split_only():
    fair = fake_events(FakeLogSpec(users=4000, arms=("C", "T1", "T2", "T3"), tracks_mean=2, seed=1))
    assert not ab.sample_ratio(fair).mismatch
    skewed = fake_events(
        FakeLogSpec(users=4000, arms=("C", "T1"), weights=(0.55, 0.45), tracks_mean=2, seed=1)
    )
    result = ab.sample_ratio(skewed)
    assert result.mismatch and result.p_value < 0.001
    assert sum(result.users.values()) == 4000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, effect_events):
    root = tmp_path_factory.mktemp("ab")
    write_logs(effect_events, root / "logs", "AB")
    export.export([root / "logs"], root / "ds")
    return root / "ds"


def test_cli_writes_the_report(dataset, tmp_path, capsys):
    assert ab.main(["--data", str(dataset), "--experiment", "AB", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "T1   mean_time_per_session" in out and "p Holm" in out
    effects = pd.read_csv(tmp_path / "effects.csv")
    assert len(effects) == 2 * len(ab.METRICS)
    assert set(effects.columns) >= {"effect_pct", "lower_pct", "upper_pct", "p_value", "p_holm"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["experiment"] == "AB" and report["alpha"] == 0.05
    assert report["versions"]["statsmodels"] and report["data"] == str(dataset)
    assert report["srm"]["mismatch"] is False
    markdown = (tmp_path / "report.md").read_text()
    assert "| T1 | mean_time_per_session |" in markdown and "alpha = 0.05" in markdown
    assert (tmp_path / "ab_test.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_errors(dataset, tmp_path, capsys):
    args = ["--data", str(dataset), "--out", str(tmp_path)]
    assert ab.main([*args, "--experiment", "NOPE"]) == 1
    assert "unknown experiment 'NOPE'; the data has: AB" in capsys.readouterr().err
    assert ab.main([*args, "--experiment", "AB", "--control", "X"]) == 1
    assert "control arm 'X' not in experiment 'AB'; its arms: C, T1, T2" in capsys.readouterr().err
    missing = ["--data", str(tmp_path / "none"), "--out", str(tmp_path), "--experiment", "AB"]
    assert ab.main(missing) == 1
    assert "no dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        ab.main([*args, "--experiment", "AB", "--alpha", "2"])
    assert exit_info.value.code == 2


def test_time_window(dataset, effect_events, tmp_path, capsys):
    middle = int(effect_events["timestamp"].median())
    args = ["--data", str(dataset), "--experiment", "AB", "--out", str(tmp_path)]
    assert ab.main([*args, "--since", str(middle)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["events"] == (effect_events["timestamp"] >= middle).sum()
    assert report["since_ms"] == middle
    assert ab.main([*args, "--until", str(middle), "--since", str(middle)]) == 1
    assert "in the selected time window" in capsys.readouterr().err


def test_cli_empty_data(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    pq.write_table(export.empty_table(), empty / export.DATA_FILE)  # the schema, zero rows
    assert ab.main(["--data", str(empty), "--experiment", "AB", "--out", str(tmp_path)]) == 1
    assert "has no events" in capsys.readouterr().err


def test_fallback_rate_counts_next_events_only():
    events = small_events()
    events["fallback"] = False
    events.loc[[0, 2, 9], "fallback"] = True  # C next, C next, T1 next
    events.loc[1, "fallback"] = True  # a `last`: not an answer, not counted
    rates = ab.fallback_rates(events)
    assert {arm: (r.next_events, r.fallback_events) for arm, r in rates.items()} == {
        "C": (5, 2),
        "T1": (4, 1),
    }
    assert rates["C"].rate == pytest.approx(0.4) and rates["T1"].rate == pytest.approx(0.25)
    only_last = pd.DataFrame({"arm": ["C"], "message": ["last"], "fallback": [False]})
    assert ab.fallback_rates(only_last)["C"].rate is None


@pytest.fixture(scope="module")
def fallback_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("fallback")
    spec = FakeLogSpec(users=300, arms=("C", "T1", "T2"), fallbacks={"T1": 0.2, "T2": 0.01}, seed=4)
    events = fake_events(spec)
    write_logs(events, root / "logs", "AB")
    export.export([root / "logs"], root / "ds")
    return root / "ds", events


def test_report_shows_each_arms_fallback_rate_and_warns_when_high(fallback_dataset, tmp_path):
    dataset, events = fallback_dataset
    assert ab.main(["--data", str(dataset), "--experiment", "AB", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    nexts = events[events["message"] == "next"]
    for arm in ("C", "T1", "T2"):
        mine = nexts[nexts["arm"] == arm]
        assert report["fallback"][arm] == {
            "next_events": len(mine),
            "fallback_events": int(mine["fallback"].sum()),
            "rate": pytest.approx(mine["fallback"].mean()),
        }
    assert report["fallback"]["C"]["fallback_events"] == 0
    assert 0.15 < report["fallback"]["T1"]["rate"] < 0.25
    warned = [w for w in report["warnings"] if "fallback" in w]
    assert len(warned) == 1 and warned[0].startswith("T1: ")
    markdown = (tmp_path / "report.md").read_text()
    t1 = report["fallback"]["T1"]
    assert (
        f"| T1 | {t1['next_events']:,} | {t1['fallback_events']:,} | {100 * t1['rate']:.2f} % |"
        in markdown
    )


def test_a_dataset_without_fallback_reads_as_none(dataset, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    table = pq.read_table(dataset / export.DATA_FILE).drop_columns(["fallback"])
    pq.write_table(table, old / export.DATA_FILE)
    report = ab.build_report(old, "AB")
    assert {r.fallback_events for r in report.fallback.values()} == {0}
    assert report.effects == ab.build_report(dataset, "AB").effects


def test_ceiling_from_sessions_uses_the_reports_user_metrics():
    ceiling = ab.ceiling_from_sessions(
        {
            "oracle": ([1, 1, 2], [1.0, 2.0, 3.0], [2, 4, 6]),
            "random": ([1, 2, 2, 2], [0.5, 0.1, 0.2, 0.3], [1, 1, 2, 3]),
        }
    )
    # oracle: user 1 = 2 sessions, time 3, tracks 6; user 2 = 1 session, time 3, tracks 6
    assert ceiling["agents"]["oracle"] == pytest.approx(
        {
            "time": 3.0,
            "sessions": 1.5,
            "mean_tracks_per_session": 4.5,
            "mean_time_per_session": 2.25,
        }
    )
    assert ceiling["agents"]["random"]["mean_time_per_session"] == pytest.approx((0.5 + 0.2) / 2)
    assert ceiling["sessions"] == 3
    assert ceiling["counts"] == {
        "oracle": {"sessions": 3, "users": 2},
        "random": {"sessions": 4, "users": 2},
    }
    json.dumps(ceiling)  # plain JSON types


def test_ceiling_from_sessions_equals_user_metrics_of_the_same_sessions():
    rng = np.random.default_rng(8)
    users = rng.integers(0, 30, 200)
    tracks = rng.integers(1, 9, 200)
    rows = []
    for session, (user, n) in enumerate(zip(users, tracks, strict=True)):
        times = rng.uniform(0, 1, n)
        for i in range(n):
            message = "last" if i == n - 1 else "next"
            rows.append((user, "C", session * 100 + i, message, times[i], 0.001))
    events = pd.DataFrame(rows, columns=["user", "arm", "timestamp", "message", "time", "latency"])
    per_session = events.groupby(events["timestamp"] // 100)["time"].sum().to_numpy()
    ceiling = ab.ceiling_from_sessions({"x": (users, per_session, tracks)})
    metrics = ab.user_metrics(events)
    for name, value in ceiling["agents"]["x"].items():
        assert value == pytest.approx(metrics[name].mean(), rel=1e-12), name


def write_ceiling(path, **agents) -> str:
    path.write_text(json.dumps({"sessions": 500, "agents": agents}))
    return str(path)


def test_report_with_a_ceiling(dataset, tmp_path, capsys):
    ceiling = write_ceiling(
        tmp_path / "ceiling.json",
        oracle={"mean_time_per_session": 10.0, "mean_tracks_per_session": 12.0, "time": "x"},
        random={"mean_time_per_session": 0.5, "mean_tracks_per_session": 8.0, "time": 1.0},
    )
    out = tmp_path / "report"
    args = ["--data", str(dataset), "--experiment", "AB", "--out", str(out)]
    assert ab.main([*args, "--ceiling", ceiling]) == 0
    report = json.loads((out / "report.json").read_text())
    rows = {(r["arm"], r["metric"]): r for r in report["ceiling"]["rows"]}
    assert [k for k in rows if k[1] == "mean_time_per_session"] == [
        ("random", "mean_time_per_session"),
        ("C", "mean_time_per_session"),
        ("T1", "mean_time_per_session"),
        ("T2", "mean_time_per_session"),
        ("oracle", "mean_time_per_session"),
    ]
    assert {k[1] for k in rows} == {"mean_time_per_session", "mean_tracks_per_session"}
    summary = report["summaries"]["T1"]["mean_time_per_session"]
    mean = summary["sum"] / summary["n"]
    t1 = rows[("T1", "mean_time_per_session")]
    assert t1["value"] == pytest.approx(mean)
    assert t1["pct_of_oracle"] == pytest.approx(mean / 10 * 100)
    assert t1["position_pct"] == pytest.approx((mean - 0.5) / 9.5 * 100)
    effect = next(
        e for e in report["effects"] if (e["arm"], e["metric"]) == ("T1", "mean_time_per_session")
    )
    assert t1["vs_control_pct"] == effect["effect_pct"]
    assert rows[("C", "mean_time_per_session")]["vs_control_pct"] is None
    assert rows[("oracle", "mean_tracks_per_session")]["position_pct"] == 100
    assert rows[("random", "mean_tracks_per_session")]["position_pct"] == 0
    assert any("oracle time = 'x' is not a number" in w for w in report["warnings"])
    markdown = (out / "report.md").read_text()
    assert "## Against the ceiling" in markdown and "![ceiling](ceiling.png)" in markdown
    row = f"| T1 | mean_time_per_session | {mean:.3f} | {effect['effect_pct']:+.1f} % ["
    assert (
        row in markdown and f"| {mean * 10:.1f} % | {(mean - 0.5) / 9.5 * 100:.1f} % |" in markdown
    )
    assert (out / "ceiling.png").read_bytes()[:4] == b"\x89PNG"
    assert "random -> oracle" in capsys.readouterr().out
    # without --ceiling: the report as before, and no stale picture left behind
    assert ab.main(args) == 0
    assert json.loads((out / "report.json").read_text())["ceiling"] is None
    assert "ceiling" not in (out / "report.md").read_text() and not (out / "ceiling.png").exists()


def test_a_bad_ceiling_file_is_a_data_error(dataset, tmp_path, capsys):
    args = ["--data", str(dataset), "--experiment", "AB", "--out", str(tmp_path)]
    assert ab.main([*args, "--ceiling", str(tmp_path / "none.json")]) == 1
    assert "cannot read the ceiling file" in capsys.readouterr().err
    only_oracle = write_ceiling(tmp_path / "c.json", oracle={"time": 1.0})
    assert ab.main([*args, "--ceiling", only_oracle]) == 1
    assert "missing random" in capsys.readouterr().err


@pytest.fixture(scope="module")
def two_days(tmp_path_factory, dataset, effect_events):
    root = tmp_path_factory.mktemp("days")
    middle = int(effect_events["timestamp"].median())
    base = ["--data", str(dataset), "--experiment", "AB"]
    assert ab.main([*base, "--out", str(root / "day1"), "--until", str(middle)]) == 0
    assert ab.main([*base, "--out", str(root / "day2"), "--since", str(middle)]) == 0
    return root / "day1", root / "day2"


def test_days_picture_and_table(two_days, tmp_path):
    paths = ab.write_days(list(two_days), tmp_path, labels=["mon", "tue"])
    assert paths["days.png"].read_bytes()[:4] == b"\x89PNG"
    markdown = paths["days.md"].read_text()
    for label, folder in zip(("mon", "tue"), two_days, strict=True):
        report = json.loads((folder / "report.json").read_text())
        t1 = next(
            e
            for e in report["effects"]
            if (e["arm"], e["metric"]) == ("T1", "mean_time_per_session")
        )
        users = t1["treatment_users"]
        expected = (
            f"| {label} | T1 | {users:,} | {t1['treatment_mean']:.3f} | {t1['effect_pct']:+.1f} | "
            f"[{t1['lower_pct']:+.1f}, {t1['upper_pct']:+.1f}] |"
        )
        assert expected in markdown
        assert (
            f"| {label} | C | {t1['control_users']:,} | {t1['control_mean']:.3f} | control |"
            in markdown
        )


def test_days_cli(two_days, tmp_path, capsys):
    args = ["days", "--report", *map(str, two_days), "--out", str(tmp_path)]
    assert ab.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("T2") == 2 and "days.png" in out
    assert ab.main([*args, "--label", "only-one"]) == 1
    assert "1 label(s) for 2 report(s)" in capsys.readouterr().err
    assert ab.main(["days", "--report", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 1
    assert "cannot read the day report" in capsys.readouterr().err
    assert ab.main([*args, "--metric", "nope"]) == 1
    with pytest.raises(SystemExit) as exit_info:
        ab.main(["days", "--out", str(tmp_path)])
    assert exit_info.value.code == 2


def test_python_dash_m_runs(two_days, tmp_path):
    argv = ["days", "--report", str(two_days[0]), "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "script.ab", *argv], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "days.png").exists()
